"""The board's reads from dispatch's schema: the area's units, its open cases, its geometry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.runtime.db import Connection

from .. import store
from ..due import due_status, limits, nearest_first, running_deadlines
from ..planning import Policy
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


async def open_cases(
    conn: Connection, units: list[str], policy: Policy, now: datetime, fraction: float
) -> list[BoardCase]:
    """The open cases assigned to ``units``, with their due status at ``now``."""
    rows = await conn.fetch(
        "SELECT * FROM cases WHERE state <> 'resolved' AND unit = ANY($1::text[])", units
    )
    out = []
    for row in rows:
        case = store.case_of(row)
        deadlines = running_deadlines(case, *limits(policy, case))
        _, deadline, _ = nearest_first(case, deadlines)
        out.append(
            BoardCase(
                case_id=case.case_id,
                category=case.category,
                state=case.state,
                tier=case.tier,
                unit=case.unit,
                street=case.street,
                community=case.community,
                grid=case.grid,
                building=case.building,
                due=due_status(case, deadlines, now, fraction),
                deadline=deadline
                if deadlines or case.resolve_missed_at or case.verify_missed_at
                else None,
                changed_at=max(row["updated_at"], case.dispatched_at),
                urgent=case.urgent,
                supervised=case.supervised,
            )
        )
    return out


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
