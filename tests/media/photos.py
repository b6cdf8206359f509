"""Photos for the tests, made with Pillow: a JPEG with the GPS position where it was taken in
its EXIF (as a phone writes it), a PNG and a WebP with metadata of their own."""

from __future__ import annotations

import io

from PIL import Image, PngImagePlugin
from PIL.ExifTags import GPS, IFD, Base

# 杨园街道, as a phone's GPS writes it: degrees, minutes, seconds
GPS_LAT = (30.0, 36.0, 27.5)
GPS_LON = (114.0, 20.0, 31.2)
CAMERA = "WanggePhone 12"


def jpeg_with_gps(width: int = 64, height: int = 48, *, orientation: int = 1) -> bytes:
    im = Image.new("RGB", (width, height), (200, 60, 30))
    for x in range(width // 2):  # a left half of another colour: orientation is visible
        for y in range(height):
            im.putpixel((x, y), (20, 90, 200))
    exif = Image.Exif()
    exif[Base.Make] = "Wangge"
    exif[Base.Model] = CAMERA
    exif[Base.Orientation] = orientation
    exif[Base.DateTime] = "2026:12:02 09:30:00"
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSLatitudeRef] = "N"
    gps[GPS.GPSLatitude] = GPS_LAT
    gps[GPS.GPSLongitudeRef] = "E"
    gps[GPS.GPSLongitude] = GPS_LON
    out = io.BytesIO()
    im.save(out, format="JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


def png_with_text() -> bytes:
    im = Image.new("RGBA", (40, 30), (10, 200, 10, 128))
    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "30.6076,114.3420")
    out = io.BytesIO()
    im.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def webp_with_exif() -> bytes:
    im = Image.new("RGB", (32, 32), (90, 90, 250))
    exif = Image.Exif()
    exif[Base.Model] = CAMERA
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSLatitudeRef] = "N"
    gps[GPS.GPSLatitude] = GPS_LAT
    out = io.BytesIO()
    im.save(out, format="WEBP", exif=exif)
    return out.getvalue()


def has_gps(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as im:
        exif = im.getexif()
        return bool(exif.get_ifd(IFD.GPSInfo)) or bool(exif)
