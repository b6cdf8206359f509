"""Personal data: pseudonyms, masking and encryption at rest (pure functions, no I/O).

Name and phone are stored only in intake's schema, encrypted with AES-256-GCM under
``WANGGE_PII_KEY``; every other topic carries ``reporter_ref`` (an HMAC pseudonym, stable for the
same person) and the masked phone (138****5678).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.events import Reporter
from shared.logging import mask_phone as mask_phone_numbers_in


class PiiKeyMissing(RuntimeError):
    pass


def derive_key(secret: str) -> bytes:
    """32 bytes from the configured secret (any string; a urlsafe base64 key is used as is)."""
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(secret.encode()).digest()


class Pii:
    def __init__(self, secret: str | None) -> None:
        if not secret:
            raise PiiKeyMissing("WANGGE_PII_KEY must be set (32-byte urlsafe base64 key)")
        self._key = derive_key(secret)
        self._aead = AESGCM(self._key)

    def encrypt(self, text: str | None) -> bytes | None:
        if text is None:
            return None
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, text.encode(), b"wangge-pii")

    def decrypt(self, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        return self._aead.decrypt(blob[:12], blob[12:], b"wangge-pii").decode()

    def reporter_ref(self, reporter: Reporter, source: str, report_id: str) -> str:
        """Stable pseudonym: the same phone or resident id gives the same ref; anonymous
        reporters get one per report."""
        if reporter.anonymous:
            basis = f"anon:{source}:{report_id}"
        elif reporter.phone:
            basis = f"phone:{reporter.phone}"
        elif reporter.resident_id:
            basis = f"resident:{reporter.resident_id}"
        else:
            basis = f"report:{source}:{report_id}"
        digest = hmac.new(self._key, basis.encode(), hashlib.sha256).hexdigest()
        return f"r-{digest[:20]}"


def mask_phone(phone: str | None) -> str | None:
    """138****5678."""
    if not phone:
        return None
    return f"{phone[:3]}****{phone[-4:]}"


def redact_phones(text: str) -> str:
    """Every mainland mobile number written inside free text, masked (联系电话138****5678):
    descriptions leave intake on other topics, phone numbers typed into them must not."""
    return mask_phone_numbers_in(text)
