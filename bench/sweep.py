"""Dispatch's deadline sweeps over 1,000,000 open cases: the cases are bulk-loaded (COPY) into
dispatch's ``cases`` table; the sweep functions the service's Sweeper runs
(``Dispatch.sweep_response`` / ``sweep_resolution``) are timed in a transaction that is rolled
back, so every repetition sees the same table. With the plans of the due-date queries."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.runtime.db import connect
from shared.runtime.settings import Settings
from shared.runtime.uow import UnitOfWork
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
    territory: Territory, n: int, due: int, now: datetime, seed: int, stride: int = 1
) -> list[tuple[Any, ...]]:
    """``n`` open cases with deadlines in the future, of which ``due`` have both deadlines past;
    case ``i`` is in building ``i * stride``."""
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
        b = buildings[(i * stride) % len(buildings)]
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


async def load_cases(
    dsn: str, territory: Territory, n: int, due: int, now: datetime, *, spread: bool = False
) -> float:
    """COPY ``n`` open cases into dispatch.cases; returns the seconds it took. The due cases are
    in the first buildings (a few grids), or with ``spread`` one building every len/due (as many
    grids as due cases, each with its own handlers to count). Then VACUUM
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
                stride = max(1, len(territory.buildings) // due) if spread and due else 1
                rows[:due] = _rows(territory, due, due, now, seed=-1, stride=stride)
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
    from services.dispatch.store import HANDLER_LOADS_SQL, RESOLVE_DUE_SQL, RESPOND_DUE_SQL

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
        # the one handler-load query of a response sweep: every handler of the due cases' units
        units = await conn.fetch(
            "SELECT DISTINCT unit FROM cases WHERE state = 'dispatched' AND respond_by <= $1", now
        )
        rows = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + HANDLER_LOADS_SQL, [r["unit"] for r in units]
        )
        plans["handler_loads"] = "\n".join(r[0] for r in rows)
        out["plans"] = plans
        return out
    finally:
        await conn.close()


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- the sweep part alone: ``python -m bench.sweep`` ---------------------------------------------


async def sweep_only(
    cases: int, due: int, *, spread: bool, small_city: bool, seed: int, repeats: int
) -> dict[str, Any]:
    """Time the sweeps in a fresh testbed: dispatch's schema migrated, its registry copy seeded
    as ``bench.run`` does, ``cases`` open cases loaded; the testbed is dropped afterwards."""
    from devstack.infra import resolve
    from devstack.paths import RUN
    from devstack.testbed import create_testbed, destroy_testbed
    from services.dispatch.app import MIGRATIONS
    from shared.registry.store import upsert_record
    from shared.runtime.db import KIT_MIGRATIONS, migrate
    from sim.territory import TerritorySize, generate_territory

    territory = generate_territory(
        TerritorySize.small() if small_city else TerritorySize(), seed=seed
    )
    # env, else local processes (in a thread: starting the broker waits with a loop of its own)
    infra = await asyncio.to_thread(resolve, RUN / "bench", for_tests=False)
    bed = await create_testbed(infra.bootstrap, infra.admin_dsn, partitions=1)
    try:
        dsn = bed.service_dsns["dispatch"]
        conn = await connect(dsn)
        try:
            await migrate(conn, "dispatch", {"shared": KIT_MIGRATIONS, "dispatch": MIGRATIONS})
            await conn.execute("SET search_path TO dispatch")
            async with conn.transaction():
                for r in territory.records():
                    await upsert_record(conn, r)
            await conn.execute("ANALYZE")  # the registry's tables, as autovacuum would
        finally:
            await conn.close()
        now = utcnow()
        load_s = await load_cases(dsn, territory, cases, due, now, spread=spread)
        out = await time_sweeps(dsn, bed.settings("dispatch"), now, repeats)
        out |= {"load_s": round(load_s, 1), "due": due, "spread": spread}
        out["sweep_ms_1m_open"] = max(
            out["response_due"]["median_ms"], out["resolution_due"]["median_ms"]
        )
        return out
    finally:
        await destroy_testbed(bed, infra.admin_dsn)
        infra.stop()  # only what this run started


def main(argv: list[str] | None = None) -> int:
    import argparse
    import asyncio
    import json

    from shared.runtime.logging import configure_logging

    p = argparse.ArgumentParser(
        prog="python -m bench.sweep",
        description="dispatch's deadline sweeps alone (part 5 of python -m bench)",
    )
    p.add_argument("--cases", type=int, default=1_000_000, help="open cases loaded")
    p.add_argument("--due", type=int, default=100, help="cases past both deadlines")
    p.add_argument(
        "--spread", action="store_true", help="the due cases in as many grids (default: a few)"
    )
    p.add_argument("--repeats", type=int, default=7, help="timed sweeps each (median)")
    p.add_argument("--small-city", action="store_true", help="a small territory")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    configure_logging("bench", "WARNING")
    out = asyncio.run(
        sweep_only(
            args.cases,
            args.due,
            spread=args.spread,
            small_city=args.small_city,
            seed=args.seed,
            repeats=args.repeats,
        )
    )
    plans = out.pop("plans")
    print(json.dumps(out, indent=2))
    for name, plan in plans.items():
        print(f"\n{name}\n{plan}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
