"""Personal data helpers (pure): pseudonyms, masking, encryption at rest, keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devstack.testbed import pii_key_for_tests
from services.intake.privacy import (
    ENCRYPTION_INFO,
    LEGACY_AAD,
    Pii,
    PiiKeyError,
    PiiKeyMissing,
    PiiUndecryptable,
    derived_pseudonym_key,
    encode_key,
    key_id,
    legacy_key,
    mask_phone,
    new_key,
    parse_key,
)
from shared.contract.events import Reporter

RAW_1, RAW_2, RAW_3 = b"\x01" * 32, bytes(range(32)), b"\xfb\xff" * 16
K1, K2, K3 = encode_key(RAW_1), encode_key(RAW_2), encode_key(RAW_3)
PINNED = encode_key(derived_pseudonym_key(RAW_1))  # what `wangge pii pseudonym-key` prints


@pytest.fixture
def pii() -> Pii:
    return Pii(pii_key_for_tests())


def legacy_blob(raw: bytes, text: str) -> bytes:
    """A ciphertext as the code before key ids wrote it."""
    nonce = os.urandom(12)
    return nonce + AESGCM(raw).encrypt(nonce, text.encode(), LEGACY_AAD)


def legacy_ref(raw: bytes, phone: str) -> str:
    """reporter_ref as the code before subkeys computed it (HMAC under the key itself)."""
    return "r-" + hmac.new(raw, f"phone:{phone}".encode(), hashlib.sha256).hexdigest()[:20]


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone(None) is None


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


# --- keys: what is accepted ---------------------------------------------------------------------


def test_missing_key_refuses_to_start() -> None:
    for missing in (None, "", "  \n"):
        with pytest.raises(PiiKeyMissing, match="WANGGE_PII_KEY is not set") as err:
            Pii(missing)
        assert "wangge pii new-key" in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        "change-me-32-bytes-urlsafe-base64",  # the example overlay's placeholder before #14
        "change-me:run-wangge-pii-new-key",  # the overlays' placeholder now
        "correct horse battery staple",  # a passphrase (the old code hashed it into a key)
        base64.urlsafe_b64encode(b"s" * 16).decode(),  # AES-128-sized
        base64.urlsafe_b64encode(b"s" * 33).decode(),
        base64.b64encode(RAW_3).decode().replace("/", "_"),  # both alphabets at once
        K2 + "!",
    ],
)
def test_a_key_that_is_not_32_bytes_of_base64_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(PiiKeyError) as err:
        Pii(bad)
    message = str(err.value)
    assert message.startswith("WANGGE_PII_KEY ")
    assert "32 random bytes" in message and "wangge pii new-key" in message
    assert "os.urandom(32)" in message
    assert bad not in message and bad.strip("=")[:12] not in message


def test_urlsafe_and_standard_base64_with_or_without_padding_are_the_same_key() -> None:
    standard = base64.b64encode(RAW_3).decode()
    assert "+" in standard or "/" in standard  # RAW_3 differs between the two alphabets
    spellings = [K3, K3.rstrip("="), standard, standard.rstrip("="), f"  {K3}\n"]
    assert {parse_key(s, "WANGGE_PII_KEY") for s in spellings} == {RAW_3}
    assert len({Pii(s).current.key_id for s in spellings}) == 1
    assert parse_key(new_key(), "X") != parse_key(new_key(), "X")


def test_a_bad_old_key_is_named_by_its_position() -> None:
    with pytest.raises(PiiKeyError, match=r"WANGGE_PII_OLD_KEYS \(key 2 of 2\)") as err:
        Pii(K2, old_keys=f"{K1}, not-a-key", pseudonym_key=PINNED)
    assert "not-a-key" not in str(err.value)
    with pytest.raises(PiiKeyError, match="WANGGE_PII_PSEUDONYM_KEY"):
        Pii(K2, pseudonym_key="short")


def test_settings_keep_the_raw_values_so_only_the_services_that_use_them_check_them() -> None:
    from shared.runtime.settings import Settings

    s = Settings(WANGGE_PII_KEY="bad", WANGGE_PII_OLD_KEYS="worse")
    assert s.pii_key is not None and s.pii_key.get_secret_value() == "bad"
    assert "bad" not in repr(s) and "worse" not in repr(s)
    with pytest.raises(PiiKeyError):
        Pii.from_settings(s)


# --- subkeys and the ciphertext format ----------------------------------------------------------


def test_encryption_uses_an_hkdf_subkey_and_names_the_key_in_a_bound_header() -> None:
    pii = Pii(K1)
    blob = pii.encrypt("王阿姨")
    assert blob is not None
    header, nonce, sealed = blob[:9], blob[9:21], blob[21:]
    assert header == b"\x01" + key_id(RAW_1) and len(key_id(RAW_1)) == 8
    assert key_id(RAW_1) != key_id(RAW_2) and key_id(RAW_1) not in RAW_1
    subkey = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=ENCRYPTION_INFO).derive(
        RAW_1
    )
    assert subkey not in (RAW_1, derived_pseudonym_key(RAW_1))
    assert AESGCM(subkey).decrypt(nonce, sealed, header).decode() == "王阿姨"
    with pytest.raises(InvalidTag):  # the header is the associated data
        AESGCM(subkey).decrypt(nonce, sealed, b"\x01" + key_id(RAW_2))
    with pytest.raises(InvalidTag):  # not under the key itself
        AESGCM(RAW_1).decrypt(nonce, sealed, header)


def test_old_keys_only_decrypt_and_the_current_key_encrypts() -> None:
    old = Pii(K1)
    rotated = Pii(K2, old_keys=K1, pseudonym_key=PINNED)
    under_old = old.encrypt("13812345678")
    assert under_old is not None and rotated.decrypt(under_old) == "13812345678"
    fresh = rotated.encrypt("13812345678")
    assert fresh is not None and fresh[1:9] == key_id(RAW_2)
    with pytest.raises(PiiUndecryptable, match=f"key id {key_id(RAW_2).hex()}"):
        old.decrypt(fresh)
    assert [k.key_id for k in rotated.old_keys] == [key_id(RAW_1)]


def test_legacy_ciphertexts_decrypt_under_any_configured_key() -> None:
    blob = legacy_blob(RAW_1, "王阿姨")
    assert Pii(K1).decrypt(blob) == "王阿姨"
    assert Pii(K2, old_keys=K1, pseudonym_key=PINNED).decrypt(blob) == "王阿姨"
    with pytest.raises(PiiUndecryptable, match="no configured key"):
        Pii(K2).decrypt(blob)
    seal = Pii(K2, old_keys=K1, pseudonym_key=PINNED).seal(blob)
    assert (seal.key_id, seal.legacy, seal.known) == (key_id(RAW_1).hex(), True, True)
    seal = Pii(K2).seal(blob)
    assert (seal.key_id, seal.known) == (None, False)


def test_a_legacy_ciphertext_that_starts_like_a_header_still_decrypts() -> None:
    pii = Pii(K1)
    nonce = pii.current.header + b"\x00" * 3  # the 2**-72 case: nonce begins with the header
    blob = nonce + AESGCM(RAW_1).encrypt(nonce, b"13812345678", LEGACY_AAD)
    assert pii.decrypt(blob) == "13812345678"
    assert pii.reencrypt(blob) is None  # rotation trusts the header (as the SQL filter does)


def test_reencrypt_moves_old_and_legacy_values_and_skips_current_ones() -> None:
    rotated = Pii(K2, old_keys=K1, pseudonym_key=PINNED)
    current = rotated.encrypt("a")
    assert current is not None and rotated.reencrypt(current) is None
    for blob in (Pii(K1).encrypt("b"), legacy_blob(RAW_1, "b"), legacy_blob(RAW_2, "b")):
        assert blob is not None
        moved = rotated.reencrypt(blob)
        assert moved is not None and rotated.is_current(moved)
        assert Pii(K2).decrypt(moved) == "b"  # readable without the old key


def test_a_value_under_an_unknown_key_is_named_by_its_key_id() -> None:
    blob = Pii(K3).encrypt("x")
    assert blob is not None
    with pytest.raises(PiiUndecryptable, match=key_id(RAW_3).hex()):
        Pii(K1).reencrypt(blob)
    seal = Pii(K1).seal(blob)
    assert (seal.key_id, seal.legacy, seal.known) == (key_id(RAW_3).hex(), False, False)


# --- pseudonyms ---------------------------------------------------------------------------------


def _ref(pii: Pii) -> str:
    return pii.reporter_ref(Reporter(phone="13812345678"), "app", "r1")


def test_pseudonyms_use_their_own_subkey_not_the_data_key() -> None:
    assert _ref(Pii(K1)) == _ref(Pii(K1, pseudonym_key=PINNED))
    assert _ref(Pii(K1)) != legacy_ref(RAW_1, "13812345678")
    assert derived_pseudonym_key(RAW_1) != RAW_1


def test_reporter_ref_survives_a_rotation_once_the_pseudonym_key_is_pinned() -> None:
    before = _ref(Pii(K1))
    assert _ref(Pii(K2, old_keys=K1, pseudonym_key=PINNED)) == before
    assert _ref(Pii(K2, pseudonym_key=PINNED)) == before  # the old key removed
    assert _ref(Pii(K2)) != before  # what pinning prevents


def test_old_keys_without_a_pinned_pseudonym_key_are_refused() -> None:
    with pytest.raises(PiiKeyError, match="WANGGE_PII_PSEUDONYM_KEY is not") as err:
        Pii(K2, old_keys=K1)
    assert K1 not in str(err.value) and K2 not in str(err.value)
    assert Pii(K1, old_keys=K1).old_keys == []  # the current key listed again is no rotation


def test_the_old_key_as_pseudonym_key_keeps_the_refs_of_the_old_scheme() -> None:
    """Upgrading: WANGGE_PII_PSEUDONYM_KEY set to the old WANGGE_PII_KEY gives the old refs."""
    assert _ref(Pii(K1, pseudonym_key=K1)) == legacy_ref(RAW_1, "13812345678")
    assert _ref(Pii(K2, old_keys=K1, pseudonym_key=K1)) == legacy_ref(RAW_1, "13812345678")


def test_legacy_key_is_what_the_old_code_made_of_any_string() -> None:
    assert legacy_key(K1) == RAW_1
    assert (
        legacy_key("change-me-32-bytes-urlsafe-base64")
        == hashlib.sha256(b"change-me-32-bytes-urlsafe-base64").digest()
    )
    converted = encode_key(legacy_key("a passphrase"))
    blob = legacy_blob(hashlib.sha256(b"a passphrase").digest(), "王阿姨")
    assert Pii(converted).decrypt(blob) == "王阿姨"
