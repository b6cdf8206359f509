"""Working time (pure): which instants are working time (工作时间), and adding working hours
(工作时) or working days (工作日) to an instant, in Asia/Shanghai local time.

A **working day** is a day the official calendar makes one (the ``chinesecalendar`` package: the
State Council's public holidays and their make-up working days, 调休, for the years it knows),
unless the district closed it itself (``closures``). For a year the package does not know yet,
Monday to Friday are working days and every other day is not (logged once per year), until a
newer package brings that year's calendar.

The **working periods** of a working day are the configured hours (by default 08:30-12:00 and
13:30-17:30), each the half-open interval ``[start, end)``: 12:00 itself is no longer working
time. Adding working time to an instant:

- ``add_hours(t, d)``: the instant at which ``d`` of working time has passed since ``t``. It is
  inside a working period or exactly at a period's end (adding 3.5 h at 08:30 gives 12:00, not
  13:30); adding nothing gives ``t`` itself.
- ``add_days(t, n)``: the close of the ``n``-th working day after the local day of ``t`` (the
  last period's end). The day ``t`` falls on is not counted, whatever its hour, as a period in
  days is counted by law (民法典 第二百零一条: 开始的当日不计入，自下一日开始计算).
- ``between(t, u)``: the working time inside ``[t, u)``; ``working_days_between(t, u)``: the
  working days after the local day of ``t`` whose close is at or before ``u``.

So ``add_hours(add_hours(t, a), b) == add_hours(t, a + b)``, ``between(t, add_hours(t, d)) == d``
and the same for days (property-tested in ``tests/dispatch/test_workcalendar.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar

from shared.runtime.logging import get_logger

TZ = ZoneInfo("Asia/Shanghai")  # the project's one time zone for local days and periods
DEFAULT_HOURS = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
MAX_SEARCH_DAYS = 3 * 366  # a calendar with no working day in three years is a configuration error

log = get_logger(component="dispatch.workcalendar")
_PERIOD_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_warned_years: set[int] = set()


def parse_period(text: str) -> tuple[time, time]:
    """``08:30-12:00`` as (08:30, 12:00)."""
    m = _PERIOD_RE.match(text)
    if not m:
        raise ValueError(f"a working period is HH:MM-HH:MM, not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return time(h1, m1), time(h2, m2)


def parse_closure(text: str) -> tuple[date, date]:
    """``2026-12-24`` or ``2026-12-28..2026-12-31`` (both days included) as (first, last)."""
    first, sep, last = text.partition("..")
    a = date.fromisoformat(first.strip())
    b = date.fromisoformat(last.strip()) if sep else a
    if b < a:
        raise ValueError(f"a closure ends before it starts: {text!r}")
    return a, b


@lru_cache(maxsize=8192)
def official_working_day(d: date) -> bool:
    """The official calendar's answer, or Monday to Friday for a year it does not know."""
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        if d.year not in _warned_years:
            _warned_years.add(d.year)
            log.warning(
                "no official holiday calendar for this year: weekends only",
                year=d.year,
                chinesecalendar=getattr(chinese_calendar, "__version__", None),
            )
        return d.weekday() < 5


@dataclass(frozen=True)
class WorkCalendar:
    """Working periods of a day (local times, sorted, not overlapping) and the district's own
    closed days (inclusive ranges)."""

    periods: tuple[tuple[time, time], ...] = DEFAULT_HOURS
    closures: tuple[tuple[date, date], ...] = ()
    _day_cache: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("a working day needs at least one working period")
        previous = time.min
        for i, (start, end) in enumerate(self.periods):
            if not start < end:
                raise ValueError(f"a working period must end after it starts: {start}-{end}")
            if i and start < previous:
                raise ValueError("working periods must be in order and not overlap")
            previous = end

    @classmethod
    def of(cls, hours: list[str] | None = None, closures: list[str] | None = None) -> WorkCalendar:
        periods = tuple(parse_period(p) for p in hours) if hours else DEFAULT_HOURS
        return cls(periods, tuple(parse_closure(c) for c in closures or ()))

    # --- days ----------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        if (known := self._day_cache.get(d)) is not None:
            return known
        closed = any(a <= d <= b for a, b in self.closures)
        working = not closed and official_working_day(d)
        self._day_cache[d] = working
        return working

    def _periods_of(self, d: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(d):
            return []
        return [(datetime.combine(d, s, TZ), datetime.combine(d, e, TZ)) for s, e in self.periods]

    def close_of(self, d: date) -> datetime:
        """The end of a day's last working period (UTC)."""
        return datetime.combine(d, self.periods[-1][1], TZ).astimezone(UTC)

    def next_working_day(self, d: date) -> date:
        """The first working day after ``d``."""
        for i in range(1, MAX_SEARCH_DAYS + 1):
            day = d + timedelta(days=i)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {MAX_SEARCH_DAYS} days after {d}")

    # --- instants ------------------------------------------------------------------------------

    def is_working(self, t: datetime) -> bool:
        """Whether ``t`` is inside a working period (start included, end excluded)."""
        local = t.astimezone(TZ)
        return any(s <= local < e for s, e in self._periods_of(local.date()))

    def add_hours(self, t: datetime, d: timedelta) -> datetime:
        """The instant ``d`` of working time after ``t`` (UTC)."""
        if d < timedelta(0):
            raise ValueError("working time to add must not be negative")
        if d == timedelta(0):
            return t
        local = t.astimezone(TZ)
        day = local.date()
        left = d
        for _ in range(MAX_SEARCH_DAYS):
            for start, end in self._periods_of(day):
                if end <= local:
                    continue
                begin = max(local, start)
                if left <= end - begin:
                    return (begin + left).astimezone(UTC)
                left -= end - begin
            day += timedelta(days=1)
        raise ValueError(f"no working time within {MAX_SEARCH_DAYS} days after {t}")

    def add_days(self, t: datetime, n: int) -> datetime:
        """The close of the ``n``-th working day after the local day of ``t`` (UTC)."""
        if n < 0:
            raise ValueError("working days to add must not be negative")
        if n == 0:
            return t
        day = t.astimezone(TZ).date()
        for _ in range(n):
            day = self.next_working_day(day)
        return self.close_of(day)

    def between(self, t: datetime, u: datetime) -> timedelta:
        """The working time inside ``[t, u)`` (nothing when ``u`` is not after ``t``)."""
        if u <= t:
            return timedelta(0)
        a, b = t.astimezone(TZ), u.astimezone(TZ)
        total = timedelta(0)
        day = a.date()
        while day <= b.date():
            for start, end in self._periods_of(day):
                lo, hi = max(a, start), min(b, end)
                if lo < hi:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def working_days_between(self, t: datetime, u: datetime) -> int:
        """The working days after the local day of ``t`` whose close is at or before ``u``."""
        day, last = t.astimezone(TZ).date(), u.astimezone(TZ).date()
        count = 0
        while day < last:
            day += timedelta(days=1)
            if self.is_working_day(day) and self.close_of(day) <= u:
                count += 1
        return count
