"""Dispatch's SQL: cases with tier, unit, handler and deadlines; the timeline; registry reads.

Rows of ``cases`` become ``model.Case`` in one place (``case_of``); changes come in as
``model.CaseChange``."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shared.contract.events import CaseMerged, HandlerAction, Stage
from shared.runtime import bulk
from shared.runtime.db import Connection

from .assignment import Dept, HandlerLoad, TargetUnit
from .model import (
    CASE_COLUMNS,
    CHANGE_COLUMNS,
    ActionOutcome,
    Case,
    CaseChange,
    EarlyMerge,
    Refusal,
    Step,
    Suggestion,
    TriageEntry,
)
from .states import AWAITING, COMMAND_CENTRE, VOLUNTEER_TIERS, Actor, command_centre_unit

# --- cases -------------------------------------------------------------------------------------


_row_values = operator.itemgetter(*CASE_COLUMNS)


def case_of(row: asyncpg.Record) -> Case:
    """The one place a ``cases`` row becomes a ``Case``."""
    values = dict(zip(CASE_COLUMNS, _row_values(row), strict=True))
    values["tier_reasons"] = tuple(values["tier_reasons"])
    values["excluded_units"] = tuple(values["excluded_units"])
    return Case.of(values)


async def get_case(conn: Connection, case_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    """The row as it is, for readers outside dispatch's handlers (``wangge case show``)."""
    sql = "SELECT * FROM cases WHERE case_id = $1" + (" FOR UPDATE" if lock else "")
    row: asyncpg.Record | None = await conn.fetchrow(sql, case_id)
    return row


async def load_case(conn: Connection, case_id: str, *, lock: bool = False) -> Case | None:
    row = await get_case(conn, case_id, lock=lock)
    return None if row is None else case_of(row)


async def load_cases(conn: Connection, case_ids: Iterable[str]) -> list[Case]:
    """The cases of ``case_ids`` that exist, locked for update (in case_id order, so that two
    transactions locking some of the same cases cannot deadlock)."""
    rows = await conn.fetch(
        "SELECT * FROM cases WHERE case_id = ANY($1::text[]) ORDER BY case_id FOR UPDATE",
        sorted(set(case_ids)),
    )
    return [case_of(r) for r in rows]


async def known_case_ids(conn: Connection, case_ids: list[str]) -> set[str]:
    """Which of ``case_ids`` dispatch already has."""
    rows = await conn.fetch("SELECT case_id FROM cases WHERE case_id = ANY($1::text[])", case_ids)
    return {r["case_id"] for r in rows}


INSERT_CASE_SQL = "INSERT INTO cases ({}) VALUES ({})".format(
    ", ".join(CASE_COLUMNS), ", ".join(f"${i}" for i in range(1, len(CASE_COLUMNS) + 1))
)


_case_values = operator.attrgetter(*CASE_COLUMNS)  # a Case's values, in CASE_COLUMNS' order


async def insert_cases(conn: Connection, cases: Sequence[Case]) -> None:
    """New cases with one pipelined executemany."""
    if not cases:
        return
    await conn.executemany(INSERT_CASE_SQL, [_case_values(c) for c in cases])


# --- merged reports that came before their case -------------------------------------------------


async def add_early_merges(conn: Connection, merges: Sequence[CaseMerged]) -> None:
    """Keep merges (附议) that arrived before their case's ``cases.opened``: per case, the most
    supporters and households, and urgent if any was."""
    if not merges:
        return
    await conn.executemany(
        """INSERT INTO early_merges (case_id, supporters, households, urgent)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (case_id) DO UPDATE SET
             supporters = GREATEST(early_merges.supporters, EXCLUDED.supporters),
             households = GREATEST(early_merges.households, EXCLUDED.households),
             urgent = early_merges.urgent OR EXCLUDED.urgent""",
        [(m.case_id, m.supporter_count, m.households_affected, m.urgent) for m in merges],
    )


async def take_early_merges(conn: Connection, case_ids: list[str]) -> dict[str, EarlyMerge]:
    """Remove and return the early merges recorded for any of ``case_ids``."""
    rows = await conn.fetch(
        "DELETE FROM early_merges WHERE case_id = ANY($1::text[]) RETURNING *", case_ids
    )
    return {r["case_id"]: EarlyMerge(r["supporters"], r["households"], r["urgent"]) for r in rows}


# --- due deadlines (the sweepers) -----------------------------------------------------------------
# Each query claims rows with FOR UPDATE SKIP LOCKED (another replica's claimed rows are skipped)
# and its WHERE clause repeats the predicate of a partial index, so a sweep over a million open
# cases reads only the few rows that are due.


RESPOND_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred') AND respond_by <= $1
    ORDER BY respond_by LIMIT $2
    FOR UPDATE SKIP LOCKED"""

RESOLVE_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted',
                    'extension_requested')
      AND resolve_missed_at IS NULL AND paused_at IS NULL AND resolve_by <= $1
    ORDER BY resolve_by LIMIT $2
    FOR UPDATE SKIP LOCKED"""

PAUSES_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('deliberating', 'suspended', 'extension_requested') AND paused_until <= $1
    ORDER BY paused_until LIMIT $2
    FOR UPDATE SKIP LOCKED"""

VERIFY_DUE_SQL = """SELECT * FROM cases
    WHERE state = 'verifying' AND verify_missed_at IS NULL AND verify_by <= $1
    ORDER BY verify_by LIMIT $2
    FOR UPDATE SKIP LOCKED"""


# A stage's warning (黄牌) is due when its time has come and its deadline has not (at the deadline
# the deadline sweeps give the red card instead).
RESPOND_WARN_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred')
      AND respond_warn_at IS NOT NULL AND respond_warn_at <= $1 AND respond_by > $1
    ORDER BY respond_warn_at LIMIT $2
    FOR UPDATE SKIP LOCKED"""

RESOLVE_WARN_DUE_SQL = """SELECT * FROM cases
    WHERE state IN ('dispatched', 'escalated', 'returned', 'transferred', 'accepted',
                    'extension_requested')
      AND resolve_missed_at IS NULL AND paused_at IS NULL
      AND resolve_warn_at IS NOT NULL AND resolve_warn_at <= $1 AND resolve_by > $1
    ORDER BY resolve_warn_at LIMIT $2
    FOR UPDATE SKIP LOCKED"""


VERIFY_WARN_DUE_SQL = """SELECT * FROM cases
    WHERE state = 'verifying' AND verify_missed_at IS NULL
      AND verify_warn_at IS NOT NULL AND verify_warn_at <= $1 AND verify_by > $1
    ORDER BY verify_warn_at LIMIT $2
    FOR UPDATE SKIP LOCKED"""

WARN_DUE_SQL: dict[Stage, str] = {
    "respond": RESPOND_WARN_DUE_SQL,
    "resolve": RESOLVE_WARN_DUE_SQL,
    "verify": VERIFY_WARN_DUE_SQL,
}


async def due_for_warning(conn: Connection, stage: Stage, now: datetime, limit: int) -> list[Case]:
    return [case_of(r) for r in await conn.fetch(WARN_DUE_SQL[stage], now, limit)]


async def due_for_response(conn: Connection, now: datetime, limit: int) -> list[Case]:
    return [case_of(r) for r in await conn.fetch(RESPOND_DUE_SQL, now, limit)]


async def due_for_resolution(conn: Connection, now: datetime, limit: int) -> list[Case]:
    return [case_of(r) for r in await conn.fetch(RESOLVE_DUE_SQL, now, limit)]


async def due_for_verification(conn: Connection, now: datetime, limit: int) -> list[Case]:
    return [case_of(r) for r in await conn.fetch(VERIFY_DUE_SQL, now, limit)]


async def pauses_due(conn: Connection, now: datetime, limit: int) -> list[Case]:
    """Pauses that end by themselves now (``states.PAUSE_ENDS``)."""
    return [case_of(r) for r in await conn.fetch(PAUSES_DUE_SQL, now, limit)]


# --- a handler's work (the handler API) ----------------------------------------------------------
# Each query reads open cases through a partial index (cases_handler_open, cases_unit_open).


async def work_of_handler(conn: Connection, handler_id: str, unit: str) -> list[Case]:
    """The open cases of ``handler_id``, those of ``unit`` that nobody accepted yet, the
    extension requests ``unit`` decides (缓办/延期) and the resolutions it verifies (核查)."""
    rows = await conn.fetch(
        """SELECT * FROM cases WHERE state <> 'resolved'
             AND (handler_id = $1 OR (unit = $2 AND state = ANY($3::text[]))
                  OR (state = 'extension_requested' AND extension_approver = $2)
                  OR (state = 'verifying' AND verifier_unit = $2))""",
        handler_id,
        unit,
        list(AWAITING),
    )
    return [case_of(r) for r in rows]


async def work_of_volunteer(
    conn: Connection, handler_id: str, community: str, units: list[str]
) -> list[Case]:
    """The open cases a party volunteer took, and those they may take (接单): unaccepted grid-
    and community-tier cases of their community (``units``: the community's ``area_units``)."""
    rows = await conn.fetch(
        """SELECT * FROM cases WHERE state <> 'resolved'
             AND (handler_id = $1
                  OR (unit = ANY($3::text[]) AND community = $2
                      AND tier = ANY($4::text[]) AND state = ANY($5::text[])))""",
        handler_id,
        community,
        units,
        list(VOLUNTEER_TIERS),
        list(AWAITING),
    )
    return [case_of(r) for r in rows]


async def open_cases_of_units(conn: Connection, units: list[str]) -> list[Case]:
    """Every open case assigned to one of ``units`` (the command centre's area)."""
    rows = await conn.fetch(
        "SELECT * FROM cases WHERE state <> 'resolved' AND unit = ANY($1::text[])", units
    )
    return [case_of(r) for r in rows]


# --- the triage queue (人工分拨) ----------------------------------------------------------------


async def add_triage_entries(conn: Connection, entries: Sequence[TriageEntry]) -> None:
    """Cases entering the queue (their ``cases`` rows written before), one executemany."""
    if not entries:
        return
    await conn.executemany(
        """INSERT INTO triage (case_id, since, reasons, confidence, suggestions, moderation,
                               source, title, description, returned_by, return_note)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [
            (
                e.case_id,
                e.since,
                list(e.reasons),
                e.confidence,
                _suggestions(e),
                list(e.moderation),
                e.source,
                e.title,
                e.description,
                e.returned_by,
                e.return_note,
            )
            for e in entries
        ],
    )


def _suggestions(e: TriageEntry) -> list[dict[str, object]]:
    return [{"category": s.category, "probability": s.probability} for s in e.suggestions]


async def add_case_texts(conn: Connection, texts: Sequence[TriageEntry]) -> None:
    """The text of each case opened (as intake published it) and its classifier's suggestions:
    what the command centre reads if a unit returns the case (``returns.py``)."""
    if not texts:
        return
    await conn.executemany(
        """INSERT INTO case_texts (case_id, source, title, description, confidence, suggestions,
                                   moderation)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (case_id) DO NOTHING""",
        [
            (
                e.case_id,
                e.source,
                e.title,
                e.description,
                e.confidence,
                _suggestions(e),
                list(e.moderation),
            )
            for e in texts
        ],
    )


async def case_text(conn: Connection, case_id: str) -> dict[str, Any] | None:
    """A case's text as its opening kept it (its suggestions as ``Suggestion``s)."""
    row = await conn.fetchrow("SELECT * FROM case_texts WHERE case_id = $1", case_id)
    if row is None:
        return None
    return {**dict(row), "suggestions": _suggestions_of(row["suggestions"])}


def _suggestions_of(raw: object) -> tuple[Suggestion, ...]:
    """Suggestions as stored (jsonb ``[{"category", "probability"}]``), best first."""
    rows = raw if isinstance(raw, list) else []
    return tuple(Suggestion(s["category"], s["probability"]) for s in rows)


def _triage_entry(row: asyncpg.Record) -> TriageEntry:
    return TriageEntry(
        case_id=row["case_id"],
        since=row["since"],
        reasons=tuple(row["reasons"]),
        confidence=row["confidence"],
        suggestions=_suggestions_of(row["suggestions"]),
        moderation=tuple(row["moderation"]),
        source=row["source"],
        title=row["title"],
        description=row["description"],
        returned_by=row["returned_by"],
        return_note=row["return_note"],
    )


async def triage_queue(
    conn: Connection, units: list[str], limit: int, offset: int
) -> tuple[int, list[tuple[Case, TriageEntry]]]:
    """The cases awaiting triage held by one of ``units`` (the command centre's area), oldest
    first: how many, and one page of them."""
    total = await conn.fetchval(
        "SELECT count(*) FROM cases WHERE state = 'triage' AND unit = ANY($1::text[])", units
    )
    rows = await conn.fetch(
        """SELECT c.*, t.since, t.reasons, t.confidence, t.suggestions, t.moderation, t.source,
                  t.title, t.description, t.returned_by, t.return_note
           FROM cases c JOIN triage t USING (case_id)
           WHERE c.state = 'triage' AND c.unit = ANY($1::text[])
           ORDER BY t.since, t.case_id LIMIT $2 OFFSET $3""",
        units,
        limit,
        offset,
    )
    return int(total), [(case_of(r), _triage_entry(r)) for r in rows]


async def triage_entry(conn: Connection, case_id: str) -> TriageEntry | None:
    row = await conn.fetchrow("SELECT * FROM triage WHERE case_id = $1", case_id)
    return None if row is None else _triage_entry(row)


async def remove_triage_entry(conn: Connection, case_id: str) -> None:
    """The case left the queue (its decision is in the timeline)."""
    await conn.execute("DELETE FROM triage WHERE case_id = $1", case_id)


# --- what became of each handler action ----------------------------------------------------------


async def record_outcomes(
    conn: Connection, outcomes: Sequence[tuple[HandlerAction, Refusal | None]]
) -> None:
    """Actions applied (refused None) or refused, in their transaction (one executemany)."""
    await conn.executemany(
        """INSERT INTO action_outcomes
               (action_id, case_id, handler_id, action, at, outcome, field, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (action_id) DO NOTHING""",
        [
            (
                a.action_id,
                a.case_id,
                a.handler_id,
                a.action,
                a.at,
                "applied" if refused is None else refused.kind,
                None if refused is None else refused.field,
                None if refused is None else refused.reason,
            )
            for a, refused in outcomes
        ],
    )


async def action_outcome(conn: Connection, action_id: str) -> ActionOutcome | None:
    row = await conn.fetchrow("SELECT * FROM action_outcomes WHERE action_id = $1", action_id)
    if row is None:
        return None
    refused = None
    if row["outcome"] != "applied":
        refused = Refusal(row["reason"] or "", row["outcome"], row["field"])
    return ActionOutcome(
        row["action_id"], row["case_id"], row["handler_id"], row["action"], row["at"], refused
    )


# --- timeline ------------------------------------------------------------------------------------


async def timeline(conn: Connection, case_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM timeline WHERE case_id = $1 ORDER BY id", case_id))


# --- the registry copy ---------------------------------------------------------------------------


async def handler_loads(conn: Connection, unit: str) -> list[HandlerLoad]:
    """Every handler of ``unit`` with their number of open cases."""
    return (await handler_loads_many(conn, [unit]))[unit]


async def departments_of(conn: Connection, parents: list[str | None]) -> list[Dept]:
    rows = await conn.fetch(
        "SELECT code, parent, categories FROM departments WHERE parent = ANY($1::text[])",
        [p for p in parents if p],
    )
    return [Dept(r["code"], r["parent"], tuple(r["categories"])) for r in rows]


async def actor(conn: Connection, handler_id: str) -> Actor | None:
    """The registry's handler, or the command centre of a known unit
    (``states.command_centre_actor``)."""
    return (await actors(conn, [handler_id])).get(handler_id)


async def actors(conn: Connection, handler_ids: Iterable[str]) -> dict[str, Actor]:
    """``actor`` of each of ``handler_ids`` that is one (two queries at most)."""
    ids = sorted(set(handler_ids))
    rows = await conn.fetch("SELECT id, unit, role FROM handlers WHERE id = ANY($1::text[])", ids)
    out = {r["id"]: Actor(r["id"], r["unit"], r["role"]) for r in rows}
    centres = {h: u for h in ids if h not in out and (u := command_centre_unit(h)) is not None}
    if centres:
        known = await conn.fetch(
            "SELECT code FROM units WHERE code = ANY($1::text[])", sorted(set(centres.values()))
        )
        codes = {r["code"] for r in known}
        out.update({h: Actor(h, u, COMMAND_CENTRE) for h, u in centres.items() if u in codes})
    return out


async def area_units(conn: Connection, code: str) -> list[str]:
    """``code``, every unit below it, and the departments of all of them: the units whose cases
    a holder of ``code`` reaches (the converse of ``shared.registry.store.reach_codes``). A
    building or grid served by another community (插花地) is below that community, not below
    its administrative parent. (One equality, the unit's serving parent, so that each level is
    a hash join: the same condition as an ``OR`` of the two was a nested loop over every pair
    of units, 30-60 s for a district of 26,000.)"""
    rows = await conn.fetch(
        """WITH RECURSIVE down(code, depth) AS (
               SELECT code, 0 FROM units WHERE code = $1
               UNION ALL
               SELECT u.code, down.depth + 1
               FROM units u JOIN down ON coalesce(u.served_by, u.parent) = down.code
               WHERE down.depth < 8)
           SELECT code FROM down
           UNION SELECT d.code FROM departments d JOIN down ON d.parent = down.code""",
        code,
    )
    return sorted({code, *(r["code"] for r in rows)})


async def target_unit(conn: Connection, code: str) -> TargetUnit | None:
    row = await conn.fetchrow("SELECT code, level FROM units WHERE code = $1", code)
    if row:
        return TargetUnit(row["code"], level=row["level"])
    row = await conn.fetchrow(
        """SELECT d.code, coalesce(u.level, 'unknown') AS parent_level
           FROM departments d LEFT JOIN units u ON u.code = d.parent WHERE d.code = $1""",
        code,
    )
    return TargetUnit(row["code"], department_of=row["parent_level"]) if row else None


# --- set-based reads and writes of the sweepers --------------------------------------------------
# A sweep handles its due cases with a few statements instead of a few per case: the handler loads
# of every unit involved in one query, the row changes and the timeline steps with executemany
# (asyncpg pipelines it: one round trip for the batch).

HANDLER_LOADS_SQL = """SELECT h.unit, h.id, h.role, h.on_duty,
          (SELECT count(*) FROM cases c
           WHERE c.handler_id = h.id AND c.state <> 'resolved') AS open_cases
   FROM handlers h WHERE h.unit = ANY($1::text[]) ORDER BY h.unit, h.id"""


async def handler_loads_many(
    conn: Connection, units: Iterable[str]
) -> dict[str, list[HandlerLoad]]:
    """Every handler of each of ``units`` with their number of open cases (a unit without
    handlers maps to an empty list)."""
    wanted = sorted(set(units))
    out: dict[str, list[HandlerLoad]] = {u: [] for u in wanted}
    if not wanted:
        return out
    for r in await conn.fetch(HANDLER_LOADS_SQL, wanted):
        out[r["unit"]].append(HandlerLoad(r["id"], r["role"], r["on_duty"], r["open_cases"]))
    return out


# The SQL type of every column a CaseChange may set (bulk.update_rows binds each as an array;
# tests/dispatch/test_store_types.py checks them against the migrated table)
CHANGE_TYPES: dict[str, str] = {
    "category": "text",
    "start_tier": "text",
    "state": "text",
    "tier": "text",
    "unit": "text",
    "handler_id": "text",
    "attempt": "int",
    "tier_reasons": "text[]",
    "respond_within_s": "float8",
    "dispatched_at": "timestamptz",
    "respond_by": "timestamptz",
    "resolve_by": "timestamptz",
    "resolve_missed_at": "timestamptz",
    "accepted_at": "timestamptz",
    "resolved_at": "timestamptz",
    "resolved_tier": "text",
    "resolved_unit": "text",
    "paused_at": "timestamptz",
    "paused_until": "timestamptz",
    "respond_warn_at": "timestamptz",
    "resolve_warn_at": "timestamptz",
    "households": "int",
    "supporters": "int",
    "urgent": "bool",
    "reopen_count": "int",
    "supervised": "bool",
    "supervisor_unit": "text",
    "excluded_units": "text[]",
    "extension_to": "timestamptz",
    "extension_requested_at": "timestamptz",
    "extension_approver": "text",
    "extension_reason": "text",
    "extensions": "int",
    "verifier_unit": "text",
    "verify_by": "timestamptz",
    "verify_warn_at": "timestamptz",
    "verify_missed_at": "timestamptz",
}
assert set(CHANGE_TYPES) == set(CHANGE_COLUMNS)


async def update_cases(conn: Connection, changes: Sequence[tuple[str, CaseChange]]) -> None:
    """Changes of cases (case_id, change), in order (a case's later change wins where both set
    a column): one statement per set of columns (``bulk.update_rows``)."""
    merged: dict[str, CaseChange] = {}
    for case_id, change in changes:
        before = merged.get(case_id)
        merged[case_id] = change if before is None else before | change
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for case_id, change in merged.items():
        columns = change.columns()
        groups.setdefault(tuple(columns), []).append((case_id, *columns.values()))
    for cols, rows in groups.items():
        await bulk.update_rows(
            conn,
            "cases",
            ("case_id", "text"),
            [(c, CHANGE_TYPES[c]) for c in cols],
            rows,
            touch="updated_at",
        )


TIMELINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", "text"),
    ("at", "timestamptz"),
    ("event", "text"),
    ("from_state", "text"),
    ("to_state", "text"),
    ("tier", "text"),
    ("unit", "text"),
    ("handler_id", "text"),
    ("detail", "jsonb"),
)


async def add_timeline_steps(conn: Connection, steps: Sequence[Step]) -> None:
    """Timeline steps, in order, with one statement (the one writer of the timeline)."""
    await bulk.insert_rows(
        conn,
        "timeline",
        TIMELINE_COLUMNS,
        [
            (
                s.case_id,
                s.at,
                s.event,
                s.from_state,
                s.to_state,
                s.tier,
                s.unit,
                s.handler_id,
                s.detail,
            )
            for s in steps
        ],
    )
