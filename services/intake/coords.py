"""Coordinates: the reference systems Chinese map SDKs send, turned into WGS-84, and distances.
Pure: no I/O.

A point reaches intake in the reference system its channel names (``ReportLocation.crs``):

- ``wgs84``: GPS as received (the default, and Open311's);
- ``gcj02``: 国测局坐标 ("Mars coordinates"), what AMap/高德, Tencent Maps/腾讯地图 and WeChat's
  location picker return inside China: WGS-84 shifted by up to a few hundred metres;
- ``bd09``: Baidu Maps/百度地图' own system, a further shift of GCJ-02.

The conversion is ``prcoords`` (public domain), its precise inverses (an iteration of the
published forward formulas, to about a millimetre). GCJ-02 shifts only points inside China: a
point outside ``prcoords``' box of China is returned unchanged, as the SDKs return it.
The registry's polygons and points, and every distance, are WGS-84.
"""

from __future__ import annotations

import math
from typing import Literal

import prcoords

Crs = Literal["wgs84", "gcj02", "bd09"]
EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


def in_china(lon: float, lat: float) -> bool:
    """Whether GCJ-02 shifts the point (``prcoords``' box of China)."""
    return bool(prcoords.sanity_in_china_p(prcoords.Coords(lat, lon)))


def to_wgs84(lon: float, lat: float, crs: Crs) -> tuple[float, float]:
    """``(lon, lat)`` given in ``crs``, in WGS-84."""
    if crs == "wgs84":
        return lon, lat
    if crs == "bd09":
        lat, lon = prcoords.bd_gcj_bored(prcoords.Coords(lat, lon))
    if not in_china(lon, lat):
        return lon, lat
    wgs = prcoords.gcj_wgs_bored(prcoords.Coords(lat, lon))
    return wgs.lon, wgs.lat


def from_wgs84(lon: float, lat: float, crs: Crs) -> tuple[float, float]:
    """The inverse of ``to_wgs84``: what an SDK in ``crs`` shows for a WGS-84 point (tests,
    and the labelled pairs of ``bench.duplicates``)."""
    if crs == "wgs84":
        return lon, lat
    if in_china(lon, lat):
        gcj = prcoords.wgs_gcj(prcoords.Coords(lat, lon), False)
        lon, lat = gcj.lon, gcj.lat
    if crs == "bd09":
        bd = prcoords.gcj_bd(prcoords.Coords(lat, lon))
        lon, lat = bd.lon, bd.lat
    return lon, lat


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cell(lon: float, lat: float, size_m: float) -> tuple[int, int]:
    """The cell holding the point: ``size_m`` metres of latitude high, twice as many degrees of
    longitude wide (one width everywhere), so that below 60° of latitude two points within
    ``size_m`` of each other are in the same or adjacent cells (the merge locks use it)."""
    # the latitude ``size_m`` spans on the sphere ``distance_m`` measures on (111,195 m a
    # degree): with a smaller metre per degree a pair just under ``size_m`` apart spanned more
    # than a cell's height and could be two cells apart
    dlat = math.degrees(size_m / EARTH_RADIUS_M)
    return math.floor(lon / (2 * dlat)), math.floor(lat / dlat)


def neighbourhood(lon: float, lat: float, size_m: float) -> list[tuple[int, int]]:
    """The cell holding the point and the cells around it (3 x 3)."""
    cx, cy = cell(lon, lat, size_m)
    return [(cx + i, cy + j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
