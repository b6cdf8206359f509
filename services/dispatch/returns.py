"""退单 (pure): a unit returns a case as not theirs, with its reason, and the case goes to its
district's command centre's triage queue (人工分拨).

- **return** (``handler.actions``, the note its reason): the case is ``triage``, held by its
  district (``triage.holder``'s rule: the widest unit of its place), nobody's, no deadline
  running and no pause, any extension request or verification ended; the returning unit joins
  ``excluded_units``. Its queue entry (``model.TriageEntry``) has reason ``returned``, who
  returned it and why, and the case's text and the classifier's suggestions as intake published
  them (``case_texts``); ``cases.returned`` is published (feedback counts it: 退单率).
- **the command centre decides** (``triage.Triage.reclassify``, origin ``return``): its
  category, or the same one; either way the decision is a labelled example for the classifier
  (``cases.reclassified``), and the case is dispatched again (attempt + 1): while its category
  stays, at its tier or above and past every unit that returned it (one tier up when its tier
  has no other unit); by its new category's rules otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.contract.events import HandlerAction

from . import emit
from .model import Case, CaseChange, Step, Suggestion, TriageEntry
from .planning import NO_EXTENSION_REQUEST, NO_VERIFICATION, Plan, acted
from .states import Transition

RETURNED = "returned"  # the queue entry's reason


def holder_of(case: Case) -> str:
    """Who holds a returned case: its district's command centre (the widest unit of its
    place)."""
    held = case.district or case.street or case.community or case.grid or case.building
    return held or case.unit


def plan_return(case: Case, a: HandlerAction, t: Transition, now: datetime) -> Plan:
    """The case in the command centre's queue (pure): its step and ``cases.returned``."""
    held = holder_of(case)
    change = (
        CaseChange(
            state=t.to_state,
            unit=held,
            handler_id=None,
            respond_by=None,
            resolve_by=None,
            respond_warn_at=None,
            resolve_warn_at=None,
            resolve_missed_at=None,
            accepted_at=None,
            paused_at=None,
            paused_until=None,
            excluded_units=(*case.excluded_units, case.unit),
        )
        | NO_EXTENSION_REQUEST
        | NO_VERIFICATION
    )
    after = case.apply(change)
    detail = {
        **acted(a),
        "returned_by": case.unit,
        "held_by": held,
        "attempt": case.attempt,
    }
    step = Step.of(t, after, now, detail, actor=a.handler_id)
    returned = emit.returned(case, a, held_by=held, at=now)
    return Plan(case, change, after, (step,), (returned,))


def queue_entry(
    case: Case, a: HandlerAction, text: Mapping[str, Any] | None, now: datetime
) -> TriageEntry:
    """The returned case's entry in the queue: who returned it and why, with its text and
    suggestions (``text``: its ``case_texts`` row, ``store.case_text``; None for a case opened
    before dispatch kept them: then its category is the one suggestion and the text says so)."""
    if text is None:
        return TriageEntry(
            case_id=case.case_id,
            since=now,
            reasons=(RETURNED,),
            confidence=0.0,
            suggestions=(Suggestion(case.category, 0.0),),
            moderation=(),
            source="unknown",
            title=None,
            description="（该诉求受理时未保存文本，请查阅受理系统）",
            returned_by=case.unit,
            return_note=a.note,
        )
    return TriageEntry(
        case_id=case.case_id,
        since=now,
        reasons=(RETURNED,),
        confidence=text["confidence"],
        suggestions=tuple(text["suggestions"]),
        moderation=tuple(text["moderation"]),
        source=text["source"],
        title=text["title"],
        description=text["description"],
        returned_by=case.unit,
        return_note=a.note,
    )
