"""The board counted by PostgreSQL (``console.queries``: each open case's due times kept in
``board_due`` per row version, counted with ``GROUP BY GROUPING SETS`` at ``now``), on the real
broker and database: what the SQL counts and lists is what Python counts and lists over the same
rows with their due status worked out on the working calendar (``board.count_cases``,
``board.list_cases`` over ``queries.open_cases``), after cases are opened, one accepted and then
resolved (awaiting its verification), and as time passes (the due status moves without the row
changing); and over 600 cases of every open state, tier and kind of deadline, on a calendar with
working-time limits, at several times. A case is worked out again only when its row changed;
the kept times of closed cases are deleted."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch import store
from services.dispatch.app import DispatchService
from services.dispatch.console import queries
from services.dispatch.console.board import (
    AreaUnit,
    Counted,
    Listed,
    count_cases,
    list_cases,
)
from services.dispatch.due import DUE_SOON_FRACTION
from services.dispatch.states import State
from tests.dispatch.support import (
    FakeClock,
    a_case,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
)

QUIET = 3600.0
RULES = Path(__file__).parents[2] / "services" / "dispatch" / "tier_rules.yaml"


async def both(
    svc: DispatchService, keeper: queries.BoardDue, unit: str, now: datetime
) -> tuple[tuple[Counted, Listed], tuple[Counted, Listed], list[AreaUnit]]:
    """(SQL's counts and lists, Python's) of ``unit``'s board at ``now``, and its area."""
    policy = svc.dispatch.policy
    async with svc.pool.acquire() as conn:
        where, counted, listed = await queries.read_board(conn, keeper, queries.Areas(), unit, now)
        area = where.units
        cases = await queries.open_cases(
            conn, [u.code for u in area], policy, now, DUE_SOON_FRACTION
        )
    python = count_cases(area, cases)
    codes = {u.code for u in area}
    python = Counted({c: t for c, t in python.units.items() if c in codes}, python.total)
    got = Counted({c: t for c, t in counted.units.items() if c in codes}, counted.total)
    return (got, listed), (python, list_cases(cases)), area


async def test_the_sql_counts_what_python_counts_as_cases_change(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    keeper = queries.BoardDue(svc.dispatch.policy, DUE_SOON_FRACTION)

    async def stale() -> int:
        """The open cases whose kept row is not their row's version (none after a board: it
        works out the cases marked changed first, whichever keeper takes the marks)."""
        async with svc.pool.acquire() as conn:
            return await keeper.check(conn)

    async with driving(bed, "test/intake") as d:
        first = await d.open(case_opened(opened_at=clock()))
        second = await d.open(case_opened(opened_at=clock()))
        got, want, _ = await both(svc, keeper, "WC", clock())
        assert got == want
        assert got[0].total[:3] == (2, 0, 0)  # open, due soon, overdue
        assert got[0].units["WC-YY-OJY-G01"][0] == 2
        assert await stale() == 0  # kept by the board just read

        # a row changed: only that case is worked out again
        await d.act(first["case_id"], first["handler_id"], "accept", at=clock())
        await d.one("cases.accepted", first["case_id"])
        got, want, _ = await both(svc, keeper, "WC", clock())
        assert await stale() == 0
        assert got == want

        # time passes, no row changes: the second case's response is due soon, then overdue
        clock.advance(timedelta(minutes=100))
        got, want, _ = await both(svc, keeper, "WC", clock())
        assert got == want
        assert [c.case_id for c in got[1].due_soon] == [second["case_id"]]
        assert got[0].total[1] == 1
        clock.advance(timedelta(minutes=30))
        got, want, _ = await both(svc, keeper, "WC", clock())
        assert got == want
        assert [c.case_id for c in got[1].overdue] == [second["case_id"]]
        assert got[0].total[2] == 1

        # resolved: awaiting its verification, only that deadline running
        await d.act(first["case_id"], first["handler_id"], "resolve", at=clock(), note="已清理")
        await d.one("cases.resolved", first["case_id"])
        got, want, _ = await both(svc, keeper, "WC", clock())
        assert got == want
        states = {c.case_id: c.state for c in got[1].recent}
        assert states == {first["case_id"]: "verifying", second["case_id"]: "dispatched"}

        # closed cases' kept times are deleted
        async with svc.pool.acquire() as conn:
            await conn.execute(
                "UPDATE cases SET state = 'resolved' WHERE case_id = $1", second["case_id"]
            )
            await keeper.forget(conn)
            kept = {
                r["case_id"] for r in await conn.fetch("SELECT case_id FROM board_due WHERE open")
            }
        assert kept == {first["case_id"]}  # the other's row a tombstone (for live boards)


PLACES = [
    ("WC-YY", "WC-YY-OJY", "WC-YY-OJY-G01", "WC-YY-OJY-G01-B03"),
    ("WC-YY", "WC-YY-OJY", "WC-YY-OJY-G01", "WC-YY-OJY-G01-B05"),
    ("WC-YY", "WC-YY-OJY", "WC-YY-OJY-G02", "WC-YY-OJY-G02-B11"),
    ("WC-YY", "WC-YY-OJY", "WC-YY-OJY-G02", None),
    ("WC-YY", "WC-YY-HPY", "WC-YY-HPY-G01", "WC-YY-HPY-G01-B01"),
    ("WC-ZHL", "WC-ZHL-QHJ", "WC-ZHL-QHJ-G01", "WC-ZHL-QHJ-G01-B05"),
    ("WC-ZHL", None, None, None),
    ("QS-HWL", "QS-HWL-GDHY", "QS-HWL-GDHY-G01", "QS-HWL-GDHY-G01-B08"),  # another district
]
STATES: list[State] = [
    "dispatched",
    "escalated",
    "returned",
    "transferred",
    "accepted",
    "deliberating",
    "extension_requested",
    "suspended",
    "verifying",
    "resolved",
]
CATEGORIES = ["sanitation", "safety_hazard", "noise", "legal_petition", "parking"]


async def test_the_sql_counts_what_python_counts_over_every_kind_of_case(
    bed: Testbed, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"  # working-time limits too: spans on the calendar
    text = RULES.read_text(encoding="utf-8")
    assert "community: {respond: 4h, resolve: 3d}" in text
    rules.write_text(
        text.replace(
            "community: {respond: 4h, resolve: 3d}", "community: {respond: 2wh, resolve: 3wd}"
        ),
        encoding="utf-8",
    )
    clock = FakeClock()
    svc = await start_dispatch(
        bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET, WANGGE_TIER_RULES_FILE=str(rules)
    )
    await load_registry(bed)
    policy = svc.dispatch.policy
    rng = random.Random(17)
    now = clock()
    cases = []
    for i in range(600):
        street, community, grid, building = rng.choice(PLACES)
        state = rng.choice(STATES)
        tier = rng.choice(["grid", "community", "street", "district"])
        category = rng.choice(CATEGORIES)
        dispatched = now - timedelta(minutes=rng.randrange(0, 6000))
        deadlines = policy.deadlines(category, tier, dispatched, None)  # type: ignore[arg-type]
        unit = rng.choice([grid or street, "WC-CGJ", "WC-YY-SZ", community or street])
        verifying = state == "verifying"
        cases.append(
            a_case(
                case_id=f"c-{i:04d}",
                category=category,
                district="QS" if street.startswith("QS") else "WC",
                street=street,
                community=community,
                grid=grid,
                building=building,
                tier=tier,
                unit=unit,
                state=state,
                urgent=rng.random() < 0.1,
                supervised=rng.random() < 0.1,
                dispatched_at=dispatched,
                opened_at=dispatched,
                respond_by=deadlines.respond_by if rng.random() < 0.9 else None,
                resolve_by=deadlines.resolve_by,
                resolve_missed_at=now - timedelta(hours=1) if rng.random() < 0.05 else None,
                paused_at=dispatched if state in ("suspended", "extension_requested") else None,
                resolved_at=dispatched + timedelta(minutes=30) if verifying else None,
                verify_by=now + timedelta(minutes=rng.randrange(-600, 3000)) if verifying else None,
                verify_missed_at=now - timedelta(hours=2)
                if verifying and rng.random() < 0.2
                else None,
            )
        )
    async with svc.pool.acquire() as conn:
        await store.insert_cases(conn, cases)
    keeper = queries.BoardDue(policy, DUE_SOON_FRACTION)
    seen: set[str] = set()
    for hours in (0, 1, 5, 20, 80):
        at = now + timedelta(hours=hours)
        for unit in ("WC", "WC-YY", "WC-YY-OJY-G01", "QS"):
            got, want, area = await both(svc, keeper, unit, at)
            assert got[0] == want[0], (unit, hours)
            assert got[1] == want[1], (unit, hours)
            seen |= {"due_soon" for _ in got[1].due_soon} | {"overdue" for _ in got[1].overdue}
            if unit == "WC":
                # without the buildings: the same counts, the buildings' left out
                async with svc.pool.acquire() as conn:
                    codes = [u.code for u in area]
                    depts = [u.code for u in area if u.level == "department"]
                    alone = await queries.count_open(conn, codes, depts, at, buildings=False)
                levels = {u.code: u.level for u in area}
                assert alone.total == got[0].total
                assert {c: t for c, t in alone.units.items() if c in levels} == {
                    c: t for c, t in got[0].units.items() if levels[c] != "building"
                }
    assert seen == {"due_soon", "overdue"}

    # another policy (the due-soon fraction): every case is worked out again
    other = queries.BoardDue(policy, 0.5)
    async with svc.pool.acquire() as conn:
        assert await keeper.sync(conn) == 0
        assert await other.check(conn) == sum(c.state != "resolved" for c in cases)


async def test_a_write_of_cases_marks_what_it_wrote_for_the_keeper(bed: Testbed) -> None:
    """Migration 024's trigger: each statement writing ``cases`` marks the cases it wrote in
    ``board_stale``, in the writer's transaction; a keeper's ``sync`` takes the marks and keeps
    those cases (and drops the row of one no longer open)."""
    svc = await start_dispatch(bed, FakeClock(), WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    keeper = queries.BoardDue(svc.dispatch.policy, DUE_SOON_FRACTION)
    ids = ["m-1", "m-2", "m-3"]

    async def marked(conn: Any) -> set[str]:
        rows = await conn.fetch(
            "SELECT case_id FROM board_stale WHERE case_id = ANY($1::text[])", ids
        )
        return {r["case_id"] for r in rows}

    async with svc.pool.acquire() as conn:
        await store.insert_cases(conn, [a_case(case_id=i, unit="WC-YY-OJY-G01") for i in ids])

        async def all_kept() -> bool:
            await keeper.sync(conn)  # this keeper's, or the service's own (every 2 s)
            return not await marked(conn)

        await eventually(all_kept, timeout=20, what="the marks taken")
        kept = await conn.fetch("SELECT case_id, unit, state FROM board_due ORDER BY 1")
        assert [tuple(r) for r in kept if r[0] in ids] == [
            (i, "WC-YY-OJY-G01", "dispatched") for i in ids
        ]
        undone = conn.transaction()  # uncommitted: no keeper sees the mark; rolled back
        await undone.start()
        await conn.execute("UPDATE cases SET urgent = true WHERE case_id = 'm-2'")
        assert await marked(conn) == {"m-2"}
        await undone.rollback()
        assert await marked(conn) == set()
        async with conn.transaction():
            await conn.execute("UPDATE cases SET state = 'resolved' WHERE case_id = 'm-3'")
            await conn.execute("UPDATE cases SET supervised = true WHERE case_id = 'm-1'")
            assert await marked(conn) == {"m-1", "m-3"}
        await eventually(all_kept, timeout=20, what="the marks taken")
        kept = await conn.fetch("SELECT case_id, supervised FROM board_due WHERE open ORDER BY 1")
        assert [tuple(r) for r in kept if r[0] in ids] == [("m-1", True), ("m-2", False)]


async def test_a_live_board_changed_by_what_was_kept_since_equals_a_recount(
    bed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``queries.LiveArea`` (a watched board): read whole once, then only the rows kept since
    (cases opened, accepted, moved out of the area, closed), its counts and lists equal a
    board read whole (``read_board``) at each time, without reading the area again; read
    whole again (its safeguard, in parts of 7 rows), the same."""
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    keeper = queries.BoardDue(svc.dispatch.policy, DUE_SOON_FRACTION)
    areas = queries.Areas()
    live = queries.LiveArea("WC", keeper, areas, reload_s=3600)
    rng = random.Random(5)
    units = ["WC-YY-OJY-G01", "WC-YY-OJY-G02", "WC-CGJ", "QS-HWL-GDHY-G01"]

    async def same(at: datetime) -> None:
        async with svc.pool.acquire() as conn:
            _, counted, listed = await live.read(conn, at)
            _, whole, whole_listed = await queries.read_board(conn, keeper, areas, "WC", at)
        assert counted == whole
        assert listed == whole_listed

    async with svc.pool.acquire() as conn:
        await store.insert_cases(
            conn,
            [
                a_case(case_id=f"l-{i:03d}", unit=rng.choice(units), dispatched_at=clock())
                for i in range(60)
            ],
        )
    await same(clock())
    for step in range(6):
        clock.advance(timedelta(minutes=40))
        async with svc.pool.acquire() as conn:
            picked = rng.sample(range(60), 12)
            for i in picked[:4]:
                await conn.execute(
                    "UPDATE cases SET unit = $2 WHERE case_id = $1", f"l-{i:03d}", rng.choice(units)
                )
            for i in picked[4:7]:
                await conn.execute(
                    "UPDATE cases SET state = 'resolved' WHERE case_id = $1", f"l-{i:03d}"
                )
            for i in picked[7:]:
                await conn.execute(
                    "UPDATE cases SET state = 'accepted', updated_at = $2 WHERE case_id = $1",
                    f"l-{i:03d}",
                    clock(),
                )
            await store.insert_cases(conn, [a_case(case_id=f"n-{step}", dispatched_at=clock())])
        await same(clock())
    assert live.reloads == 1
    monkeypatch.setattr(queries.LiveArea, "CHUNK", 7)
    live.reload_s = 0
    clock.advance(timedelta(minutes=5))
    await same(clock())
    assert live.reloads == 2
