"""The command-centre board's counts (pure: services/dispatch/console/board.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.dispatch.console.board import (
    AreaUnit,
    BoardCase,
    build_board,
    count_cases,
    list_cases,
    places,
    snapshot,
)

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
AREA = [
    AreaUnit("WC", "武昌区", "district", None),
    AreaUnit("WC-YY", "杨园街道", "street", "WC"),
    AreaUnit("WC-YY-OJY", "欧景苑社区", "community", "WC-YY"),
    AreaUnit("WC-YY-OJY-G01", "欧景苑第一网格", "grid", "WC-YY-OJY"),
    AreaUnit("WC-YY-OJY-G02", "欧景苑第二网格", "grid", "WC-YY-OJY"),
    AreaUnit("WC-YY-OJY-G01-B03", "欧景苑3栋", "building", "WC-YY-OJY-G01"),
    AreaUnit("WC-CGJ", "武昌区城管执法局", "department", "WC"),
]


def case(n: int, *, grid: str = "WC-YY-OJY-G01", due: str = "on_track", **kw: object) -> BoardCase:
    values: dict[str, object] = {
        "case_id": f"C{n:03d}",
        "category": "sanitation",
        "state": "dispatched",
        "tier": "grid",
        "unit": grid,
        "street": "WC-YY",
        "community": "WC-YY-OJY",
        "grid": grid,
        "building": None,
        "due": due,
        "deadline": NOW + timedelta(minutes=n),
        "changed_at": NOW - timedelta(minutes=n),
        "urgent": False,
        "supervised": False,
        **kw,
    }
    return BoardCase(**values)  # type: ignore[arg-type]


def test_a_case_counts_at_each_unit_of_its_place_and_at_its_department() -> None:
    c = case(1, building="WC-YY-OJY-G01-B03", unit="WC-CGJ", tier="district")
    assert places(c, {"WC-CGJ"}) == {
        "WC-YY",
        "WC-YY-OJY",
        "WC-YY-OJY-G01",
        "WC-YY-OJY-G01-B03",
        "WC-CGJ",
    }
    board = build_board(AREA[0], AREA, [c], {"sanitation": "环境卫生"}, NOW)
    counts = {u.code: u.open for u in board.units}
    assert counts == {
        "WC-YY": 1,
        "WC-YY-OJY": 1,
        "WC-YY-OJY-G01": 1,
        "WC-YY-OJY-G01-B03": 1,
        "WC-YY-OJY-G02": 0,
        "WC-CGJ": 1,
    }
    assert board.totals.open == 1
    assert board.totals.by_tier.district == 1
    assert board.recent[0].category_name == "环境卫生"
    assert board.recent[0].unit_name == "武昌区城管执法局"


def test_totals_by_due_status_and_tier_and_the_warnings_in_order() -> None:
    cases = [
        case(1, due="overdue", deadline=NOW - timedelta(hours=1)),
        case(2, due="overdue", deadline=NOW - timedelta(hours=3), grid="WC-YY-OJY-G02"),
        case(3, due="due_soon", tier="community"),
        case(4, due="due_soon"),
        case(5),
    ]
    board = build_board(AREA[0], AREA, cases, {}, NOW)
    assert (board.totals.open, board.totals.due_soon, board.totals.overdue) == (5, 2, 2)
    assert board.totals.by_tier.grid == 4 and board.totals.by_tier.community == 1
    assert [c.case_id for c in board.warnings.overdue] == ["C002", "C001"]  # most overdue first
    assert [c.case_id for c in board.warnings.due_soon] == ["C003", "C004"]
    assert [c.case_id for c in board.recent] == ["C001", "C002", "C003", "C004", "C005"]
    g2 = next(u for u in board.units if u.code == "WC-YY-OJY-G02")
    assert (g2.open, g2.overdue) == (1, 1)


def test_units_come_parents_first_and_the_top_unit_is_not_a_row() -> None:
    shuffled = list(reversed(AREA))
    board = build_board(AREA[0], shuffled, [], {}, NOW)
    order = [u.code for u in board.units]
    assert "WC" not in order
    for u in board.units:
        if u.parent and u.parent != "WC":
            assert order.index(u.parent) < order.index(u.code)
    assert order[-1] == "WC-CGJ"  # departments after the places


def test_a_delta_names_the_units_whose_counts_moved_buildings_too() -> None:
    before = [case(1, building="WC-YY-OJY-G01-B03")]
    after = [*before, case(2, grid="WC-YY-OJY-G02", tier="community", due="due_soon")]
    first = snapshot(AREA[0], AREA, count_cases(AREA, before), list_cases(before), {}, NOW)
    then = snapshot(AREA[0], AREA, count_cases(AREA, after), list_cases(after), {}, NOW)
    delta = then.changed(first.counts)
    assert {u.code: (u.open, u.due_soon) for u in delta.units} == {
        "WC-YY": (2, 1),
        "WC-YY-OJY": (2, 1),
        "WC-YY-OJY-G02": (1, 1),
    }
    assert delta.totals.open == 2 and delta.totals.by_tier.community == 1
    assert [c.case_id for c in delta.warnings.due_soon] == ["C002"]
    assert then.changed(then.counts).units == []
    # without the buildings: every other row as the whole board has it
    whole, alone = first.board(), first.board(buildings=False)
    assert [u for u in whole.units if u.level != "building"] == alone.units
    assert "WC-YY-OJY-G01-B03" in {u.code for u in whole.units}
