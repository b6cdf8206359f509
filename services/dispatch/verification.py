"""核查结案 (verification before closing), pure: what a resolve leaves for its verifier, and what
the verifier's decision, a verification deadline missed and a district that does not verify do.

- **Awaited.** A resolve moves the case to ``verifying``: its verifier unit (``states.verifier_of``:
  the community for a case resolved at the grid, the grid for one the community or a street or
  district department resolved), its deadline ``verify_by`` (the tier's ``sla.verify``,
  from the resolve, scaled) and its warning (黄牌); the resolution clock stops (``paused_at``), so
  that the time in verification is not the handler's.
- **Verified** (``verify``): a verifier of that unit other than the resolving handler confirms it
  on site (a note; photos); the case is ``resolved`` and ``cases.verified`` sends it to the
  resident's follow-up (回访). On time when applied by ``verify_by``.
- **Sent back** (``send_back``, with the reason): the resolution is withdrawn, the case is
  ``accepted`` again by the same handler, its resolution deadline moved back by the time it spent
  in verification (``pauses.running_again``), and ``cases.sent_back``.
- **Late** (``verify_timeout``, the sweeper at ``verify_by``): ``cases.overdue`` for the verify
  stage, against the verifier unit (a red card, once); the case still awaits its verification.
- **Waived** (``verification_waived``): the rules file's ``verification.required`` is false, or the
  case has no place whose staff could verify it: resolved at once, the follow-up starting from
  ``cases.resolved``.
"""

from __future__ import annotations

from datetime import datetime

from shared.contract.events import HandlerAction

from . import emit
from .model import Case, CaseChange, Step
from .pauses import running_again
from .planning import NO_VERIFICATION, Plan, Policy, acted
from .stages import warn_at
from .states import Transition, transition, verifier_of

NOT_REQUIRED = "the district does not verify resolutions"
NO_VERIFIER = "the case has no community or grid whose staff could verify it"


def awaited(policy: Policy, resolved: Case, now: datetime) -> CaseChange | str:
    """What the resolve at ``now`` sets for the verification (``resolved``: the case as the
    resolve leaves it), or why there is none (the reason it is waived)."""
    if not policy.rules.verification.required:
        return NOT_REQUIRED
    verifier = verifier_of(resolved.tier, resolved.codes)
    if verifier is None:
        return NO_VERIFIER
    verify_by = policy.sla.verify_by(resolved.tier, now)
    fraction = policy.warnings.fraction(resolved.tier, "verify")
    count = policy.time_count(resolved, "verify")
    return CaseChange(
        verifier_unit=verifier,
        verify_by=verify_by,
        verify_warn_at=warn_at(now, verify_by, fraction, count),
        verify_missed_at=None,
        paused_at=now,
        paused_until=None,
    )


def waived(resolving: Plan, reason: str, now: datetime) -> Plan:
    """The resolve ``resolving`` followed at once by ``verification_waived``: resolved."""
    t = transition(resolving.after.state, "verification_waived")
    assert t is not None  # a resolve leaves the case verifying
    change = CaseChange(state=t.to_state) | NO_VERIFICATION | CaseChange(paused_at=None)
    after = resolving.after.apply(change)
    step = Step.of(t, after, now, {"reason": reason})
    return resolving.then(Plan(resolving.after, change, after, (step,)))


def verify(case: Case, a: HandlerAction, t: Transition, now: datetime) -> Plan:
    """Confirmed on site: resolved, and ``cases.verified`` (on time when by ``verify_by``)."""
    on_time = case.verify_missed_at is None and (case.verify_by is None or now <= case.verify_by)
    change = CaseChange(state=t.to_state) | NO_VERIFICATION | CaseChange(paused_at=None)
    after = case.apply(change)
    detail = {**acted(a), "verifier_unit": case.verifier_unit, "on_time": on_time}
    step = Step.of(t, after, now, detail, actor=a.handler_id)
    event = emit.verified(case, a, at=now, on_time=on_time)
    return Plan(case, change, after, (step,), (event,))


def send_back(policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime) -> Plan:
    """Not confirmed: the resolution withdrawn, the case its handler's again, the deadline moved
    back by the time in verification, and ``cases.sent_back``."""
    change = (
        CaseChange(state=t.to_state)
        | running_again(policy, case, now)
        | NO_VERIFICATION
        | CaseChange(resolved_at=None, resolved_tier=None, resolved_unit=None)
    )
    after = case.apply(change)
    detail = {
        **acted(a),
        "verifier_unit": case.verifier_unit,
        "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
        "resolve_by": after.resolve_by.isoformat() if after.resolve_by else None,
    }
    step = Step.of(t, after, now, detail, actor=a.handler_id)
    event = emit.sent_back(case, after, a, at=now)
    return Plan(case, change, after, (step,), (event,))


def missed(case: Case, now: datetime) -> Plan:
    """The verification deadline found missed at ``now``: ``cases.overdue`` (verify) against the
    verifier unit, recorded so that it fires once; the case still awaits its verification."""
    t = transition(case.state, "verify_timeout")
    assert t is not None and case.verify_by is not None  # what the due query selects
    change = CaseChange(verify_missed_at=now, verify_warn_at=None)
    after = case.apply(change)
    detail = {"missed": case.verify_by.isoformat(), "verifier_unit": case.verifier_unit}
    step = Step.of(t, after, now, detail)
    return Plan(case, change, after, (step,), (emit.overdue(case, "verify", now),))
