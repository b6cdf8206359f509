"""Rating tokens (pure): random, single-use; only their SHA-256 is stored. The checks a rating's
token passes (the Kafka path and the rating page ask the same function), and the rating form's
nonces."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.contract.keys import b64url

Refusal = Literal["invalid token", "token already used", "token expired"]
INVALID: Refusal = "invalid token"
USED: Refusal = "token already used"
EXPIRED: Refusal = "token expired"
MAX_TOKEN = 256  # FeedbackSubmitted.rating_token's limit
FORM_VALIDITY = timedelta(hours=24)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def refusal(request: Any, case_id: str, case_round: int, now: datetime) -> Refusal | None:
    """Why a rating of ``case_id`` with the token of ``request`` (its row or a mapping with its
    columns; None: no such token)
    is refused, in the order the reasons are checked; None: the token is good. A token of
    another case is invalid (a forgery); a token of an earlier round has expired."""
    if request is None or request["case_id"] != case_id:
        return INVALID
    if request["used_at"] is not None:
        return USED
    if request["expires_at"] <= now or request["round"] != case_round:
        return EXPIRED
    return None


# --- the rating form's nonce ----------------------------------------------------------------------
# The page's form carries "<issued unix seconds>.<MAC>", a MAC under a key only feedback holds
# over the rating token and the time: a POST without a nonce from a page feedback served for
# this very token within FORM_VALIDITY is answered with the form again, not applied (a
# cross-site form, a replayed old page). Stateless: any replica checks it.


def form_nonce(key: bytes, token: str, now: datetime) -> str:
    issued = int(now.timestamp())
    return f"{issued}.{_nonce_mac(key, token, issued)}"


def nonce_ok(key: bytes, token: str, nonce: str | None, now: datetime) -> bool:
    issued_text, dot, mac = (nonce or "").partition(".")
    if not dot or not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    age = now.timestamp() - issued
    if age < -60 or age > FORM_VALIDITY.total_seconds():  # a minute of clock skew between replicas
        return False
    return hmac.compare_digest(mac.encode(), _nonce_mac(key, token, issued).encode())


def _nonce_mac(key: bytes, token: str, issued: int) -> str:
    msg = f"{token}\n{issued}".encode()
    return b64url(hmac.new(key, msg, hashlib.sha256).digest()[:16])
