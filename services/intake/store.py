"""Intake's schema: reports (personal data encrypted) and the cases they opened or joined."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def unit_level(conn: asyncpg.Connection, code: str) -> str | None:
    level: str | None = await conn.fetchval("SELECT level FROM units WHERE code = $1", code)
    return level


async def grids_with_area(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT code, area FROM units WHERE level = 'grid' AND area IS NOT NULL")
    )


async def insert_case(
    conn: asyncpg.Connection,
    *,
    case_id: str,
    category: str,
    lineage: dict[str, str],
    opened_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO cases (case_id, category, grid, building, community, street, district,
                              opened_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        case_id,
        category,
        lineage.get("grid"),
        lineage.get("building"),
        lineage.get("community"),
        lineage.get("street"),
        lineage.get("district"),
        opened_at,
    )


async def insert_report(conn: asyncpg.Connection, **row: Any) -> bool:
    """Record a report's outcome; False when (source, report_id) was already recorded."""
    cols = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    done = await conn.fetchval(
        f"INSERT INTO reports ({cols}) VALUES ({params}) "
        "ON CONFLICT (source, report_id) DO NOTHING RETURNING true",
        *row.values(),
    )
    return bool(done)


async def report_outcome(
    conn: asyncpg.Connection, source: str, report_id: str
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT source, report_id, outcome, case_id, errors, received_at FROM reports "
        "WHERE source = $1 AND report_id = $2",
        source,
        report_id,
    )
    return row
