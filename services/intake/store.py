"""Intake's SQL: reports (personal data encrypted), cases, notify lists, the registry version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .locate import UnitInfo

# --- the registry copy ------------------------------------------------------------------------


async def bump_registry_version(conn: asyncpg.Connection) -> None:
    await conn.execute("UPDATE registry_state SET version = version + 1")


async def registry_version(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT version FROM registry_state"))


async def load_units(conn: asyncpg.Connection) -> list[UnitInfo]:
    rows = await conn.fetch("SELECT code, name, level, parent, aliases, area FROM units")
    return [
        UnitInfo(
            code=r["code"],
            name=r["name"],
            level=r["level"],
            parent=r["parent"],
            aliases=tuple(r["aliases"] or ()),
            area=tuple((float(p[0]), float(p[1])) for p in r["area"]) if r["area"] else None,
        )
        for r in rows
    ]


# --- reports ------------------------------------------------------------------------------------


async def claim_report(
    conn: asyncpg.Connection, source: str, report_id: str, submitted_at: datetime | None
) -> int | None:
    """Claim (source, report_id) for this transaction; None when it was already recorded.

    Returns the registry version in the same round trip, so the caller can tell whether its
    location index is current."""
    version: int | None = await conn.fetchval(
        "INSERT INTO reports (source, report_id, submitted_at, outcome) "
        "VALUES ($1, $2, $3, 'received') ON CONFLICT (source, report_id) DO NOTHING "
        "RETURNING (SELECT version FROM registry_state)",
        source,
        report_id,
        submitted_at,
    )
    return version


async def finish_report(
    conn: asyncpg.Connection, source: str, report_id: str, **fields: Any
) -> None:
    """Set the outcome (and its details) of a report claimed in this transaction."""
    sets = ", ".join(f"{col} = ${i}" for i, col in enumerate(fields, start=3))
    await conn.execute(
        f"UPDATE reports SET {sets} WHERE source = $1 AND report_id = $2",
        source,
        report_id,
        *fields.values(),
    )


async def record_rejection(
    conn: asyncpg.Connection,
    source: str,
    report_id: str,
    reason: str,
    errors: list[dict[str, str]],
) -> bool:
    """Record an unreadable report's rejection; False when (source, report_id) was recorded."""
    done = await conn.fetchval(
        "INSERT INTO reports (source, report_id, outcome, reason, errors) "
        "VALUES ($1, $2, 'rejected', $3, $4) ON CONFLICT (source, report_id) DO NOTHING "
        "RETURNING true",
        source,
        report_id,
        reason,
        errors,
    )
    return bool(done)


async def report_outcome(
    conn: asyncpg.Connection, source: str, report_id: str
) -> asyncpg.Record | None:
    """What became of a report, with its case's state (for ``wangge report show``)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        """SELECT r.source, r.report_id, r.outcome, r.reason, r.errors, r.received_at,
                  r.case_id, c.category, c.place, c.status, c.supporter_count, c.opened_at
           FROM reports r LEFT JOIN cases c ON c.case_id = r.case_id
           WHERE r.source = $1 AND r.report_id = $2""",
        source,
        report_id,
    )
    return row


@dataclass(frozen=True)
class Supporter:
    """A reporter on a case's notify list (pseudonym and masked phone only)."""

    reporter_ref: str
    source: str
    report_id: str
    phone_masked: str | None


# --- cases and merging --------------------------------------------------------------------------


async def lock_merge_key(conn: asyncpg.Connection, key: str) -> None:
    """Serialise reports that could merge with each other until the transaction ends, so two of
    them never both find no case and both open one."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def find_open_case(
    conn: asyncpg.Connection,
    *,
    category: str,
    building: str | None,
    grid: str | None,
    place: str,
    since: datetime,
) -> str | None:
    """The newest open case of ``category`` opened since ``since`` at the same building (or,
    without one, in the same grid; without a grid, at the same place), locked for update."""
    if building is not None:
        where, value = "building = $2", building
    elif grid is not None:
        where, value = "grid = $2", grid
    else:
        where, value = "place = $2 AND grid IS NULL", place
    case_id: str | None = await conn.fetchval(
        f"""SELECT case_id FROM cases
            WHERE status = 'open' AND category = $1 AND {where} AND opened_at >= $3
            ORDER BY opened_at DESC LIMIT 1 FOR UPDATE""",
        category,
        value,
        since,
    )
    return case_id


async def insert_case(
    conn: asyncpg.Connection,
    *,
    case_id: str,
    category: str,
    place: str,
    lineage: dict[str, str],
    opened_at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO cases (case_id, category, place, building, grid, community, street,
                              district, opened_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        case_id,
        category,
        place,
        lineage.get("building"),
        lineage.get("grid"),
        lineage.get("community"),
        lineage.get("street"),
        lineage.get("district"),
        opened_at,
    )


async def add_supporter(conn: asyncpg.Connection, case_id: str, who: Supporter) -> int:
    """Put the reporter on the case's notify list; returns the case's supporter count (distinct
    reporters: the same person seconding twice counts once)."""
    if await _insert_supporter(conn, case_id, who):
        count = await conn.fetchval(
            "UPDATE cases SET supporter_count = supporter_count + 1 WHERE case_id = $1 "
            "RETURNING supporter_count",
            case_id,
        )
    else:
        count = await conn.fetchval("SELECT supporter_count FROM cases WHERE case_id = $1", case_id)
    return int(count)


async def add_first_supporter(conn: asyncpg.Connection, case_id: str, who: Supporter) -> None:
    """The reporter who opened the case (``supporter_count`` starts at 1)."""
    await _insert_supporter(conn, case_id, who)


async def _insert_supporter(conn: asyncpg.Connection, case_id: str, who: Supporter) -> bool:
    added = await conn.fetchval(
        """INSERT INTO case_supporters (case_id, reporter_ref, source, report_id,
                                        reporter_phone_masked)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true""",
        case_id,
        who.reporter_ref,
        who.source,
        who.report_id,
        who.phone_masked,
    )
    return bool(added)


async def close_case(conn: asyncpg.Connection, case_id: str, closed_at: datetime) -> bool:
    """Mark an open case closed; False when unknown or already closed."""
    done = await conn.fetchval(
        "UPDATE cases SET status = 'closed', closed_at = $2 "
        "WHERE case_id = $1 AND status = 'open' RETURNING true",
        case_id,
        closed_at,
    )
    return bool(done)
