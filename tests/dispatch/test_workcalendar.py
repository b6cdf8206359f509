"""Working time (pure): the calendar's days, the arithmetic's laws (property-tested), and the
National Day example a 街道 clerk computes by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from services.dispatch import workcalendar
from services.dispatch.workcalendar import TZ, WorkCalendar, parse_closure, parse_period

CAL = WorkCalendar()  # 08:30-12:00 and 13:30-17:30, the official calendar, no closures
CLOSED = WorkCalendar.of(closures=["2025-06-03", "2025-06-10..2025-06-12"])


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=TZ)


# Instants from 2024 to 2026 (the package's data) and into 2027 (the weekends-only fallback), to
# the microsecond; working time up to about a month of working days.
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 3, 1), timezones=st.just(UTC)
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))
calendars = st.sampled_from([CAL, CLOSED, WorkCalendar.of(["09:00-17:00"])])


def test_the_official_calendar_with_its_make_up_days() -> None:
    # 2025 National Day and Mid-Autumn: 1-8 October off, Sunday 28 September and Saturday 11
    # October are make-up working days (调休)
    assert CAL.is_working_day(date(2025, 9, 28))  # a Sunday that is a working day
    assert not CAL.is_working_day(date(2025, 9, 27))  # an ordinary Saturday
    assert not any(CAL.is_working_day(date(2025, 10, d)) for d in range(1, 9))
    assert CAL.is_working_day(date(2025, 10, 11))  # a Saturday that is a working day
    assert CAL.is_working_day(date(2025, 6, 3))
    assert not CLOSED.is_working_day(date(2025, 6, 3))  # the district's own closure
    assert [CLOSED.is_working_day(date(2025, 6, d)) for d in (9, 10, 11, 12, 13)] == [
        True,
        False,
        False,
        False,
        True,
    ]


def test_a_year_the_package_does_not_know_counts_weekends_only() -> None:
    workcalendar._warned_years.discard(2031)
    workcalendar.official_working_day.cache_clear()
    with capture_logs() as logs:
        assert CAL.is_working_day(date(2031, 1, 1))  # a Wednesday: New Year's Day not known
        assert not CAL.is_working_day(date(2031, 1, 4))  # a Saturday
        assert WorkCalendar().add_days(datetime(2031, 1, 3, 12, tzinfo=TZ), 1) == datetime(
            2031, 1, 6, 17, 30, tzinfo=TZ
        )
    warnings = [e for e in logs if e["event"].endswith("weekends only")]
    assert [(w["log_level"], w["year"]) for w in warnings] == [("warning", 2031)]  # once


def test_working_periods_are_half_open() -> None:
    assert CAL.is_working(local(2025, 6, 4, 8, 30))
    assert not CAL.is_working(local(2025, 6, 4, 8, 29))
    assert not CAL.is_working(local(2025, 6, 4, 12, 0))
    assert CAL.is_working(local(2025, 6, 4, 13, 30))
    assert not CAL.is_working(local(2025, 6, 4, 17, 30))
    assert not CAL.is_working(local(2025, 6, 7, 10, 0))  # a Saturday


def test_adding_hours_stops_at_a_period_end_and_skips_the_lunch_break() -> None:
    start = local(2025, 6, 4, 8, 30)
    assert CAL.add_hours(start, timedelta(hours=3.5)) == local(2025, 6, 4, 12, 0)
    assert CAL.add_hours(start, timedelta(hours=4)) == local(2025, 6, 4, 14, 0)
    # from Friday 17:00: half an hour on Friday, then Monday morning
    assert CAL.add_hours(local(2025, 6, 6, 17, 0), timedelta(hours=2)) == local(2025, 6, 9, 10)


def test_a_report_on_the_friday_evening_before_national_day() -> None:
    """A resident reports on Friday 26 September 2025 at 19:40, after office hours, the week
    before the National Day and Mid-Autumn holiday (1-8 October 2025; make-up working days
    Sunday 28 September and Saturday 11 October). The 街道 clerk computes by hand:

    - "respond within 2 working hours": Friday evening is not working time and Saturday 27 is
      a rest day; the next working time is the make-up day, Sunday 28 September from 08:30, so
      the response is due at 10:30 that Sunday.
    - "resolve within 5 working days": the day of the report is not counted (民法典 第二百零一条).
      Working days after it: (1) Sun 28 Sep, make-up day, (2) Mon 29 Sep, (3) Tue 30 Sep, then the
      holiday 1-8 October, (4) Thu 9 Oct, (5) Fri 10 Oct: due at the close of Friday 10 October,
      17:30.
    - "resolve within 16 working hours" (two days of 8 h): Sunday 28 (7.5 h) and Monday 29
      (7.5 h) leave 1 h for Tuesday 30 September: 09:30.
    - a pause in deliberation from Tuesday 30 September 15:30 to Thursday 9 October 10:30 pauses
      2 h (Tuesday 15:30-17:30) + 2 h (Thursday 08:30-10:30) = 4 working hours.
    """
    reported = local(2025, 9, 26, 19, 40)
    assert CAL.add_hours(reported, timedelta(hours=2)) == local(2025, 9, 28, 10, 30)
    assert CAL.add_days(reported, 5) == local(2025, 10, 10, 17, 30)
    assert CAL.add_hours(reported, timedelta(hours=16)) == local(2025, 9, 30, 9, 30)
    pause = CAL.between(local(2025, 9, 30, 15, 30), local(2025, 10, 9, 10, 30))
    assert pause == timedelta(hours=4)


def test_parsing_periods_and_closures() -> None:
    assert parse_period("8:30-12:00") == (time(8, 30), time(12, 0))
    assert parse_closure("2026-12-28..2026-12-31") == (date(2026, 12, 28), date(2026, 12, 31))
    for bad_hours in (["12:00-08:30"], ["08:00-12:00", "11:00-13:00"], ["8-12"]):
        with pytest.raises(ValueError):
            WorkCalendar.of(bad_hours)
    with pytest.raises(ValueError):
        parse_closure("2026-12-31..2026-12-01")
    with pytest.raises(ValueError):
        CAL.add_hours(local(2025, 6, 4), timedelta(hours=-1))


# --- the laws -------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(calendars, instants, spans)
def test_adding_working_time_lands_in_working_time_or_at_a_period_end(
    cal: WorkCalendar, t: datetime, d: timedelta
) -> None:
    """Adding more than nothing lands inside a working period or exactly at its end (the end
    itself is not working time: the instant just before it is)."""
    if d == timedelta(0):
        assert cal.add_hours(t, d) == t
        return
    u = cal.add_hours(t, d)
    assert u > t
    assert cal.is_working(u) or cal.is_working(u - timedelta(microseconds=1))


@settings(max_examples=300, deadline=None)
@given(calendars, instants, spans, spans)
def test_adding_a_then_b_is_adding_a_plus_b(
    cal: WorkCalendar, t: datetime, a: timedelta, b: timedelta
) -> None:
    assert cal.add_hours(cal.add_hours(t, a), b) == cal.add_hours(t, a + b)


@settings(max_examples=300, deadline=None)
@given(calendars, instants, spans)
def test_the_working_time_between_t_and_t_plus_d_is_d(
    cal: WorkCalendar, t: datetime, d: timedelta
) -> None:
    assert cal.between(t, cal.add_hours(t, d)) == d


@settings(max_examples=300, deadline=None)
@given(calendars, instants, spans, spans)
def test_adding_is_monotonic(cal: WorkCalendar, t: datetime, a: timedelta, b: timedelta) -> None:
    lo, hi = sorted((a, b))
    assert cal.add_hours(t, lo) <= cal.add_hours(t, hi)
    later = t + (hi - lo)
    assert cal.add_hours(t, lo) <= cal.add_hours(later, lo)


@settings(max_examples=200, deadline=None)
@given(calendars, instants, st.integers(0, 25), st.integers(0, 25))
def test_working_days_compose_and_count_back(
    cal: WorkCalendar, t: datetime, a: int, b: int
) -> None:
    u = cal.add_days(t, a)
    assert cal.add_days(u, b) == cal.add_days(t, a + b)
    assert cal.working_days_between(t, u) == a
    if a:
        day = u.astimezone(TZ).date()
        assert cal.is_working_day(day) and u == cal.close_of(day)
        assert u.astimezone(TZ).date() > t.astimezone(TZ).date()  # its own day not counted
    assert cal.add_days(t, min(a, b)) <= cal.add_days(t, max(a, b))
