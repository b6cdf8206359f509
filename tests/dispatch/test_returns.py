"""退单 (pure): a return puts the case in the command centre's queue, nobody's, no deadline,
the returning unit excluded; its queue entry carries who returned it, why, and the case's text."""

from __future__ import annotations

from datetime import timedelta

from services.dispatch.model import Case, Suggestion
from services.dispatch.returns import RETURNED, holder_of, plan_return, queue_entry
from services.dispatch.states import transition
from shared.contract.events import CaseReturned, HandlerAction
from tests.dispatch.support import T0, a_case

HOUR = timedelta(hours=1)


def returning(case: Case, note: str = "不属于本网格") -> HandlerAction:
    return HandlerAction(
        action_id="a-return",
        case_id=case.case_id,
        handler_id="h-0001",
        action="return",
        at=T0 + HOUR,
        note=note,
    )


def test_a_returned_case_waits_for_the_command_centre_with_no_clock_running() -> None:
    case = a_case(state="accepted", accepted_at=T0, paused_at=T0, excluded_units=("X",))
    t = transition(case.state, "return")
    assert t is not None and t.to_state == "triage"
    plan = plan_return(case, returning(case), t, T0 + HOUR)
    after = plan.after
    assert after.state == "triage" and after.unit == "WC" == holder_of(case)
    assert after.handler_id is None and after.accepted_at is None and after.paused_at is None
    assert after.respond_by is None and after.resolve_by is None
    assert after.respond_warn_at is None and after.resolve_warn_at is None
    assert after.excluded_units == ("X", "WC-YY-OJY-G01")
    assert after.category == case.category and after.attempt == case.attempt
    (event,) = plan.events
    assert isinstance(event, CaseReturned)
    assert (event.unit, event.handler_id, event.attempt, event.held_by) == (
        "WC-YY-OJY-G01",
        "h-0001",
        1,
        "WC",
    )
    assert event.reason == "不属于本网格" and event.category == "sanitation"
    (step,) = plan.steps
    assert step.event == "return" and step.detail["returned_by"] == "WC-YY-OJY-G01"


def test_the_queue_entry_says_who_returned_it_and_why_with_its_text() -> None:
    case = a_case()
    text = {
        "source": "hotline_12345",
        "title": "楼道堆物",
        "description": "3栋楼道堆满杂物",
        "confidence": 0.62,
        "suggestions": (Suggestion("sanitation", 0.62), Suggestion("fire_safety", 0.3)),
        "moderation": [],
    }
    entry = queue_entry(case, returning(case), text, T0 + HOUR)
    assert entry.reasons == (RETURNED,)
    assert (entry.returned_by, entry.return_note) == ("WC-YY-OJY-G01", "不属于本网格")
    assert entry.description == "3栋楼道堆满杂物" and entry.source == "hotline_12345"
    assert [s.category for s in entry.suggestions] == ["sanitation", "fire_safety"]
    # a case opened before dispatch kept texts: its category is the one suggestion
    old = queue_entry(case, returning(case), None, T0 + HOUR)
    assert [s.category for s in old.suggestions] == ["sanitation"]
    assert old.returned_by == "WC-YY-OJY-G01" and "未保存" in old.description
