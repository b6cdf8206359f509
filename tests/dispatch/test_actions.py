"""The actions that keep a case where it is, planned without a database (pure): what each changes,
records and publishes, and why one is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from structlog.testing import capture_logs

from services.dispatch.actions import Actions, accept, deliberate, progress, resolve
from services.dispatch.planning import Plan, Policy
from services.dispatch.sla import SlaPolicy
from services.dispatch.states import transition
from services.dispatch.tiers import load_rules
from shared.contract.events import ActionKind, HandlerAction
from shared.contract.taxonomy import default_taxonomy
from tests.dispatch.support import T0, a_case

POLICY = Policy(default_taxonomy(), load_rules(), SlaPolicy(load_rules()))


def action(kind: ActionKind, minutes: int = 10, **extra: Any) -> HandlerAction:
    return HandlerAction(
        action_id=f"a-{kind}",
        case_id="c-1",
        handler_id="h-0002",
        action=kind,
        at=T0 + timedelta(minutes=minutes),
        **extra,
    )


def test_accept_on_time_and_late() -> None:
    case = a_case()
    t = transition(case.state, "accept")
    assert t is not None
    plan = accept(case, action("accept"), t, T0 + timedelta(minutes=10))
    assert isinstance(plan, Plan)
    assert plan.change.columns() == {
        "state": "accepted",
        "handler_id": "h-0002",
        "accepted_at": T0 + timedelta(minutes=10),
    }
    (step,) = plan.steps
    assert (step.event, step.from_state, step.to_state, step.handler_id) == (
        "accept",
        "dispatched",
        "accepted",
        "h-0002",
    )
    assert step.detail == {
        "action_id": "a-accept",
        "note": None,
        "reported_at": (T0 + timedelta(minutes=10)).isoformat(),
        "on_time": True,
    }
    (out,) = plan.events
    assert out.topic == "cases.accepted" and out.model_dump()["on_time"] is True
    late = accept(case, action("accept", minutes=180), t, T0 + timedelta(minutes=180))
    assert isinstance(late, Plan) and late.events[0].model_dump()["on_time"] is False


def test_progress_and_resolve_keep_the_case_where_it_is() -> None:
    case = a_case(state="accepted", handler_id="h-0002", resolve_missed_at=T0)
    t = transition(case.state, "progress")
    assert t is not None
    plan = progress(case, action("progress", note="在办"), t, T0)
    assert isinstance(plan, Plan) and plan.change.columns() == {"state": "accepted"}
    assert plan.events == ()
    t = transition(case.state, "resolve")
    assert t is not None
    plan = resolve(POLICY, case, action("resolve", note="已修复"), t, T0)
    assert isinstance(plan, Plan)
    assert plan.after.state == "verifying" and plan.after.resolved_tier == "grid"
    (out,) = plan.events
    body = out.model_dump()
    assert (out.topic, body["note"], body["on_time"]) == (
        "cases.resolved",
        "已修复",
        False,
    )


def test_deliberate_pauses_the_deadline_or_is_refused() -> None:
    case = a_case(state="accepted")
    t = transition(case.state, "deliberate")
    assert t is not None
    decide_by = T0 + timedelta(days=2)
    now = T0 + timedelta(minutes=10)
    plan = deliberate(POLICY, case, action("deliberate", note="议事", decide_by=decide_by), t, now)
    assert isinstance(plan, Plan)
    assert case.resolve_by is not None
    pause = decide_by - (T0 + timedelta(minutes=10))
    assert plan.after.resolve_by == case.resolve_by + pause
    assert (plan.after.state, plan.after.paused_until) == ("deliberating", decide_by)
    too_soon = action("deliberate", note="议事", decide_by=T0)
    assert deliberate(POLICY, case, too_soon, t, now) == "decide_by must be after the action's time"
    nowhere = a_case(state="accepted", community=None)
    assert deliberate(
        POLICY, nowhere, action("deliberate", note="议事", decide_by=decide_by), t, now
    ) == ("the case has no community, so no residents' council")


def test_the_time_applied_decides_not_the_apps() -> None:
    """A backdated accept (its ``at`` before the deadline) applied after the deadline is late,
    at the time applied; the app's time is kept as ``reported_at`` (event and timeline)."""
    case = a_case()
    assert case.respond_by is not None
    t = transition(case.state, "accept")
    assert t is not None
    applied = case.respond_by + timedelta(minutes=1)
    backdated = action("accept", minutes=10)
    plan = accept(case, backdated, t, applied)
    assert isinstance(plan, Plan)
    body = plan.events[0].model_dump()
    assert (body["on_time"], body["accepted_at"], body["reported_at"]) == (
        False,
        applied,
        backdated.at,
    )
    assert plan.after.accepted_at == applied and plan.steps[0].at == applied
    assert plan.steps[0].detail["reported_at"] == backdated.at.isoformat()
    # and the other way round: an app whose clock runs late does not make a prompt accept late
    slow = action("accept", minutes=600)
    prompt = accept(case, slow, t, T0 + timedelta(minutes=5))
    assert isinstance(prompt, Plan) and prompt.events[0].model_dump()["on_time"] is True
    t = transition("accepted", "resolve")
    assert t is not None
    accepted = a_case(state="accepted", handler_id="h-0002")
    assert accepted.resolve_by is not None
    done = resolve(POLICY, accepted, action("resolve", note="已修复"), t, accepted.resolve_by)
    assert isinstance(done, Plan)
    body = done.events[0].model_dump()
    assert (body["on_time"], body["resolved_at"]) == (True, accepted.resolve_by)


def test_a_skewed_action_is_logged_without_who_and_counted() -> None:
    actions = Actions(POLICY, lambda: T0, skew_max=timedelta(minutes=5))
    counted: list[str] = []
    actions.on_skew = counted.append
    with capture_logs() as logs:
        actions.check_skew(action("accept", minutes=4), T0)  # 4 minutes: within the bound
        actions.check_skew(action("accept", minutes=-90), T0)  # 90 minutes backdated
    assert counted == ["accept"]
    (entry,) = [e for e in logs if e["event"] == "handler action time skewed"]
    assert entry["skew_s"] == 5400.0 and entry["app_ahead"] is False
    assert (entry["action"], entry["case_id"]) == ("accept", "c-1")
    assert "h-0002" not in repr(entry)  # no handler (nor anything personal) in the line
