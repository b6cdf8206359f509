"""Dispatch's SQL: cases with tier, unit, handler and deadlines; the timeline; registry reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from .assignment import Dept, HandlerLoad, Location, TargetUnit
from .states import Actor

# --- cases -------------------------------------------------------------------------------------


async def get_case(
    conn: asyncpg.Connection, case_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    sql = "SELECT * FROM cases WHERE case_id = $1" + (" FOR UPDATE" if lock else "")
    row: asyncpg.Record | None = await conn.fetchrow(sql, case_id)
    return row


async def insert_case(conn: asyncpg.Connection, **row: Any) -> None:
    cols = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    await conn.execute(f"INSERT INTO cases ({cols}) VALUES ({params})", *row.values())


async def update_case(conn: asyncpg.Connection, case_id: str, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
    await conn.execute(
        f"UPDATE cases SET {sets}, updated_at = now() WHERE case_id = $1",
        case_id,
        *changes.values(),
    )


def location(case: asyncpg.Record) -> Location:
    return Location(
        district=case["district"],
        street=case["street"],
        community=case["community"],
        grid=case["grid"],
    )


# --- merged reports that came before their case -------------------------------------------------


async def add_early_merge(
    conn: asyncpg.Connection, case_id: str, supporters: int, households: int | None, urgent: bool
) -> None:
    await conn.execute(
        """INSERT INTO early_merges (case_id, supporters, households, urgent)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (case_id) DO UPDATE SET
             supporters = GREATEST(early_merges.supporters, EXCLUDED.supporters),
             households = GREATEST(early_merges.households, EXCLUDED.households),
             urgent = early_merges.urgent OR EXCLUDED.urgent""",
        case_id,
        supporters,
        households,
        urgent,
    )


async def take_early_merge(conn: asyncpg.Connection, case_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "DELETE FROM early_merges WHERE case_id = $1 RETURNING *", case_id
    )
    return row


# --- due deadlines (the sweepers) -----------------------------------------------------------------
# Each query claims rows with FOR UPDATE SKIP LOCKED (another replica's claimed rows are skipped)
# and its WHERE clause repeats the predicate of a partial index, so a sweep over a million open
# cases reads only the few rows that are due.


RESPOND_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred') AND respond_by <= $1
    ORDER BY respond_by LIMIT $2
    FOR UPDATE SKIP LOCKED"""

RESOLVE_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted')
      AND resolve_missed_at IS NULL AND resolve_by <= $1
    ORDER BY resolve_by LIMIT $2
    FOR UPDATE SKIP LOCKED"""

DELIBERATION_DUE_SQL = """SELECT * FROM cases
    WHERE state = 'deliberating' AND paused_until <= $1
    ORDER BY paused_until LIMIT $2
    FOR UPDATE SKIP LOCKED"""


async def due_for_response(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(RESPOND_DUE_SQL, now, limit))


async def due_for_resolution(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(RESOLVE_DUE_SQL, now, limit))


async def deliberations_due(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[asyncpg.Record]:
    return list(await conn.fetch(DELIBERATION_DUE_SQL, now, limit))


# --- timeline ------------------------------------------------------------------------------------


async def add_timeline(
    conn: asyncpg.Connection,
    case_id: str,
    at: datetime,
    event: str,
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    tier: str | None = None,
    unit: str | None = None,
    handler_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO timeline (case_id, at, event, from_state, to_state, tier, unit, handler_id,
                                 detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        case_id,
        at,
        event,
        from_state,
        to_state,
        tier,
        unit,
        handler_id,
        detail or {},
    )


async def timeline(conn: asyncpg.Connection, case_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM timeline WHERE case_id = $1 ORDER BY id", case_id))


# --- the registry copy ---------------------------------------------------------------------------


async def handler_loads(conn: asyncpg.Connection, unit: str) -> list[HandlerLoad]:
    """Every handler of ``unit`` with their number of open cases."""
    rows = await conn.fetch(
        """SELECT h.id, h.role, h.on_duty,
                  (SELECT count(*) FROM cases c
                   WHERE c.handler_id = h.id AND c.state <> 'resolved') AS open_cases
           FROM handlers h WHERE h.unit = $1 ORDER BY h.id""",
        unit,
    )
    return [HandlerLoad(r["id"], r["role"], r["on_duty"], r["open_cases"]) for r in rows]


async def departments_of(conn: asyncpg.Connection, parents: list[str | None]) -> list[Dept]:
    rows = await conn.fetch(
        "SELECT code, parent, categories FROM departments WHERE parent = ANY($1::text[])",
        [p for p in parents if p],
    )
    return [Dept(r["code"], r["parent"], tuple(r["categories"])) for r in rows]


async def actor(conn: asyncpg.Connection, handler_id: str) -> Actor | None:
    row = await conn.fetchrow("SELECT id, unit, role FROM handlers WHERE id = $1", handler_id)
    return Actor(row["id"], row["unit"], row["role"]) if row else None


async def target_unit(conn: asyncpg.Connection, code: str) -> TargetUnit | None:
    row = await conn.fetchrow("SELECT code, level FROM units WHERE code = $1", code)
    if row:
        return TargetUnit(row["code"], level=row["level"])
    row = await conn.fetchrow(
        """SELECT d.code, coalesce(u.level, 'unknown') AS parent_level
           FROM departments d LEFT JOIN units u ON u.code = d.parent WHERE d.code = $1""",
        code,
    )
    return TargetUnit(row["code"], department_of=row["parent_level"]) if row else None
