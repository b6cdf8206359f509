"""Intake's SQL for the nearby rule (similarity.py): the open cases' points and matter texts."""

from __future__ import annotations

import math
from datetime import datetime

from shared.runtime.db import Connection

from .similarity import NearbyCase, Sketch

_CANDIDATES = 20  # open cases looked at per report (newest first)


async def find_nearby_cases(
    conn: Connection, sketches: list[Sketch], radius_m: float, since: datetime
) -> dict[str, tuple[NearbyCase, int]]:
    """The open cases of each sketch's category opened since ``since`` whose point is within a
    box of ``radius_m`` around it, locked for update, with their supporter counts."""
    if not sketches:
        return {}
    dlat = radius_m / 111_320.0
    dlons = [dlat / max(math.cos(math.radians(s.lat)), 0.01) for s in sketches]
    rows = await conn.fetch(
        f"""SELECT c.case_id, c.category, c.lon, c.lat, c.matter_text, c.building,
                   c.supporter_count
            FROM unnest($1::text[], $2::float8[], $3::float8[], $4::float8[])
                 AS t(category, lon, lat, dlon)
            CROSS JOIN LATERAL (
                SELECT p.case_id, p.category, p.lon, p.lat, p.matter_text, p.building,
                       k.supporter_count
                FROM case_points p JOIN cases k ON k.case_id = p.case_id
                WHERE p.category = t.category
                  AND p.lat BETWEEN t.lat - $5 AND t.lat + $5
                  AND p.lon BETWEEN t.lon - t.dlon AND t.lon + t.dlon
                  AND k.opened_at >= $6 AND k.status = 'open' AND k.category = p.category
                ORDER BY k.opened_at DESC LIMIT {_CANDIDATES} FOR UPDATE OF k) c""",
        [s.category for s in sketches],
        [s.lon for s in sketches],
        [s.lat for s in sketches],
        dlons,
        dlat,
        since,
    )
    return {
        r["case_id"]: (
            NearbyCase(
                r["case_id"],
                Sketch(r["category"], r["lon"], r["lat"], r["matter_text"], r["building"]),
            ),
            int(r["supporter_count"]),
        )
        for r in rows
    }


async def record_case_points(conn: Connection, points: list[tuple[str, Sketch]]) -> None:
    """Each new case's point and matter text (cases without a point have no row)."""
    if not points:
        return
    await conn.execute(
        """INSERT INTO case_points (case_id, category, lon, lat, matter_text, building)
           SELECT k, c, x, y, m, b
           FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[],
                       $6::text[]) AS t(k, c, x, y, m, b)""",
        [c for c, _ in points],
        [s.category for _, s in points],
        [s.lon for _, s in points],
        [s.lat for _, s in points],
        [s.text for _, s in points],
        [s.building for _, s in points],
    )
