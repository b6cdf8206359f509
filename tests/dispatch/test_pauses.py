"""缓办/延期 and 挂起 (pure): what an extension request, its decision, a suspension and a pause's
end do to the resolution deadline; who decides an extension."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.dispatch.actions import resolve
from services.dispatch.due import running_deadlines
from services.dispatch.model import Case
from services.dispatch.pauses import (
    EXTEND_TO_TOO_EARLY,
    decide_extension,
    pause_ended,
    request_extension,
    resume,
    suspend,
)
from services.dispatch.planning import Plan, Policy
from services.dispatch.sla import SlaPolicy
from services.dispatch.states import (
    Actor,
    approver_of,
    authorization_refusal,
    transition,
)
from services.dispatch.tiers import load_rules
from shared.contract.events import ActionKind, HandlerAction
from shared.contract.taxonomy import default_taxonomy
from tests.dispatch.support import T0, a_case

RULES = load_rules()  # grid pauses the clock while a request waits; other tiers do not
POLICY = Policy(default_taxonomy(), RULES, SlaPolicy(RULES))
HOUR = timedelta(hours=1)


def act(kind: ActionKind, at: datetime, handler: str = "h-0001", **extra: Any) -> HandlerAction:
    return HandlerAction(
        action_id=f"a-{kind}", case_id="c-1", handler_id=handler, action=kind, at=at, **extra
    )


def accepted(**over: object) -> Case:
    return a_case(**{"state": "accepted", "accepted_at": T0, **over})


def planned(p: Plan | str) -> Plan:
    assert isinstance(p, Plan), p
    return p


def requested(case: Case, at: datetime, extend_to: datetime) -> Plan:
    t = transition(case.state, "request_extension")
    assert t is not None
    a = act("request_extension", at, note="需等待配件到货", extend_to=extend_to)
    return planned(request_extension(POLICY, case, a, t, at))


def decided(case: Case, kind: ActionKind, at: datetime, note: str | None = None) -> Plan:
    t = transition(case.state, kind)
    assert t is not None
    return decide_extension(POLICY, case, act(kind, at, "h-0010", note=note), t, at)


def test_a_request_waits_for_the_community_with_the_grid_clock_paused() -> None:
    case = accepted()
    assert case.resolve_by == T0 + 24 * HOUR
    plan = requested(case, T0 + HOUR, T0 + 72 * HOUR)
    after = plan.after
    assert after.state == "extension_requested"
    assert after.extension_to == T0 + 72 * HOUR and after.extension_reason == "需等待配件到货"
    assert after.extension_approver == "WC-YY-OJY"  # the grid's community
    assert after.paused_at == T0 + HOUR  # the grid tier's rules pause the clock
    assert after.paused_until is not None and after.paused_until > T0 + HOUR  # decide_within
    assert after.resolve_by == case.resolve_by  # moved only when the pause ends
    (step,) = plan.steps
    assert step.event == "request_extension" and step.detail["clock_paused"] is True
    assert step.detail["approver"] == "WC-YY-OJY" and plan.events == ()
    # while paused, no resolution deadline runs (the handler API's due status)
    assert [d.kind for d in running_deadlines(after, HOUR, 24 * HOUR, 24 * HOUR)] == []


def test_a_community_tier_request_lets_the_clock_run() -> None:
    case = accepted(tier="community", unit="WC-YY-OJY", handler_id="h-0010")
    after = requested(case, T0 + HOUR, T0 + 48 * HOUR).after
    assert after.paused_at is None and after.extension_approver == "WC-YY"  # the street
    assert [d.kind for d in running_deadlines(after, HOUR, 24 * HOUR, 24 * HOUR)] == ["resolve"]


def test_a_request_is_refused_when_it_asks_too_little_or_too_much() -> None:
    case = accepted()
    t = transition("accepted", "request_extension")
    assert t is not None and case.resolve_by is not None

    def ask(extend_to: datetime, c: Case = case) -> Plan | str:
        a = act("request_extension", T0 + HOUR, note="原因", extend_to=extend_to)
        return request_extension(POLICY, c, a, t, T0 + HOUR)

    assert ask(case.resolve_by) == EXTEND_TO_TOO_EARLY
    too_far = ask(case.resolve_by + timedelta(days=60))
    assert isinstance(too_far, str) and too_far.startswith("extend_to may be at most 15wd")
    assert "the most its tier allows" in str(ask(T0 + 48 * HOUR, accepted(extensions=2)))
    nowhere = accepted(community=None, street=None, district=None)
    assert "no unit above" in str(ask(T0 + 48 * HOUR, nowhere))


def test_approval_sets_the_deadline_asked_for_and_publishes_cases_extended() -> None:
    waiting = requested(accepted(), T0 + HOUR, T0 + 72 * HOUR).after
    plan = decided(waiting, "approve_extension", T0 + 4 * HOUR)
    after = plan.after
    assert after.state == "accepted" and after.resolve_by == T0 + 72 * HOUR
    assert after.extensions == 1 and after.paused_at is None and after.extension_to is None
    # a fresh warning for the extended stage: 80 % of the time from the approval to the deadline
    assert after.resolve_warn_at == T0 + 4 * HOUR + (68 * HOUR) * 0.8
    (extended,) = plan.events
    body = extended.model_dump()
    assert extended.topic == "cases.extended"
    # the previous deadline is the one the pause moved back by its 3 hours
    assert body["previous_resolve_by"] == T0 + 27 * HOUR
    assert body["resolve_by"] == T0 + 72 * HOUR and body["approved_by"] == "h-0010"
    assert body["reason"] == "需等待配件到货" and body["requested_at"] == T0 + HOUR
    assert plan.steps[0].detail["previous_resolve_by"] == (T0 + 27 * HOUR).isoformat()


def test_refusal_keeps_the_deadline_moved_back_by_the_pause() -> None:
    waiting = requested(accepted(), T0 + HOUR, T0 + 72 * HOUR).after
    plan = decided(waiting, "refuse_extension", T0 + 4 * HOUR, note="不符合延期条件")
    after = plan.after
    assert after.state == "accepted" and after.resolve_by == T0 + 27 * HOUR
    assert after.extensions == 0 and after.extension_to is None and plan.events == ()
    assert plan.steps[0].event == "refuse_extension"


def test_a_request_unanswered_lapses_at_its_decision_limit() -> None:
    waiting = requested(accepted(), T0 + HOUR, T0 + 72 * HOUR).after
    assert waiting.paused_until is not None
    t = transition(waiting.state, "extension_lapsed")
    assert t is not None
    late_sweep = waiting.paused_until + timedelta(minutes=7)
    plan = pause_ended(POLICY, waiting, t, late_sweep)
    paused = waiting.paused_until - (T0 + HOUR)
    assert plan.after.state == "accepted" and plan.after.extension_to is None
    # the clock ran again at the limit, not when the sweep found it
    assert plan.after.resolve_by == T0 + 24 * HOUR + paused
    assert plan.steps[0].detail["paused_s"] == paused.total_seconds()


def test_a_suspension_adds_what_it_lasted() -> None:
    case = accepted()
    t = transition("accepted", "suspend")
    assert t is not None
    a = act("suspend", T0 + HOUR, note="居民外出，约定周末上门", resume_by=T0 + 72 * HOUR)
    held = planned(suspend(POLICY, case, a, t, T0 + HOUR)).after
    assert held.state == "suspended" and held.paused_until == T0 + 72 * HOUR
    assert [d.kind for d in running_deadlines(held, HOUR, 24 * HOUR, 24 * HOUR)] == []
    back = transition("suspended", "resume")
    assert back is not None
    plan = resume(POLICY, held, act("resume", T0 + 6 * HOUR), back, T0 + 6 * HOUR)
    assert plan.after.state == "accepted" and plan.after.paused_at is None
    assert plan.after.resolve_by == T0 + 29 * HOUR  # 5 hours suspended
    assert plan.steps[0].detail["paused_s"] == 5 * 3600


def test_a_suspension_needs_a_resume_by_ahead_and_within_its_limit() -> None:
    t = transition("accepted", "suspend")
    assert t is not None
    for resume_by, why in ((T0, "resume_by must be after"), (T0 + timedelta(days=40), "30 days")):
        a = act("suspend", T0 + HOUR, note="等待", resume_by=resume_by)
        assert why in str(suspend(POLICY, accepted(), a, t, T0 + HOUR))


def test_resolving_while_paused_is_judged_against_the_moved_deadline() -> None:
    waiting = requested(accepted(), T0 + 20 * HOUR, T0 + 72 * HOUR).after
    t = transition(waiting.state, "resolve")
    assert t is not None
    # 26 h after dispatch: past the first deadline, but 6 of those hours were paused
    at = T0 + 26 * HOUR
    plan = planned(resolve(POLICY, waiting, act("resolve", at, note="已修复"), t, at))
    assert plan.events[0].model_dump()["on_time"] is True
    # the extension's pause ended; the clock stops again for the verification (核查)
    assert plan.after.paused_at == at and plan.after.extension_to is None
    assert plan.after.state == "verifying"


@pytest.mark.parametrize(
    ("tier", "approver"),
    [("grid", "WC-YY-OJY"), ("community", "WC-YY"), ("street", "WC"), ("district", "WC")],
)
def test_the_approver_is_the_unit_one_tier_up(tier: str, approver: str) -> None:
    place: dict[str, str | None] = {
        "district": "WC",
        "street": "WC-YY",
        "community": "WC-YY-OJY",
        "grid": "WC-YY-OJY-G01",
    }
    assert approver_of(tier, place) == approver


def test_only_the_unit_one_tier_up_decides() -> None:
    waiting = accepted(state="extension_requested").view
    grid_worker = Actor("h-0001", "WC-YY-OJY-G01", "grid_worker")  # the case's own handler
    community = Actor("h-0010", "WC-YY-OJY", "community_staff")
    volunteer = Actor("h-0013", "WC-YY-OJY", "party_volunteer")
    street = Actor("h-0020", "WC-YY", "community_staff")
    assert authorization_refusal(community, waiting, "approve_extension") is None
    assert authorization_refusal(community, waiting, "refuse_extension") is None
    for who in (grid_worker, volunteer, street):
        assert authorization_refusal(who, waiting, "approve_extension") is not None
    # the case's own handler asks, suspends and resumes; the approver does not
    assert authorization_refusal(grid_worker, waiting, "request_extension") is None
    assert authorization_refusal(volunteer, waiting, "suspend") is not None
    # a district-tier case: the district's command centre, not the district's own handlers
    top = accepted(tier="district", unit="WC-CGJ", state="extension_requested").view
    centre = Actor("command_centre.WC", "WC", "command_centre")
    district_staff = Actor("h-0030", "WC", "department_staff")
    assert authorization_refusal(centre, top, "approve_extension") is None
    assert authorization_refusal(district_staff, top, "approve_extension") is not None
    assert authorization_refusal(centre, waiting, "approve_extension") is not None
