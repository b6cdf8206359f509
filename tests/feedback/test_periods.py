"""Periods in Asia/Shanghai local time (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.feedback.periods import parse_period, period_of


def test_month_week_day_bounds_in_shanghai_time() -> None:
    m = parse_period("2026-11")
    assert (m.kind, m.label) == ("month", "2026-11")
    assert m.start.astimezone(UTC) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert m.end.astimezone(UTC) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    w = parse_period("2026-W48")
    assert (w.kind, w.label, w.first_day.isoformat()) == ("week", "2026-W48", "2026-11-23")
    assert w.end_day.isoformat() == "2026-11-30"
    d = parse_period("2026-11-23")
    assert d.start.astimezone(UTC) == datetime(2026, 11, 22, 16, tzinfo=UTC)


def test_local_midnight_decides_the_period() -> None:
    dec = parse_period("2026-12")
    assert dec.contains(datetime(2026, 11, 30, 17, tzinfo=UTC))  # 01:00 on 1 Dec in Shanghai
    assert not dec.contains(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))


def test_the_period_of_an_instant_is_shanghais() -> None:
    late_utc = datetime(2026, 11, 30, 17, tzinfo=UTC)  # the last day of November in UTC
    assert period_of(late_utc).label == "2026-12"
    assert period_of(late_utc, "day").label == "2026-12-01"
    assert period_of(late_utc, "week").label == "2026-W49"
    assert period_of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC)).label == "2026-11"
    for kind in ("day", "week", "month"):
        p = period_of(late_utc, kind)
        assert p.contains(late_utc) and p == parse_period(p.label)


def test_previous_periods() -> None:
    assert parse_period("2026-01").previous().label == "2025-12"
    assert parse_period("2026-W01").previous().label == "2025-W52"
    assert parse_period("2026-03-01").previous().label == "2026-02-28"
    assert parse_period("2026-12").end_day.isoformat() == "2027-01-01"


@pytest.mark.parametrize(
    "bad", ["", "2026", "2026-13", "2026-W54", "2026-W00", "2026-02-30", "26-11", "2026-11-1x"]
)
def test_bad_periods_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="bad period"):
        parse_period(bad)
