"""Short-lived photo links (pure): how dispatch lets a caller fetch a photo intake stores.

Each service keeps its own photos (its schema, or its prefix of the object store), and dispatch
is the service that knows who may see a case. A report's photo is stored by intake; dispatch,
having checked that the caller may see the case, answers with a redirect to intake's
``/media/{photo_id}`` carrying an expiry and a MAC, which intake checks before serving the photo:

    exp = unix seconds the link expires at (now + WANGGE_MEDIA_LINK_TTL_S)
    sig = base64url(HMAC-SHA256(media_link_key, MEDIA_LABEL + photo_id + "\\n" + exp)[:16])
    link = <WANGGE_PUBLIC_INTAKE_URL>/media/<photo_id>?exp=<exp>&sig=<sig>

``WANGGE_MEDIA_LINK_KEY`` (32 bytes, ``shared.contract.keys``) is held by intake and dispatch
only. A link works for anyone holding it until it expires (minutes), as a signed object-store
URL does; it is never logged. Changing the key invalidates the links given out before, nothing
else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final
from urllib.parse import urlencode

from shared.contract.keys import b64url

MEDIA_PATH: Final = "/media/{photo_id}"
MEDIA_LABEL: Final = b"wangge/media-link/v1\n"
PHOTO_ID: Final = re.compile(r"^[0-9a-f]{64}$")  # a SHA-256, as shared.media.images makes it
_MAC_CHARS: Final = 22


def signature(key: bytes, photo_id: str, expires: int) -> str:
    mac = hmac.new(key, MEDIA_LABEL + f"{photo_id}\n{expires}".encode(), hashlib.sha256)
    return b64url(mac.digest()[:16])


def media_link(base: str | None, key: bytes, photo_id: str, expires: int) -> str:
    """The link to ``photo_id`` on the storing service (``base``: its public address; relative
    without one), valid until the Unix time ``expires``."""
    query = urlencode({"exp": expires, "sig": signature(key, photo_id, expires)})
    path = MEDIA_PATH.replace("{photo_id}", photo_id)
    return f"{(base or '').rstrip('/')}{path}?{query}"


def link_valid(key: bytes, photo_id: str, expires: str, sig: str, now: float) -> bool:
    """Whether ``exp``/``sig`` of a link to ``photo_id`` were made with ``key`` and it has not
    expired at ``now`` (Unix seconds); checked in constant time."""
    if not PHOTO_ID.match(photo_id) or not expires.isascii() or not expires.isdigit():
        return False
    if len(expires) > 12 or not sig.isascii() or len(sig) != _MAC_CHARS or int(expires) < now:
        return False
    return hmac.compare_digest(sig.encode(), signature(key, photo_id, int(expires)).encode())
