"""The board's reads from dispatch's schema: the area's units, its open cases, its geometry."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg
import orjson

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
    rows_in_order,
    tally_row,
)
from .live import Kept, LiveBoard


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


@dataclass(frozen=True, slots=True)
class Area:
    """A board's area as the registry's copy had it at ``version``: its top unit (None when the
    registry lacks it), every unit it reaches, their codes and the departments' codes."""

    version: int
    top: AreaUnit | None
    units: list[AreaUnit]
    codes: list[str]
    departments: list[str]
    ordered: list[AreaUnit]  # the board's rows (``board.rows_in_order``)


@dataclass(frozen=True, slots=True)
class AreaMap:
    """An area's map (``geometry``) at a registry version: the document, its JSON and ETag."""

    version: int
    doc: dict[str, Any]
    body: bytes
    etag: str


async def registry_version(conn: Connection) -> int:
    """The version of the registry's copy: bumped by every transaction that writes its units
    or departments (migration 023)."""
    version: int = await conn.fetchval("SELECT version FROM registry_version")
    return version


class Areas:
    """Areas and their maps kept per version of the registry's copy (the registry changes
    seldom; a district's area is 26,000 units, a quarter to half a second to read, its map
    8 MB): read again only when the version moved. The version is read before the units, so
    that what was read with a newer registry is at worst read once more."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._areas: OrderedDict[str, Area] = OrderedDict()
        self._maps: OrderedDict[str, AreaMap] = OrderedDict()

    @staticmethod
    def _keep(cache: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > size:
            cache.popitem(last=False)

    async def area(self, conn: Connection, code: str) -> Area:
        version = await registry_version(conn)
        kept = self._areas.get(code)
        if kept is not None and kept.version == version:
            self._areas.move_to_end(code)
            return kept
        top, units = await area(conn, code)
        fresh = Area(
            version,
            top,
            units,
            [u.code for u in units],
            [u.code for u in units if u.level == "department"],
            rows_in_order(code, units),
        )
        self._keep(self._areas, code, fresh, self.size)
        return fresh

    async def map(self, conn: Connection, code: str) -> AreaMap:
        where = await self.area(conn, code)
        kept = self._maps.get(code)
        if kept is not None and kept.version == where.version:
            self._maps.move_to_end(code)
            return kept
        doc = await geometry(conn, where.codes)
        body = orjson.dumps(doc)
        tag = hashlib.sha1(body, usedforsecurity=False).hexdigest()[:20]
        fresh = AreaMap(where.version, doc, body, f'"{tag}"')
        self._keep(self._maps, code, fresh, self.size)
        return fresh


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


# due.due_at in SQL, over board_due as d at the parameter {now}
DUE_SQL: Final = """CASE WHEN d.missed OR d.late_at <= {now} THEN 'overdue'
     WHEN d.soon_at <= {now} THEN 'due_soon' ELSE 'on_track' END"""
# an area's open cases as the board keeps them ($1: the area's unit codes)
_OPEN_OF: Final = """FROM board_due d WHERE d.open AND d.unit IN (SELECT unnest($1::text[]))"""
_STALE_SQL: Final = """SELECT c.case_id FROM cases c LEFT JOIN board_due d ON d.case_id = c.case_id
    WHERE c.state <> 'resolved'
      AND (d.version IS DISTINCT FROM c.xmin::text || '/' || $1 OR NOT d.open)
    ORDER BY c.case_id"""
# the cases marked changed (migration 024's trigger), taken by one keeper (another skips them)
_TAKE_SQL: Final = """DELETE FROM board_stale WHERE case_id IN
    (SELECT case_id FROM board_stale ORDER BY case_id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING case_id"""
_KEPT: Final = (
    ("case_id", "text"),
    ("version", "text"),
    ("missed", "boolean"),
    ("soon_at", "timestamptz"),
    ("late_at", "timestamptz"),
    ("deadline", "timestamptz"),
    ("unit", "text"),
    ("street", "text"),
    ("community", "text"),
    ("grid", "text"),
    ("building", "text"),
    ("tier", "text"),
    ("category", "text"),
    ("state", "text"),
    ("urgent", "boolean"),
    ("supervised", "boolean"),
    ("changed_at", "timestamptz"),
)
_KEEP_SQL: Final = f"""INSERT INTO board_due ({", ".join(c for c, _ in _KEPT)}, open, kept_xid,
                       kept_at)
    SELECT *, true, pg_current_xact_id(), now() FROM unnest(
        {", ".join(f"${i}::{t}[]" for i, (_, t) in enumerate(_KEPT, 1))})
    ON CONFLICT (case_id) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c, _ in _KEPT[1:])}, open = true,
        kept_xid = excluded.kept_xid, kept_at = excluded.kept_at"""
# a case no longer open: its row a tombstone, which a live board reads as the case gone
_GONE_SQL: Final = """UPDATE board_due SET open = false, kept_xid = pg_current_xact_id(),
    kept_at = now() WHERE case_id = ANY($1::text[]) AND open"""
_FORGET_SQL: Final = """UPDATE board_due d SET open = false, kept_xid = pg_current_xact_id(),
    kept_at = now() WHERE d.open AND NOT EXISTS
    (SELECT 1 FROM cases c WHERE c.case_id = d.case_id AND c.state <> 'resolved')"""
TOMBSTONE_S: Final = 600  # a live board older than half of it reads its area again
_BURY_SQL: Final = f"""DELETE FROM board_due
    WHERE NOT open AND kept_at < now() - interval '{TOMBSTONE_S} seconds'"""


def kept_row(policy: Policy, fraction: float, row: asyncpg.Record, key: str) -> tuple[Any, ...]:
    """What ``board_due`` keeps of an open case's row (``_KEPT``'s columns, in order)."""
    case = store.case_of(row)
    times, deadline = due_row(policy, fraction, row)
    return (
        case.case_id,
        f"{row['version']}/{key}",
        times.missed,
        times.soon_at,
        times.late_at,
        deadline,
        case.unit,
        case.street,
        case.community,
        case.grid,
        case.building,
        case.tier,
        case.category,
        case.state,
        case.urgent,
        case.supervised,
        max(row["updated_at"], case.dispatched_at),
    )


class BoardDue:
    """The board's read model (``board_due``, migrations 022 and 024): each open case's due
    times, worked out once per version of its row (``xmin``) and of the policy
    (``policy_key``), with what the board counts and lists of it, so that PostgreSQL counts a
    board from this one table.

    Working out a case's deadlines on the working calendar is most of what a board cost when
    Python counted it (100,000 open cases in a district: seconds). A trigger on ``cases``
    (migration 024) marks every case a statement writes in ``board_stale``, in the writer's
    transaction; ``sync`` (before each board) works out the marked cases only and deletes the
    rows of those no longer open. ``check`` (at start and once a minute) compares every open
    case's row version with the kept one, for what no mark says (another policy after a
    restart, rows written before migration 024). The tables outlive the process and are shared
    by the replicas (each keeper takes the marks others have not, ``SKIP LOCKED``).
    """

    CHUNK: Final = 2000

    def __init__(self, policy: Policy, fraction: float) -> None:
        self.policy = policy
        self.fraction = fraction
        self.key = policy_key(policy, fraction)
        self._lock = asyncio.Lock()  # one keeper at a time per process

    async def sync(self, conn: Connection) -> int:
        """Work out the cases marked changed (each chunk with its marks in one transaction: a
        mark is gone only with its case kept); returns how many."""
        done = 0
        async with self._lock:
            while True:
                async with conn.transaction():
                    ids = [r["case_id"] for r in await conn.fetch(_TAKE_SQL, self.CHUNK)]
                    await self._keep(conn, ids)
                done += len(ids)
                if len(ids) < self.CHUNK:
                    return done
                await asyncio.sleep(0)  # let the consumers run: a district has 100,000

    async def check(self, conn: Connection) -> int:
        """Work out every open case whose row or policy changed since it was kept, marked or
        not; returns how many."""
        async with self._lock:
            async with conn.transaction():
                await conn.execute(CUSTOM_PLANS)
                ids = [r["case_id"] for r in await conn.fetch(_STALE_SQL, self.key)]
            for lo in range(0, len(ids), self.CHUNK):
                if lo:
                    await asyncio.sleep(0)
                chunk = ids[lo : lo + self.CHUNK]
                async with conn.transaction():
                    # their marks first, as sync takes them: a change committed after this
                    # transaction's snapshot marks its case again
                    await conn.execute(
                        "DELETE FROM board_stale WHERE case_id = ANY($1::text[])", chunk
                    )
                    await self._keep(conn, chunk)
            return len(ids)

    async def _keep(self, conn: Connection, ids: list[str]) -> None:
        if not ids:
            return
        rows = await conn.fetch(
            "SELECT *, xmin::text AS version FROM cases "
            "WHERE case_id = ANY($1::text[]) ORDER BY case_id",
            ids,
        )
        open_ = [r for r in rows if r["state"] != "resolved"]
        cols: list[list[Any]] = [[] for _ in _KEPT]
        for row in open_:
            for col, v in zip(
                cols, kept_row(self.policy, self.fraction, row, self.key), strict=True
            ):
                col.append(v)
        if open_:
            await conn.execute(_KEEP_SQL, *cols)
        kept = {r["case_id"] for r in open_}
        if gone := [i for i in ids if i not in kept]:  # closed (or deleted) since
            await conn.execute(_GONE_SQL, gone)

    async def forget(self, conn: Connection) -> None:
        """The kept rows of the cases no longer open as tombstones; tombstones older than
        ``TOMBSTONE_S`` deleted."""
        await conn.execute(_FORGET_SQL)
        await conn.execute(_BURY_SQL)


_TIER_COUNTS: Final = ",\n       ".join(
    f"count(*) FILTER (WHERE tier = '{t}') AS {t}"
    for t in ("grid", "community", "street", "district")
)
_PLACES: Final = ("street", "community", "grid", "building", "dept")


def _sets(buildings: bool) -> list[str]:
    return [p for p in _PLACES if buildings or p != "building"]


def _grouped(sets: list[str]) -> str:
    """The counts of ``o`` (the area's open cases) per grouping of ``sets``: the totals, then per
    street, community, grid, building (when in ``sets``) and department."""
    return f"""SELECT GROUPING({", ".join(sets)}) AS grouping, coalesce({", ".join(sets)}) AS code,
       count(*) AS open,
       count(*) FILTER (WHERE due = 'due_soon') AS due_soon,
       count(*) FILTER (WHERE due = 'overdue') AS overdue,
       {_TIER_COUNTS}
FROM o GROUP BY GROUPING SETS ((), {", ".join(f"({p})" for p in sets)})"""


_OPEN_COLS: Final = """d.case_id, d.category, d.state, d.tier, d.unit, d.street, d.community,
           d.grid, d.building, d.urgent, d.supervised, d.changed_at, d.deadline,
           CASE WHEN d.unit = ANY($2::text[]) THEN d.unit END AS dept,
           {due} AS due"""


def count_sql(*, buildings: bool = True) -> str:
    """The counts of an area's open cases per unit (one row per grouping: the totals, then per
    street, community, grid, building unless not ``buildings``, and department that has it)."""
    return f"""WITH o AS (
    SELECT {_OPEN_COLS.format(due=DUE_SQL.format(now="$3"))}
    {_OPEN_OF}
)
{_grouped(_sets(buildings))}"""


_LISTED_COLS: Final = """case_id, category, state, tier, unit, street, community, grid,
           building, urgent, supervised, changed_at, deadline, due"""
_BY_DEADLINE: Final = '{x}deadline NULLS LAST, {x}case_id COLLATE "C"'
_LATEST: Final = '{x}changed_at DESC, {x}case_id COLLATE "C" DESC'


def _list(where: str, order: str, limit: int) -> str:
    """The first ``limit`` of ``o`` in ``order`` (a template of ``x``, the alias) as a JSON
    array in that order."""
    return f"""(SELECT json_agg(x ORDER BY {order.format(x="x.")})
     FROM (SELECT {_LISTED_COLS} FROM o {where} ORDER BY {order.format(x="")} LIMIT {limit}) x)"""


def board_sql(*, buildings: bool = True) -> str:
    """A board in one statement: the area's open cases (``$1``: the area's unit codes, ``$2``:
    its departments', ``$3``: now) with their due status, computed once (materialised), then
    counted per unit (``counts``, as ``count_sql``) and listed (``overdue``, ``due_soon``,
    ``recent``), each a JSON array."""
    return f"""WITH o AS MATERIALIZED (
    SELECT {_OPEN_COLS.format(due=DUE_SQL.format(now="$3"))}
    {_OPEN_OF}
), g AS (
{_grouped(_sets(buildings))}
)
SELECT (SELECT json_agg(g) FROM g) AS counts,
  {_list("WHERE due = 'overdue'", _BY_DEADLINE, WARNINGS)} AS overdue,
  {_list("WHERE due = 'due_soon'", _BY_DEADLINE, WARNINGS)} AS due_soon,
  {_list("", _LATEST, RECENT)} AS recent"""


def _counted(rows: list[Any], buildings: bool) -> Counted:
    """The rows of a grouping (``_grouped``) as counts per unit and the totals."""
    counts: dict[str, Tally] = {}
    total = ZERO
    everything = (1 << len(_sets(buildings))) - 1
    for r in rows:
        tally = tally_row(r["open"], r["due_soon"], r["overdue"], dict(r.items()))
        if r["grouping"] == everything:  # the empty grouping set: every column rolled up
            total = tally
        elif r["code"] is not None:  # not the cases without that level (a NULL group)
            counts[r["code"]] = tally
    return Counted(counts, total)


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
    async with conn.transaction():
        await conn.execute(CUSTOM_PLANS)
        rows = await conn.fetch(count_sql(buildings=buildings), units, departments, now)
    return _counted(rows, buildings)


# An area's codes and ``now`` decide the plan (a grid's 30 units or a district's 26,000; the due
# status at this instant): a prepared statement's generic plan, which PostgreSQL switches to
# after five executions, took three to five times as long as the custom one for a district.
CUSTOM_PLANS: Final = "SET LOCAL plan_cache_mode = force_custom_plan"


def _time(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def _listed(r: dict[str, Any]) -> BoardCase:
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
        _time(r["deadline"]),
        datetime.fromisoformat(r["changed_at"]),
        r["urgent"],
        r["supervised"],
    )


async def read_counts(
    conn: Connection, keeper: BoardDue, areas: Areas, unit: str, now: datetime
) -> tuple[Area, Counted]:
    """An area (kept per registry version) and its open cases counted at ``now``, buildings
    included (their due times kept first)."""
    where = await areas.area(conn, unit)
    await keeper.sync(conn)
    return where, await count_open(conn, where.codes, where.departments, now)


async def read_board(
    conn: Connection,
    keeper: BoardDue,
    areas: Areas,
    unit: str,
    now: datetime,
    *,
    buildings: bool = True,
) -> tuple[Area, Counted, Listed]:
    """An area (kept per registry version), its open cases counted and listed at ``now``
    (their due times kept first), in one statement (``board_sql``)."""
    where = await areas.area(conn, unit)
    await keeper.sync(conn)
    async with conn.transaction(readonly=True):
        await conn.execute(CUSTOM_PLANS)
        row = await conn.fetchrow(
            board_sql(buildings=buildings), where.codes, where.departments, now
        )
    assert row is not None  # an aggregate's one row
    listed = Listed(
        *([_listed(r) for r in row[k] or ()] for k in ("overdue", "due_soon", "recent"))
    )
    return where, _counted(row["counts"] or [], buildings), listed


_KEPT_COLS: Final = ", ".join(f.name for f in dataclasses.fields(Kept))  # Kept(*row)


async def kept_rows(conn: Connection, codes: list[str]) -> tuple[str, list[asyncpg.Record]]:
    """The kept rows of the open cases assigned to ``codes`` (each ``Kept(*row)``), and the
    snapshot they were read in (``pg_snapshot`` as text, for ``kept_since``)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(CUSTOM_PLANS)
        snap: str = await conn.fetchval("SELECT pg_current_snapshot()::text")
        rows = await conn.fetch(f"SELECT {_KEPT_COLS} {_OPEN_OF}", codes)
    return snap, rows


async def kept_since(conn: Connection, since: str) -> tuple[str, list[Kept]]:
    """The rows kept (or made tombstones) by the transactions not visible in the snapshot
    ``since``, of any unit, in the order they were kept; and the snapshot of this read."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        snap: str = await conn.fetchval("SELECT pg_current_snapshot()::text")
        rows = await conn.fetch(
            f"""SELECT {_KEPT_COLS} FROM board_due
                WHERE kept_xid >= pg_snapshot_xmin($1::text::pg_snapshot)
                  AND NOT pg_visible_in_snapshot(kept_xid, $1::text::pg_snapshot)
                ORDER BY kept_xid""",
            since,
        )
    return snap, [Kept(*r) for r in rows]


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


class LiveArea:
    """A watched area's live board: its kept rows read once into a ``LiveBoard``, then only the
    rows kept since each read (``kept_since``); read whole again when the registry changed,
    when its last read is older than half a tombstone's life (a closed case's tombstone could
    be gone before it was read) and, as a safeguard, every ``reload_s``. A whole read is
    loaded ``CHUNK`` rows at a time, the event loop let run between them (a district's 100,000
    rows take about a second of Python: the consumers must not wait that long)."""

    CHUNK: Final = 2000

    def __init__(
        self,
        unit: str,
        keeper: BoardDue,
        areas: Areas,
        *,
        reload_s: float = TOMBSTONE_S / 2,
    ) -> None:
        self.unit = unit
        self.keeper = keeper
        self.areas = areas
        self.reload_s = reload_s
        self.board: LiveBoard | None = None
        self._version = -1
        self._since = ""
        self._loaded_at = 0.0
        self._read_at = 0.0
        self.reloads = 0

    async def read(self, conn: Connection, now: datetime) -> tuple[Area, Counted, Listed]:
        """The area, its counts and its lists at ``now`` (its marked cases kept first)."""
        where = await self.areas.area(conn, self.unit)
        await self.keeper.sync(conn)
        at = time.monotonic()
        stale = at - self._loaded_at >= self.reload_s or at - self._read_at >= TOMBSTONE_S / 2
        if self.board is None or where.version != self._version or stale:
            self._since, records = await kept_rows(conn, where.codes)
            board = LiveBoard(where.units)
            board.load((), now)
            for lo in range(0, len(records), self.CHUNK):
                if lo:
                    await asyncio.sleep(0)  # let the consumers run
                board.extend([Kept(*r) for r in records[lo : lo + self.CHUNK]], now)
            self.board = board
            self._version = where.version
            self._loaded_at = at
            self.reloads += 1
        else:
            self._since, rows = await kept_since(conn, self._since)
            self.board.apply(rows, now)
        self._read_at = at
        return where, self.board.counted(), self.board.listed()
