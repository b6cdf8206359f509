"""Feedback's SQL: the case read model, reporters, rating tokens, ratings and metric facts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import asyncpg

from shared.runtime.db import Connection

from .formulas import (
    AcceptRow,
    AgencyRow,
    CardRow,
    CaseFacts,
    CouncilRow,
    DispatchRow,
    MetricInputs,
    OrderStepRow,
    RatingRow,
    ResolutionRow,
    ReturnRow,
    SupervisionRow,
)
from .notices import Milestone
from .periods import Period
from .projection import FACTS

LEVEL_COLUMNS = {
    "district": "district",
    "street": "street",
    "community": "community",
    "grid": "grid",
    "building": "building",
}

# --- the case row -------------------------------------------------------------------------------


async def lock_cases(conn: Connection, case_ids: Iterable[str], *, create: bool) -> None:
    """Lock the rows of ``case_ids`` for the transaction, in case_id order (``create``: a
    placeholder first for each case not known yet, inserted in that order too), so that two
    subscriptions whose batches share cases cannot deadlock: each takes its cases' locks in
    the same order before it touches anything of them."""
    ids = sorted(set(case_ids))
    if not ids:
        return
    if create:
        await conn.execute(
            "INSERT INTO cases (case_id) SELECT k FROM unnest($1::text[]) k ORDER BY k "
            "ON CONFLICT (case_id) DO NOTHING",
            ids,
        )
    await conn.execute(
        "SELECT 1 FROM cases WHERE case_id = ANY($1::text[]) ORDER BY case_id FOR UPDATE", ids
    )


_DECIDED = ("category", "category_name", "default_tier")  # a reclassification's, once one came


def _opened_set(column: str) -> str:
    if column in _DECIDED:
        return (
            f"{column} = CASE WHEN cases.reclassified_at IS NULL THEN EXCLUDED.{column} "
            f"ELSE cases.{column} END"
        )
    return f"{column} = EXCLUDED.{column}"


async def upsert_opened(conn: Connection, **row: Any) -> None:
    """Fill in what cases.opened says (over a placeholder, if one exists; its category not over
    a reclassification's)."""
    cols = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    sets = ", ".join(_opened_set(c) for c in row if c != "case_id")
    await conn.execute(
        f"INSERT INTO cases ({cols}) VALUES ({params}) ON CONFLICT (case_id) DO UPDATE SET {sets}",
        *row.values(),
    )


async def reclassify(
    conn: Connection,
    case_id: str,
    category: str,
    category_name: str,
    default_tier: str | None,
    at: datetime,
) -> bool:
    """The command centre's category (``cases.reclassified``) and its default tier (kept when
    the event has none), unless a later one came first; False: it did not apply. The case row
    exists (``lock_cases``)."""
    done = await conn.fetchval(
        """UPDATE cases SET category = $2, category_name = $3,
                  default_tier = COALESCE($4, default_tier), reclassified_at = $5
           WHERE case_id = $1 AND (reclassified_at IS NULL OR reclassified_at < $5)
           RETURNING true""",
        case_id,
        category,
        category_name,
        default_tier,
        at,
    )
    return bool(done)


async def update_case(conn: Connection, case_id: str, **changes: Any) -> None:
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
    await conn.execute(f"UPDATE cases SET {sets} WHERE case_id = $1", case_id, *changes.values())


async def get_case(conn: Connection, case_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM cases WHERE case_id = $1" + (" FOR UPDATE" if lock else ""), case_id
    )
    return row


# --- reporters and tokens -----------------------------------------------------------------------


async def add_reporter(conn: Connection, case_id: str, ref: str, channel: str) -> None:
    await conn.execute(
        "INSERT INTO reporters (case_id, reporter_ref, channel) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        case_id,
        ref,
        channel,
    )


async def reporters_to_ask(conn: Connection, rounds: list[tuple[str, int]]) -> list[asyncpg.Record]:
    """The reporters of each (case_id, round) without a rating request for that round yet,
    case by case."""
    return list(
        await conn.fetch(
            """SELECT r.case_id, r.reporter_ref, r.channel
               FROM unnest($1::text[], $2::int[]) AS q(case_id, round)
               JOIN reporters r ON r.case_id = q.case_id
               WHERE NOT EXISTS (
                   SELECT 1 FROM feedback_requests f
                   WHERE f.case_id = r.case_id AND f.reporter_ref = r.reporter_ref
                     AND f.round = q.round)
               ORDER BY r.case_id, r.reporter_ref""",
            [c for c, _ in rounds],
            [n for _, n in rounds],
        )
    )


async def insert_requests(conn: Connection, requests: list[tuple[Any, ...]]) -> None:
    """Rating requests, each (token_hash, case_id, reporter_ref, round, requested_at,
    expires_at)."""
    await conn.executemany(
        "INSERT INTO feedback_requests (token_hash, case_id, reporter_ref, round, requested_at, "
        "expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        requests,
    )


async def start_rounds(conn: Connection, rounds: list[tuple[str, str, int, datetime]]) -> None:
    """New rating rounds, each (case_id, state, round, rating_window_ends)."""
    await conn.executemany(
        "UPDATE cases SET state = $2, round = $3, rating_window_ends = $4 WHERE case_id = $1",
        rounds,
    )


async def find_request(
    conn: Connection, token_hash: str, *, lock: bool = True
) -> asyncpg.Record | None:
    return (await find_requests(conn, [token_hash], lock=lock)).get(token_hash)


async def find_requests(
    conn: Connection, token_hashes: Iterable[str], *, lock: bool = True
) -> dict[str, asyncpg.Record]:
    """The requests of ``token_hashes`` that exist, by hash (``lock``: locked, in hash
    order)."""
    rows = await conn.fetch(
        "SELECT * FROM feedback_requests WHERE token_hash = ANY($1::text[]) ORDER BY token_hash"
        + (" FOR UPDATE" if lock else ""),
        sorted(set(token_hashes)),
    )
    return {r["token_hash"]: r for r in rows}


async def use_requests(conn: Connection, used: list[tuple[str, datetime]]) -> None:
    """Requests used, each (token_hash, when)."""
    await conn.executemany("UPDATE feedback_requests SET used_at = $2 WHERE token_hash = $1", used)


async def insert_ratings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    await _insert(conn, "ratings", rows)


async def get_cases(conn: Connection, case_ids: Iterable[str]) -> dict[str, asyncpg.Record]:
    """The rows of the cases of ``case_ids`` that exist, by id."""
    rows = await conn.fetch(
        "SELECT * FROM cases WHERE case_id = ANY($1::text[])", sorted(set(case_ids))
    )
    return {r["case_id"]: r for r in rows}


# --- milestones and notices (cases.notified) ----------------------------------------------------


async def add_milestones(conn: Connection, ms: list[Milestone]) -> None:
    """The milestones, each unless its case has it already (the same key: a redelivered
    event)."""
    await conn.executemany(
        """INSERT INTO milestones (case_id, key, kind, at, text, deadline)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id, key) DO NOTHING""",
        [(m.case_id, m.key, m.kind, m.at, m.text, m.deadline) for m in ms],
    )


async def notices_due(conn: Connection, case_ids: list[str]) -> list[asyncpg.Record]:
    """Each milestone of the cases with each of its reporters not told of it yet, case by case
    in the order the milestones happened."""
    return list(
        await conn.fetch(
            """SELECT m.case_id, m.key, m.kind, m.at, m.text, m.deadline, r.reporter_ref,
                      r.channel
               FROM milestones m JOIN reporters r ON r.case_id = m.case_id
               WHERE m.case_id = ANY($1::text[]) AND NOT EXISTS (
                   SELECT 1 FROM notices n
                   WHERE n.case_id = m.case_id AND n.milestone = m.key
                     AND n.reporter_ref = r.reporter_ref)
               ORDER BY m.case_id, m.at, m.key, r.reporter_ref""",
            case_ids,
        )
    )


async def add_notices(
    conn: Connection, notices: list[tuple[str, str, str, str]], at: datetime
) -> set[str]:
    """Record the notices, each (notice_id, case_id, milestone, reporter_ref); the ids of those
    not made before."""
    if not notices:
        return set()
    ids, cases, milestones, refs = (list(col) for col in zip(*notices, strict=True))
    rows = await conn.fetch(
        """INSERT INTO notices (notice_id, case_id, milestone, reporter_ref, notified_at)
           SELECT n, c, m, r, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                  AS t(n, c, m, r)
           ON CONFLICT DO NOTHING RETURNING notice_id""",
        ids,
        cases,
        milestones,
        refs,
        at,
    )
    return {r["notice_id"] for r in rows}


# --- facts from case events ---------------------------------------------------------------------


# the tables of projection.FACTS, and feedback's own decisions
FACT_TABLES = (*(f.table for f in FACTS), "reopens")


async def insert_fact(conn: Connection, table: str, **row: Any) -> None:
    await insert_facts(conn, table, [row])


async def insert_facts(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """Rows of one fact table, each with the same columns as the first."""
    if table not in FACT_TABLES:
        raise ValueError(f"not a fact table: {table}")
    await _insert(conn, table, rows)


async def _insert(conn: Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    cols = ", ".join(names)
    params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    await conn.executemany(
        f"INSERT INTO {table} ({cols}) VALUES ({params})", [[r[n] for n in names] for r in rows]
    )


# --- durable timer ------------------------------------------------------------------------------


async def claim_unrated(conn: Connection, now: datetime, limit: int) -> list[str]:
    """Cases whose rating window has ended without a decisive rating, locked for this sweep."""
    rows = await conn.fetch(
        """SELECT case_id FROM cases
           WHERE state = 'resolved' AND rating_window_ends <= $1
           ORDER BY rating_window_ends LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        now,
        limit,
    )
    return [r["case_id"] for r in rows]


# --- units and metrics --------------------------------------------------------------------------


# 插花地: the views of a unit's cases. ``served``: the cases it answers for, its official
# figures (by location: the serving chain); ``served_elsewhere``: the cases administratively in
# it that a unit of another chain serves (shown apart, never in its official figures);
# ``served_for_others``: those of its official cases that are administratively another unit's.
ScopeView = Literal["served", "served_elsewhere", "served_for_others"]
# the levels a case has an administrative code of (a building is the same in both chains)
ADMIN_LEVELS = ("district", "street", "community", "grid")


@dataclass(frozen=True)
class Scope:
    """The cases a unit answers for: by location (a unit of the tree, rolled up through the
    case's district/street/community/grid codes: the chain that serves the place) or, for a
    department, by dispatch; ``view`` another set of them (``ScopeView``)."""

    code: str
    name: str
    kind: str  # unit level (district/street/community/grid/building) or "department"
    view: ScopeView = "served"

    def sql(self, param: str = "$1") -> str:
        if self.kind == "department":
            return f"SELECT case_id FROM dispatches WHERE unit = {param}"
        col = LEVEL_COLUMNS[self.kind]
        if self.view == "served_elsewhere":
            return (
                f"SELECT case_id FROM cases WHERE admin_{col} = {param} "
                f"AND {col} IS DISTINCT FROM {param}"
            )
        if self.view == "served_for_others":
            return (
                f"SELECT case_id FROM cases WHERE {col} = {param} "
                f"AND admin_{col} IS NOT NULL AND admin_{col} <> {param}"
            )
        return f"SELECT case_id FROM cases WHERE {col} = {param}"

    def order_units_sql(self, param: str = "$1") -> str:
        """The units whose work orders (派单/协办) the scope counts: a department its own; a unit
        of the tree itself, every unit below it (by the registry's parents) and their
        departments (物业 and utilities included: departments of a community or district)."""
        if self.kind == "department":
            return f"SELECT {param}::text"
        return (
            f"WITH RECURSIVE below(code) AS (SELECT {param}::text UNION "
            "SELECT u.code FROM units u JOIN below ON u.parent = below.code) "
            "SELECT code FROM below UNION "
            "SELECT d.code FROM departments d JOIN below ON d.parent = below.code"
        )

    def seen_as(self, view: ScopeView) -> Scope | None:
        """The same unit's ``view`` (None: a department or a building has no other view)."""
        if self.kind not in ADMIN_LEVELS:
            return None
        return replace(self, view=view)


async def communities_of(
    conn: Connection, scope: Scope, column: Literal["community", "admin_community"]
) -> list[dict[str, str | None]]:
    """The distinct communities (serving, or administrative) of the scope's cases, by code, with
    their names (None where the registry has none)."""
    rows = await conn.fetch(
        f"""SELECT DISTINCT c.{column} AS code, u.name FROM cases c
            LEFT JOIN units u ON u.code = c.{column}
            WHERE c.case_id IN ({scope.sql()}) AND c.{column} IS NOT NULL ORDER BY 1""",
        scope.code,
    )
    return [{"code": r["code"], "name": r["name"]} for r in rows]


async def any_case(conn: Connection, scope: Scope) -> bool:
    """Whether the scope holds any case at all (any time)."""
    return bool(await conn.fetchval(f"SELECT EXISTS ({scope.sql()})", scope.code))


async def dispatched_units(conn: Connection, case_id: str) -> list[str]:
    """Every unit the case was dispatched to."""
    rows = await conn.fetch("SELECT DISTINCT unit FROM dispatches WHERE case_id = $1", case_id)
    return [r["unit"] for r in rows]


async def scope_of(conn: Connection, code: str) -> Scope | None:
    row = await conn.fetchrow("SELECT code, name, level FROM units WHERE code = $1", code)
    if row is not None and row["level"] in LEVEL_COLUMNS:
        return Scope(row["code"], row["name"], row["level"])
    row = await conn.fetchrow("SELECT code, name FROM departments WHERE code = $1", code)
    if row is not None:
        return Scope(row["code"], row["name"], "department")
    return None


async def children(conn: Connection, code: str) -> list[Scope]:
    """The units directly below ``code`` (the communities of a street, the grids of a
    community...), buildings excepted."""
    rows = await conn.fetch(
        "SELECT code, name, level FROM units WHERE parent = $1 AND level <> 'building' "
        "ORDER BY code",
        code,
    )
    return [Scope(r["code"], r["name"], r["level"]) for r in rows]


async def metric_inputs(conn: Connection, scope: Scope, period: Period) -> MetricInputs:
    """The rows of ``formulas`` for one unit and one period (see that module for which rows)."""
    s, a, b = scope.sql(), period.start, period.end
    opened = await conn.fetch(
        f"""SELECT case_id, category, opened_at FROM cases
            WHERE case_id IN ({s}) AND opened_at >= $2 AND opened_at < $3""",
        scope.code,
        a,
        b,
    )
    dispatches = await conn.fetch(
        f"""SELECT case_id, dispatched_at, attempt FROM dispatches
            WHERE case_id IN ({s}) AND dispatched_at >= $2 AND dispatched_at < $3""",
        scope.code,
        a,
        b,
    )
    accepts = await conn.fetch(
        "SELECT case_id, accepted_at, on_time FROM accepts WHERE case_id = ANY($1::text[])",
        list({d["case_id"] for d in dispatches}),
    )
    returns = await conn.fetch(  # 退单 of those dispatches, whenever
        "SELECT case_id, attempt FROM returns WHERE case_id = ANY($1::text[])",
        list({d["case_id"] for d in dispatches}),
    )
    resolutions = await conn.fetch(
        f"""SELECT r.case_id, r.resolved_at, r.tier, r.on_time,
                   EXISTS (SELECT 1 FROM send_backs sb WHERE sb.case_id = r.case_id
                           AND sb.resolved_at = r.resolved_at) AS withdrawn
            FROM resolutions r
            WHERE r.case_id IN ({s}) AND r.resolved_at >= $2 AND r.resolved_at < $3""",
        scope.code,
        a,
        b,
    )
    ratings = await conn.fetch(
        f"""SELECT resolved, satisfaction FROM ratings
            WHERE case_id IN ({s}) AND at >= $2 AND at < $3""",
        scope.code,
        a,
        b,
    )
    facts = await conn.fetch(
        """SELECT c.case_id, c.category, c.opened_at, c.default_tier,
                  COALESCE((SELECT d.tier FROM dispatches d WHERE d.case_id = c.case_id
                            ORDER BY d.attempt, d.dispatched_at LIMIT 1),
                           c.default_tier) AS start_tier,
                  EXISTS (SELECT 1 FROM escalations e WHERE e.case_id = c.case_id) AS escalated,
                  EXISTS (SELECT 1 FROM reopens r WHERE r.case_id = c.case_id) AS reopened
           FROM cases c WHERE c.case_id = ANY($1::text[])""",
        list({r["case_id"] for r in resolutions}),
    )
    cards = await conn.fetch(
        f"""SELECT case_id, stage, 'yellow' AS card FROM warnings
            WHERE case_id IN ({s}) AND warned_at >= $2 AND warned_at < $3
            UNION ALL
            SELECT case_id, deadline, 'red' FROM overdues
            WHERE case_id IN ({s}) AND at >= $2 AND at < $3 AND order_id IS NULL""",
        scope.code,
        a,
        b,
    )
    agency = await conn.fetch(
        f"""SELECT case_id, agency_mode, 'assigned' AS step FROM agent_assignments
            WHERE case_id IN ({s}) AND assigned_at >= $2 AND assigned_at < $3
            UNION ALL
            SELECT case_id, agency_mode, 'commissioned' FROM commissions
            WHERE case_id IN ({s}) AND recorded_at >= $2 AND recorded_at < $3
            UNION ALL
            SELECT case_id, agency_mode, 'relayed' FROM relays
            WHERE case_id IN ({s}) AND relayed_at >= $2 AND relayed_at < $3""",
        scope.code,
        a,
        b,
    )
    supervisions = await conn.fetch(
        f"""SELECT case_id, supervision FROM supervisions
            WHERE case_id IN ({s}) AND supervised_at >= $2 AND supervised_at < $3""",
        scope.code,
        a,
        b,
    )
    order_units = scope.order_units_sql()
    order_steps = await conn.fetch(
        f"""SELECT order_id, 'issued' AS step, NULL::boolean AS on_time FROM work_orders
            WHERE unit IN ({order_units}) AND issued_at >= $2 AND issued_at < $3
            UNION ALL
            SELECT order_id, state, on_time FROM order_updates
            WHERE unit IN ({order_units}) AND at >= $2 AND at < $3
            UNION ALL
            SELECT order_id, 'report_missed', NULL FROM overdues
            WHERE order_id IS NOT NULL AND unit IN ({order_units}) AND at >= $2 AND at < $3""",
        scope.code,
        a,
        b,
    )
    council_rows = await conn.fetch(
        f"""SELECT council_id, jsonb_array_length(measures) AS measures FROM council_decisions
            WHERE case_id IN ({s}) AND decided_at >= $2 AND decided_at < $3""",
        scope.code,
        a,
        b,
    )
    return MetricInputs(
        opened=[CaseFacts(r["case_id"], r["category"], r["opened_at"]) for r in opened],
        dispatches=[
            DispatchRow(r["case_id"], r["dispatched_at"], r["attempt"]) for r in dispatches
        ],
        accepts=[AcceptRow(r["case_id"], r["accepted_at"], r["on_time"]) for r in accepts],
        resolutions=[
            ResolutionRow(r["case_id"], r["resolved_at"], r["tier"], r["on_time"], r["withdrawn"])
            for r in resolutions
        ],
        ratings=[RatingRow(r["resolved"], r["satisfaction"]) for r in ratings],
        facts={r["case_id"]: CaseFacts(**dict(r)) for r in facts},
        cards=[CardRow(r["case_id"], r["stage"], r["card"]) for r in cards],
        supervisions=[SupervisionRow(r["case_id"], r["supervision"]) for r in supervisions],
        returns=[ReturnRow(r["case_id"], r["attempt"]) for r in returns],
        agency=[AgencyRow(r["case_id"], r["agency_mode"], r["step"]) for r in agency],
        orders=[OrderStepRow(r["order_id"], r["step"], r["on_time"]) for r in order_steps],
        councils=[CouncilRow(r["council_id"], r["measures"]) for r in council_rows],
    )


async def opened_categories(conn: Connection, scope: Scope, period: Period) -> dict[str, int]:
    rows = await conn.fetch(
        f"""SELECT COALESCE(category, 'unknown') AS category, count(*) AS n FROM cases
            WHERE case_id IN ({scope.sql()}) AND opened_at >= $2 AND opened_at < $3
            GROUP BY 1""",
        scope.code,
        period.start,
        period.end,
    )
    return {r["category"]: r["n"] for r in rows}


async def category_names(conn: Connection, codes: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        """SELECT DISTINCT ON (category) category, category_name FROM cases
           WHERE category = ANY($1::text[]) AND category_name IS NOT NULL
           ORDER BY category, opened_at DESC""",
        codes,
    )
    return {r["category"]: r["category_name"] for r in rows}


# --- the resident-facing view of one case -------------------------------------------------------


async def case_events(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """Every fact of the case as ``{at, event, ...}``, unordered, without personal data."""
    rows = await conn.fetch(
        """SELECT opened_at AS at, 'opened' AS event, NULL AS tier, NULL AS unit, NULL AS detail
               FROM cases WHERE case_id = $1 AND opened_at IS NOT NULL
           UNION ALL SELECT dispatched_at, 'dispatched', tier, unit, NULL
               FROM dispatches WHERE case_id = $1
           UNION ALL SELECT accepted_at, 'accepted', tier, unit, NULL
               FROM accepts WHERE case_id = $1
           UNION ALL SELECT at, 'escalated', to_tier, unit, from_tier
               FROM escalations WHERE case_id = $1
           UNION ALL SELECT resolved_at, 'resolved', tier, unit, NULL
               FROM resolutions WHERE case_id = $1
           UNION ALL SELECT verified_at, 'verified', tier, unit, NULL
               FROM verifications WHERE case_id = $1
           UNION ALL SELECT sent_back_at, 'sent_back', tier, unit, NULL
               FROM send_backs WHERE case_id = $1
           UNION ALL SELECT returned_at, 'returned', tier, unit, NULL
               FROM returns WHERE case_id = $1
           UNION ALL SELECT at, 'reopened', NULL, NULL, reason
               FROM reopens WHERE case_id = $1
           UNION ALL SELECT closed_at, 'closed', NULL, NULL, outcome
               FROM cases WHERE case_id = $1 AND closed_at IS NOT NULL""",
        case_id,
    )
    return [dict(r) for r in rows]
