"""Dispatch's schema: cases with tier, unit, handler and deadlines, and the timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


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
    await conn.execute(f"UPDATE cases SET {sets} WHERE case_id = $1", case_id, *changes.values())


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


async def pick_handler(
    conn: asyncpg.Connection, unit: str, *, exclude: list[str] | None = None
) -> str | None:
    """The on-duty handler of ``unit`` with the fewest open cases (ties by id); never a party
    volunteer."""
    handler: str | None = await conn.fetchval(
        """SELECT h.id FROM handlers h
           LEFT JOIN cases c ON c.handler_id = h.id AND c.state NOT IN ('resolved', 'closed')
           WHERE h.unit = $1 AND h.on_duty AND h.role <> 'party_volunteer'
             AND NOT (h.id = ANY($2::text[]))
           GROUP BY h.id ORDER BY count(c.case_id), h.id LIMIT 1""",
        unit,
        exclude or [],
    )
    return handler


async def department_for(
    conn: asyncpg.Connection, category: str, parents: list[str], exclude: list[str]
) -> str | None:
    """The first department, among those of ``parents`` in order, whose categories include it."""
    for parent in parents:
        code: str | None = await conn.fetchval(
            """SELECT code FROM departments WHERE parent = $1 AND $2 = ANY(categories)
               AND NOT (code = ANY($3::text[])) ORDER BY code LIMIT 1""",
            parent,
            category,
            exclude,
        )
        if code:
            return code
    return None


async def handler_row(conn: asyncpg.Connection, handler_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM handlers WHERE id = $1", handler_id
    )
    return row
