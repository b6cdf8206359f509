"""The simulated territory: a valid registry file, the sizes asked for, grids that tile the
district, buildings inside their grid, and the same city for the same seed."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.contract.events import Unit
from shared.contract.taxonomy import default_taxonomy
from shared.registry.file import parse_registry
from sim.territory import BBOX, TerritorySize, generate_territory, split


def _inside(lon: float, lat: float, grid: Unit) -> bool:
    assert grid.area is not None
    xs, ys = [p[0] for p in grid.area], [p[1] for p in grid.area]
    return min(xs) < lon < max(xs) and min(ys) < lat < max(ys)


def test_small_territory_is_a_valid_registry_file():
    t = generate_territory(TerritorySize.small(), seed=3)
    records = parse_registry(t.to_yaml(), default_taxonomy())
    assert len(records) == len(t.units) + len(t.departments) + len(t.handlers)
    levels = Counter(r.level for r in records if isinstance(r, Unit))
    assert levels == {"district": 1, "street": 2, "community": 4, "grid": 12, "building": 120}


def test_departments_cover_every_category_above_the_community():
    tax = default_taxonomy()
    t = generate_territory(TerritorySize.small(), seed=3)
    high = {c.code for c in tax.categories if c.tier in ("street", "district")}
    for street in (u for u in t.units if u.level == "street"):
        owned = {
            c
            for d in t.departments
            if d.parent in (street.code, t.district.code)
            for c in d.categories
        }
        assert high <= owned, high - owned
    staffed = {h.unit for h in t.handlers if h.role == "department_staff"}
    assert staffed == {d.code for d in t.departments}


def test_default_size_is_a_large_urban_district():
    t = generate_territory(seed=1)
    assert t.count("street") == 14
    assert t.count("community") == 140
    assert t.count("grid") == 1272
    assert t.count("building") == 25_000
    assert 2_700 <= len(t.handlers) <= 3_300
    roles = Counter(h.role for h in t.handlers)
    assert set(roles) == {
        "grid_worker",
        "building_head",
        "community_staff",
        "party_volunteer",
        "property_staff",
        "department_staff",
    }
    assert roles["grid_worker"] == 1272
    names = [u.name for u in t.units]
    assert len(names) == len(set(names)), "unit names must be unique for text matching"


def test_grids_tile_the_district_and_buildings_lie_in_their_grid():
    t = generate_territory(TerritorySize(streets=3, communities=7, grids=30, buildings=300), seed=9)
    grids = {g.code: g for g in t.grids()}
    area = 0.0
    for g in grids.values():
        assert g.area is not None and len(g.area) == 4
        (x0, y0), (x1, _), (_, y1) = g.area[0], g.area[1], g.area[2]
        area += (x1 - x0) * (y1 - y0)
    assert area == pytest.approx((BBOX[2] - BBOX[0]) * (BBOX[3] - BBOX[1]), rel=1e-4)
    for b in t.buildings:
        owners = [code for code, g in grids.items() if _inside(b.lon, b.lat, g)]
        assert owners == [b.grid]
        assert b.name.startswith(b.name.split("小区")[0]) and b.name.endswith("栋")


def test_same_seed_same_city_other_seed_other_city():
    size = TerritorySize.small()
    assert generate_territory(size, seed=5).to_yaml() == generate_territory(size, seed=5).to_yaml()
    assert generate_territory(size, seed=5).to_yaml() != generate_territory(size, seed=6).to_yaml()


def test_split_gives_positive_parts_summing_to_the_total():
    import random

    parts = split(1272, 140, random.Random(1))
    assert sum(parts) == 1272 and min(parts) >= 1 and len(parts) == 140
    assert max(parts) > min(parts)  # varied, not uniform
    with pytest.raises(ValueError):
        split(3, 4, random.Random(1))
