"""GCJ-02 and BD-09 to WGS-84 (services/intake/coords.py): published reference points, round
trips, points outside China, distances and lock cells."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.intake.coords import cell, distance_m, from_wgs84, in_china, neighbourhood, to_wgs84

# (WGS-84 lat, lon) -> (GCJ-02 lat, lon): eviltransform's test points (Shanghai, Shenzhen,
# Beijing), computed with the published formulas by another implementation.
GCJ_REFERENCE = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
]
# wandergis/coordtransform's test points (lon, lat): GCJ-02 (116.404, 39.915) in BD-09, and
# BD-09 (116.404, 39.915) in GCJ-02.
GCJ_TO_BD = ((116.404, 39.915), (116.41036949371029, 39.92133699351021))
BD_TO_GCJ = ((116.404, 39.915), (116.39762729119315, 39.90865673957631))

china = st.tuples(st.floats(73.7, 134.9), st.floats(18.0, 53.5))  # (lon, lat)
crs = st.sampled_from(["gcj02", "bd09"])


@pytest.mark.parametrize(("wgs", "gcj"), GCJ_REFERENCE)
def test_gcj02_matches_published_reference_points(wgs, gcj):
    lon, lat = from_wgs84(wgs[1], wgs[0], "gcj02")
    assert distance_m(lon, lat, gcj[1], gcj[0]) < 0.01
    back = to_wgs84(gcj[1], gcj[0], "gcj02")
    assert distance_m(*back, wgs[1], wgs[0]) < 0.05


def test_bd09_matches_published_reference_points():
    gcj, bd = GCJ_TO_BD
    shown = from_wgs84(*to_wgs84(*gcj, "gcj02"), "bd09")  # the GCJ-02 point in BD-09
    assert distance_m(*shown, *bd) < 0.01
    bd, gcj = BD_TO_GCJ
    wgs = to_wgs84(*bd, "bd09")
    assert distance_m(*from_wgs84(*wgs, "gcj02"), *gcj) < 0.05


def test_the_shift_is_hundreds_of_metres_in_china():
    lon, lat = from_wgs84(114.40, 30.50, "gcj02")  # Wuhan
    assert 100 < distance_m(lon, lat, 114.40, 30.50) < 1000
    lon, lat = from_wgs84(114.40, 30.50, "bd09")
    assert 500 < distance_m(lon, lat, 114.40, 30.50) < 2000


@given(china, crs)
def test_round_trip_within_a_centimetre(point, system):
    lon, lat = point
    shown = from_wgs84(lon, lat, system)
    back = to_wgs84(*shown, system)
    assert distance_m(*back, lon, lat) < 0.01


@given(st.tuples(st.floats(-180, 180), st.floats(-89, 89)))
def test_gcj02_leaves_points_outside_china_unchanged(point):
    lon, lat = point
    if in_china(lon, lat):
        return
    assert to_wgs84(lon, lat, "gcj02") == (lon, lat)
    assert from_wgs84(lon, lat, "gcj02") == (lon, lat)


def test_wgs84_is_unchanged():
    assert to_wgs84(114.4, 30.5, "wgs84") == (114.4, 30.5)


def test_distance_of_one_degree_of_latitude():
    assert distance_m(114.0, 30.0, 114.0, 31.0) == pytest.approx(111_195, rel=1e-3)


@example(point=(0.0, -1.401298464324817e-45), bearing=0.0, frac=1.0)  # found by hypothesis
@given(
    st.tuples(st.floats(-179, 179), st.floats(-60, 60)),
    st.floats(0, 359.9),
    st.floats(0, 1),
)
def test_points_within_the_cell_size_are_in_each_others_neighbourhood(point, bearing, frac):
    import math

    lon, lat = point
    size = 300.0
    d = size * frac
    dlat = d * math.cos(math.radians(bearing)) / 111_320
    dlon = d * math.sin(math.radians(bearing)) / (111_320 * math.cos(math.radians(lat)))
    other = (lon + dlon, lat + dlat)
    if distance_m(lon, lat, *other) > size or abs(other[1]) > 60:
        return
    assert cell(*other, size) in neighbourhood(lon, lat, size)
