"""The SQL of Open311 on intake: api keys, the requests posted, and the cases' progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.runtime.db import Connection

from .apikeys import Caller
from .query import RequestQuery
from .status import LEVELS, Place, Progress, RequestRow
from .submission import AddressUnit

# --- api keys -----------------------------------------------------------------------------------


async def insert_key(
    conn: Connection, key_id: str, system: str, channel: str, digest: bytes
) -> None:
    await conn.execute(
        "INSERT INTO api_keys (key_id, system, channel, secret_hash) VALUES ($1, $2, $3, $4)",
        key_id,
        system,
        channel,
        digest,
    )


async def list_keys(conn: Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT key_id, system, channel, created_at, revoked_at FROM api_keys "
        "ORDER BY system, created_at"
    )
    return rows


async def revoke_key(conn: Connection, key_id: str) -> bool:
    """Revoke a key; False when unknown or revoked already."""
    done = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL "
        "RETURNING true",
        key_id,
    )
    return bool(done)


async def caller(conn: Connection, digest: bytes) -> Caller | None:
    row = await conn.fetchrow(
        "SELECT system, channel FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    return Caller(row["system"], row["channel"]) if row else None


# --- posting ------------------------------------------------------------------------------------


async def address_unit(conn: Connection, code: str) -> AddressUnit | None:
    row = await conn.fetchrow("SELECT code, level, name FROM units WHERE code = $1", code)
    return AddressUnit(row["code"], row["level"], row["name"]) if row else None


@dataclass(frozen=True)
class NewRequest:
    source: str
    report_id: str
    system: str
    case_id: str
    merged: bool
    requested_at: datetime
    service_code: str
    description: str
    address: str | None
    address_id: str | None
    lat: float | None
    long: float | None
    media_url: str | None


async def record_requests(conn: Connection, rows: list[NewRequest]) -> None:
    if not rows:
        return
    await conn.executemany(
        """INSERT INTO open311_requests (source, report_id, system, case_id, merged,
                                         requested_at, service_code, description, address,
                                         address_id, lat, long, media_url)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT DO NOTHING""",
        [
            (
                r.source,
                r.report_id,
                r.system,
                r.case_id,
                r.merged,
                r.requested_at,
                r.service_code,
                r.description,
                r.address,
                r.address_id,
                r.lat,
                r.long,
                r.media_url,
            )
            for r in rows
        ],
    )


@dataclass(frozen=True)
class Recorded:
    """What became of a report handled before (a retried POST)."""

    outcome: str  # opened | merged | rejected | received
    case_id: str | None
    errors: list[dict[str, Any]]
    supporter_count: int | None
    category: str | None


async def recorded(conn: Connection, source: str, report_id: str) -> Recorded | None:
    row = await conn.fetchrow(
        """SELECT r.outcome, r.case_id, r.errors, c.supporter_count, c.category
           FROM reports r LEFT JOIN cases c ON c.case_id = r.case_id
           WHERE r.source = $1 AND r.report_id = $2""",
        source,
        report_id,
    )
    if row is None:
        return None
    return Recorded(
        row["outcome"], row["case_id"], row["errors"] or [], row["supporter_count"], row["category"]
    )


# --- the cases' progress ------------------------------------------------------------------------
# Each fact is written over the row only when it is newer than what the row holds (the topics
# are not ordered with each other, and a message may come twice). A case intake does not know is
# ignored (the INSERT selects from cases). Each function takes a batch's rows, in order, as one
# pipelined executemany.


async def lock_progress(conn: Connection, case_ids: list[str]) -> None:
    """Take each case's progress lock for the transaction, in one order for every batch (an
    advisory lock per case id, by its key): intake's status subscriptions (one consumer and
    transaction per topic) upsert the same ``case_progress`` rows within milliseconds of each
    other, and without the ordered locks their batches deadlock (``locked_first``)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('intake.case_progress'), k) "
        "FROM (SELECT DISTINCT hashtext(id) AS k FROM unnest($1::text[]) id ORDER BY 1) s",
        case_ids,
    )


async def dispatched(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, attempt, tier, unit, at, respond_by, resolve_by)."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, attempt, tier, unit, dispatched_at, respond_by,
                                      resolve_by, updated_at)
           SELECT case_id, $2, $3, $4, $5, $6, $7, $5 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET attempt = EXCLUDED.attempt, tier = EXCLUDED.tier, unit = EXCLUDED.unit,
               dispatched_at = EXCLUDED.dispatched_at, respond_by = EXCLUDED.respond_by,
               resolve_by = EXCLUDED.resolve_by,
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)
           WHERE case_progress.attempt <= EXCLUDED.attempt""",
        rows,
    )


async def accepted(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, at)."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, accepted_at, updated_at)
           SELECT case_id, $2, $2 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET accepted_at = GREATEST(case_progress.accepted_at, EXCLUDED.accepted_at),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


async def escalated(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, at, from_tier)."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, escalated_at, escalated_from, updated_at)
           SELECT case_id, $2, $3, $2 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET escalated_from = CASE WHEN case_progress.escalated_at IS NULL
                                       OR EXCLUDED.escalated_at >= case_progress.escalated_at
                                     THEN EXCLUDED.escalated_from
                                     ELSE case_progress.escalated_from END,
               escalated_at = GREATEST(case_progress.escalated_at, EXCLUDED.escalated_at),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


async def resolved(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, at, note, verifier_unit): the latest resolution, its note and the
    unit that verifies it (None: nobody does)."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, resolved_at, resolution_note, verifier_unit,
                                      updated_at)
           SELECT case_id, $2, $3, $4, $2 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET resolution_note = CASE WHEN case_progress.resolved_at IS NULL
                                        OR EXCLUDED.resolved_at >= case_progress.resolved_at
                                      THEN EXCLUDED.resolution_note
                                      ELSE case_progress.resolution_note END,
               verifier_unit = CASE WHEN case_progress.resolved_at IS NULL
                                      OR EXCLUDED.resolved_at >= case_progress.resolved_at
                                    THEN EXCLUDED.verifier_unit
                                    ELSE case_progress.verifier_unit END,
               resolved_at = GREATEST(case_progress.resolved_at, EXCLUDED.resolved_at),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


async def verified(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, resolved_at, at): a resolution confirmed on site (核查结案);
    ``resolved_at`` is the one verified."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, resolved_at, verified_at, updated_at)
           SELECT case_id, $2, $3, $3 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET verified_at = GREATEST(case_progress.verified_at, EXCLUDED.verified_at),
               resolved_at = GREATEST(case_progress.resolved_at, EXCLUDED.resolved_at),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


async def sent_back(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, at): a resolution its verifier sent back (核查不通过): handled again."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, sent_back_at, updated_at)
           SELECT case_id, $2, $2 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET sent_back_at = GREATEST(case_progress.sent_back_at, EXCLUDED.sent_back_at),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


async def reopened(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, at, reopen_count)."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, reopened_at, reopen_count, updated_at)
           SELECT case_id, $2, $3, $2 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET reopened_at = CASE WHEN EXCLUDED.reopen_count > case_progress.reopen_count
                                  THEN EXCLUDED.reopened_at ELSE case_progress.reopened_at END,
               reopen_count = GREATEST(case_progress.reopen_count, EXCLUDED.reopen_count),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


async def closed(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Each row (case_id, at, outcome)."""
    await conn.executemany(
        """INSERT INTO case_progress (case_id, closed_at, close_outcome, updated_at)
           SELECT case_id, $2, $3, $2 FROM cases WHERE case_id = $1
           ON CONFLICT (case_id) DO UPDATE
           SET closed_at = COALESCE(case_progress.closed_at, EXCLUDED.closed_at),
               close_outcome = COALESCE(case_progress.close_outcome, EXCLUDED.close_outcome),
               updated_at = GREATEST(case_progress.updated_at, EXCLUDED.updated_at)""",
        rows,
    )


# --- reading requests ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Whose requests a caller reads: an upstream system's own, or the cases in reach of a
    staff member's unit."""

    system: str | None = None
    unit: str | None = None


_PROGRESS = (
    "attempt",
    "tier",
    "unit",
    "dispatched_at",
    "respond_by",
    "resolve_by",
    "accepted_at",
    "escalated_at",
    "escalated_from",
    "resolved_at",
    "resolution_note",
    "reopened_at",
    "reopen_count",
    "close_outcome",
    "updated_at",
    "verifier_unit",
    "verified_at",
    "sent_back_at",
)


def _where(scope: Scope, q: RequestQuery) -> tuple[list[str], list[Any]]:
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    where = []
    if scope.system is not None:
        where.append(f"r.system = {param(scope.system)}")
    else:
        assert scope.unit is not None
        where.append(
            f"{param(scope.unit)} = ANY(ARRAY[c.district, c.street, c.community, c.grid, "
            "c.building, p.unit])"
        )
    if q.ids is not None:
        where.append(f"r.case_id = ANY({param(list(q.ids))}::text[])")
        return where, params
    where.append(f"r.requested_at >= {param(q.start)} AND r.requested_at < {param(q.end)}")
    if q.service_codes is not None:
        where.append(f"c.category = ANY({param(list(q.service_codes))}::text[])")
    if q.statuses is not None:
        where.append(f"c.status = ANY({param(list(q.statuses))}::text[])")
    return where, params


async def find_requests(conn: Connection, scope: Scope, q: RequestQuery) -> list[RequestRow]:
    """The requests ``q`` selects within ``scope``, newest first: per case, the first report
    the scope made on it (a system that seconded its own case sees one request)."""
    where, params = _where(scope, q)
    params += [q.limit, q.offset]
    n = len(params)
    progress = ", ".join(f"p.{c}" for c in _PROGRESS)
    rows = await conn.fetch(
        f"""SELECT * FROM (
                SELECT DISTINCT ON (r.case_id)
                       r.case_id, r.source, r.merged, r.requested_at, r.service_code,
                       r.description, r.address, r.address_id, r.lat, r.long, r.media_url,
                       c.place, c.district, c.street, c.community, c.grid, c.building,
                       c.supporter_count, c.opened_at, c.closed_at AS case_closed_at,
                       p.closed_at AS progress_closed_at, {progress}
                FROM open311_requests r
                JOIN cases c ON c.case_id = r.case_id
                LEFT JOIN case_progress p ON p.case_id = r.case_id
                WHERE {" AND ".join(where)}
                ORDER BY r.case_id, r.requested_at) x
            ORDER BY requested_at DESC, case_id LIMIT ${n - 1} OFFSET ${n}""",
        *params,
    )
    return [_row(r) for r in rows]


def _row(r: asyncpg.Record) -> RequestRow:
    progress = Progress(
        opened_at=r["opened_at"],
        attempt=r["attempt"] or 0,
        tier=r["tier"],
        unit=r["unit"],
        dispatched_at=r["dispatched_at"],
        respond_by=r["respond_by"],
        resolve_by=r["resolve_by"],
        accepted_at=r["accepted_at"],
        escalated_at=r["escalated_at"],
        escalated_from=r["escalated_from"],
        resolved_at=r["resolved_at"],
        resolution_note=r["resolution_note"],
        reopened_at=r["reopened_at"],
        reopen_count=r["reopen_count"] or 0,
        closed_at=r["progress_closed_at"] or r["case_closed_at"],
        close_outcome=r["close_outcome"],
        updated_at=r["updated_at"],
        verifier_unit=r["verifier_unit"],
        verified_at=r["verified_at"],
        sent_back_at=r["sent_back_at"],
    )
    return RequestRow(
        case_id=r["case_id"],
        source=r["source"],
        merged=r["merged"],
        requested_at=r["requested_at"],
        service_code=r["service_code"],
        description=r["description"],
        address=r["address"],
        address_id=r["address_id"],
        lat=r["lat"],
        long=r["long"],
        media_url=r["media_url"],
        place=r["place"],
        lineage={lvl: r[lvl] for lvl in LEVELS},
        supporter_count=r["supporter_count"],
        progress=progress,
    )


async def places(conn: Connection, codes: list[str]) -> dict[str, Place]:
    """Names (and a building's point) of units and departments of the registry copy."""
    rows = await conn.fetch(
        "SELECT code, name, lon, lat FROM units WHERE code = ANY($1::text[]) "
        "UNION ALL SELECT code, name, NULL, NULL FROM departments WHERE code = ANY($1::text[])",
        codes,
    )
    return {r["code"]: Place(r["name"], r["lon"], r["lat"]) for r in rows}
