"""The stages' warnings (pure): thresholds per tier and stage, when a warning is due, the share of
the stage elapsed, in natural and in working time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from services.dispatch.actions import deliberate
from services.dispatch.merges import Merges
from services.dispatch.planning import Plan, Policy
from services.dispatch.sla import SlaPolicy
from services.dispatch.stages import (
    NATURAL,
    WarnPolicy,
    WorkingTime,
    elapsed_share,
    warn_at,
    warn_times,
)
from services.dispatch.states import transition
from services.dispatch.tiers import TierWarnings, load_rules
from services.dispatch.workcalendar import WorkCalendar
from shared.contract.events import HandlerAction
from shared.contract.taxonomy import default_taxonomy
from tests.dispatch.support import T0, a_case

SH = ZoneInfo("Asia/Shanghai")
WORKING = WorkingTime(WorkCalendar.of(["08:30-12:00", "13:30-17:30"], []))


def test_thresholds_per_tier_and_stage_else_the_default() -> None:
    policy = WarnPolicy(0.7, {"grid": TierWarnings(respond=0.5)})
    assert policy.fraction("grid", "respond") == 0.5
    assert policy.fraction("grid", "resolve") == 0.7
    assert policy.fraction("street", "respond") == 0.7
    assert WarnPolicy().fraction("district", "resolve") == 0.8


def test_the_warning_times_of_a_dispatch() -> None:
    case = a_case()  # dispatched at T0: respond by T0 + 2 h, resolve by T0 + 24 h
    assert case.respond_by == T0 + timedelta(hours=2)
    change = warn_times(case, T0, WarnPolicy()).columns()
    assert change == {
        "respond_warn_at": T0 + timedelta(minutes=96),
        "resolve_warn_at": T0 + timedelta(hours=19, minutes=12),
        "verify_warn_at": None,  # nothing to verify yet
    }
    # only the stages asked for; a stage without a deadline has no warning
    assert warn_times(case, T0, WarnPolicy(), ("respond",)).columns().keys() == {"respond_warn_at"}
    held = a_case(respond_by=None, resolve_by=None)
    assert warn_times(held, T0, WarnPolicy()).columns() == {
        "respond_warn_at": None,
        "resolve_warn_at": None,
        "verify_warn_at": None,
    }


def test_a_working_time_stage_is_warned_in_working_hours() -> None:
    friday = datetime(2026, 11, 20, 17, 0, tzinfo=SH)
    monday_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH)  # 2 working hours later
    assert warn_at(friday, monday_10, 0.8, WORKING) == datetime(2026, 11, 23, 9, 36, tzinfo=SH)
    assert warn_at(friday, monday_10, 0.8) == datetime(2026, 11, 22, 21, 0, tzinfo=SH)  # natural
    nine_37 = datetime(2026, 11, 23, 9, 37, tzinfo=SH)
    warn = warn_at(friday, monday_10, 0.8, WORKING)
    assert elapsed_share(monday_10, warn, 0.8, nine_37, WORKING) == 0.808


@given(
    span=st.integers(min_value=60, max_value=30 * 86400),
    fraction=st.floats(min_value=0.05, max_value=0.95),
    later=st.floats(min_value=0, max_value=1),
)
def test_the_share_elapsed_is_the_fraction_at_the_warning(
    span: int, fraction: float, later: float
) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    deadline = start + timedelta(seconds=span)
    warn = warn_at(start, deadline, fraction, NATURAL)
    assert start <= warn <= deadline
    assert abs(elapsed_share(deadline, warn, fraction, warn) - fraction) <= 0.0011
    # and it grows from there to 1 at the deadline
    now = warn + (deadline - warn) * later
    share = elapsed_share(deadline, warn, fraction, now)
    assert fraction - 0.0011 <= share <= 1.0
    assert elapsed_share(deadline, warn, fraction, deadline) == 1.0


def test_merged_reports_bring_an_unsent_warning_forward_and_a_deliberation_moves_it_back() -> None:
    rules = load_rules()
    policy = Policy(default_taxonomy(), rules, SlaPolicy(rules))
    merges = Merges(policy, lambda: T0)
    # a merge made the case urgent: respond within 30 minutes, so warned 24 minutes in
    case = a_case(respond_within_s=1800.0, respond_warn_at=T0 + timedelta(minutes=96))
    plan = merges.tighten_response(case, T0 + timedelta(minutes=5), ("urgent",))
    assert plan.after.respond_by == T0 + timedelta(minutes=30)
    assert plan.after.respond_warn_at == T0 + timedelta(minutes=24)
    # already warned in this attempt: not again
    warned = a_case(respond_within_s=1800.0, respond_warn_at=None)
    assert merges.tighten_response(warned, T0, ("urgent",)).after.respond_warn_at is None
    # a deliberation of two days moves the resolution's warning back by two days
    accepted = a_case(state="accepted", resolve_warn_at=T0 + timedelta(hours=19, minutes=12))
    t = transition("accepted", "deliberate")
    assert t is not None
    action = HandlerAction(
        action_id="a-1",
        case_id="c-1",
        handler_id="h-0001",
        action="deliberate",
        at=T0,
        note="议",
        decide_by=T0 + timedelta(days=2),
    )
    paused = deliberate(policy, accepted, action, t, T0)
    assert isinstance(paused, Plan)
    assert paused.after.resolve_warn_at == T0 + timedelta(days=2, hours=19, minutes=12)
