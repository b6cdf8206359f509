"""Intake's SQL for 未诉先办 hotspots (hotspots.py): counts per community and category, the
bursts and their proactive cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.runtime.db import Connection


async def add_counts(
    conn: Connection, counts: dict[tuple[str, str, datetime], int], older_than: datetime
) -> None:
    """Add the batch's cases to their buckets (in key order: the rows are locked in one order)
    and delete the buckets of these (community, category) older than ``older_than``."""
    keys = sorted(counts)
    await conn.execute(
        """INSERT INTO hotspot_counts AS h (community, category, bucket, n)
           SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[])
           ORDER BY 1, 2, 3
           ON CONFLICT (community, category, bucket) DO UPDATE SET n = h.n + EXCLUDED.n""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [counts[k] for k in keys],
    )
    pairs = sorted({(k[0], k[1]) for k in keys})
    await conn.execute(
        """DELETE FROM hotspot_counts h USING unnest($1::text[], $2::text[]) AS t(m, c)
           WHERE h.community = t.m AND h.category = t.c AND h.bucket < $3""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        older_than,
    )


@dataclass(frozen=True)
class State:
    recent: int
    baseline: int
    hotspot_id: str | None  # the latest hotspot, active or not
    active_until: datetime | None


async def states(
    conn: Connection, pairs: list[tuple[str, str]], recent_since: datetime, baseline_since: datetime
) -> dict[tuple[str, str], State]:
    """For each (community, category): the recent and baseline counts, and its latest hotspot."""
    rows = await conn.fetch(
        """SELECT t.m, t.c,
                  (SELECT coalesce(sum(n), 0) FROM hotspot_counts h
                   WHERE h.community = t.m AND h.category = t.c AND h.bucket >= $3) AS recent,
                  (SELECT coalesce(sum(n), 0) FROM hotspot_counts h
                   WHERE h.community = t.m AND h.category = t.c
                     AND h.bucket >= $4 AND h.bucket < $3) AS baseline,
                  s.hotspot_id, s.active_until
           FROM unnest($1::text[], $2::text[]) AS t(m, c)
           LEFT JOIN LATERAL (SELECT hotspot_id, active_until FROM hotspots s
                              WHERE s.community = t.m AND s.category = t.c
                              ORDER BY active_until DESC LIMIT 1) s ON true""",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        recent_since,
        baseline_since,
    )
    return {
        (r["m"], r["c"]): State(
            int(r["recent"]), int(r["baseline"]), r["hotspot_id"], r["active_until"]
        )
        for r in rows
    }


@dataclass(frozen=True)
class NewHotspot:
    hotspot_id: str
    community: str
    street: str | None
    district: str | None
    category: str
    case_id: str
    started_at: datetime
    active_until: datetime
    reports: int
    expected: float


async def insert_hotspots(conn: Connection, spots: list[NewHotspot]) -> None:
    await conn.executemany(
        """INSERT INTO hotspots (hotspot_id, community, street, district, category, case_id,
                                 started_at, active_until, reports, expected, peak)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9)""",
        [
            (
                h.hotspot_id,
                h.community,
                h.street,
                h.district,
                h.category,
                h.case_id,
                h.started_at,
                h.active_until,
                h.reports,
                h.expected,
            )
            for h in spots
        ],
    )


async def extend_hotspots(conn: Connection, extended: list[tuple[str, datetime, int]]) -> None:
    """An active hotspot's burst goes on: (hotspot_id, active until, reports in the window)."""
    await conn.executemany(
        """UPDATE hotspots SET active_until = greatest(active_until, $2),
                              peak = greatest(peak, $3)
           WHERE hotspot_id = $1""",
        extended,
    )


async def list_hotspots(
    conn: Connection, unit: str, active_at: datetime | None, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """The hotspots of the communities within ``unit`` (the unit itself, its street or its
    district), newest first: only the active ones when ``active_at`` is given."""
    rows = await conn.fetch(
        """SELECT h.*, c.status AS case_status, u.name AS community_name
           FROM hotspots h JOIN cases c ON c.case_id = h.case_id
           LEFT JOIN units u ON u.code = h.community
           WHERE $1 IN (h.community, h.street, h.district) AND h.started_at >= $3
             AND ($2::timestamptz IS NULL OR h.active_until > $2)
           ORDER BY h.started_at DESC LIMIT $4""",
        unit,
        active_at,
        since,
        limit,
    )
    return [dict(r) for r in rows]
