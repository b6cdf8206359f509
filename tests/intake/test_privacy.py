"""Personal data helpers (pure): pseudonyms, masking, encryption at rest."""

from __future__ import annotations

import pytest

from devstack.testbed import pii_key_for_tests
from services.intake.privacy import Pii, PiiKeyMissing, mask_phone, redact_phones
from shared.events import Reporter


@pytest.fixture
def pii() -> Pii:
    return Pii(pii_key_for_tests())


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(None) is None


def test_phone_numbers_inside_text_are_masked() -> None:
    assert redact_phones("联系电话13812345678，下午在家") == "联系电话138****5678，下午在家"


def test_encryption_round_trip_and_no_plaintext(pii: Pii) -> None:
    blob = pii.encrypt("13812345678")
    assert blob is not None and b"13812345678" not in blob
    assert pii.decrypt(blob) == "13812345678"
    assert pii.encrypt("13812345678") != blob  # a fresh nonce every time


def test_reporter_ref_is_stable_per_person(pii: Pii) -> None:
    a = pii.reporter_ref(Reporter(phone="13812345678"), "app", "r1")
    b = pii.reporter_ref(Reporter(phone="138 1234 5678", name="王阿姨"), "hotline_12345", "r2")
    assert a == b and a.startswith("r-") and "5678" not in a
    assert pii.reporter_ref(Reporter(phone="13900000000"), "app", "r1") != a


def test_anonymous_reporters_get_one_ref_per_report(pii: Pii) -> None:
    anon = Reporter(phone="13812345678", anonymous=True)
    assert pii.reporter_ref(anon, "app", "r1") != pii.reporter_ref(anon, "app", "r2")


def test_missing_key_refuses_to_start() -> None:
    with pytest.raises(PiiKeyMissing):
        Pii(None)
