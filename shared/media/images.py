"""A photo checked by its content and rewritten without its metadata (pure).

What a phone or an upstream system sends is checked by its bytes, not by the name or the
``Content-Type`` it comes with: JPEG, PNG and WebP (``sniff``), at most ``max_bytes``, at most
``MAX_PIXELS`` once decoded (a small file can decode into gigabytes). It is then decoded and
encoded again by Pillow with none of its metadata: no EXIF (the GPS position where it was taken,
the phone's make, the time), no XMP, no comments or text chunks. Only the pixels are kept, turned
upright first by their EXIF orientation (the one piece of EXIF that changes how a photo looks),
and the colour profile (ICC, which says how to read the pixels and nothing about who or where).
The photo's id is the SHA-256 of what is kept: the same photo sent twice is one photo.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final, Literal

from PIL import Image, ImageOps, UnidentifiedImageError

ContentType = Literal["image/jpeg", "image/png", "image/webp"]
CONTENT_TYPES: Final[tuple[ContentType, ...]] = ("image/jpeg", "image/png", "image/webp")
DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024  # WANGGE_MEDIA_MAX_BYTES
MAX_PIXELS: Final = 50_000_000  # a 50-megapixel photo: more than any phone takes
JPEG_QUALITY: Final = 90
_FORMATS: Final[dict[ContentType, str]] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
}
_SUFFIX: Final[dict[ContentType, str]] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
}


class PhotoRejected(ValueError):
    """Why a photo is refused, in words for the caller (no bytes of it); ``reason`` is one of
    ``empty``, ``too_large``, ``type`` (not a JPEG, PNG or WebP), ``too_many_pixels``,
    ``unreadable`` (damaged, or not what its first bytes say)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo as it is kept: its id (the SHA-256 of ``data``), type, size and pixels."""

    photo_id: str
    content_type: ContentType
    data: bytes
    width: int
    height: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def filename(self) -> str:
        return f"{self.photo_id[:16]}.{_SUFFIX[self.content_type]}"


def sniff(data: bytes) -> ContentType | None:
    """The type its first bytes say (the formats' magic numbers), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def photo_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ContentType:
    """The photo's type; ``PhotoRejected`` when it is empty, too large or not a JPEG, PNG or
    WebP by its content."""
    if not data:
        raise PhotoRejected("empty", "the photo is empty")
    if len(data) > max_bytes:
        raise PhotoRejected("too_large", f"the photo is larger than {max_bytes} bytes")
    kind = sniff(data)
    if kind is None:
        raise PhotoRejected("type", "the photo must be a JPEG, PNG or WebP image")
    return kind


def clean(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Photo:
    """The photo checked (``check``), decoded and encoded again in its own format without its
    metadata. CPU-bound (tens of milliseconds for a phone's photo): run it off the event loop."""
    kind = check(data, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[_FORMATS[kind]]) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise PhotoRejected(
                        "too_many_pixels", f"the photo has more than {MAX_PIXELS} pixels"
                    )
                im.load()
                icc = im.info.get("icc_profile")
                transparency = im.info.get("transparency")
                upright = ImageOps.exif_transpose(im)  # a copy, its orientation applied
    except PhotoRejected:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise PhotoRejected("unreadable", "the photo cannot be read as an image") from exc
    upright.info = {}  # nothing read from the file goes back into it
    out = io.BytesIO()
    options: dict[str, object] = {}
    if icc:
        options["icc_profile"] = icc
    if kind == "image/jpeg":
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        options.update(quality=JPEG_QUALITY, optimize=True)
    elif kind == "image/png":
        if transparency is not None and upright.mode in ("P", "L", "RGB"):
            options["transparency"] = transparency
        options["optimize"] = True
    else:
        options.update(quality=JPEG_QUALITY)
    upright.save(out, format=_FORMATS[kind], **options)
    kept = out.getvalue()
    return Photo(photo_id_of(kept), kind, kept, upright.width, upright.height)
