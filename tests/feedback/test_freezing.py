"""Frozen months (pure): when a month's figures freeze, which month is due, the adjustments."""

from __future__ import annotations

from datetime import timedelta

from services.feedback.freezing import FreezePolicy, adjustments
from services.feedback.periods import parse_period
from tests.feedback.helpers import sh

POLICY = FreezePolicy(timedelta(days=5))


def test_a_month_freezes_its_grace_after_it_closed() -> None:
    october = parse_period("2026-10")
    assert POLICY.freezes_at(october) == sh(11, 6)  # 1 November 00:00 Shanghai + 5 days
    assert POLICY.status(october, sh(11, 5, 23, 59)) == "provisional"
    assert POLICY.status(october, sh(11, 6)) == "frozen"


def test_weeks_and_days_never_freeze() -> None:
    for label in ("2026-W40", "2026-10-05"):
        p = parse_period(label)
        assert POLICY.freezes_at(p) is None
        assert POLICY.status(p, sh(12, 31)) == "provisional"


def test_the_month_due_is_the_latest_past_its_grace() -> None:
    assert POLICY.due(sh(11, 10)).label == "2026-10"
    assert POLICY.due(sh(11, 5)).label == "2026-09"  # October's grace not over yet
    assert POLICY.due(sh(1, 6, year=2027)).label == "2026-12"
    long = FreezePolicy(timedelta(days=40))
    assert long.due(sh(12, 5)).label == "2026-09"  # October closed 1 November + 40 days > 5 Dec


def test_adjustments_list_what_later_events_changed() -> None:
    frozen = {
        "received": 4,
        "response_rate": {"rate": 0.5, "numerator": 2, "denominator": 4},
        "satisfaction_rate": {"rate": 1.0, "numerator": 1, "denominator": 1},
        "time_to_resolve_hours": {"median": 6.0, "p90": 8.0, "cases": 2},
    }
    current = {
        "received": 5,
        "response_rate": {"rate": 0.6, "numerator": 3, "denominator": 5},
        "satisfaction_rate": {"rate": 1.0, "numerator": 1, "denominator": 1},
        "time_to_resolve_hours": {"median": 7.0, "p90": 8.0, "cases": 3},
        "warned": {"yellow": 1},  # a figure that did not exist when they froze: not listed
    }
    assert adjustments(frozen, current) == [
        {"figure": "received", "frozen": 4, "current": 5, "change": 1},
        {
            "figure": "response_rate",
            "frozen": frozen["response_rate"],
            "current": current["response_rate"],
            "change": {"numerator": 1, "denominator": 1},
        },
        {
            "figure": "time_to_resolve_hours",
            "frozen": frozen["time_to_resolve_hours"],
            "current": current["time_to_resolve_hours"],
        },
    ]
    assert adjustments(frozen, frozen) == []
