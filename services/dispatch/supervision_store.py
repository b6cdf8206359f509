"""The SQL of supervision (督办, ``supervision``): its own table, ``supervisions``
(migration ``016_supervisions.sql``); the timeline step is written by ``store``."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.contract.events import CaseSupervised
from shared.runtime.db import Connection


async def by_request(conn: Connection, request_key: str) -> asyncpg.Record | None:
    """The supervision a request with this key (the sender and their Idempotency-Key) made."""
    return await conn.fetchrow("SELECT * FROM supervisions WHERE request_key = $1", request_key)


async def next_number(conn: Connection, case_id: str) -> int:
    """The number of the case's next supervision (the case's row is locked by the caller)."""
    n = await conn.fetchval("SELECT max(n) FROM supervisions WHERE case_id = $1", case_id)
    return int(n or 0) + 1


async def insert(conn: Connection, ev: CaseSupervised, request_key: str | None) -> None:
    await conn.execute(
        """INSERT INTO supervisions (case_id, n, attempt, tier, unit, handler_id, note, report_by,
                                     by_role, by_unit, by_subject, at, request_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        ev.case_id,
        ev.supervision,
        ev.attempt,
        ev.tier,
        ev.unit,
        ev.handler_id,
        ev.note,
        ev.report_by,
        ev.by.role,
        ev.by.unit,
        ev.by.subject,
        ev.supervised_at,
        request_key,
    )


async def current(conn: Connection, cases: Sequence[tuple[str, int]]) -> list[asyncpg.Record]:
    """The latest supervision of each ``(case_id, attempt)`` sent at that dispatch attempt: what
    the unit that has the case now was told (a later dispatch leaves it behind)."""
    if not cases:
        return []
    return await conn.fetch(
        """SELECT DISTINCT ON (s.case_id) s.*,
                  count(*) OVER (PARTITION BY s.case_id) AS of_attempt
           FROM supervisions s
           JOIN unnest($1::text[], $2::int[]) AS c (case_id, attempt)
             ON s.case_id = c.case_id AND s.attempt = c.attempt
           ORDER BY s.case_id, s.n DESC""",
        [c for c, _ in cases],
        [a for _, a in cases],
    )
