"""The follow-up request's sealed links (pure): what only feedback and the notifier can read.

``feedback.requested`` v2 (``org.wangge.feedback.requested.v2``, ``FeedbackRequestedV2``) carries
the non-secret fields of a follow-up request (回访) in clear and the resident's tokens sealed for
the notifier, the channel adapter that sends residents their links (WeChat, SMS, the 12345
platform's callback): any other client of the broker sees that a request exists, never a token.
The notifier opens ``sealed_links`` with ``WANGGE_NOTIFY_KEY``, which only it and feedback hold,
and puts the tokens in the URL templates of the event (``rating_url``, ``status_url``).

The format, for adapters in any language (K: the 32 bytes of ``WANGGE_NOTIFY_KEY``;
HMAC = HMAC-SHA256; base64url without padding; strings UTF-8)::

    sealed_links = "v1." + kid + "." + base64url(nonce || ciphertext || tag)
    kid          = hex(HMAC(K, "wangge/notify/v1/key-id")[:8])          16 lowercase hex digits
    enc_key      = HMAC(K, "wangge/notify/v1/aes-256-gcm")              32 bytes: AES-256-GCM
    nonce        = 12 random bytes; tag = the 16-byte GCM tag, after the ciphertext
    aad          = "v1." + kid + "\\n" + case_id + "\\n" + round + "\\n" + reporter_ref
                   (round in decimal; the event's own fields: a sealed value moved to another
                   request, case or round does not open)
    plaintext    = a JSON object: {"rating_token": "...", "status_token": "..."}
                   (status_token absent when feedback has no link key; ignore other members)

The key id lets the key change: the notifier holds the new key and the old ones (this module's
``NotifyKeys`` takes several, comma-separated, and picks by ``kid``) while feedback seals with
one. ``open_request`` also reads a v1 request (the token in clear), so one call serves the
transition (docs/feedback.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.contract.keys import (
    EXPECTED,
    KeyFormatError,
    b64url,
    from_b64url,
    parse_key,
    subkey,
)
from shared.contract.links import RATING_PATH, STATUS_PATH

FORMAT = "v1"
KEY_ID_LABEL = b"wangge/notify/v1/key-id"
ENCRYPTION_LABEL = b"wangge/notify/v1/aes-256-gcm"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
VARIABLE = "WANGGE_NOTIFY_KEY"


class SealError(ValueError):
    """A sealed value that no configured key opens (unknown key id, altered, or not this
    request's)."""


@dataclass(frozen=True)
class NotifyKey:
    """One notify key and what is derived from it."""

    kid: str
    aead: AESGCM = field(repr=False)

    @classmethod
    def from_raw(cls, raw: bytes) -> NotifyKey:
        kid = hmac.new(raw, KEY_ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES].hex()
        return cls(kid, AESGCM(subkey(raw, ENCRYPTION_LABEL)))

    @classmethod
    def parse(cls, value: str | None, variable: str = VARIABLE) -> NotifyKey:
        """``KeyFormatError`` naming ``variable`` when missing or malformed."""
        return cls.from_raw(parse_key(value, variable))


@dataclass(frozen=True)
class NotifyKeys:
    """The keys a notifier opens with: the current one and, during a change, the old ones."""

    keys: tuple[NotifyKey, ...]

    @classmethod
    def parse(cls, value: str | None, variable: str = VARIABLE) -> NotifyKeys:
        """Comma-separated keys (the current first); ``KeyFormatError`` naming ``variable``."""
        parts = [p for p in (value or "").split(",") if p.strip()]
        if not parts:
            raise KeyFormatError(f"{variable} is not set: {EXPECTED}")
        if len(parts) == 1:
            return cls((NotifyKey.parse(parts[0], variable),))
        return cls(
            tuple(
                NotifyKey.parse(p, f"{variable} (key {n} of {len(parts)})")
                for n, p in enumerate(parts, 1)
            )
        )

    def by_kid(self, kid: str) -> NotifyKey | None:
        return next((k for k in self.keys if k.kid == kid), None)


def _aad(kid: str, case_id: str, round_: int, reporter_ref: str) -> bytes:
    return f"{FORMAT}.{kid}\n{case_id}\n{round_}\n{reporter_ref}".encode()


def seal(
    key: NotifyKey,
    links: Mapping[str, str],
    *,
    case_id: str,
    round: int,
    reporter_ref: str,
    nonce: bytes | None = None,
) -> str:
    """``links`` (``rating_token``, ``status_token``) sealed for the notifier, bound to the
    request's case, round and reporter."""
    n = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    plain = json.dumps(dict(links), separators=(",", ":"), ensure_ascii=False).encode()
    sealed = key.aead.encrypt(n, plain, _aad(key.kid, case_id, round, reporter_ref))
    return f"{FORMAT}.{key.kid}.{b64url(n + sealed)}"


def unseal(
    keys: NotifyKeys | NotifyKey,
    sealed: str,
    *,
    case_id: str,
    round: int,
    reporter_ref: str,
) -> dict[str, str]:
    """The links of a sealed value; ``SealError`` when no key of ``keys`` opens it."""
    ring = keys if isinstance(keys, NotifyKeys) else NotifyKeys((keys,))
    fmt, _, rest = sealed.partition(".")
    kid, _, body = rest.partition(".")
    if fmt != FORMAT or not kid or not body:
        raise SealError(f"not a sealed value of format {FORMAT}")
    key = ring.by_kid(kid)
    if key is None:
        raise SealError(f"sealed under key {kid}, which is not configured")
    try:
        raw = from_b64url(body)
    except ValueError:
        raise SealError("the sealed value is not base64url") from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise SealError("the sealed value is too short")
    try:
        plain = key.aead.decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(kid, case_id, round, reporter_ref)
        )
    except InvalidTag:
        raise SealError("the sealed value does not open: altered, or not this request's") from None
    data = json.loads(plain)
    if not isinstance(data, dict) or not isinstance(data.get("rating_token"), str):
        raise SealError("the sealed value holds no rating token")
    return {k: v for k, v in data.items() if isinstance(v, str)}


@dataclass(frozen=True)
class FollowUp:
    """A follow-up request opened by the notifier: what it sends the resident."""

    case_id: str
    reporter_ref: str
    channel: str
    round: int
    expires_at: str  # ISO 8601, as on the wire
    rating_token: str
    rating_url: str  # the rating page's link, the token in it
    status_token: str | None = None
    status_url: str | None = None  # the case's status page's link, when the request has one


def open_request(body: Mapping[str, Any], keys: NotifyKeys | NotifyKey | None) -> FollowUp:
    """A ``feedback.requested`` payload (v2: sealed, or v1: the token in clear) opened.

    ``SealError`` when a v2 request does not open with ``keys`` (or no keys are given)."""
    case_id, reporter_ref = str(body["case_id"]), str(body["reporter_ref"])
    round_ = int(body.get("round", 1))
    channel, expires_at = str(body.get("channel", "")), _iso(body.get("expires_at"))
    sealed = body.get("sealed_links")
    if not isinstance(sealed, str):  # v1: the token in clear
        token = str(body["rating_token"])
        return FollowUp(
            case_id,
            reporter_ref,
            channel,
            round_,
            expires_at,
            rating_token=token,
            rating_url=RATING_PATH.replace("{rating_token}", token),
        )
    if keys is None:
        raise SealError(f"a sealed request and no {VARIABLE} to open it")
    links = unseal(keys, sealed, case_id=case_id, round=round_, reporter_ref=reporter_ref)
    rating = links["rating_token"]
    status = links.get("status_token")
    rating_template = str(body.get("rating_url") or RATING_PATH)
    status_template = str(body.get("status_url") or STATUS_PATH)
    return FollowUp(
        case_id,
        reporter_ref,
        channel,
        round_,
        expires_at,
        rating_token=rating,
        rating_url=rating_template.replace("{rating_token}", rating),
        status_token=status,
        status_url=status_template.replace("{status_token}", status) if status else None,
    )


def rating_token_of(body: Mapping[str, Any], keys: NotifyKeys | NotifyKey | None) -> str:
    """The rating token of a ``feedback.requested`` payload, either version."""
    return open_request(body, keys).rating_token


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")


def sealed_requests(
    bodies: Iterable[Mapping[str, Any]], keys: NotifyKeys | NotifyKey | None
) -> list[FollowUp]:
    """Every request of ``bodies`` opened, each once: during the transition a request is
    published as v1 and as v2 (the same token); the first of them is kept."""
    seen: set[str] = set()
    out = []
    for body in bodies:
        f = open_request(body, keys)
        if f.rating_token not in seen:
            seen.add(f.rating_token)
            out.append(f)
    return out
