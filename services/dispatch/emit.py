"""What dispatch publishes: one factory per event type, used by every place that emits it. Each
event class declares its topic and key (``shared.events.Message``); the places that emit call
``uow.emit(event)``."""

from __future__ import annotations

from datetime import datetime

from shared.contract.events import (
    CaseAccepted,
    CaseDispatched,
    CaseEscalated,
    CaseExtended,
    CaseOverdue,
    CaseReclassified,
    CaseResolved,
    CaseReturned,
    CaseSentBack,
    CaseVerified,
    CaseWarned,
    DecidedBy,
    HandlerAction,
    HandlerActionRejected,
    ReclassifiedFrom,
    Stage,
    Tier,
)

from .model import Case

CaseEvent = (
    CaseDispatched
    | CaseEscalated
    | CaseOverdue
    | CaseWarned
    | CaseAccepted
    | CaseResolved
    | CaseExtended
    | CaseReclassified
    | CaseVerified
    | CaseSentBack
    | CaseReturned
)


def dispatched(case: Case, at: datetime) -> CaseDispatched:
    """``cases.dispatched`` for the case as a (re-)dispatch leaves it."""
    assert case.respond_by is not None and case.resolve_by is not None
    return CaseDispatched(
        case_id=case.case_id,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        respond_by=case.respond_by,
        resolve_by=case.resolve_by,
        tier_reasons=list(case.tier_reasons),
        attempt=case.attempt,
        category=case.category,
        dispatched_at=at,
    )


def extended(
    case: Case,
    *,
    previous: datetime,
    reason: str,
    approved_by: str,
    requested_at: datetime,
    at: datetime,
) -> CaseExtended:
    """``cases.extended`` for the case as the approval leaves it (its new ``resolve_by``)."""
    assert case.resolve_by is not None
    return CaseExtended(
        case_id=case.case_id,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        previous_resolve_by=previous,
        resolve_by=case.resolve_by,
        reason=reason,
        approved_by=approved_by,
        requested_at=requested_at,
        extended_at=at,
    )


def escalated(
    case: Case, *, from_tier: Tier, reason: str, unit: str | None = None
) -> CaseEscalated:
    """``cases.escalated`` for the case as the re-dispatch that moved it up leaves it (at the
    time of that dispatch; ``unit``: the unit named, when not the case's new one)."""
    return CaseEscalated(
        case_id=case.case_id,
        from_tier=from_tier,
        to_tier=case.tier,
        unit=unit if unit is not None else case.unit,
        reason=reason,
        escalated_at=case.dispatched_at,
    )


def overdue(case: Case, deadline: Stage, at: datetime) -> CaseOverdue:
    """``cases.overdue`` (红牌): the case, as it was when it missed ``deadline``, found at
    ``at`` (a verification's: the unit that verifies it is the one late)."""
    due = {"respond": case.respond_by, "resolve": case.resolve_by, "verify": case.verify_by}
    late = case.verifier_unit if deadline == "verify" and case.verifier_unit else case.unit
    return CaseOverdue(
        case_id=case.case_id,
        deadline=deadline,
        unit=late,
        handler_id=None if deadline == "verify" else case.handler_id,
        tier=case.tier,
        due_at=due[deadline],
        overdue_at=at,
    )


def warned(case: Case, stage: Stage, deadline: datetime, at: datetime, share: float) -> CaseWarned:
    """``cases.warned`` (黄牌): ``share`` of the stage's limit elapsed at ``at`` (a verification's:
    to the unit that verifies it)."""
    verifying = stage == "verify" and case.verifier_unit is not None
    return CaseWarned(
        case_id=case.case_id,
        stage=stage,
        tier=case.tier,
        unit=case.verifier_unit if verifying and case.verifier_unit else case.unit,
        handler_id=None if verifying else case.handler_id,
        due_at=deadline,
        warned_at=at,
        elapsed_share=share,
        attempt=case.attempt,
    )


def accepted(
    case: Case, action: HandlerAction, *, applied_at: datetime, on_time: bool
) -> CaseAccepted:
    """``cases.accepted``: at the time dispatch applied it, the app's own time beside it."""
    return CaseAccepted(
        case_id=case.case_id,
        tier=case.tier,
        unit=case.unit,
        handler_id=action.handler_id,
        accepted_at=applied_at,
        on_time=on_time,
        reported_at=action.at,
    )


def resolved(
    case: Case, action: HandlerAction, *, applied_at: datetime, on_time: bool
) -> CaseResolved:
    """``cases.resolved`` for the case as the resolve leaves it (its verifier and verification
    deadline, if it awaits one): at the time dispatch applied it, the app's own time beside
    it."""
    return CaseResolved(
        case_id=case.case_id,
        resolved_at=applied_at,
        tier=case.tier,
        unit=case.unit,
        handler_id=action.handler_id,
        note=action.note or "",
        on_time=on_time,
        reported_at=action.at,
        verifier_unit=case.verifier_unit,
        verify_by=case.verify_by,
    )


def verified(case: Case, action: HandlerAction, *, at: datetime, on_time: bool) -> CaseVerified:
    """``cases.verified`` for the case as it awaited its verification (核查结案)."""
    assert case.resolved_at is not None and case.verifier_unit is not None
    return CaseVerified(
        case_id=case.case_id,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        resolved_at=case.resolved_at,
        verifier_id=action.handler_id,
        verifier_unit=case.verifier_unit,
        note=action.note,
        verify_by=case.verify_by,
        verified_at=at,
        on_time=on_time,
    )


def returned(case: Case, action: HandlerAction, *, held_by: str, at: datetime) -> CaseReturned:
    """``cases.returned`` (退单): the case as its unit returned it."""
    return CaseReturned(
        case_id=case.case_id,
        tier=case.tier,
        unit=case.unit,
        handler_id=action.handler_id,
        category=case.category,
        attempt=case.attempt,
        reason=action.note or "",
        held_by=held_by,
        returned_at=at,
    )


def sent_back(before: Case, after: Case, action: HandlerAction, *, at: datetime) -> CaseSentBack:
    """``cases.sent_back``: the resolution ``before`` had withdrawn, the case as it is ``after``
    (its resolution deadline now)."""
    assert before.resolved_at is not None and before.verifier_unit is not None
    return CaseSentBack(
        case_id=before.case_id,
        tier=before.tier,
        unit=before.unit,
        handler_id=before.handler_id,
        resolved_at=before.resolved_at,
        verifier_id=action.handler_id,
        verifier_unit=before.verifier_unit,
        reason=action.note or "",
        sent_back_at=at,
        resolve_by=after.resolve_by,
    )


def reclassified(
    before: Case,
    after: Case,
    names: tuple[str, str],
    *,
    default_tier: Tier,
    by: DecidedBy,
    at: datetime,
    origin: ReclassifiedFrom,
    note: str | None,
) -> CaseReclassified:
    """``cases.reclassified``: the case's category ``before`` and ``after`` the decision, with
    the two categories' names (``names``: from, to) and the new one's default tier."""
    return CaseReclassified(
        case_id=after.case_id,
        from_category=before.category,
        from_category_name=names[0],
        to_category=after.category,
        to_category_name=names[1],
        to_default_tier=default_tier,
        by=by,
        reclassified_at=at,
        origin=origin,
        note=note,
    )


def action_rejected(
    action_id: str | None, case_id: str | None, reason: str
) -> HandlerActionRejected:
    return HandlerActionRejected(action_id=action_id, case_id=case_id, reason=reason)
