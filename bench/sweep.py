"""Dispatch's deadline sweeps over 1,000,000 open cases: the cases are bulk-loaded (COPY) into
dispatch's ``cases`` table; the sweep functions the service's Sweeper runs
(``Dispatch.sweep_response`` / ``sweep_resolution``) are timed in a transaction that is rolled
back, so every repetition sees the same table. With the plans of the due-date queries."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.db import connect
from shared.settings import Settings
from shared.uow import UnitOfWork
from sim.territory import Territory

STATES: tuple[tuple[str, float], ...] = (
    ("accepted", 0.55),
    ("dispatched", 0.3),
    ("escalated", 0.05),
    ("returned", 0.03),
    ("transferred", 0.02),
    ("deliberating", 0.05),
)


def _rows(
    territory: Territory, n: int, due: int, now: datetime, seed: int
) -> list[tuple[Any, ...]]:
    """``n`` open cases with deadlines in the future, of which ``due`` have both deadlines past."""
    rng = random.Random(seed)
    grid_staff = {
        g.code: [h.id for h in territory.handlers_by_unit.get(g.code, [])]
        for g in territory.grids()
    }
    buildings = territory.buildings
    states = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    rows = []
    for i in range(n):
        b = buildings[i % len(buildings)]
        state = rng.choices(states, weights)[0]
        is_due = i < due
        respond_by = (
            now - timedelta(minutes=5)
            if is_due
            else now + timedelta(seconds=rng.uniform(60, 2 * 3600))
        )
        resolve_by = (
            now - timedelta(minutes=1)
            if is_due
            else now + timedelta(seconds=rng.uniform(3600, 15 * 86400))
        )
        staff: list[str | None] = [*grid_staff.get(b.grid, [])] or [None]
        rows.append(
            (
                f"B{i:09d}",
                "sanitation",
                territory.district.code,
                b.street,
                b.community,
                b.grid,
                b.code,
                "grid",
                "grid",
                b.grid,
                rng.choice(staff),
                "dispatched" if is_due else state,
                now - timedelta(hours=1),
                respond_by,
                resolve_by,
                now - timedelta(hours=1),
                now + timedelta(days=1) if state == "deliberating" else None,
            )
        )
    return rows


COLUMNS = [
    "case_id",
    "category",
    "district",
    "street",
    "community",
    "grid",
    "building",
    "start_tier",
    "tier",
    "unit",
    "handler_id",
    "state",
    "dispatched_at",
    "respond_by",
    "resolve_by",
    "opened_at",
    "paused_until",
]


async def load_cases(dsn: str, territory: Territory, n: int, due: int, now: datetime) -> float:
    """COPY ``n`` open cases into dispatch.cases; returns the seconds it took. Then VACUUM
    ANALYZE, as autovacuum does to a table in steady state: without a visibility map, counting a
    handler's open cases reads the heap instead of the index alone."""
    conn = await connect(dsn, "dispatch")
    try:
        start = time.monotonic()
        chunk = 100_000
        for lo in range(0, n, chunk):
            rows = _rows(territory, min(chunk, n - lo), 0, now, seed=lo)
            rows = [(f"B{lo + i:09d}", *r[1:]) for i, r in enumerate(rows)]
            if lo == 0:
                rows[:due] = _rows(territory, due, due, now, seed=-1)
            await conn.copy_records_to_table("cases", records=rows, columns=COLUMNS)
        await conn.execute("VACUUM (ANALYZE) cases")
        return time.monotonic() - start
    finally:
        await conn.close()


async def time_sweeps(
    dsn: str, settings: Settings, now: datetime, repeats: int = 7
) -> dict[str, Any]:
    """Time each sweep function on the loaded table (median of ``repeats``, rolled back)."""
    from services.dispatch.app import create_service
    from services.dispatch.store import RESOLVE_DUE_SQL, RESPOND_DUE_SQL

    dispatch = create_service(settings).dispatch
    conn = await connect(dsn, "dispatch")
    out: dict[str, Any] = {}
    try:
        open_cases = await conn.fetchval("SELECT count(*) FROM cases WHERE state <> 'resolved'")
        out["open_cases"] = open_cases
        for name, fn, when in (
            ("response_idle", dispatch.sweep_response, now - timedelta(hours=2)),
            ("resolution_idle", dispatch.sweep_resolution, now - timedelta(hours=2)),
            ("response_due", dispatch.sweep_response, now),
            ("resolution_due", dispatch.sweep_resolution, now),
        ):
            times, handled = [], 0
            for _ in range(repeats):
                tr = conn.transaction()
                await tr.start()
                try:
                    uow = UnitOfWork(conn, source="bench/sweep", topic_prefix="bench.")
                    t0 = time.perf_counter()
                    handled = await fn(uow, when)
                    await uow.flush()
                    times.append((time.perf_counter() - t0) * 1000)
                finally:
                    await tr.rollback()
            out[name] = {
                "median_ms": round(statistics.median(times), 2),
                "min_ms": round(min(times), 2),
                "max_ms": round(max(times), 2),
                "cases_handled": handled,
            }
        plans = {}
        for name, sql in (("respond_due", RESPOND_DUE_SQL), ("resolve_due", RESOLVE_DUE_SQL)):
            tr = conn.transaction()
            await tr.start()
            try:
                rows = await conn.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) " + sql.replace("$1", "$1::timestamptz"),
                    now,
                    500,
                )
                plans[name] = "\n".join(r[0] for r in rows)
            finally:
                await tr.rollback()
        out["plans"] = plans
        return out
    finally:
        await conn.close()


def utcnow() -> datetime:
    return datetime.now(UTC)
