"""插花地: the chain that serves a place (pure: the in-memory index, no database).

The sample registry's 钢都花园8栋 (QS-HWL-GDHY-G01-B08) belongs to 青山区 but stands inside
和平苑第一网格 of 武昌区 and is served by 和平苑社区 (``served_by: WC-YY-HPY``)."""

from __future__ import annotations

from services.intake.handlers import case_location
from services.intake.locate import Place, RegistryIndex, UnitInfo
from shared.contract.events import ReportLocation

B08 = "QS-HWL-GDHY-G01-B08"
ADMINISTRATIVE = {
    "district": "QS",
    "street": "QS-HWL",
    "community": "QS-HWL-GDHY",
    "grid": "QS-HWL-GDHY-G01",
}
SERVING = {
    "district": "WC",
    "street": "WC-YY",
    "community": "WC-YY-HPY",
    "grid": "WC-YY-HPY-G01",
    "building": B08,
}


def test_a_served_building_is_placed_in_the_serving_community_and_its_grid(
    sample_index: RegistryIndex,
) -> None:
    assert sample_index.place(B08) == Place(SERVING, ADMINISTRATIVE)
    # located by its code: the building, then served where it stands
    found = sample_index.locate(ReportLocation(building_code=B08), "楼道灯坏了")
    assert found is not None and found.code == B08


def test_a_place_of_its_own_chain_has_no_administrative_part(sample_index: RegistryIndex) -> None:
    b03 = "WC-YY-OJY-G01-B03"
    assert sample_index.place(b03) == Place(sample_index.lineage(b03))
    # the served building's own grid and community are not served elsewhere themselves
    assert sample_index.place("QS-HWL-GDHY-G01").administrative is None
    assert sample_index.place("QS-HWL-GDHY").administrative is None


def test_cases_opened_location_carries_both_chains(sample_index: RegistryIndex) -> None:
    place = sample_index.place(B08)
    location = case_location(place.lineage, place.administrative)
    assert location.community == "WC-YY-HPY" and location.grid == "WC-YY-HPY-G01"
    assert location.district == "WC" and location.building == B08
    assert location.administrative is not None
    assert location.administrative.model_dump() == ADMINISTRATIVE
    ordinary = sample_index.place("WC-YY-OJY-G01-B03")
    assert case_location(ordinary.lineage, ordinary.administrative).administrative is None


def _city(**served: str | None) -> RegistryIndex:
    """A district A with communities A1 (grids A1-G1, A1-G2) and, in district B, B1 (grid
    B1-G1, building B1-G1-K1 standing inside A1-G2), ``served`` setting served_by by code."""
    square = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    right = ((1.0, 0.0), (2.0, 0.0), (2.0, 1.0), (1.0, 1.0))
    far = ((5.0, 5.0), (6.0, 5.0), (6.0, 6.0), (5.0, 6.0))
    units = [
        UnitInfo("A", "甲区", "district"),
        UnitInfo("A-S", "甲街道", "street", "A"),
        UnitInfo("A1", "甲一社区", "community", "A-S"),
        UnitInfo("A1-G1", "甲一网格", "grid", "A1", area=square),
        UnitInfo("A1-G2", "甲二网格", "grid", "A1", area=right),
        UnitInfo("B", "乙区", "district"),
        UnitInfo("B-S", "乙街道", "street", "B"),
        UnitInfo("B1", "乙一社区", "community", "B-S"),
        UnitInfo("B1-G1", "乙一网格", "grid", "B1", area=far),
        UnitInfo("B1-G1-K1", "乙一1栋", "building", "B1-G1", point=(1.5, 0.5)),
        UnitInfo("B1-G1-K2", "乙一2栋", "building", "B1-G1"),
    ]
    return RegistryIndex.build(
        [
            UnitInfo(**{**u.__dict__, "served_by": served.get(u.code.replace("-", "_"))})
            for u in units
        ]
    )


def test_the_serving_grid_is_the_one_holding_the_buildings_point() -> None:
    idx = _city(B1_G1_K1="A1")
    assert idx.place("B1-G1-K1").lineage == {
        "district": "A",
        "street": "A-S",
        "community": "A1",
        "grid": "A1-G2",
        "building": "B1-G1-K1",
    }


def test_a_served_building_without_a_point_in_a_serving_grid_has_no_grid() -> None:
    # no point at all: the community serves it, the grid tier has no unit (dispatch goes up)
    idx = _city(B1_G1_K2="A1")
    assert idx.place("B1-G1-K2") == Place(
        {"district": "A", "street": "A-S", "community": "A1", "building": "B1-G1-K2"},
        {"district": "B", "street": "B-S", "community": "B1", "grid": "B1-G1"},
    )


def test_a_served_grid_keeps_its_grid_and_takes_the_serving_chain() -> None:
    idx = _city(B1_G1="A1")
    expected_admin = {"district": "B", "street": "B-S", "community": "B1", "grid": "B1-G1"}
    assert idx.place("B1-G1") == Place(
        {"district": "A", "street": "A-S", "community": "A1", "grid": "B1-G1"}, expected_admin
    )
    # its buildings too, the building kept
    assert idx.place("B1-G1-K2") == Place(
        {
            "district": "A",
            "street": "A-S",
            "community": "A1",
            "grid": "B1-G1",
            "building": "B1-G1-K2",
        },
        expected_admin,
    )


def test_a_buildings_own_served_by_comes_before_its_grids() -> None:
    idx = _city(B1_G1="B1", B1_G1_K1="A1")  # the grid's names its own community: no effect
    assert idx.place("B1-G1-K1").lineage["community"] == "A1"
    assert idx.place("B1-G1-K2").administrative is None


def test_a_served_by_the_index_does_not_know_as_a_community_is_ignored() -> None:
    for bad in ("NOWHERE", "A-S", "A1-G1"):
        idx = _city(B1_G1_K1=bad)
        assert idx.place("B1-G1-K1") == Place(idx.lineage("B1-G1-K1"))
