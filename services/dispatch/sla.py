"""Deadlines per tier (pure): respond-by and resolve-by, scaled by WANGGE_SLA_SCALE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.events import Tier

H = timedelta(hours=1)
DEFAULT_SLA: dict[Tier, tuple[timedelta, timedelta]] = {
    "grid": (2 * H, 24 * H),
    "community": (4 * H, 72 * H),
    "street": (8 * H, 7 * 24 * H),
    "district": (24 * H, 15 * 24 * H),
}
URGENT_RESPONSE = timedelta(minutes=30)


@dataclass(frozen=True)
class Deadlines:
    respond_by: datetime
    resolve_by: datetime


def deadlines(
    tier: Tier,
    start: datetime,
    *,
    scale: float = 1.0,
    urgent: bool = False,
    sla: dict[Tier, tuple[timedelta, timedelta]] = DEFAULT_SLA,
) -> Deadlines:
    respond, resolve = sla[tier]
    if urgent:
        respond = min(respond, URGENT_RESPONSE)
    return Deadlines(start + respond * scale, start + resolve * scale)
