"""Feedback's schema: the case read model, reporters, rating tokens and ratings."""

from __future__ import annotations

from typing import Any

import asyncpg


async def insert_case(conn: asyncpg.Connection, **row: Any) -> bool:
    cols = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    done = await conn.fetchval(
        f"INSERT INTO cases ({cols}) VALUES ({params}) ON CONFLICT (case_id) DO NOTHING "
        "RETURNING true",
        *row.values(),
    )
    return bool(done)


async def update_case(conn: asyncpg.Connection, case_id: str, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
    await conn.execute(f"UPDATE cases SET {sets} WHERE case_id = $1", case_id, *changes.values())


async def get_case(
    conn: asyncpg.Connection, case_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM cases WHERE case_id = $1" + (" FOR UPDATE" if lock else ""), case_id
    )
    return row


async def add_reporter(conn: asyncpg.Connection, case_id: str, ref: str, channel: str) -> None:
    await conn.execute(
        "INSERT INTO reporters (case_id, reporter_ref, channel) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        case_id,
        ref,
        channel,
    )


async def reporters(conn: asyncpg.Connection, case_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT reporter_ref, channel FROM reporters WHERE case_id = $1 ORDER BY reporter_ref",
            case_id,
        )
    )


async def find_request(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM feedback_requests WHERE token_hash = $1 FOR UPDATE", token_hash
    )
    return row
