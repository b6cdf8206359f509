"""Personal data: pseudonyms, masking and encryption at rest (pure functions, no I/O).

Name and phone are stored only in intake's schema, encrypted with AES-256-GCM; every other topic
carries ``reporter_ref`` (an HMAC pseudonym, stable for the same person) and the masked phone
(138****5678). docs/operations.md ("Keys") is the operator's side of what follows.

Keys. Every key is 32 random bytes written in base64 (urlsafe or standard, padding optional):

- ``WANGGE_PII_KEY``, the current data key: it encrypts. ``WANGGE_PII_OLD_KEYS`` (comma-separated)
  are earlier data keys: they only decrypt, until ``wangge pii rotate`` has moved what they sealed
  to the current key.
- From each data key HKDF-SHA256 derives an encryption subkey (``info`` ``ENCRYPTION_INFO``) and
  the key's id, 8 bytes (``KEY_ID_INFO``) that name it in every ciphertext and in
  ``wangge pii status``; the id reveals nothing of the key.
- The pseudonym key is the HMAC-SHA256 key of ``reporter_ref``. Rotation must not change it (other
  services and the metrics know a reporter across cases by the ref), so it does not follow the
  data key: ``WANGGE_PII_PSEUDONYM_KEY`` when set, used as is; otherwise HKDF of the current data
  key (``PSEUDONYM_INFO``), which ``wangge pii pseudonym-key`` prints so that it can be pinned
  before the first rotation. With old keys configured and no pinned pseudonym key, ``Pii``
  refuses: the refs would silently change with the data key.

Ciphertext format 1: ``0x01 | key id (8) | nonce (12) | AES-256-GCM ciphertext and tag (16)``,
the first 9 bytes (format and key id) the associated data. Format 0 (legacy, before key ids):
``nonce | ciphertext and tag`` under the data key itself, associated data ``b"wangge-pii"``; it
is still read under any configured key, and rotation rewrites it in format 1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from shared.contract import keys
from shared.contract.events import Reporter
from shared.runtime.settings import ConfigurationError, Settings

KEY_BYTES = keys.KEY_BYTES
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_1 = 0x01
HEADER_BYTES = 1 + KEY_ID_BYTES  # format byte and key id
LEGACY_AAD = b"wangge-pii"

ENCRYPTION_INFO = b"wangge/pii/v1/aes-256-gcm"
KEY_ID_INFO = b"wangge/pii/v1/key-id"
PSEUDONYM_INFO = b"wangge/pii/v1/pseudonym-hmac-sha256"

EXPECTED = keys.EXPECTED


class PiiKeyError(ConfigurationError):
    """A personal data key is missing or malformed (the message never contains it)."""


class PiiKeyMissing(PiiKeyError):
    pass


class PiiUndecryptable(ValueError):
    """No configured key opens a stored ciphertext."""


# --- keys ---------------------------------------------------------------------------------------


def parse_key(value: str, variable: str) -> bytes:
    """The 32 bytes a configured key stands for (``shared.contract.keys``, the one parser of
    every key setting); ``PiiKeyError`` naming ``variable`` otherwise."""
    try:
        return keys.parse_key(value, variable)
    except keys.KeyFormatError as exc:
        missing = not (value or "").strip()
        raise (PiiKeyMissing if missing else PiiKeyError)(str(exc)) from None


def new_key() -> str:
    """A fresh key, as ``WANGGE_PII_KEY`` takes it."""
    return encode_key(os.urandom(KEY_BYTES))


def encode_key(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def legacy_key(secret: str) -> bytes:
    """The AES and HMAC key the code before key checks made of any configured string (a
    urlsafe base64 32-byte key as is, anything else hashed): ``wangge pii legacy-key`` prints
    it so that a deployment configured with a passphrase keeps reading its data."""
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        if len(raw) == KEY_BYTES:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(secret.encode()).digest()


def _hkdf(key: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def key_id(raw: bytes) -> bytes:
    return _hkdf(raw, KEY_ID_INFO, KEY_ID_BYTES)


def derived_pseudonym_key(raw: bytes) -> bytes:
    """The pseudonym key derived from a data key (used when none is pinned)."""
    return _hkdf(raw, PSEUDONYM_INFO)


def pseudonym_key_id(pseudonym_key: bytes) -> str:
    """A fingerprint of the pseudonym key for ``wangge pii status`` (hex, not the key)."""
    return hmac.new(pseudonym_key, KEY_ID_INFO, hashlib.sha256).hexdigest()[: 2 * KEY_ID_BYTES]


@dataclass(frozen=True)
class DataKey:
    """One data key and what is derived from it."""

    key_id: bytes
    aead: AESGCM = field(repr=False)  # under the HKDF encryption subkey (format 1)
    legacy_aead: AESGCM = field(repr=False)  # under the key itself (format 0, read only)

    @classmethod
    def from_raw(cls, raw: bytes) -> DataKey:
        return cls(key_id(raw), AESGCM(_hkdf(raw, ENCRYPTION_INFO)), AESGCM(raw))

    @property
    def header(self) -> bytes:
        return bytes([FORMAT_1]) + self.key_id

    @property
    def name(self) -> str:
        return self.key_id.hex()


@dataclass(frozen=True)
class Seal:
    """What a stored ciphertext is sealed with."""

    key_id: str | None  # hex; None: format 0 and no configured key opens it
    legacy: bool  # format 0
    known: bool  # a configured key opens it


# --- the keyring --------------------------------------------------------------------------------


class Pii:
    """Encrypts under the current data key, decrypts under any configured one, and computes
    pseudonyms under the pseudonym key."""

    def __init__(
        self, key: str | None, old_keys: str | None = None, pseudonym_key: str | None = None
    ) -> None:
        if not key or not key.strip():
            raise PiiKeyMissing(f"WANGGE_PII_KEY is not set: {EXPECTED}")
        raw = parse_key(key, "WANGGE_PII_KEY")
        self.current = DataKey.from_raw(raw)
        olds = [k for k in (old_keys or "").split(",") if k.strip()]
        self.keys: dict[bytes, DataKey] = {self.current.key_id: self.current}
        for n, old in enumerate(olds, 1):
            variable = f"WANGGE_PII_OLD_KEYS (key {n} of {len(olds)})"
            dk = DataKey.from_raw(parse_key(old, variable))
            self.keys.setdefault(dk.key_id, dk)
        if pseudonym_key and pseudonym_key.strip():
            self._pseudonym = parse_key(pseudonym_key, "WANGGE_PII_PSEUDONYM_KEY")
            self.pseudonym_pinned = True
        elif len(self.keys) > 1:
            raise PiiKeyError(
                "WANGGE_PII_OLD_KEYS is set but WANGGE_PII_PSEUDONYM_KEY is not: reporter_ref "
                "would change with WANGGE_PII_KEY. Set WANGGE_PII_PSEUDONYM_KEY to what "
                "`wangge pii pseudonym-key` prints with the previous key as WANGGE_PII_KEY "
                "(docs/operations.md, Keys)"
            )
        else:
            self._pseudonym = derived_pseudonym_key(raw)
            self.pseudonym_pinned = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Pii:
        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            secret(settings.pii_key),
            secret(settings.pii_old_keys),
            secret(settings.pii_pseudonym_key),
        )

    @property
    def old_keys(self) -> list[DataKey]:
        return [k for k in self.keys.values() if k is not self.current]

    @property
    def pseudonym_key_id(self) -> str:
        return pseudonym_key_id(self._pseudonym)

    # --- encryption -----------------------------------------------------------------------------

    def encrypt(self, text: str | None) -> bytes | None:
        if text is None:
            return None
        header = self.current.header
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self.current.aead.encrypt(nonce, text.encode(), header)

    def decrypt(self, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        return self._open(blob)[1]

    def is_current(self, blob: bytes) -> bool:
        """Sealed under the current key in format 1 (rotation leaves it alone)."""
        return blob[:HEADER_BYTES] == self.current.header

    def reencrypt(self, blob: bytes) -> bytes | None:
        """The same plaintext under the current key, or None when it is already under it."""
        if self.is_current(blob):
            return None
        return self.encrypt(self._open(blob)[1])

    def seal(self, blob: bytes) -> Seal:
        """Which key a ciphertext is under (format 1 by its header, format 0 by trying keys)."""
        if self._format_1_key(blob) is not None:
            return Seal(blob[1:HEADER_BYTES].hex(), legacy=False, known=True)
        try:
            key, _ = self._open_legacy(blob)
            return Seal(key.name, legacy=True, known=True)
        except PiiUndecryptable:
            pass
        if blob[:1] == bytes([FORMAT_1]) and len(blob) >= HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
            return Seal(blob[1:HEADER_BYTES].hex(), legacy=False, known=False)
        return Seal(None, legacy=True, known=False)

    def _format_1_key(self, blob: bytes) -> DataKey | None:
        if blob[:1] != bytes([FORMAT_1]) or len(blob) < HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
            return None
        return self.keys.get(blob[1:HEADER_BYTES])

    def _open(self, blob: bytes) -> tuple[DataKey, str]:
        key = self._format_1_key(blob)
        if key is not None:
            nonce, sealed = (
                blob[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES],
                blob[HEADER_BYTES + NONCE_BYTES :],
            )
            try:
                return key, key.aead.decrypt(nonce, sealed, blob[:HEADER_BYTES]).decode()
            except InvalidTag:
                pass  # a format 0 nonce that starts like a configured key's header (p = 2**-72)
        try:
            return self._open_legacy(blob)
        except PiiUndecryptable:
            if blob[:1] == bytes([FORMAT_1]) and key is None:
                raise PiiUndecryptable(
                    f"sealed under key id {blob[1:HEADER_BYTES].hex()}, which is not configured "
                    "(WANGGE_PII_KEY, WANGGE_PII_OLD_KEYS)"
                ) from None
            raise

    def _open_legacy(self, blob: bytes) -> tuple[DataKey, str]:
        if len(blob) >= NONCE_BYTES + TAG_BYTES:
            for key in self.keys.values():
                try:
                    plain = key.legacy_aead.decrypt(
                        blob[:NONCE_BYTES], blob[NONCE_BYTES:], LEGACY_AAD
                    )
                except InvalidTag:
                    continue
                return key, plain.decode()
        raise PiiUndecryptable("no configured key opens it (WANGGE_PII_KEY, WANGGE_PII_OLD_KEYS)")

    # --- pseudonyms -----------------------------------------------------------------------------

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
        digest = hmac.new(self._pseudonym, basis.encode(), hashlib.sha256).hexdigest()
        return f"r-{digest[:20]}"


# --- masking ------------------------------------------------------------------------------------


def mask_phone(phone: str | None) -> str | None:
    """138****5678."""
    if not phone:
        return None
    return f"{phone[:3]}****{phone[-4:]}"
