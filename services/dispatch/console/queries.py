"""The board's reads from dispatch's schema: the area's units, its open cases, its geometry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from shared.runtime.db import Connection

from .. import store
from ..due import Deadline, case_deadlines, due_of, due_status, missed, nearest_first
from ..planning import Policy
from ..states import State
from .board import AreaUnit, BoardCase


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


@dataclass(slots=True)
class _Entry:
    version: str  # the row's version (xmin): a new one for every change
    case: BoardCase  # with the due status of the last build
    deadlines: tuple[Deadline, ...]
    missed: bool  # missed at the top tier (or its verification missed): overdue until done
    state: State


class OpenCases:
    """What the board needs of each open case, computed once per version of its row.

    A board reads every open case of its area, 100,000 in a district: making each a ``Case``
    and working out its deadlines on the working calendar is most of a board's time. This keeps
    them per case id with the row's version (``xmin``, new with every change of the row), so a
    board reads only the ids and versions of its area's open cases, the whole rows of those
    changed since, and works out only the due status (it changes with the time) for the rest.
    One per process, shared by every board (the live ones and ``GET /console/api/board``);
    ``forget`` drops the cases no longer open."""

    CHUNK: Final = 5000

    def __init__(self, policy: Policy, fraction: float) -> None:
        self.policy = policy
        self.fraction = fraction
        self.entries: dict[str, _Entry] = {}

    async def of(self, conn: Connection, units: list[str], now: datetime) -> list[BoardCase]:
        """The open cases assigned to ``units``, with their due status at ``now``."""
        rows = await conn.fetch(
            """SELECT case_id, xmin::text AS version FROM cases
               WHERE state <> 'resolved' AND unit = ANY($1::text[])""",
            units,
        )
        entries = self.entries
        stale = [
            r["case_id"]
            for r in rows
            if (e := entries.get(r["case_id"])) is None or e.version != r["version"]
        ]
        for lo in range(0, len(stale), self.CHUNK):
            changed = await conn.fetch(
                "SELECT *, xmin::text AS version FROM cases WHERE case_id = ANY($1::text[])",
                stale[lo : lo + self.CHUNK],
            )
            for row in changed:
                entries[row["case_id"]] = self._entry(row, now)
        out = []
        for i, r in enumerate(rows):
            if i % 10_000 == 9_999:
                await asyncio.sleep(0)  # let the consumers run: a district has 100,000
            e = entries.get(r["case_id"])
            if e is None or e.state == "resolved":  # resolved between the two reads
                continue
            due = due_of(e.missed, e.deadlines, now, self.fraction)
            if due != e.case.due:
                e.case = dataclasses.replace(e.case, due=due)
            out.append(e.case)
        return out

    def forget(self, open_ids: Iterable[str]) -> None:
        """Keep only the cases of ``open_ids`` (every open case of the schema)."""
        keep = set(open_ids)
        for case_id in [c for c in self.entries if c not in keep]:
            del self.entries[case_id]

    def _entry(self, row: asyncpg.Record, now: datetime) -> _Entry:
        case = store.case_of(row)
        deadlines = case_deadlines(self.policy, case)
        _, deadline, _ = nearest_first(case, deadlines)
        board_case = BoardCase(
            case_id=case.case_id,
            category=case.category,
            state=case.state,
            tier=case.tier,
            unit=case.unit,
            street=case.street,
            community=case.community,
            grid=case.grid,
            building=case.building,
            due=due_status(case, deadlines, now, self.fraction),
            deadline=deadline
            if deadlines or case.resolve_missed_at or case.verify_missed_at
            else None,
            changed_at=max(row["updated_at"], case.dispatched_at),
            urgent=case.urgent,
            supervised=case.supervised,
        )
        return _Entry(row["version"], board_case, deadlines, missed(case), case.state)


async def open_cases(
    conn: Connection, units: list[str], policy: Policy, now: datetime, fraction: float
) -> list[BoardCase]:
    """The open cases assigned to ``units``, with their due status at ``now`` (nothing kept)."""
    return await OpenCases(policy, fraction).of(conn, units, now)


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
