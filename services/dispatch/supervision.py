"""Supervision (督办) sent by the command centre (pure): the command centre of the case's area
tells the unit that has an open case to see to it, with a note and, optionally, when to report
back. It changes no state, no tier and no deadline: it is recorded on the case's timeline
(``supervise``), published as ``cases.supervised`` (the case's handler sees it on the phone page,
feedback counts it per unit and period) and numbered per case (1, 2, ...).

Distinct from the supervision a second reopen flags (``reopening``: the street office watches a
case residents sent back twice, ``cases.escalated`` reason ``supervision``), which this leaves as
it is. Who sends it is the token's principal (``shared.runtime.identity``), when is the clock.
``supervision_api`` is its route, ``supervision_store`` its SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared.contract.events import CaseSupervised, DecidedBy

from .model import Case, Step

# A case still with its unit: not resolved (nor resolved and awaiting its verification, 核查),
# not awaiting the command centre's category (人工分拨: no unit has it yet)
NOT_SUPERVISABLE: Final = frozenset({"resolved", "verifying", "triage"})
MAX_NOTE: Final = 2000


class Refused(Exception):
    """The supervision cannot be sent; ``field`` names the request's field at fault (a 422),
    else the case's state does not allow it (a 409)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True, slots=True)
class Supervise:
    """What the command centre asks: the note, and when to report back (optional)."""

    note: str
    report_by: datetime | None
    by: DecidedBy


@dataclass(frozen=True, slots=True)
class Supervision:
    """One supervision as planned: its timeline step and its event."""

    step: Step
    event: CaseSupervised


def refusal(case: Case, ask: Supervise, now: datetime) -> Refused | None:
    """Why ``ask`` cannot be sent on ``case`` at ``now``, or None."""
    if case.state in NOT_SUPERVISABLE:
        what = {"resolved": "resolved", "verifying": "resolved, awaiting its verification"}.get(
            case.state, "awaiting triage (no unit has it)"
        )
        return Refused(f"the case is {what}: only an open case is supervised")
    if not ask.note.strip():
        return Refused("a supervision says what is to be done: note is required", "note")
    if ask.report_by is not None and ask.report_by <= now:
        return Refused("report_by must be later than now", "report_by")
    return None


def plan(case: Case, ask: Supervise, number: int, now: datetime) -> Supervision:
    """The ``number``-th supervision of ``case``, sent at ``now`` (``refusal`` was None)."""
    detail: dict[str, Any] = {
        "note": ask.note,
        "supervision": number,
        "by": ask.by.model_dump(exclude_none=True),
    }
    if ask.report_by is not None:
        detail["report_by"] = ask.report_by.isoformat()
    step = Step(
        case.case_id,
        now,
        "supervise",
        from_state=case.state,
        to_state=case.state,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        detail=detail,
    )
    event = CaseSupervised(
        case_id=case.case_id,
        supervision=number,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        attempt=case.attempt,
        note=ask.note,
        report_by=ask.report_by,
        by=ask.by,
        supervised_at=now,
    )
    return Supervision(step, event)
