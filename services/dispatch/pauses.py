"""缓办/延期 (extensions) and 挂起 (suspension), pure: what each action and each pause's end does
to the resolution deadline (``resolve_by``) and its warning.

- **Extension.** The case's handler asks for a later deadline (``request_extension``: its
  reason, ``extend_to``); the unit one tier up (``states.approver_of``) approves it
  (``approve_extension``: ``resolve_by`` becomes ``extend_to``, which then judges the case on
  time, and ``cases.extended``) or refuses it (``refuse_extension``, with a reason: the deadline
  stays). Unanswered within the tier's ``decide_within`` (scaled), the request lapses
  (``extension_lapsed``). While it waits, the clock pauses when the tier's rules say so
  (``pause_while_pending``), and runs otherwise (the deadline can pass: the case escalates as
  usual and the request with it). At most ``max_extensions`` per case, each at most
  ``max_extension`` past the deadline it extends.
- **Suspension.** The handler suspends an accepted case while waiting for the resident
  (``suspend``: the reason, ``resume_by`` at most ``max_suspension`` ahead); the clock stops
  until they ``resume`` it, or ``resume_by`` comes (``suspension_ended``).
- **A pause whose end is not known when it begins** (a suspension; an extension request that
  pauses the clock) moves the deadline back when it ends, by what it lasted (``running_again``;
  in working time when the case's resolve limit is): a case resumed after two days has two days
  more. A council's pause (``deliberate``), whose end is ``decide_by``, moved it when it began.

Every request, decision, pause and end is a timeline step with its detail.
"""

from __future__ import annotations

from datetime import datetime

from shared.contract.events import HandlerAction

from . import emit
from .model import Case, CaseChange, Step
from .planning import NO_EXTENSION_REQUEST, Plan, Policy, acted
from .stages import warn_at
from .states import OPEN_ENDED, Transition

EXTEND_TO_TOO_EARLY = "extend_to must be after the case's resolution deadline"
RESUME_BY_TOO_EARLY = "resume_by must be after the action's time"


def running_again(policy: Policy, case: Case, at: datetime) -> CaseChange:
    """The clock running again at ``at``: the pause cleared, and an open-ended pause's length
    added to ``resolve_by`` and its warning (``Policy.extend_paused``)."""
    change = CaseChange(paused_at=None, paused_until=None)
    if case.state not in OPEN_ENDED or case.paused_at is None:
        return change
    return change | CaseChange(
        resolve_by=policy.extend_paused(case, case.resolve_by, case.paused_at, at),
        resolve_warn_at=policy.extend_paused(case, case.resolve_warn_at, case.paused_at, at),
    )


def _step(
    case: Case, t: Transition, change: CaseChange, at: datetime, actor: str | None, **detail: object
) -> Plan:
    change = CaseChange(state=t.to_state) | change
    after = case.apply(change)
    return Plan(case, change, after, (Step.of(t, after, at, dict(detail), actor=actor),))


def request_extension(
    policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime
) -> Plan | str:
    """缓办/延期 asked for: the request waits for the unit one tier up until ``decide_within``
    (``paused_until``), the clock paused meanwhile if the tier's rules say so."""
    assert a.extend_to is not None and case.resolve_by is not None
    rules = policy.rules.extensions_of(case.tier)
    approver = case.view.approver
    if approver is None:
        return "no unit above the case's decides its extensions (the case has no such place)"
    if case.extensions >= rules.max_extensions:
        return f"the case was extended {case.extensions} times, the most its tier allows"
    if a.extend_to <= case.resolve_by or a.extend_to <= now:
        return EXTEND_TO_TOO_EARLY
    latest = case.resolve_by + policy.sla.span(rules.max_extension, case.resolve_by) * (
        policy.sla.scale
    )
    if a.extend_to > latest:
        return (
            f"extend_to may be at most {rules.max_extension} after the deadline "
            f"({latest.isoformat()})"
        )
    decide_by = now + policy.sla.span(rules.decide_within, now) * policy.sla.scale
    change = CaseChange(
        extension_to=a.extend_to,
        extension_requested_at=now,
        extension_approver=approver,
        extension_reason=a.note,
        paused_at=now if rules.pause_while_pending else None,
        paused_until=decide_by,
    )
    return _step(
        case,
        t,
        change,
        now,
        a.handler_id,
        **acted(a),
        extend_to=a.extend_to.isoformat(),
        resolve_by=case.resolve_by.isoformat(),
        approver=approver,
        decide_by=decide_by.isoformat(),
        clock_paused=rules.pause_while_pending,
    )


def decide_extension(
    policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime
) -> Plan:
    """The unit one tier up decides: approved, the deadline becomes the one asked for (or the
    paused clock's, if that is later), with a fresh warning, and ``cases.extended``; refused,
    the deadline stays (moved back by the pause, if the clock was paused)."""
    assert case.extension_to is not None and case.extension_requested_at is not None
    change = running_again(policy, case, now) | NO_EXTENSION_REQUEST
    base = case.apply(change)
    assert base.resolve_by is not None
    detail = {**acted(a), "extend_to": case.extension_to.isoformat()}
    if a.action == "refuse_extension":
        detail["resolve_by"] = base.resolve_by.isoformat()
        return _step(case, t, change, now, a.handler_id, **detail)
    new = max(case.extension_to, base.resolve_by)
    fraction = policy.warnings.fraction(case.tier, "resolve")
    warn = warn_at(now, new, fraction, policy.time_count(case, "resolve"))
    change = change | CaseChange(
        resolve_by=new, resolve_warn_at=warn, extensions=case.extensions + 1
    )
    detail |= {"previous_resolve_by": base.resolve_by.isoformat(), "resolve_by": new.isoformat()}
    plan = _step(case, t, change, now, a.handler_id, **detail)
    extended = emit.extended(
        plan.after,
        previous=base.resolve_by,
        reason=case.extension_reason or "",
        approved_by=a.handler_id,
        requested_at=case.extension_requested_at,
        at=now,
    )
    return plan.publishing(extended)


def suspend(
    policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime
) -> Plan | str:
    """挂起: the clock stops from ``now`` until the handler resumes, or ``resume_by``."""
    assert a.resume_by is not None
    longest = policy.rules.extensions_of(case.tier).max_suspension
    if a.resume_by <= now:
        return RESUME_BY_TOO_EARLY
    if a.resume_by - now > longest:
        return f"resume_by must be within {longest.days} days of the action's time"
    change = CaseChange(paused_at=now, paused_until=a.resume_by)
    return _step(case, t, change, now, a.handler_id, **acted(a), resume_by=a.resume_by.isoformat())


def resume(policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime) -> Plan:
    """The handler resumes a suspended case: its clock runs again, the pause added."""
    return _ended(policy, case, t, now, now, a.handler_id, **acted(a))


def pause_ended(policy: Policy, case: Case, t: Transition, now: datetime) -> Plan:
    """A pause reached ``paused_until`` (the sweeper): a council's decision date, a suspension's
    ``resume_by``, an extension request's decision limit. The clock runs again from then."""
    assert case.paused_until is not None  # what the due query selects
    at = min(now, case.paused_until)
    if case.state == "deliberating":  # its pause moved the deadline when it began
        change = CaseChange(paused_at=None, paused_until=None)
        return _step(case, t, change, now, None, decide_by=case.paused_until.isoformat())
    return _ended(policy, case, t, at, now, None, until=case.paused_until.isoformat())


def _ended(
    policy: Policy,
    case: Case,
    t: Transition,
    at: datetime,
    now: datetime,
    actor: str | None,
    **detail: object,
) -> Plan:
    """The clock runs again from ``at`` (the step recorded at ``now``)."""
    change = running_again(policy, case, at)
    if case.state == "extension_requested":
        change = change | NO_EXTENSION_REQUEST
    after = case.apply(change)
    paused = (at - case.paused_at).total_seconds() if case.paused_at is not None else 0.0
    detail |= {
        "paused_s": round(paused, 3),
        "resolve_by": after.resolve_by.isoformat() if after.resolve_by else None,
    }
    return _step(case, t, change, now, actor, **detail)
