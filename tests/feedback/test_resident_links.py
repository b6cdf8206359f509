"""The residents' links without infrastructure: the sealed follow-up request (the notifier's
format, also as a second implementation written from docs/feedback.md), the status token, the
rating token's checks, the form's nonce, the pages, and the keys' one-line errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devstack.testbed import link_key_for_tests, notify_key_for_tests
from services.feedback import pages
from services.feedback.keys import FeedbackKeyError, FeedbackKeys
from services.feedback.requests import FollowUpRequests
from services.feedback.status import resident_view
from services.feedback.tokens import (
    EXPIRED,
    INVALID,
    USED,
    form_nonce,
    new_token,
    nonce_ok,
    refusal,
)
from shared.contract.events import FeedbackRequested, FeedbackRequestedV2
from shared.contract.keys import KeyFormatError, new_key, parse_key
from shared.contract.links import case_of_status_token, status_token
from shared.contract.notify import (
    NotifyKey,
    NotifyKeys,
    SealError,
    open_request,
    seal,
    sealed_requests,
    unseal,
)
from shared.runtime.settings import Settings

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CASE = "C20261123-0000000001"
KEY = NotifyKey.parse(notify_key_for_tests())
LINK = parse_key(link_key_for_tests(), "WANGGE_LINK_KEY")
# The known answer of docs/feedback.md: the key b"n" * 32, the nonce 12 zero bytes.
VECTOR = (
    "v1.ca619d115bebf5bd.AAAAAAAAAAAAAAAA0KMw0fVl__QSJCU4XVLB-eQIUZnZp78hi8v7BdgY_toJGiVYMo_oSZirl"
    "Jy1AF-lNd8qltplH0dRNa9aTwhxNzrONj_gFcXPraeagFZIsdr-dqZAazWY"
)
VECTOR_LINKS = {"rating_token": "R4nd0m-T0ken", "status_token": f"{CASE}.x"}


def requests(emit_v1: bool = False) -> FollowUpRequests:
    keys = FeedbackKeys.from_settings(
        Settings(WANGGE_NOTIFY_KEY=notify_key_for_tests(), WANGGE_LINK_KEY=link_key_for_tests())
    )
    return FollowUpRequests(keys, "https://wangge.example.gov.cn/feedback/", emit_v1=emit_v1)


def request_events(emit_v1: bool = False) -> list[dict[str, object]]:
    events = requests(emit_v1).events(
        case_id=CASE,
        reporter_ref="ref-1",
        channel="hotline_12345",
        rating_token="tok-abc",
        expires_at=NOW + timedelta(days=7),
        round=2,
    )
    return [json.loads(e.model_dump_json()) | {"_class": type(e).__name__} for e in events]


# --- the sealed request -------------------------------------------------------------------------


def test_the_request_carries_no_token_in_clear_and_the_notifier_opens_it() -> None:
    [v2] = request_events()
    assert v2["_class"] == "FeedbackRequestedV2" and "rating_token" not in v2
    assert "tok-abc" not in json.dumps(v2)
    assert status_token(LINK, CASE) not in json.dumps(v2)
    assert v2["rating_url"] == "https://wangge.example.gov.cn/feedback/r/{rating_token}"
    follow = open_request(v2, NotifyKeys.parse(notify_key_for_tests()))
    assert follow.rating_token == "tok-abc" and follow.round == 2
    assert follow.rating_url == "https://wangge.example.gov.cn/feedback/r/tok-abc"
    assert follow.status_token == status_token(LINK, CASE)
    assert follow.status_url == f"https://wangge.example.gov.cn/feedback/s/{follow.status_token}"


def test_v1_is_published_beside_v2_only_when_opted_in() -> None:
    v2, v1 = request_events(emit_v1=True)
    assert (v2["_class"], v1["_class"]) == ("FeedbackRequestedV2", "FeedbackRequested")
    assert v1["rating_token"] == "tok-abc"
    assert FeedbackRequestedV2.version == 2 and FeedbackRequested.version == 1
    # one request, two versions: a reader of both answers it once
    [only] = sealed_requests([v2, v1], KEY)
    assert only.rating_token == "tok-abc"
    assert open_request(v1, None).rating_token == "tok-abc"  # v1 needs no key


def test_a_sealed_value_opens_only_for_its_own_request() -> None:
    [v2] = request_events()
    sealed = str(v2["sealed_links"])
    for other in ({"case_id": "C-other"}, {"round": 1}, {"reporter_ref": "ref-2"}):
        with pytest.raises(SealError):
            open_request({**v2, **other}, KEY)
    tampered = sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB")
    with pytest.raises(SealError):
        unseal(KEY, tampered, case_id=CASE, round=2, reporter_ref="ref-1")
    with pytest.raises(SealError, match="not configured"):
        open_request(v2, NotifyKey.parse(new_key()))
    with pytest.raises(SealError):
        open_request(v2, None)


def test_the_notifier_holds_old_and_new_keys_during_a_change() -> None:
    old, new = new_key(), new_key()
    ring = NotifyKeys.parse(f"{new},{old}")
    for k in (old, new):
        key = NotifyKey.parse(k)
        sealed = seal(key, {"rating_token": "t"}, case_id=CASE, round=1, reporter_ref="r")
        assert unseal(ring, sealed, case_id=CASE, round=1, reporter_ref="r") == {
            "rating_token": "t"
        }


def test_the_documented_format_implemented_from_the_docs() -> None:
    """docs/feedback.md's recipe, written again with HMAC and AES-GCM only: it opens what
    feedback seals, and makes the documented known answer."""
    k = b"n" * 32
    kid = hmac.new(k, b"wangge/notify/v1/key-id", hashlib.sha256).digest()[:8].hex()
    enc = hmac.new(k, b"wangge/notify/v1/aes-256-gcm", hashlib.sha256).digest()
    fmt, got_kid, body = VECTOR.split(".")
    assert (fmt, got_kid) == ("v1", kid)
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    aad = f"v1.{kid}\n{CASE}\n1\nref-1".encode()
    assert json.loads(AESGCM(enc).decrypt(raw[:12], raw[12:], aad)) == VECTOR_LINKS
    again = seal(KEY, VECTOR_LINKS, case_id=CASE, round=1, reporter_ref="ref-1", nonce=bytes(12))
    assert again == VECTOR


# --- the status token ---------------------------------------------------------------------------


def test_a_status_token_names_its_case_and_cannot_be_made_without_the_key() -> None:
    token = status_token(LINK, CASE)
    assert token.startswith(CASE + ".") and len(token) == len(CASE) + 1 + 22
    assert case_of_status_token(LINK, token) == CASE
    other = status_token(parse_key(new_key(), "K"), CASE)
    mac = token.rsplit(".", 1)[1]
    for bad in (
        other,  # another key's
        f"C20261123-0000000002.{mac}",  # another case with this one's MAC
        token[:-1],  # truncated
        token + "A",
        CASE,
        "",
        ".",
        token.replace(".", ""),
    ):
        assert case_of_status_token(LINK, bad) is None, bad


# --- the rating token's checks and the form's nonce ----------------------------------------------


def test_refusals_in_order() -> None:
    req = {"case_id": CASE, "used_at": None, "expires_at": NOW + timedelta(hours=1), "round": 2}
    assert refusal(req, CASE, 2, NOW) is None
    assert refusal(None, CASE, 2, NOW) == INVALID
    assert refusal(req, "C-other", 2, NOW) == INVALID
    assert refusal({**req, "used_at": NOW, "round": 1}, CASE, 2, NOW) == USED
    assert refusal(req, CASE, 3, NOW) == EXPIRED  # a later round started
    assert refusal({**req, "expires_at": NOW}, CASE, 2, NOW) == EXPIRED
    assert len(new_token()) >= 32


def test_a_form_nonce_is_for_one_token_and_a_day() -> None:
    key = b"f" * 32
    nonce = form_nonce(key, "tok", NOW)
    assert nonce_ok(key, "tok", nonce, NOW + timedelta(hours=23))
    assert not nonce_ok(key, "tok", nonce, NOW + timedelta(hours=25))
    assert not nonce_ok(key, "other", nonce, NOW)
    assert not nonce_ok(b"g" * 32, "tok", nonce, NOW)
    for bad in (None, "", "x", "123.", nonce + "x", "9" * 20 + "." + nonce.split(".")[1]):
        assert not nonce_ok(key, "tok", bad, NOW), bad


# --- the pages ------------------------------------------------------------------------------------


def test_the_rating_form_asks_both_questions_and_escapes_what_it_shows() -> None:
    html = pages.rating_form(
        case_id=CASE,
        category_name="<script>alert(1)</script>",
        expires_at=NOW,
        nonce='n"><x',
        errors=["<b>"],
        values={"resolved": "no", "satisfaction": "basically_satisfied", "comment": "</textarea>"},
    )
    assert "问题是否已解决" in html and "是否满意" in html
    for value, label in pages.SATISFACTION_LABELS.items():
        assert f'value="{value}"' in html and label in html
    assert "<script>" not in html and "&lt;/textarea&gt;</textarea>" in html
    assert 'value="no" required checked' in html
    assert "&lt;b&gt;" in html and "n&quot;&gt;&lt;x" in html
    assert "2026-11-23 10:00" in html  # Asia/Shanghai
    assert '<label class="text" for="comment">' in html and 'id="comment"' in html
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in pages.CSP and "script" not in pages.CSP


def test_the_resident_view_shows_no_codes_nor_comments() -> None:
    at = NOW
    timeline = [
        {"at": at, "event": "opened", "tier": None, "unit": None, "detail": None},
        {"at": at, "event": "dispatched", "tier": "grid", "unit": "WC-YY-OJY-G01", "detail": None},
        {"at": at, "event": "reopened", "tier": None, "unit": None, "detail": "unsatisfied: 138"},
        {"at": at, "event": "closed", "tier": None, "unit": None, "detail": "satisfied"},
    ]
    view = resident_view(CASE, "环境卫生", timeline, {"WC-YY-OJY-G01": "欧家园第一网格"})
    assert view["state"] == "closed" and view["state_label"] == "已结案"
    text = json.dumps(view, default=str, ensure_ascii=False)
    assert "WC-YY" not in text and "138" not in text
    assert [s["detail"] for s in view["timeline"]][2:] == ["居民不满意", "居民满意"]
    assert view["timeline"][1]["unit_name"] == "欧家园第一网格"
    assert "欧家园第一网格" in pages.status_page(view)


# --- the keys -------------------------------------------------------------------------------------


GOOD = {"WANGGE_NOTIFY_KEY": notify_key_for_tests(), "WANGGE_LINK_KEY": link_key_for_tests()}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WANGGE_LINK_KEY": GOOD["WANGGE_LINK_KEY"]}, "WANGGE_NOTIFY_KEY"),
        ({**GOOD, "WANGGE_NOTIFY_KEY": "hunter2"}, "WANGGE_NOTIFY_KEY"),
        ({"WANGGE_NOTIFY_KEY": GOOD["WANGGE_NOTIFY_KEY"]}, "WANGGE_LINK_KEY"),
        ({**GOOD, "WANGGE_LINK_KEY": "c2hvcnQ="}, "WANGGE_LINK_KEY"),
    ],
)
def test_a_missing_or_malformed_key_is_one_line_naming_it(
    env: dict[str, str], variable: str
) -> None:
    with pytest.raises(FeedbackKeyError) as caught:
        FeedbackKeys.from_settings(Settings(**env))  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message
    assert "hunter2" not in message and "c2hvcnQ=" not in message
    assert "wangge pii new-key" in message


def test_notifier_keys_name_which_one_is_wrong() -> None:
    with pytest.raises(KeyFormatError, match=r"WANGGE_NOTIFY_KEY \(key 2 of 2\)"):
        NotifyKeys.parse(f"{new_key()},nope")
    with pytest.raises(KeyFormatError, match="is not set"):
        NotifyKeys.parse(" , ")
