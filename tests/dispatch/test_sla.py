"""Deadlines (pure): per tier, scaled, shortened by rules, overridden by a category's SLA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.dispatch.sla import SlaPolicy, extend
from services.dispatch.tiers import DispatchRules, load_rules
from services.dispatch.workcalendar import TZ
from shared.contract.limits import Limit, natural
from shared.contract.taxonomy import SlaOverride

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
POLICY = SlaPolicy(load_rules())


def test_tier_defaults() -> None:
    for tier, respond, resolve in (
        ("grid", timedelta(hours=2), timedelta(hours=24)),
        ("community", timedelta(hours=4), timedelta(days=3)),
        ("street", timedelta(hours=8), timedelta(days=7)),
        ("district", timedelta(hours=24), timedelta(days=15)),
    ):
        dl = POLICY.deadlines(tier, T0)  # type: ignore[arg-type]
        assert (dl.respond_by - T0, dl.resolve_by - T0) == (respond, resolve)


def test_scale_multiplies_every_duration() -> None:
    fast = SlaPolicy(load_rules(), scale=1 / 3600)  # an hour becomes a second
    dl = fast.deadlines("grid", T0, respond_within=timedelta(minutes=30))
    assert dl.respond_by - T0 == timedelta(seconds=0.5)
    assert dl.resolve_by - T0 == timedelta(seconds=24)


def test_rule_only_shortens_the_response() -> None:
    assert POLICY.deadlines("grid", T0, respond_within=timedelta(minutes=30)).respond_by == (
        T0 + timedelta(minutes=30)
    )
    assert POLICY.deadlines("grid", T0, respond_within=timedelta(hours=5)).respond_by == (
        T0 + timedelta(hours=2)
    )
    # the resolution deadline is untouched
    assert POLICY.deadlines("grid", T0, respond_within=timedelta(minutes=30)).resolve_by == (
        T0 + timedelta(hours=24)
    )


def test_category_sla_replaces_the_tier_default() -> None:
    override = SlaOverride(resolve=timedelta(hours=6))
    dl = POLICY.deadlines("grid", T0, category_sla=override)
    assert dl.respond_by == T0 + timedelta(hours=2)
    assert dl.resolve_by == T0 + timedelta(hours=6)


def test_pause_extends_a_deadline() -> None:
    assert extend(T0, timedelta(days=2)) == T0 + timedelta(days=2)
    assert extend(T0, timedelta(seconds=-5)) == T0
    assert extend(None, timedelta(days=1)) is None


# --- working time (工作时/工作日) -----------------------------------------------------------------

WORKING_RULES = DispatchRules.model_validate(
    {
        "sla": {
            "grid": {"respond": "2wh", "resolve": "3wd"},
            "community": {"respond": "4h", "resolve": "5wd"},
            "street": {"respond": "8h", "resolve": "7d"},
            "district": {"respond": "24h", "resolve": "15d"},
        },
        "calendar": {"working_hours": ["08:30-12:00", "13:30-17:30"], "closures": ["2025-06-09"]},
    }
)
WORKING = SlaPolicy(WORKING_RULES)
FRIDAY_EVENING = datetime(2025, 6, 6, 19, 0, tzinfo=TZ)  # no holiday around it


def at(d: int, h: int, mi: int = 0) -> datetime:
    return datetime(2025, 6, d, h, mi, tzinfo=TZ)


def test_limits_are_read_in_three_units() -> None:
    assert Limit.model_validate("2wh") == Limit(unit="working_hours", span=timedelta(hours=2))
    assert Limit.model_validate("3wd") == Limit(unit="working_days", days=3)
    assert Limit.model_validate("PT2H") == natural(timedelta(hours=2))
    assert Limit.model_validate(90) == natural(timedelta(seconds=90))
    assert [str(Limit.model_validate(v)) for v in ("2wh", "3wd", "1.5h")] == ["2wh", "3wd", "1.5h"]
    for bad in ("1.5wd", "0wh", "0", "-2h", "3 weeks"):
        with pytest.raises(ValidationError):
            Limit.model_validate(bad)
    with pytest.raises(ValidationError):
        DispatchRules.model_validate(
            {**WORKING_RULES.model_dump(), "calendar": {"closures": ["x"]}}
        )


def test_working_time_deadlines_skip_the_weekend_and_the_closure() -> None:
    # Friday 19:00: Saturday and Sunday are rest days, Monday 9 June the district's closure
    dl = WORKING.deadlines("grid", FRIDAY_EVENING)
    assert dl.respond_by == at(10, 10, 30)  # Tuesday 08:30 + 2 working hours
    assert dl.resolve_by == at(12, 17, 30)  # working days Tue 10, Wed 11, Thu 12: its close
    # natural time still available per rule, and a rule's respond_within still shortens
    natural_dl = WORKING.deadlines("street", FRIDAY_EVENING)
    assert natural_dl.respond_by - FRIDAY_EVENING == timedelta(hours=8)
    short = WORKING.deadlines("grid", FRIDAY_EVENING, respond_within=timedelta(minutes=30))
    assert short.respond_by - FRIDAY_EVENING == timedelta(minutes=30)


def test_a_categorys_own_working_time_sla() -> None:
    override = SlaOverride.model_validate({"respond": "1wh", "resolve": "1wd"})
    dl = POLICY.deadlines("grid", FRIDAY_EVENING, category_sla=override)
    assert dl.respond_by == at(9, 9, 30)  # the default calendar has no closure
    assert dl.resolve_by == at(9, 17, 30)


def test_the_scale_compresses_the_span_to_a_working_time_deadline() -> None:
    fast = SlaPolicy(WORKING_RULES, scale=1 / 3600)
    full = WORKING.deadlines("grid", FRIDAY_EVENING)
    dl = fast.deadlines("grid", FRIDAY_EVENING)
    assert dl.respond_by - FRIDAY_EVENING == (full.respond_by - FRIDAY_EVENING) / 3600
    assert dl.resolve_by - FRIDAY_EVENING == (full.resolve_by - FRIDAY_EVENING) / 3600
    # a Monday morning's 2wh is shorter than a Friday evening's, scaled or not
    monday = fast.deadlines("grid", at(16, 8, 30))
    assert monday.respond_by - at(16, 8, 30) < dl.respond_by - FRIDAY_EVENING


def test_a_pause_extends_by_the_working_time_paused() -> None:
    resolve_by = at(12, 17, 30)
    limit = Limit.model_validate("3wd")
    # paused Wednesday 11 June 16:30 to Thursday 12 June 09:30: 1 h + 1 h of working time
    extended = WORKING.extend(resolve_by, at(11, 16, 30), at(12, 9, 30), limit)
    assert extended == at(13, 10, 30)  # Friday 08:30 + 2 h
    # a pause over the weekend only pauses no working time
    assert WORKING.extend(resolve_by, at(7, 9), at(8, 18), limit) == resolve_by
    # under a natural limit, the natural time paused
    week = natural(timedelta(days=7))
    assert WORKING.extend(resolve_by, at(7, 9), at(8, 18), week) == resolve_by + timedelta(hours=33)
    assert WORKING.extend(None, at(7, 9), at(8, 18), limit) is None
