"""The board's reads from dispatch's schema: the area's units, its open cases, its geometry."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any, Final

import asyncpg

from shared.runtime.db import Connection

from .. import store
from ..due import DueTimes, case_deadlines, due_at, due_times, missed, nearest_first
from ..planning import Policy
from .board import (
    RECENT,
    WARNINGS,
    ZERO,
    AreaUnit,
    BoardCase,
    Counted,
    Listed,
    Tally,
    tally_row,
)


async def area(conn: Connection, code: str) -> tuple[AreaUnit | None, list[AreaUnit]]:
    """The unit ``code`` (None when the registry lacks it) and every unit it reaches."""
    codes = await store.area_units(conn, code)
    rows = await conn.fetch(
        """SELECT code, name, level, parent FROM units WHERE code = ANY($1::text[])
           UNION ALL
           SELECT code, name, 'department', parent FROM departments
           WHERE code = ANY($1::text[])""",
        codes,
    )
    units = [AreaUnit(r["code"], r["name"], r["level"], r["parent"]) for r in rows]
    top = next((u for u in units if u.code == code), None)
    return top, units


def policy_key(policy: Policy, fraction: float) -> str:
    """What the due times depend on besides the row (the limits, the calendar, the scale, the
    taxonomy's SLAs, the due-soon fraction): kept times worked out with another are stale."""
    text = repr((policy.sla, policy.taxonomy, fraction))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def due_row(
    policy: Policy, fraction: float, row: asyncpg.Record
) -> tuple[DueTimes, datetime | None]:
    """A case row's due times and the deadline the board shows: the nearest running one, or
    when it was missed at the top tier (or its verification), else none."""
    case = store.case_of(row)
    deadlines = case_deadlines(policy, case)
    _, deadline, _ = nearest_first(case, deadlines)
    shown = deadline if deadlines or case.resolve_missed_at or case.verify_missed_at else None
    return due_times(missed(case), deadlines, fraction), shown


def board_case(policy: Policy, fraction: float, row: asyncpg.Record, now: datetime) -> BoardCase:
    """What the board needs of a case row, its due status at ``now`` worked out in Python (the
    reference the SQL is tested against; the board itself reads ``board_due``)."""
    case = store.case_of(row)
    times, deadline = due_row(policy, fraction, row)
    return BoardCase(
        case_id=case.case_id,
        category=case.category,
        state=case.state,
        tier=case.tier,
        unit=case.unit,
        street=case.street,
        community=case.community,
        grid=case.grid,
        building=case.building,
        due=due_at(times, now),
        deadline=deadline,
        changed_at=max(row["updated_at"], case.dispatched_at),
        urgent=case.urgent,
        supervised=case.supervised,
    )


# due.due_at in SQL, over board_due as d at the parameter {now}; a case not (yet) kept, opened
# while a board was read, is on track until the next board (its insert notifies one)
DUE_SQL: Final = """CASE WHEN coalesce(d.missed, false) OR d.late_at <= {now} THEN 'overdue'
     WHEN d.soon_at <= {now} THEN 'due_soon' ELSE 'on_track' END"""
_OPEN_OF: Final = """FROM cases c LEFT JOIN board_due d ON d.case_id = c.case_id
    WHERE c.state <> 'resolved' AND c.unit IN (SELECT unnest($1::text[]))"""
_STALE_SQL: Final = """SELECT c.case_id FROM cases c LEFT JOIN board_due d ON d.case_id = c.case_id
    WHERE c.state <> 'resolved' AND d.version IS DISTINCT FROM c.xmin::text || '/' || $1 {area}
    ORDER BY c.case_id"""
_KEEP_SQL: Final = """INSERT INTO board_due (case_id, version, missed, soon_at, late_at, deadline)
    SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::timestamptz[],
                         $5::timestamptz[], $6::timestamptz[])
    ON CONFLICT (case_id) DO UPDATE SET version = excluded.version, missed = excluded.missed,
        soon_at = excluded.soon_at, late_at = excluded.late_at, deadline = excluded.deadline"""
_FORGET_SQL: Final = """DELETE FROM board_due d WHERE NOT EXISTS
    (SELECT 1 FROM cases c WHERE c.case_id = d.case_id AND c.state <> 'resolved')"""


class BoardDue:
    """Each open case's due times in ``board_due`` (migration 022), worked out once per version
    of its row (``xmin``) and of the policy (``policy_key``), so that PostgreSQL counts a board.

    Working out a case's deadlines on the working calendar is most of what a board cost when
    Python counted it (100,000 open cases in a district: seconds); now only the cases changed
    since are worked out (``sync``, before each board; at start and once a minute for every
    open case, so that the first board after a restart finds them kept). The table outlives the
    process and is shared by the replicas (each writes the same times for the same version).
    """

    CHUNK: Final = 2000

    def __init__(self, policy: Policy, fraction: float) -> None:
        self.policy = policy
        self.fraction = fraction
        self.key = policy_key(policy, fraction)
        self._lock = asyncio.Lock()  # one sync at a time per process: no case worked out twice

    async def sync(self, conn: Connection, units: list[str] | None = None) -> int:
        """Work out the due times of the open cases (of those assigned to ``units``, else all)
        whose row changed since they were kept; returns how many."""
        async with self._lock:
            if units is None:
                stale = await conn.fetch(_STALE_SQL.format(area=""), self.key)
            else:
                area = "AND c.unit IN (SELECT unnest($2::text[]))"
                stale = await conn.fetch(_STALE_SQL.format(area=area), self.key, units)
            ids = [r["case_id"] for r in stale]
            for lo in range(0, len(ids), self.CHUNK):
                if lo:
                    await asyncio.sleep(0)  # let the consumers run: a district has 100,000
                rows = await conn.fetch(
                    "SELECT *, xmin::text AS version FROM cases "
                    "WHERE case_id = ANY($1::text[]) ORDER BY case_id",
                    ids[lo : lo + self.CHUNK],
                )
                cols: tuple[list[Any], ...] = ([], [], [], [], [], [])
                for row in rows:
                    times, deadline = due_row(self.policy, self.fraction, row)
                    for col, v in zip(
                        cols,
                        (
                            row["case_id"],
                            f"{row['version']}/{self.key}",
                            times.missed,
                            times.soon_at,
                            times.late_at,
                            deadline,
                        ),
                        strict=True,
                    ):
                        col.append(v)
                await conn.execute(_KEEP_SQL, *cols)
            return len(ids)

    async def forget(self, conn: Connection) -> str:
        """Delete the kept times of the cases no longer open."""
        return await conn.execute(_FORGET_SQL)


_TIER_COUNTS: Final = ",\n       ".join(
    f"count(*) FILTER (WHERE tier = '{t}') AS {t}"
    for t in ("grid", "community", "street", "district")
)
_PLACES: Final = ("street", "community", "grid", "building", "dept")


def count_sql(*, buildings: bool = True) -> str:
    """The counts of an area's open cases per unit (one row per grouping: the totals, then per
    street, community, grid, building unless not ``buildings``, and department that has it)."""
    sets = [p for p in _PLACES if buildings or p != "building"]
    return f"""WITH o AS (
    SELECT c.street, c.community, c.grid, c.building, c.tier,
           CASE WHEN c.unit = ANY($2::text[]) THEN c.unit END AS dept,
           {DUE_SQL.format(now="$3")} AS due
    {_OPEN_OF}
)
SELECT GROUPING({", ".join(sets)}) AS grouping, coalesce({", ".join(sets)}) AS code,
       count(*) AS open,
       count(*) FILTER (WHERE due = 'due_soon') AS due_soon,
       count(*) FILTER (WHERE due = 'overdue') AS overdue,
       {_TIER_COUNTS}
FROM o GROUP BY GROUPING SETS ((), {", ".join(f"({p})" for p in sets)})"""


async def count_open(
    conn: Connection,
    units: list[str],
    departments: list[str],
    now: datetime,
    *,
    buildings: bool = True,
) -> Counted:
    """The open cases assigned to ``units`` counted by PostgreSQL at each unit of their place
    and at the department of ``departments`` that has them (``board.count_cases`` in SQL: a
    registry's codes are unique across levels, so a case counts once at each)."""
    rows = await conn.fetch(count_sql(buildings=buildings), units, departments, now)
    counts: dict[str, Tally] = {}
    total = ZERO
    everything = (1 << (len(_PLACES) - (0 if buildings else 1))) - 1
    for r in rows:
        tally = tally_row(r["open"], r["due_soon"], r["overdue"], dict(r.items()))
        if r["grouping"] == everything:  # the empty grouping set: every column rolled up
            total = tally
        elif r["code"] is not None:  # not the cases without that level (a NULL group)
            counts[r["code"]] = tally
    return Counted(counts, total)


_LISTED_SQL: Final = f"""SELECT c.case_id, c.category, c.state, c.tier, c.unit, c.street,
       c.community, c.grid, c.building, c.urgent, c.supervised,
       greatest(c.updated_at, c.dispatched_at) AS changed_at, d.deadline,
       {DUE_SQL.format(now="$2")} AS due
    {_OPEN_OF}"""
_OVERDUE_SQL: Final = (
    f"SELECT * FROM ({_LISTED_SQL}) o WHERE due = 'overdue' "
    f'ORDER BY deadline NULLS LAST, case_id COLLATE "C" LIMIT {WARNINGS}'
)
_DUE_SOON_SQL: Final = (
    f"SELECT * FROM ({_LISTED_SQL}) o WHERE due = 'due_soon' "
    f'ORDER BY deadline NULLS LAST, case_id COLLATE "C" LIMIT {WARNINGS}'
)
_RECENT_SQL: Final = (
    f'SELECT * FROM ({_LISTED_SQL}) o ORDER BY changed_at DESC, case_id COLLATE "C" DESC '
    f"LIMIT {RECENT}"
)


def _listed(r: asyncpg.Record) -> BoardCase:
    return BoardCase(
        r["case_id"],
        r["category"],
        r["state"],
        r["tier"],
        r["unit"],
        r["street"],
        r["community"],
        r["grid"],
        r["building"],
        r["due"],
        r["deadline"],
        r["changed_at"],
        r["urgent"],
        r["supervised"],
    )


async def list_open(conn: Connection, units: list[str], now: datetime) -> Listed:
    """The cases the board lists (``board.list_cases`` in SQL; ids in code point order)."""
    out = []
    for sql in (_OVERDUE_SQL, _DUE_SOON_SQL, _RECENT_SQL):
        out.append([_listed(r) for r in await conn.fetch(sql, units, now)])
    return Listed(*out)


async def read_board(
    conn: Connection, keeper: BoardDue, unit: str, now: datetime, *, buildings: bool = True
) -> tuple[AreaUnit | None, list[AreaUnit], Counted, Listed]:
    """An area's units, its open cases counted and listed at ``now`` (their due times kept
    first), the counts and lists read in one snapshot."""
    top, units = await area(conn, unit)
    codes = [u.code for u in units]
    departments = [u.code for u in units if u.level == "department"]
    await keeper.sync(conn, codes)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        counted = await count_open(conn, codes, departments, now, buildings=buildings)
        listed = await list_open(conn, codes, now)
    return top, units, counted, listed


async def open_cases(
    conn: Connection, units: list[str], policy: Policy, now: datetime, fraction: float
) -> list[BoardCase]:
    """The open cases assigned to ``units``, with their due status at ``now`` worked out in
    Python (the reference of the SQL's counts and lists)."""
    rows = await conn.fetch(
        "SELECT * FROM cases WHERE state <> 'resolved' AND unit = ANY($1::text[])", units
    )
    return [board_case(policy, fraction, r, now) for r in rows]


async def geometry(conn: Connection, codes: list[str]) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the units of ``codes`` the registry gives a place: grids
    by their ``area`` (a polygon of [lon, lat] points), buildings and others by ``lon``/``lat``."""
    rows = await conn.fetch(
        """SELECT code, name, level, parent, area, lon, lat FROM units
           WHERE code = ANY($1::text[]) AND (area IS NOT NULL OR lon IS NOT NULL)
           ORDER BY code""",
        codes,
    )
    features = []
    for r in rows:
        props = {"code": r["code"], "name": r["name"], "level": r["level"], "parent": r["parent"]}
        ring = r["area"]
        if ring:
            closed = [list(p) for p in ring]
            if closed[0] != closed[-1]:
                closed.append(closed[0])
            geom: dict[str, Any] = {"type": "Polygon", "coordinates": [closed]}
        else:
            geom = {"type": "Point", "coordinates": [r["lon"], r["lat"]]}
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": features}
