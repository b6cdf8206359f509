"""Frozen months (pure): when a unit's figures for a month become official, and what later
events changed since.

A month's figures are **provisional** until the month has closed and a grace window has passed
(``WANGGE_METRICS_FREEZE_GRACE``, default 5 days: late ratings and reports of the last days
come in); then they are **frozen**: computed once, stored, and served as the official figures
from then on. An event that arrives later (a late rating, a backdated resolution) never rewrites
them: the figures it would change are listed beside them as **adjustments** (frozen value,
current value, difference), so an assessment can see both. Only months freeze: they are what a
street (街道) is assessed on; weeks and days stay provisional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .periods import Period, period_of

FigureStatus = Literal["frozen", "provisional"]
DEFAULT_GRACE = timedelta(days=5)


@dataclass(frozen=True)
class FreezePolicy:
    grace: timedelta = DEFAULT_GRACE

    def freezes(self, period: Period) -> bool:
        """Whether the period's figures ever freeze (months only)."""
        return period.kind == "month"

    def freezes_at(self, period: Period) -> datetime | None:
        """When the figures of ``period`` freeze: its end plus the grace; None if never."""
        return period.end + self.grace if self.freezes(period) else None

    def status(self, period: Period, now: datetime) -> FigureStatus:
        at = self.freezes_at(period)
        return "frozen" if at is not None and now >= at else "provisional"

    def due(self, now: datetime) -> Period:
        """The latest month whose figures are due to be frozen at ``now``."""
        month = period_of(now).previous()
        while now < month.end + self.grace:
            month = month.previous()
        return month


def adjustments(frozen: Mapping[str, Any], current: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The figures later events changed: one entry per figure whose current value differs from
    the frozen one, ``{"figure", "frozen", "current"}`` and, for a count or a rate's numerator
    and denominator, the ``change`` (current − frozen). In the frozen figures' key order; a
    figure that did not exist when they froze is left out (not an adjustment)."""
    out = []
    for name, was in frozen.items():
        now = current.get(name)
        if now is None or now == was:
            continue
        entry: dict[str, Any] = {"figure": name, "frozen": was, "current": now}
        if isinstance(was, int) and isinstance(now, int):
            entry["change"] = now - was
        elif isinstance(was, dict) and isinstance(now, dict) and "numerator" in was:
            entry["change"] = {
                k: now.get(k, 0) - was.get(k, 0) for k in ("numerator", "denominator")
            }
        out.append(entry)
    return out
