"""The pure photo checks: type by content, size, pixels, metadata stripped, the content id."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from PIL.ExifTags import IFD

from shared.media import images
from shared.media.images import PhotoRejected, check, clean, sniff
from tests.media.photos import CAMERA, jpeg_with_gps, png_with_text, webp_with_exif


def test_the_gps_position_is_gone_from_a_jpeg() -> None:
    sent = jpeg_with_gps()
    with Image.open(io.BytesIO(sent)) as im:  # the test photo does carry it
        assert im.getexif().get_ifd(IFD.GPSInfo)
    kept = clean(sent)
    assert kept.content_type == "image/jpeg"
    with Image.open(io.BytesIO(kept.data)) as im:
        assert im.format == "JPEG"
        assert not im.getexif()  # no EXIF at all: no GPS, no camera, no time
        assert "exif" not in im.info and "comment" not in im.info
        assert (im.width, im.height) == (64, 48)
    assert b"Exif" not in kept.data and CAMERA.encode() not in kept.data
    assert b"taken at home" not in kept.data


def test_the_orientation_is_applied_before_it_is_dropped() -> None:
    kept = clean(jpeg_with_gps(64, 48, orientation=6))  # 6: rotated 90° clockwise
    with Image.open(io.BytesIO(kept.data)) as im:
        assert (im.width, im.height) == (48, 64)
        assert not im.getexif()
        top = im.getpixel((24, 2))  # the blue left half is now on top
        assert isinstance(top, tuple) and top[2] > 150 > top[0]


def test_png_text_and_webp_exif_are_gone() -> None:
    png = clean(png_with_text())
    assert png.content_type == "image/png"
    with Image.open(io.BytesIO(png.data)) as im:
        assert im.mode == "RGBA" and "Location" not in im.info
    assert b"114.3420" not in png.data
    webp = clean(webp_with_exif())
    assert webp.content_type == "image/webp"
    with Image.open(io.BytesIO(webp.data)) as im:
        assert not im.getexif()
    assert CAMERA.encode() not in webp.data


def test_the_type_is_taken_from_the_content() -> None:
    assert sniff(jpeg_with_gps()) == "image/jpeg"
    assert sniff(png_with_text()) == "image/png"
    assert sniff(webp_with_exif()) == "image/webp"
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    for data in (gif.getvalue(), b"%PDF-1.7\n", b"<svg xmlns='http://www.w3.org/2000/svg'/>"):
        with pytest.raises(PhotoRejected) as refused:
            check(data)
        assert refused.value.reason == "type"
        assert "JPEG, PNG or WebP" in str(refused.value)


def test_empty_too_large_damaged_and_huge_photos_are_refused() -> None:
    with pytest.raises(PhotoRejected) as refused:
        clean(b"")
    assert refused.value.reason == "empty"
    photo = jpeg_with_gps()
    with pytest.raises(PhotoRejected) as refused:
        clean(photo, max_bytes=len(photo) - 1)
    assert refused.value.reason == "too_large"
    with pytest.raises(PhotoRejected) as refused:
        clean(photo[:40])  # a JPEG's first bytes, then nothing
    assert refused.value.reason == "unreadable"
    big = io.BytesIO()  # 10000 x 6000 pixels of one colour: a small file, 60 megapixels
    Image.new("L", (10_000, 6_000)).save(big, format="PNG", optimize=True)
    with pytest.raises(PhotoRejected) as refused:
        clean(big.getvalue())
    assert refused.value.reason == "too_many_pixels"


def test_the_id_is_the_hash_of_what_is_kept() -> None:
    a, b = clean(jpeg_with_gps()), clean(jpeg_with_gps())
    assert a.photo_id == b.photo_id == images.photo_id_of(a.data)
    assert len(a.photo_id) == 64
    assert a.photo_id != clean(png_with_text()).photo_id
