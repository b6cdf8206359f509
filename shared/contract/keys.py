"""Shared secret keys of the contract (pure): how a 32-byte key setting is written and read.

The keys that two parties of the contract hold (``WANGGE_NOTIFY_KEY``: feedback and the notifier,
``shared.contract.notify``; ``WANGGE_LINK_KEY``: intake and feedback, ``shared.contract.links``)
are 32 random bytes written in base64, urlsafe or standard, padding optional: the format of
``WANGGE_PII_KEY`` (``wangge pii new-key`` makes one). ``parse_key`` reads one and says what is
wrong without ever repeating the value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

KEY_BYTES = 32
NEW_KEY_COMMAND = (
    "wangge pii new-key, or python -c "
    '"import os,base64;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
)
EXPECTED = (
    "expected 32 random bytes in urlsafe base64 (43 characters, or 44 with '='); "
    f"make one with {NEW_KEY_COMMAND}"
)
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


class KeyFormatError(ValueError):
    """A key setting is missing or malformed; the message names the variable, never the value."""


def parse_key(value: str | None, variable: str) -> bytes:
    """The 32 bytes a configured key stands for; ``KeyFormatError`` naming ``variable``
    otherwise."""
    text = (value or "").strip()
    if not text:
        raise KeyFormatError(f"{variable} is not set: {EXPECTED}")
    if not _BASE64.fullmatch(text) or (
        any(c in text for c in "+/") and any(c in text for c in "-_")
    ):
        raise KeyFormatError(f"{variable} is not base64: {EXPECTED}")
    body = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise KeyFormatError(f"{variable} is not base64: {EXPECTED}") from None
    if len(raw) != KEY_BYTES:
        raise KeyFormatError(f"{variable} decodes to {len(raw)} bytes, not {KEY_BYTES}: {EXPECTED}")
    return raw


def new_key() -> str:
    """A fresh key, as the settings take it."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def subkey(key: bytes, label: bytes) -> bytes:
    """A key for one purpose derived from ``key``: HMAC-SHA256(key, label), 32 bytes (one HMAC,
    so that an adapter in any language derives the same)."""
    return hmac.new(key, label, hashlib.sha256).digest()


def b64url(raw: bytes) -> str:
    """base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    """The bytes of unpadded base64url; ``ValueError`` when it is not."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
