"""The frozen months' table (``frozen_figures``, migration 009): a unit's official figures for a
month, written once (``services.feedback.freezing`` says when)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.runtime.db import Connection

from .store import Scope


@dataclass(frozen=True)
class Frozen:
    frozen_at: datetime
    metrics: dict[str, Any]


async def freeze(
    conn: Connection, unit_code: str, period: str, metrics: dict[str, Any], at: datetime
) -> Frozen:
    """The unit's frozen figures for ``period``: ``metrics`` as of ``at`` if none were frozen
    before, else those (a second freeze, by another replica or a later read, changes nothing)."""
    row = await conn.fetchrow(
        """WITH new AS (
               INSERT INTO frozen_figures (unit_code, period, frozen_at, metrics)
               VALUES ($1, $2, $3, $4::jsonb)
               ON CONFLICT (unit_code, period) DO NOTHING
               RETURNING frozen_at, metrics)
           SELECT frozen_at, metrics FROM new
           UNION ALL
           SELECT frozen_at, metrics FROM frozen_figures WHERE unit_code = $1 AND period = $2
           LIMIT 1""",
        unit_code,
        period,
        at,
        orjson.dumps(metrics).decode(),
    )
    assert row is not None
    stored = row["metrics"]
    return Frozen(row["frozen_at"], orjson.loads(stored) if isinstance(stored, str) else stored)


async def unfrozen_units(conn: Connection, period: str, limit: int) -> list[Scope]:
    """Units (buildings excepted) and departments without frozen figures for ``period``."""
    rows = await conn.fetch(
        """SELECT code, name, level FROM (
               SELECT code, name, level FROM units WHERE level <> 'building'
               UNION ALL SELECT code, name, 'department' FROM departments) u
           WHERE NOT EXISTS (SELECT 1 FROM frozen_figures f
                             WHERE f.unit_code = u.code AND f.period = $1)
           ORDER BY code LIMIT $2""",
        period,
        limit,
    )
    return [Scope(r["code"], r["name"], r["level"]) for r in rows]
