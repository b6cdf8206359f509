"""The live board (``console.live.LiveBoard``, pure): loaded once, then changed case by case and
moved with time, it counts and lists what ``board.count_cases`` and ``board.list_cases`` count
and list over the same open cases of the area at that time: cases opened, changed, moved to a
unit outside the area and back, closed, and the due status moving with time alone."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

from services.dispatch.console.board import count_cases, list_cases
from services.dispatch.console.live import Kept, LiveBoard
from tests.dispatch.test_console_board import AREA  # the same district, street, ... and department

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PLACES = [
    ("WC-YY", "WC-YY-OJY", "WC-YY-OJY-G01", "WC-YY-OJY-G01-B03"),
    ("WC-YY", "WC-YY-OJY", "WC-YY-OJY-G02", None),
    ("WC-YY", None, None, None),
    ("QS-HWL", "QS-HWL-GDHY", "QS-HWL-GDHY-G01", None),
]
UNITS = ["WC-YY-OJY-G01", "WC-YY-OJY-G02", "WC-YY", "WC-CGJ", "QS-HWL-GDHY-G01"]


def a_row(rng: random.Random, case_id: str, at: datetime) -> Kept:
    street, community, grid, building = rng.choice(PLACES)
    soon = at + timedelta(minutes=rng.randrange(-120, 600)) if rng.random() < 0.9 else None
    late = soon + timedelta(minutes=rng.randrange(1, 240)) if soon else None
    return Kept(
        case_id=case_id,
        open=rng.random() < 0.9,
        unit=rng.choice(UNITS),
        street=street,
        community=community,
        grid=grid,
        building=building,
        tier=rng.choice(["grid", "community", "street", "district"]),
        category=rng.choice(["sanitation", "parking", "noise"]),
        state=rng.choice(["dispatched", "accepted", "escalated"]),
        urgent=rng.random() < 0.1,
        supervised=rng.random() < 0.1,
        changed_at=at - timedelta(seconds=rng.randrange(0, 10_000)),
        deadline=late,
        missed=rng.random() < 0.05,
        soon_at=soon,
        late_at=late,
    )


def expected(rows: dict[str, Kept], now: datetime) -> tuple[object, object]:
    codes = {u.code for u in AREA}
    cases = [r.case(now) for r in rows.values() if r.open and r.unit in codes]
    return count_cases(AREA, cases), list_cases(cases)


def test_the_live_board_counts_and_lists_what_a_recount_does() -> None:
    rng = random.Random(7)
    rows = {f"c-{i:04d}": a_row(rng, f"c-{i:04d}", T0) for i in range(400)}
    live = LiveBoard(AREA)
    live.load(rows.values(), T0)
    assert (live.counted(), live.listed()) == expected(rows, T0)
    now = T0
    moved_with_time = 0
    for step in range(40):
        now += timedelta(minutes=rng.choice([0, 1, 7, 30]))
        before = live.counted().total
        live.advance(now)  # time alone
        assert (live.counted(), live.listed()) == expected(rows, now), step
        moved_with_time += live.counted().total != before
        changed = []
        latest = [c.case_id for c in live.listed().recent]
        for _ in range(rng.randrange(0, 25)):
            # some new, some of the latest (changed again, older, closed)
            case_id = rng.choice(latest) if rng.random() < 0.2 else f"c-{rng.randrange(460):04d}"
            changed.append(a_row(rng, case_id, now))
            rows[case_id] = changed[-1]
        live.apply(changed, now)
        assert (live.counted(), live.listed()) == expected(rows, now), step
    assert moved_with_time > 0  # the due status moved with time alone, somewhere
    assert len(live) == sum(r.open and r.unit in {u.code for u in AREA} for r in rows.values())


def test_time_alone_moves_a_case_to_due_soon_then_overdue() -> None:
    row = Kept(
        "c-1", True, "WC-YY-OJY-G01", "WC-YY", "WC-YY-OJY", "WC-YY-OJY-G01", None, "grid",
        "sanitation", "dispatched", False, False, T0, T0 + timedelta(hours=2), False,
        T0 + timedelta(hours=1), T0 + timedelta(hours=2),
    )  # fmt: skip
    live = LiveBoard(AREA)
    live.load([row], T0)
    assert live.counted().total[:3] == (1, 0, 0)
    live.advance(T0 + timedelta(hours=1))
    assert live.counted().total[:3] == (1, 1, 0)
    assert [c.case_id for c in live.listed().due_soon] == ["c-1"]
    live.advance(T0 + timedelta(hours=3))
    assert live.counted().total[:3] == (1, 0, 1)
    assert [c.case_id for c in live.listed().overdue] == ["c-1"]
    live.apply([dataclasses.replace(row, open=False)], T0 + timedelta(hours=3))
    assert live.counted().total == (0,) * 7 and live.listed().overdue == []
