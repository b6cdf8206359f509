"""The SQL of work orders (``orders``) and councils (``councils``): their tables,
``work_orders`` (migration ``020_work_orders.sql``) and ``councils`` (``021_councils.sql``);
the timeline steps are written by ``store``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from shared.contract.events import CouncilDecided
from shared.runtime.db import Connection

from .councils import council_id_of
from .model import Case
from .orders import Order
from .store import case_of

_COLUMNS = (
    "order_id",
    "case_id",
    "n",
    "unit",
    "tier",
    "handler_id",
    "required",
    "origin",
    "state",
    "report_by",
    "resolve_by",
    "issued_by",
    "issued_by_unit",
    "note",
    "council_id",
    "issued_at",
    "reported_at",
    "done_at",
    "closed_at",
    "report_missed_at",
    "last_note",
)


def order_of(row: asyncpg.Record) -> Order:
    return Order(**{c: row[c] for c in _COLUMNS})


async def orders_of(conn: Connection, case_id: str) -> list[Order]:
    rows = await conn.fetch("SELECT * FROM work_orders WHERE case_id = $1 ORDER BY n", case_id)
    return [order_of(r) for r in rows]


async def load_order(conn: Connection, order_id: str, *, lock: bool = False) -> Order | None:
    sql = "SELECT * FROM work_orders WHERE order_id = $1" + (" FOR UPDATE" if lock else "")
    row = await conn.fetchrow(sql, order_id)
    return order_of(row) if row else None


async def next_number(conn: Connection, case_id: str) -> int:
    """The number of the case's next order (the case's row is locked by the caller)."""
    n = await conn.fetchval("SELECT max(n) FROM work_orders WHERE case_id = $1", case_id)
    return int(n or 0) + 1


async def by_request(conn: Connection, request_key: str) -> list[Order]:
    """The orders a whistle with this key (the issuer and their Idempotency-Key) issued."""
    rows = await conn.fetch(
        "SELECT * FROM work_orders WHERE request_key = $1 ORDER BY n", request_key
    )
    return [order_of(r) for r in rows]


async def insert_orders(conn: Connection, orders: Sequence[Order], request_key: str | None) -> None:
    if not orders:
        return
    cols = ", ".join((*_COLUMNS, "request_key"))
    marks = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 2))
    await conn.executemany(
        f"INSERT INTO work_orders ({cols}) VALUES ({marks})",
        [(*(getattr(o, c) for c in _COLUMNS), request_key) for o in orders],
    )


async def update_order(conn: Connection, o: Order) -> None:
    await conn.execute(
        """UPDATE work_orders SET state = $2, handler_id = $3, reported_at = $4, done_at = $5,
                  closed_at = $6, last_note = $7, updated_at = now()
           WHERE order_id = $1""",
        o.order_id,
        o.state,
        o.handler_id,
        o.reported_at,
        o.done_at,
        o.closed_at,
        o.last_note,
    )


async def open_orders_of_unit(conn: Connection, unit: str) -> list[Order]:
    """The open orders (issued or reported) of ``unit``, the nearest report deadline first."""
    rows = await conn.fetch(
        """SELECT * FROM work_orders WHERE unit = $1 AND state IN ('issued', 'reported')
           ORDER BY report_by, order_id""",
        unit,
    )
    return [order_of(r) for r in rows]


async def order_units(conn: Connection, case_id: str) -> list[str]:
    """Every unit the case has an order for (any state): they read the case."""
    rows = await conn.fetch("SELECT DISTINCT unit FROM work_orders WHERE case_id = $1", case_id)
    return [r["unit"] for r in rows]


async def unit_levels(conn: Connection, codes: Iterable[str]) -> dict[str, str | None]:
    """The registry's level of each known code (None: a department); unknown codes are absent."""
    wanted = sorted(set(codes))
    rows = await conn.fetch(
        """SELECT code, level FROM units WHERE code = ANY($1::text[])
           UNION ALL SELECT code, NULL FROM departments WHERE code = ANY($1::text[])""",
        wanted,
    )
    return {r["code"]: r["level"] for r in rows}


async def tiers_of(conn: Connection, codes: Iterable[str]) -> dict[str, str | None]:
    """The tier each code works at: a unit's level, a department's parent's level."""
    rows = await conn.fetch(
        """SELECT code, level FROM units WHERE code = ANY($1::text[])
           UNION ALL
           SELECT d.code, u.level FROM departments d LEFT JOIN units u ON u.code = d.parent
           WHERE d.code = ANY($1::text[])""",
        sorted(set(codes)),
    )
    return {r["code"]: r["level"] for r in rows}


# --- the order-report sweep ---------------------------------------------------------------------


async def claim_unreported(conn: Connection, now: datetime, limit: int) -> list[Order]:
    """Issued orders past ``report_by`` not yet found missed, claimed (``SKIP LOCKED``: another
    replica's are skipped) and marked missed in the same statement, so each fires once. The
    predicate is the partial index ``work_orders_report_due``'s."""
    rows = await conn.fetch(UNREPORTED_SQL, now, limit)
    return [order_of(r) for r in rows]


UNREPORTED_SQL = """WITH due AS (
        SELECT order_id FROM work_orders
        WHERE state = 'issued' AND report_missed_at IS NULL AND report_by <= $1
        ORDER BY report_by LIMIT $2 FOR UPDATE SKIP LOCKED)
    UPDATE work_orders o SET report_missed_at = $1, updated_at = now()
    FROM due WHERE o.order_id = due.order_id
    RETURNING o.*"""


# --- councils -----------------------------------------------------------------------------------


async def next_council(conn: Connection, case_id: str) -> str:
    n = await conn.fetchval("SELECT max(n) FROM councils WHERE case_id = $1", case_id)
    return council_id_of(case_id, int(n or 0) + 1)


async def council_by_request(conn: Connection, request_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM councils WHERE request_key = $1", request_key)


async def insert_council(conn: Connection, ev: CouncilDecided, request_key: str | None) -> None:
    n = int(ev.council_id.rsplit(".k", 1)[1])
    await conn.execute(
        """INSERT INTO councils (council_id, case_id, n, body, meeting_date, decision, votes_for,
                                 votes_against, votes_abstain, measures, tier, unit, decided_by,
                                 decided_at, request_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)""",
        ev.council_id,
        ev.case_id,
        n,
        ev.body,
        ev.meeting_date,
        ev.decision,
        ev.votes_for,
        ev.votes_against,
        ev.votes_abstain,
        [m.model_dump() for m in ev.measures],
        ev.tier,
        ev.unit,
        ev.decided_by,
        ev.decided_at,
        request_key,
    )


async def councils_of(conn: Connection, case_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM councils WHERE case_id = $1 ORDER BY n", case_id)


async def council_by_id(conn: Connection, council_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM councils WHERE council_id = $1", council_id)


async def cases_read(conn: Connection, case_ids: Iterable[str]) -> list[Case]:
    """The cases of ``case_ids``, read without a lock (the order sweep holds its orders' rows,
    and an order's step locks the case first: no lock is taken the other way round)."""
    rows = await conn.fetch(
        "SELECT * FROM cases WHERE case_id = ANY($1::text[])", sorted(set(case_ids))
    )
    return [case_of(r) for r in rows]
