"""Intake's SQL: reports (personal data encrypted), cases, notify lists, the registry version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.contract.events import CaseReclassified
from shared.runtime.db import Connection, ident

from .locate import UnitInfo
from .merging import MergeTarget

# --- the registry copy ------------------------------------------------------------------------


async def bump_registry_version(conn: Connection) -> None:
    await conn.execute("UPDATE registry_state SET version = version + 1")


async def registry_version(conn: Connection) -> int:
    version: int = await conn.fetchval("SELECT version FROM registry_state")
    return version


async def load_units(conn: Connection) -> list[UnitInfo]:
    rows = await conn.fetch(
        "SELECT code, name, level, parent, aliases, area, lon, lat, served_by FROM units"
    )
    return [
        UnitInfo(
            code=r["code"],
            name=r["name"],
            level=r["level"],
            parent=r["parent"],
            aliases=tuple(r["aliases"] or ()),
            area=tuple((float(p[0]), float(p[1])) for p in r["area"]) if r["area"] else None,
            point=(r["lon"], r["lat"]) if r["lon"] is not None and r["lat"] is not None else None,
            served_by=r["served_by"],
        )
        for r in rows
    ]


# --- reports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """What was recorded before of a batch's reports, and the registry version."""

    final: set[tuple[str, str]]  # opened or merged: a report seen again is a duplicate
    rejected: dict[tuple[str, str], bytes | None]  # rejected: the fingerprint of that version
    version: int


async def known_reports(conn: Connection, reports: list[tuple[str, str]]) -> Known:
    """Which (source, report_id) were recorded before (a report resubmitted after the inbox
    forgot its key, or one rejected before), and the registry version, in one round trip (so
    the caller can tell whether its location index is current). The caller has claimed each
    report's key in the inbox, which serialises replicas that see the same report: a report is
    recorded once, with its outcome, by ``record_reports`` in the same transaction.

    Each key is probed through the primary key (``LIMIT 1`` keeps the probe from being flattened
    into a join, which a plan cached while the table was small would run as a scan)."""
    row = await conn.fetchrow(
        """SELECT (SELECT version FROM registry_state) AS version, f.idx, f.outcomes, f.fps
           FROM (SELECT array_agg(k.i::int ORDER BY k.i) AS idx,
                        array_agg(x.outcome ORDER BY k.i) AS outcomes,
                        array_agg(x.fingerprint ORDER BY k.i) AS fps
                 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(s, r, i)
                 CROSS JOIN LATERAL (SELECT outcome, fingerprint FROM reports
                                     WHERE source = k.s AND report_id = k.r
                                     LIMIT 1) x) f""",
        [r[0] for r in reports],
        [r[1] for r in reports],
    )
    assert row is not None
    final: set[tuple[str, str]] = set()
    rejected: dict[tuple[str, str], bytes | None] = {}
    for i, outcome, fp in zip(
        row["idx"] or [], row["outcomes"] or [], row["fps"] or [], strict=True
    ):
        if outcome == "rejected":
            rejected[reports[i - 1]] = fp
        else:
            final.add(reports[i - 1])
    return Known(final, rejected, int(row["version"]))


@dataclass(frozen=True)
class Outcome:
    """What became of a report (a row of ``reports``)."""

    source: str
    report_id: str
    outcome: str  # opened | merged | rejected
    submitted_at: datetime | None = None
    case_id: str | None = None
    reason: str | None = None
    errors: list[dict[str, str]] | None = None
    reporter_ref: str | None = None
    reporter_name_enc: bytes | None = None
    reporter_phone_enc: bytes | None = None
    reporter_phone_masked: str | None = None
    fingerprint: bytes | None = None  # of a rejected version (services/intake/fingerprints.py)
    title_enc: bytes | None = None  # the free text as written, encrypted (what the topics
    description_enc: bytes | None = None  # carry is redacted: services/intake/redaction.py)


async def record_reports(conn: Connection, outcomes: list[Outcome]) -> None:
    """Record each handled report with its outcome (and its details), one row each; a report
    that was rejected before is recorded over its rejection (a corrected version)."""
    await conn.executemany(
        """INSERT INTO reports (source, report_id, submitted_at, outcome, case_id, reason,
                               errors, reporter_ref, reporter_name_enc, reporter_phone_enc,
                               reporter_phone_masked, fingerprint, title_enc, description_enc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (source, report_id) DO UPDATE
           SET received_at = now(), submitted_at = EXCLUDED.submitted_at,
               outcome = EXCLUDED.outcome, case_id = EXCLUDED.case_id,
               reason = EXCLUDED.reason, errors = EXCLUDED.errors,
               reporter_ref = EXCLUDED.reporter_ref,
               reporter_name_enc = EXCLUDED.reporter_name_enc,
               reporter_phone_enc = EXCLUDED.reporter_phone_enc,
               reporter_phone_masked = EXCLUDED.reporter_phone_masked,
               fingerprint = EXCLUDED.fingerprint,
               title_enc = EXCLUDED.title_enc, description_enc = EXCLUDED.description_enc
           WHERE reports.outcome = 'rejected'""",
        [
            (
                o.source,
                o.report_id,
                o.submitted_at,
                o.outcome,
                o.case_id,
                o.reason,
                o.errors,
                o.reporter_ref,
                o.reporter_name_enc,
                o.reporter_phone_enc,
                o.reporter_phone_masked,
                o.fingerprint,
                o.title_enc,
                o.description_enc,
            )
            for o in outcomes
        ],
    )


async def record_rejection(
    conn: Connection,
    source: str,
    report_id: str,
    reason: str,
    errors: list[dict[str, str]],
    fingerprint: bytes,
) -> bool:
    """Record an unreadable report's rejection; False when (source, report_id) was recorded
    with another outcome, or rejected before in this same version (a duplicate)."""
    done = await conn.fetchval(
        """INSERT INTO reports (source, report_id, outcome, reason, errors, fingerprint)
           VALUES ($1, $2, 'rejected', $3, $4, $5)
           ON CONFLICT (source, report_id) DO UPDATE
           SET received_at = now(), reason = EXCLUDED.reason, errors = EXCLUDED.errors,
               fingerprint = EXCLUDED.fingerprint
           WHERE reports.outcome = 'rejected'
             AND reports.fingerprint IS DISTINCT FROM EXCLUDED.fingerprint
           RETURNING true""",
        source,
        report_id,
        reason,
        errors,
        fingerprint,
    )
    return bool(done)


async def report_outcome(conn: Connection, source: str, report_id: str) -> asyncpg.Record | None:
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


async def lock_merge_keys(conn: Connection, keys: list[str]) -> None:
    """Serialise reports that could merge with each other until the transaction ends, so two of
    them never both find no case and both open one. The keys are locked in one order (their
    hashes, ascending), so two transactions locking overlapping sets cannot deadlock."""
    await conn.execute(
        """SELECT pg_advisory_xact_lock(h)
           FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) k
                 ORDER BY h) locks""",
        keys,
    )


# Where a report may merge: same category and building; without a building, same grid; without
# a grid, same place. One query per kind, each using its partial index.
_FIND_OPEN = {
    "building": "c.building = t.value",
    "grid": "c.grid = t.value",
    "place": "c.place = t.value AND c.grid IS NULL",
}


@dataclass(frozen=True)
class OpenCase:
    case_id: str
    supporter_count: int


async def find_open_cases(
    conn: Connection, targets: list[MergeTarget], since: datetime
) -> dict[MergeTarget, OpenCase]:
    """For each target, the newest open case opened since ``since``, locked for update (so its
    supporter count stays what is read here until the transaction ends)."""
    found: dict[MergeTarget, OpenCase] = {}
    for kind, where in _FIND_OPEN.items():
        mine = [t for t in targets if t.kind == kind]
        if not mine:
            continue
        rows = await conn.fetch(
            f"""SELECT t.category, t.value, c.case_id, c.supporter_count
                FROM unnest($1::text[], $2::text[]) AS t(category, value)
                CROSS JOIN LATERAL (
                    SELECT case_id, supporter_count FROM cases c
                    WHERE c.status = 'open' AND c.category = t.category AND {where}
                      AND c.opened_at >= $3
                    ORDER BY c.opened_at DESC LIMIT 1 FOR UPDATE) c""",
            [t.category for t in mine],
            [t.value for t in mine],
            since,
        )
        for r in rows:
            found[MergeTarget(r["category"], kind, r["value"])] = OpenCase(
                r["case_id"], int(r["supporter_count"])
            )
    return found


@dataclass(frozen=True)
class NewCase:
    case_id: str
    category: str
    place: str
    lineage: dict[str, str]
    opened_at: datetime
    text_enc: bytes | None = None  # the text it was classified from, encrypted


async def insert_cases(conn: Connection, cases: list[NewCase]) -> None:
    await conn.executemany(
        """INSERT INTO cases (case_id, category, place, building, grid, community, street,
                              district, opened_at, text_enc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        [
            (
                c.case_id,
                c.category,
                c.place,
                c.lineage.get("building"),
                c.lineage.get("grid"),
                c.lineage.get("community"),
                c.lineage.get("street"),
                c.lineage.get("district"),
                c.opened_at,
                c.text_enc,
            )
            for c in cases
        ],
    )


async def add_supporters(
    conn: Connection, supporters: list[tuple[str, Supporter]]
) -> set[tuple[str, str]]:
    """Put each (case_id, reporter) on the case's notify list; returns the (case_id,
    reporter_ref) pairs that were new (the same person seconding twice is listed once)."""
    rows = await conn.fetch(
        """INSERT INTO case_supporters (case_id, reporter_ref, source, report_id,
                                        reporter_phone_masked)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
           ON CONFLICT DO NOTHING RETURNING case_id, reporter_ref""",
        [c for c, _ in supporters],
        [s.reporter_ref for _, s in supporters],
        [s.source for _, s in supporters],
        [s.report_id for _, s in supporters],
        [s.phone_masked for _, s in supporters],
    )
    return {(r["case_id"], r["reporter_ref"]) for r in rows}


async def set_supporter_counts(conn: Connection, counts: dict[str, int]) -> None:
    """Set each case's ``supporter_count`` (distinct reporters), one update by key each."""
    await conn.executemany(
        "UPDATE cases SET supporter_count = $2 WHERE case_id = $1", list(counts.items())
    )


async def close_case(conn: Connection, case_id: str, closed_at: datetime) -> bool:
    """Mark an open case closed; False when unknown or already closed."""
    done = await conn.fetchval(
        "UPDATE cases SET status = 'closed', closed_at = $2 "
        "WHERE case_id = $1 AND status = 'open' RETURNING true",
        case_id,
        closed_at,
    )
    return bool(done)


# --- reclassifications: the labelled examples of the command centre's decisions --------------


async def record_reclassification(conn: Connection, ev: CaseReclassified) -> bool:
    """A person's category for a case (``cases.reclassified``): kept as a labelled example, and
    intake's copy of the case follows it (the category later reports merge by). False: intake
    does not know the case. A decision seen again changes nothing."""
    found = await conn.fetchval(
        """WITH moved AS (
               UPDATE cases SET category = $3
               WHERE case_id = $1
                 AND NOT EXISTS (SELECT 1 FROM reclassifications r
                                 WHERE r.case_id = $1 AND r.decided_at > $2)
               RETURNING case_id),
           kept AS (
               INSERT INTO reclassifications (case_id, decided_at, from_category, to_category,
                                              origin, decided_by, note)
               SELECT case_id, $2, $4, $3, $5, $6, $7 FROM cases WHERE case_id = $1
               ON CONFLICT DO NOTHING RETURNING case_id)
           SELECT EXISTS (SELECT 1 FROM cases WHERE case_id = $1)""",
        ev.case_id,
        ev.reclassified_at,
        ev.to_category,
        ev.from_category,
        ev.origin,
        ev.by.model_dump(),
        ev.note,
    )
    return bool(found)


@dataclass(frozen=True)
class LabelledExample:
    """A case's text (encrypted) and the category a person decided for it."""

    case_id: str
    text_enc: bytes
    category: str
    decided_at: datetime


async def labelled_examples(conn: Connection) -> list[LabelledExample]:
    """Every reclassified case whose text intake kept, labelled with its latest decision."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (r.case_id) r.case_id, c.text_enc, r.to_category, r.decided_at
           FROM reclassifications r JOIN cases c USING (case_id)
           WHERE c.text_enc IS NOT NULL
           ORDER BY r.case_id, r.decided_at DESC"""
    )
    return [
        LabelledExample(r["case_id"], r["text_enc"], r["to_category"], r["decided_at"])
        for r in rows
    ]


# --- personal data at rest (wangge pii) ---------------------------------------------------------


@dataclass(frozen=True)
class EncryptedTable:
    """A table of intake's schema with personal data columns (``bytea`` named ``*_enc``)."""

    name: str
    key: tuple[str, ...]  # its primary key, to page through it
    columns: tuple[str, ...]


async def encrypted_tables(conn: Connection, schema: str) -> list[EncryptedTable]:
    """Every table of ``schema`` holding ``*_enc`` columns: what ``wangge pii rotate`` rewrites
    (a column added later is found without changing the command)."""
    rows = await conn.fetch(
        r"""SELECT c.relname AS name,
                   ARRAY(SELECT a.attname::text
                         FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                         ORDER BY k.n) AS key,
                   ARRAY(SELECT a.attname::text FROM pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                           AND a.atttypid = 'bytea'::regtype AND a.attname LIKE '%\_enc'
                         ORDER BY a.attnum) AS columns
            FROM pg_class c
            JOIN pg_namespace ns ON ns.oid = c.relnamespace
            LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE ns.nspname = $1 AND c.relkind = 'r'
            ORDER BY c.relname""",
        schema,
    )
    tables = []
    for r in rows:
        if not r["columns"]:
            continue
        if not r["key"]:
            raise ValueError(f"{schema}.{r['name']} has *_enc columns but no primary key")
        tables.append(
            EncryptedTable(
                ident(r["name"]),
                tuple(ident(k) for k in r["key"]),
                tuple(ident(c) for c in r["columns"]),
            )
        )
    return tables


def _header(column: str, size: int) -> str:
    return f"substring({column} FROM 1 FOR {size})"


async def count_by_header(
    conn: Connection, table: EncryptedTable, column: str, headers: list[bytes]
) -> dict[bytes | None, int]:
    """How many values of ``column`` start with each of ``headers`` (a ciphertext's format and
    key id), None: how many start with none of them."""
    size = len(headers[0])
    h = _header(column, size)
    rows = await conn.fetch(
        f"""SELECT CASE WHEN {h} = ANY($1::bytea[]) THEN {h} END AS header, count(*) AS n
            FROM {table.name} WHERE {column} IS NOT NULL GROUP BY 1""",
        headers,
    )
    return {(bytes(r["header"]) if r["header"] is not None else None): r["n"] for r in rows}


async def values_without_header(
    conn: Connection, table: EncryptedTable, column: str, headers: list[bytes]
) -> AsyncIterator[bytes]:
    """The values of ``column`` that start with none of ``headers``, streamed (call inside a
    transaction)."""
    h = _header(column, len(headers[0]))
    query = (
        f"SELECT {column} FROM {table.name} "
        f"WHERE {column} IS NOT NULL AND NOT ({h} = ANY($1::bytea[]))"
    )
    async for r in conn.cursor(query, headers, prefetch=1000):
        yield bytes(r[0])


async def rows_to_reencrypt(
    conn: Connection,
    table: EncryptedTable,
    current: bytes,
    after: tuple[object, ...] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The next ``limit`` rows after ``after`` (in primary key order) with a value not under the
    header ``current``, locked until the transaction ends: key columns first, then the
    ``*_enc`` columns."""
    h = len(current)
    stale = " OR ".join(
        f"({c} IS NOT NULL AND {_header(c, h)} <> $2::bytea)" for c in table.columns
    )
    key = ", ".join(table.key)
    params: list[object] = [limit, current]
    page = ""
    if after is not None:
        marks = ", ".join(f"${n}" for n in range(3, 3 + len(after)))
        page = f"AND ({key}) > ({marks})"
        params += after
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {key}, {", ".join(table.columns)} FROM {table.name}
            WHERE ({stale}) {page} ORDER BY {key} LIMIT $1 FOR UPDATE""",
        *params,
    )
    return rows


async def update_encrypted(
    conn: Connection, table: EncryptedTable, rows: list[tuple[object, ...]]
) -> None:
    """Write each row's ``*_enc`` values: every tuple is the key columns, then the values."""
    k = len(table.key)
    sets = ", ".join(f"{c} = ${k + n}" for n, c in enumerate(table.columns, 1))
    where = " AND ".join(f"{c} = ${n}" for n, c in enumerate(table.key, 1))
    await conn.executemany(f"UPDATE {table.name} SET {sets} WHERE {where}", rows)
