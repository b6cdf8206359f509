"""Reporting periods (pure): a day, an ISO week or a month, in Asia/Shanghai local time.

``2026-11`` is a month, ``2026-W47`` an ISO week (Monday to Sunday), ``2026-11-23`` a day. A
period is the half-open interval ``[start, end)`` between local midnights in China Standard Time
(UTC+8, no daylight saving), so a case opened at 2026-11-30T17:00Z (01:00 on 1 December in
Shanghai) counts in December.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
PeriodKind = Literal["day", "week", "month"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    kind: PeriodKind
    first_day: date  # the first local day of the period

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.first_day:%Y-%m}"
        if self.kind == "week":
            year, week, _ = self.first_day.isocalendar()
            return f"{year}-W{week:02d}"
        return self.first_day.isoformat()

    @property
    def end_day(self) -> date:
        """The first local day after the period."""
        d = self.first_day
        if self.kind == "day":
            return d + timedelta(days=1)
        if self.kind == "week":
            return d + timedelta(days=7)
        return date(d.year + 1, 1, 1) if d.month == 12 else date(d.year, d.month + 1, 1)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.end_day, time(0), TZ)

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def previous(self) -> Period:
        d = self.first_day
        if self.kind == "day":
            return Period("day", d - timedelta(days=1))
        if self.kind == "week":
            return Period("week", d - timedelta(days=7))
        prev = date(d.year - 1, 12, 1) if d.month == 1 else date(d.year, d.month - 1, 1)
        return Period("month", prev)


def period_of(at: datetime, kind: PeriodKind = "month") -> Period:
    """The period of ``kind`` holding the instant ``at`` (aware), by its local date in
    Asia/Shanghai: 2026-11-30T17:00Z is in December, whatever the caller's own time zone."""
    day = at.astimezone(TZ).date()
    if kind == "day":
        return Period("day", day)
    if kind == "week":
        return Period("week", day - timedelta(days=day.weekday()))
    return Period("month", day.replace(day=1))


def parse_period(text: str) -> Period:
    """``2026-11`` | ``2026-W47`` | ``2026-11-23`` -> Period; ``ValueError`` for anything else."""
    s = (text or "").strip()
    try:
        if m := _MONTH.match(s):
            return Period("month", date(int(m[1]), int(m[2]), 1))
        if m := _WEEK.match(s):
            return Period("week", date.fromisocalendar(int(m[1]), int(m[2]), 1))
        if m := _DAY.match(s):
            return Period("day", date(int(m[1]), int(m[2]), int(m[3])))
    except ValueError as exc:
        raise ValueError(f"bad period {text!r}: {exc}") from None
    raise ValueError(f"bad period {text!r}: use 2026-11 (month), 2026-W47 (ISO week) or 2026-11-23")
