"""The registry file: validated whole, errors with their line (pure)."""

from __future__ import annotations

import pytest

from shared.contract.events import Department, Handler, Unit
from shared.contract.taxonomy import default_taxonomy
from shared.registry.file import RegistryInvalid, parse_registry
from tests.samples import SAMPLE_REGISTRY

GOOD = """units:
  - {code: WC, name: 武昌区, level: district}
  - {code: WC-YY, name: 杨园街道, level: street, parent: WC}
  - {code: WC-YY-OJY, name: 欧景苑社区, level: community, parent: WC-YY}
  - {code: WC-YY-OJY-G01, name: 第一网格, level: grid, parent: WC-YY-OJY,
     area: [[114.3301, 30.5803], [114.3322, 30.5803], [114.3322, 30.5821]]}
  - {code: WC-YY-OJY-G01-B03, name: 欧景苑3栋, level: building, parent: WC-YY-OJY-G01,
     aliases: [3栋, 三栋], lon: 114.3310, lat: 30.5810}
departments:
  - {code: WC-CGJ, name: 武昌区城管执法局, parent: WC, categories: [illegal_construction]}
handlers:
  - {id: h-0001, name: 张忻欣, unit: WC-YY-OJY-G01, role: grid_worker, on_duty: true}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(RegistryInvalid) as exc:
        parse_registry(text, default_taxonomy())
    return [str(e) for e in exc.value.errors]


def test_the_issue_example_parses() -> None:
    records = parse_registry(GOOD, default_taxonomy())
    assert [type(r) for r in records] == [Unit] * 5 + [Department, Handler]
    building = records[4]
    assert isinstance(building, Unit) and building.aliases == ["3栋", "三栋"]


def test_the_sample_city_parses() -> None:
    assert len(SAMPLE_REGISTRY.read_text(encoding="utf-8")) > 0
    parse_registry(SAMPLE_REGISTRY.read_text(encoding="utf-8"), default_taxonomy())


def test_every_error_is_reported_with_its_line() -> None:
    bad = (
        GOOD.replace("parent: WC-YY}", "parent: WC-XX}")
        .replace("grid_worker", "boss")
        .replace("[illegal_construction]", "[flying_cars]")
    )
    errs = errors_of(bad)
    assert "line 4: WC-YY-OJY: community needs a parent street" in errs
    assert any(e.startswith("line 12: handlers[0].role:") for e in errs)
    assert "line 10: WC-CGJ: unknown category 'flying_cars'" in errs


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("level: grid, parent: WC-YY-OJY", "level: grid, parent: WC-YY"), "not a community"),
        (("lon: 114.3310, lat: 30.5810", "lon: 114.3310"), "both lon and lat"),
        (("unit: WC-YY-OJY-G01, role", "unit: WC-NOWHERE, role"), "unknown unit"),
        (("code: WC-CGJ", "code: WC-YY"), "duplicate code"),
        (("[114.3322, 30.5821]]}", "]}"), "at least 3 points"),
        (("units:", "units: 5\nx:"), "expected a list"),
    ],
)
def test_cross_checks(change: tuple[str, str], expected: str) -> None:
    assert any(expected in e for e in errors_of(GOOD.replace(*change)))


def test_not_yaml_is_one_clear_error() -> None:
    [err] = errors_of("units: [\n  - {code: WC")
    assert "not valid YAML" in err


SERVED = """units:
  - {code: WC, name: 武昌区, level: district}
  - {code: WC-YY, name: 杨园街道, level: street, parent: WC}
  - {code: WC-YY-HPY, name: 和平苑社区, level: community, parent: WC-YY}
  - {code: QS, name: 青山区, level: district}
  - {code: QS-HWL, name: 红卫路街道, level: street, parent: QS}
  - {code: QS-HWL-GDHY, name: 钢都花园社区, level: community, parent: QS-HWL}
  - {code: QS-HWL-GDHY-G01, name: 钢都花园第一网格, level: grid, parent: QS-HWL-GDHY}
  - {code: QS-HWL-GDHY-G01-B08, name: 钢都花园8栋, level: building, parent: QS-HWL-GDHY-G01,
     served_by: WC-YY-HPY}
"""


def test_a_building_served_by_a_community_of_another_district_parses() -> None:
    """插花地: served_by names the serving community, here of another district."""
    records = parse_registry(SERVED, default_taxonomy())
    building = records[-1]
    assert isinstance(building, Unit) and building.served_by == "WC-YY-HPY"
    assert all(getattr(r, "served_by", None) is None for r in records[:-1])
    # the sample city has one such building
    sample = parse_registry(SAMPLE_REGISTRY.read_text(encoding="utf-8"), default_taxonomy())
    served = [r for r in sample if isinstance(r, Unit) and r.served_by]
    assert [(r.code, r.served_by) for r in served] == [("QS-HWL-GDHY-G01-B08", "WC-YY-HPY")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("served_by: WC-YY-HPY}", "served_by: WC-YY}"),
            "line 9: QS-HWL-GDHY-G01-B08: served_by WC-YY is a street, not a community",
        ),
        (
            ("served_by: WC-YY-HPY}", "served_by: WC-NOWHERE}"),
            "line 9: QS-HWL-GDHY-G01-B08: served_by WC-NOWHERE: no such unit in the file",
        ),
        (
            ("served_by: WC-YY-HPY}", "served_by: QS-HWL-GDHY}"),
            "line 9: QS-HWL-GDHY-G01-B08: served_by QS-HWL-GDHY is its own community: "
            "leave served_by out",
        ),
        (
            ("parent: QS-HWL}", "parent: QS-HWL, served_by: WC-YY-HPY}"),
            "line 7: QS-HWL-GDHY: served_by is for buildings and grids, not a community",
        ),
        (
            ("served_by: WC-YY-HPY}", "served_by: wc yy}"),
            "line 9: units[7].served_by: String should match pattern",
        ),
    ],
)
def test_served_by_errors(change: tuple[str, str], expected: str) -> None:
    errs = errors_of(SERVED.replace(*change))
    assert any(e.startswith(expected) for e in errs), errs


def test_a_grid_may_be_served_elsewhere_and_its_own_community_is_refused() -> None:
    grid = SERVED.replace(
        "parent: QS-HWL-GDHY}", "parent: QS-HWL-GDHY, served_by: WC-YY-HPY}"
    ).replace("\n     served_by: WC-YY-HPY}", "}")
    records = parse_registry(grid, default_taxonomy())
    assert [r.code for r in records if isinstance(r, Unit) and r.served_by] == ["QS-HWL-GDHY-G01"]
    own = grid.replace("served_by: WC-YY-HPY}", "served_by: QS-HWL-GDHY}")
    assert "its own community" in " ".join(errors_of(own))
