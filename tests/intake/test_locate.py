"""Locating reports in the sample city (pure: the in-memory index, no database)."""

from __future__ import annotations

import pytest

from services.intake.locate import (
    Located,
    RegistryIndex,
    UnitInfo,
    chinese_number,
    normalise,
    point_in_polygon,
)
from shared.contract.events import ReportLocation

B03 = "WC-YY-OJY-G01-B03"
G01 = "WC-YY-OJY-G01"


def loc(**kw: object) -> ReportLocation:
    return ReportLocation.model_validate(kw)


def test_building_code_wins_over_everything_else(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(
        loc(building_code=B03, grid_code="WC-YY-HPY-G01", address="青和居5号楼"), "和平苑1栋"
    )
    assert found == Located(B03, "building", "building_code")
    assert sample_index.lineage(B03) == {
        "building": B03,
        "grid": G01,
        "community": "WC-YY-OJY",
        "street": "WC-YY",
        "district": "WC",
    }


def test_grid_code_is_used_when_no_building(sample_index: RegistryIndex) -> None:
    assert sample_index.locate(loc(grid_code="WC-YY-OJY-G02"), "路灯不亮了") == Located(
        "WC-YY-OJY-G02", "grid", "grid_code"
    )


def test_building_named_in_description_refines_a_grid(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(grid_code=G01), "五栋门口的垃圾桶满了")
    assert found == Located("WC-YY-OJY-G01-B05", "building", "grid_code+description")


def test_building_outside_the_given_grid_does_not_refine_it(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(grid_code="WC-YY-OJY-G02"), "3栋门口的垃圾桶满了")
    assert found == Located("WC-YY-OJY-G02", "grid", "grid_code")


def test_point_inside_a_grid_polygon(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(lon=114.3375, lat=30.5845), "路面有个大坑")
    assert found == Located("WC-YY-HPY-G01", "grid", "point")


def test_point_outside_every_grid_falls_through_to_the_address(
    sample_index: RegistryIndex,
) -> None:
    found = sample_index.locate(loc(lon=100.0, lat=20.0, address="和平苑一栋楼下"), "井盖丢了")
    assert found == Located("WC-YY-HPY-G01-B01", "building", "address")


def test_address_with_traditional_building_word(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(address="武昌区中华路青和居5号楼东侧"), "垃圾满溢")
    assert found == Located("WC-ZHL-QHJ-G01-B05", "building", "address")


def test_address_naming_only_a_community_opens_there(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(address="欧景苑社区"), "小区里的路灯一到晚上就不亮")
    assert found == Located("WC-YY-OJY", "community", "address")
    assert sample_index.lineage(found.code) == {
        "community": "WC-YY-OJY",
        "street": "WC-YY",
        "district": "WC",
    }


def test_community_without_its_suffix_is_found(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(address="和平苑小区南门"), "门口摊贩占道经营")
    assert found == Located("WC-YY-HPY", "community", "address")


def test_address_naming_only_a_street_opens_there(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(address="中华路街道辖区"), "有人反映欠薪")
    assert found == Located("WC-ZHL", "street", "address")


def test_community_in_address_and_building_in_description(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(address="欧景苑社区"), "11栋电梯旁有人飞线充电")
    assert found == Located("WC-YY-OJY-G02-B11", "building", "address+description")


def test_building_only_in_the_description(sample_index: RegistryIndex) -> None:
    found = sample_index.locate(loc(address="不知道叫什么地方"), "欧景苑三栋楼道灯坏了")
    assert found == Located(B03, "building", "description")


def test_a_number_inside_a_longer_number_is_not_a_building(sample_index: RegistryIndex) -> None:
    # "3栋" is an alias of B03, but 13栋 is another building that the registry does not know.
    assert sample_index.match_text("13栋楼下积水") is None
    assert sample_index.match_text("3栋楼下积水") == B03


def test_a_name_inside_a_longer_name_is_not_matched(sample_index: RegistryIndex) -> None:
    # 5栋 alone is 欧景苑5栋; inside 青和居5栋 it is not.
    assert sample_index.match_text("青和居5栋门口") == "WC-ZHL-QHJ-G01-B05"
    assert sample_index.match_text("5栋门口") == "WC-YY-OJY-G01-B05"


def test_two_buildings_give_their_common_grid(sample_index: RegistryIndex) -> None:
    assert sample_index.match_text("3栋和5栋之间的路灯坏了") == G01


def test_buildings_in_two_communities_give_their_street(sample_index: RegistryIndex) -> None:
    assert sample_index.match_text("和平苑1栋和欧景苑3栋都停水了") == "WC-YY"


def test_buildings_in_different_streets_are_ambiguous(sample_index: RegistryIndex) -> None:
    assert sample_index.match_text("欧景苑3栋和青和居5号楼都停水了") is None


def test_a_building_contradicting_the_named_community_is_ignored(
    sample_index: RegistryIndex,
) -> None:
    assert sample_index.match_text("青和居社区3栋楼下") == "WC-ZHL-QHJ"


def test_nothing_found_is_unlocatable(sample_index: RegistryIndex) -> None:
    assert sample_index.locate(loc(address="火星基地"), "垃圾没人清运") is None
    assert sample_index.locate(loc(lon=0.0, lat=0.0), "垃圾没人清运") is None


def test_unknown_codes_do_not_locate(sample_index: RegistryIndex) -> None:
    assert sample_index.locate(loc(building_code="NOPE"), "垃圾") is None
    assert sample_index.locate(loc(grid_code=B03), "垃圾") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("青和居5号楼", "青和居5栋"),
        ("和平苑一栋", "和平苑1栋"),
        ("十一栋", "11栋"),
        ("二十三幢", "23栋"),
        ("Ａ座 ３ 号楼", "A栋3栋"),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_chinese_numbers() -> None:
    assert [chinese_number(s) for s in ("一", "十", "十一", "二十三", "一百零五")] == [
        1,
        10,
        11,
        23,
        105,
    ]
    assert chinese_number("几") is None


def test_point_in_polygon() -> None:
    square = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    assert point_in_polygon(0.5, 0.5, square)
    assert not point_in_polygon(1.5, 0.5, square)


def test_index_grids_found_through_the_cell_buckets() -> None:
    far = UnitInfo(
        "G9", "远处网格", "grid", None, (), ((120.0, 31.0), (120.5, 31.0), (120.5, 31.5))
    )
    idx = RegistryIndex.build([far])
    assert idx.grid_at(120.4, 31.05) == "G9"
    assert idx.grid_at(120.1, 31.4) is None  # inside the bounding box, outside the triangle
