"""Councils (议事会/联席会), pure: recording a council's decision on a case at deliberation.

A case goes to the residents' council with ``deliberate`` (``actions.py``: its resolution clock
paused until ``decide_by``). The council meets and decides; the case's handler (the staff of the
case's unit or of its community) records it (``POST /cases/{case_id}/council``):

- the **body** (居民议事会, 联席会议, 业委会 ...), the **meeting date** (not in the future, not
  before the case was opened, Asia/Shanghai), the **decision** (text), the **votes** for, against
  and abstaining (whole numbers, at least 0);
- the **measures** and who carries them (``[{text, unit}]``, at most ``MAX_MEASURES``): each
  becomes a **required** assisting work order to that unit (``orders.py``, origin ``council``),
  so the case resolves only when every measure is done.

The deliberation ends with the decision (``council_decision`` in the transition table:
``accepted`` again, the pause cleared; the resolution deadline keeps what ``deliberate`` gave
it). Recorded as a ``council_decision`` step on the timeline and published as
``cases.council_decided`` beside each measure's ``cases.order_issued``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from shared.contract.events import CouncilDecided, CouncilMeasure

from .model import Case, CaseChange, Step
from .orders import Refused
from .states import COMMAND_CENTRE, Actor, Transition

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
MAX_MEASURES: Final = 20


@dataclass(frozen=True, slots=True)
class Measure:
    text: str
    unit: str


@dataclass(frozen=True, slots=True)
class Decide:
    """What the handler records of the council's decision."""

    body: str
    meeting_date: date
    decision: str
    votes_for: int
    votes_against: int
    votes_abstain: int
    measures: tuple[Measure, ...]


def recorder_refusal(actor: Actor, case: Case) -> Refused | None:
    """Why ``actor`` may not record the council's decision on ``case`` (None: they may): the
    staff of the case's unit or of its community (the council's), not a party volunteer nor the
    command centre."""
    if actor.role in (COMMAND_CENTRE, "party_volunteer"):
        return Refused("a council's decision is recorded by the case's staff", 403)
    if actor.unit not in (case.unit, case.community):
        return Refused("only the staff of the case's unit or community record its council", 403)
    return None


def decision_refusal(case: Case, ask: Decide, today: date) -> Refused | None:
    """Why ``ask`` is wrong for ``case`` (a 422 naming the field; None: it is not). ``today``:
    the date in Asia/Shanghai."""
    if not ask.body.strip():
        return Refused("name the council (议事会, 联席会 ...)", 422, "body")
    if not ask.decision.strip():
        return Refused("the decision's text is required", 422, "decision")
    if ask.meeting_date > today:
        return Refused("the meeting date is in the future", 422, "meeting_date")
    if ask.meeting_date < case.opened_at.astimezone(SHANGHAI).date():
        return Refused("the meeting date is before the case was opened", 422, "meeting_date")
    if len(ask.measures) > MAX_MEASURES:
        return Refused(f"at most {MAX_MEASURES} measures", 422, "measures")
    if any(not m.text.strip() for m in ask.measures):
        return Refused("each measure says what is to be done", 422, "measures")
    return None


def council_id_of(case_id: str, n: int) -> str:
    return f"{case_id}.k{n}"


@dataclass(frozen=True, slots=True)
class Decided:
    change: CaseChange
    step: Step
    event: CouncilDecided


def plan_decision(
    case: Case,
    t: Transition,
    ask: Decide,
    council_id: str,
    order_ids: Sequence[str],
    actor: Actor,
    now: datetime,
) -> Decided:
    """The decision recorded at ``now``: the deliberation ended (the pause cleared), its step and
    its event; ``order_ids``: the work order each measure became, in order."""
    assert len(order_ids) == len(ask.measures)
    change = CaseChange(state=t.to_state, paused_at=None, paused_until=None)
    measures = [
        CouncilMeasure(text=m.text, unit=m.unit, order_id=oid)
        for m, oid in zip(ask.measures, order_ids, strict=True)
    ]
    votes = {"for": ask.votes_for, "against": ask.votes_against, "abstain": ask.votes_abstain}
    step = Step(
        case.case_id,
        now,
        t.event,
        from_state=t.from_state,
        to_state=t.to_state,
        tier=case.tier,
        unit=case.unit,
        handler_id=actor.id,
        detail={
            "council_id": council_id,
            "body": ask.body,
            "meeting_date": ask.meeting_date.isoformat(),
            "decision": ask.decision,
            "votes": votes,
            "measures": [m.model_dump() for m in measures],
        },
    )
    event = CouncilDecided(
        council_id=council_id,
        case_id=case.case_id,
        body=ask.body,
        meeting_date=ask.meeting_date,
        decision=ask.decision,
        votes_for=ask.votes_for,
        votes_against=ask.votes_against,
        votes_abstain=ask.votes_abstain,
        measures=measures,
        tier=case.tier,
        unit=case.unit,
        decided_by=actor.id,
        decided_at=now,
    )
    return Decided(change, step, event)
