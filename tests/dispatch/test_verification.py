"""核查结案 (pure): what a resolve leaves for its verifier, who may verify, and what verifying,
sending back, missing the deadline and a district that does not verify do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.dispatch.actions import resolve
from services.dispatch.due import due_status, limits, running_deadlines
from services.dispatch.model import Case
from services.dispatch.planning import Plan, Policy
from services.dispatch.sla import SlaPolicy
from services.dispatch.states import (
    Actor,
    allowed_actions,
    authorization_refusal,
    transition,
    verifier_of,
)
from services.dispatch.tiers import VerificationRules, load_rules
from services.dispatch.verification import NOT_REQUIRED, missed, send_back, verify
from shared.contract.events import (
    ActionKind,
    CaseOverdue,
    CaseResolved,
    CaseSentBack,
    CaseVerified,
    HandlerAction,
)
from shared.contract.taxonomy import default_taxonomy
from tests.dispatch.support import OJY_G01, T0, a_case

RULES = load_rules()
POLICY = Policy(default_taxonomy(), RULES, SlaPolicy(RULES))
HOUR = timedelta(hours=1)
GRID_WORKER = Actor("h-0001", "WC-YY-OJY-G01", "grid_worker")
COMMUNITY = Actor("h-0010", "WC-YY-OJY", "community_staff")
VOLUNTEER = Actor("h-0013", "WC-YY-OJY", "party_volunteer")


def act(kind: ActionKind, at: datetime, handler: str = "h-0001", **extra: Any) -> HandlerAction:
    return HandlerAction(
        action_id=f"a-{kind}", case_id="c-1", handler_id=handler, action=kind, at=at, **extra
    )


def resolved(case: Case, at: datetime, policy: Policy = POLICY, by: str = "h-0001") -> Plan:
    t = transition(case.state, "resolve")
    assert t is not None
    plan = resolve(policy, case, act("resolve", at, by, note="垃圾已清运"), t, at)
    assert isinstance(plan, Plan), plan
    return plan


def accepted(**over: object) -> Case:
    return a_case(**{"state": "accepted", "accepted_at": T0, **over})


def test_the_verifier_is_the_community_for_the_grid_and_the_grid_above_it() -> None:
    assert verifier_of("grid", dict(OJY_G01)) == "WC-YY-OJY"
    for tier in ("community", "street", "district"):
        assert verifier_of(tier, dict(OJY_G01)) == "WC-YY-OJY-G01"
    no_grid = {**OJY_G01, "grid": None}
    assert verifier_of("street", no_grid) == "WC-YY-OJY"
    assert verifier_of("grid", {"district": "WC", "street": "WC-YY"}) is None


def test_a_resolve_awaits_its_verification_with_the_clock_stopped() -> None:
    case = accepted()
    at = T0 + 3 * HOUR
    plan = resolved(case, at)
    after = plan.after
    assert after.state == "verifying"
    assert after.verifier_unit == "WC-YY-OJY"
    assert after.verify_by is not None and after.verify_by > at
    assert after.verify_warn_at is not None and at < after.verify_warn_at < after.verify_by
    assert after.paused_at == at and after.resolved_at == at
    (event,) = plan.events
    assert isinstance(event, CaseResolved)
    assert event.verifier_unit == "WC-YY-OJY" and event.verify_by == after.verify_by
    assert event.on_time is True
    # only the verification deadline runs now
    deadlines = running_deadlines(after, *limits(POLICY, after))
    assert [d.kind for d in deadlines] == ["verify"]


def test_a_district_that_does_not_verify_resolves_at_once() -> None:
    rules = RULES.model_copy(update={"verification": VerificationRules(required=False)})
    policy = Policy(default_taxonomy(), rules, SlaPolicy(rules))
    plan = resolved(accepted(), T0 + HOUR, policy)
    assert plan.after.state == "resolved" and plan.after.paused_at is None
    assert [s.event for s in plan.steps] == ["resolve", "verification_waived"]
    assert plan.steps[1].detail["reason"] == NOT_REQUIRED
    (event,) = plan.events
    assert isinstance(event, CaseResolved) and event.verifier_unit is None


def test_only_the_verifier_units_staff_other_than_the_resolver_verify() -> None:
    case = resolved(accepted(), T0 + HOUR).after
    assert allowed_actions(COMMUNITY, case.view) == ["verify", "send_back"]
    assert allowed_actions(GRID_WORKER, case.view) == []  # the case's own unit: nothing now
    assert "staff" in (authorization_refusal(VOLUNTEER, case.view, "verify") or "")
    # a community-tier case the community resolved is verified by the grid worker
    community_case = accepted(tier="community", unit="WC-YY-OJY", handler_id="h-0010")
    after = resolved(community_case, T0 + HOUR, by="h-0010").after
    assert after.verifier_unit == "WC-YY-OJY-G01"
    assert allowed_actions(GRID_WORKER, after.view) == ["verify", "send_back"]
    assert allowed_actions(COMMUNITY, after.view) == []
    # the resolver never verifies their own resolution, even in the verifier unit
    own = accepted(tier="community", unit="WC-YY-OJY", handler_id="h-0001")
    mine = resolved(own, T0 + HOUR).after
    why = authorization_refusal(GRID_WORKER, mine.view, "verify")
    assert why == "the handler who resolved the case may not verify it"


def test_verified_on_time_goes_to_the_follow_up() -> None:
    case = resolved(accepted(), T0 + HOUR).after
    t = transition(case.state, "verify")
    assert t is not None and case.verify_by is not None
    at = case.verify_by - HOUR
    plan = verify(case, act("verify", at, "h-0010", note="现场已核实"), t, at)
    after = plan.after
    assert after.state == "resolved" and after.paused_at is None
    assert after.verifier_unit is None and after.verify_by is None
    assert after.resolved_at == T0 + HOUR  # the resolution stands
    (event,) = plan.events
    assert isinstance(event, CaseVerified)
    assert event.on_time is True and event.verifier_id == "h-0010"
    assert event.verifier_unit == "WC-YY-OJY" and event.resolved_at == T0 + HOUR
    assert event.handler_id == "h-0001" and event.note == "现场已核实"
    (step,) = plan.steps
    assert step.event == "verify" and step.handler_id == "h-0010"


def test_verified_after_its_deadline_is_late() -> None:
    case = resolved(accepted(), T0 + HOUR).after
    assert case.verify_by is not None
    t = transition(case.state, "verify")
    assert t is not None
    at = case.verify_by + HOUR
    (event,) = verify(case, act("verify", at, "h-0010"), t, at).events
    assert isinstance(event, CaseVerified) and event.on_time is False


def test_sent_back_the_handler_has_it_again_with_the_time_in_verification_added() -> None:
    case = accepted()
    assert case.resolve_by == T0 + 24 * HOUR
    waiting = resolved(case, T0 + 2 * HOUR).after
    t = transition(waiting.state, "send_back")
    assert t is not None
    at = T0 + 7 * HOUR  # five hours in verification
    plan = send_back(POLICY, waiting, act("send_back", at, "h-0010", note="垃圾仍在"), t, at)
    after = plan.after
    assert after.state == "accepted" and after.handler_id == "h-0001"
    assert after.resolved_at is None and after.resolved_unit is None
    assert after.paused_at is None and after.verifier_unit is None
    assert after.resolve_by == T0 + 29 * HOUR
    (event,) = plan.events
    assert isinstance(event, CaseSentBack)
    assert event.reason == "垃圾仍在" and event.resolved_at == T0 + 2 * HOUR
    assert event.resolve_by == after.resolve_by and event.handler_id == "h-0001"
    # and it can be resolved again, awaiting a fresh verification
    again = resolved(after, T0 + 9 * HOUR).after
    assert again.state == "verifying" and again.verify_by is not None


def test_a_missed_verification_is_a_red_card_for_the_verifier_once() -> None:
    case = resolved(accepted(), T0 + HOUR).after
    assert case.verify_by is not None
    at = case.verify_by + timedelta(minutes=1)
    plan = missed(case, at)
    after = plan.after
    assert after.state == "verifying" and after.verify_missed_at == at
    (event,) = plan.events
    assert isinstance(event, CaseOverdue)
    assert event.deadline == "verify" and event.unit == "WC-YY-OJY"
    assert event.due_at == case.verify_by
    assert due_status(after, running_deadlines(after, *limits(POLICY, after)), at) == "overdue"


@pytest.mark.parametrize("state", ["accepted", "deliberating", "extension_requested"])
def test_every_resolve_awaits_verification(state: str) -> None:
    t = transition(state, "resolve")  # type: ignore[arg-type]
    assert t is not None and t.to_state == "verifying"
