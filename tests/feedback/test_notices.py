"""What residents hear at each milestone (services/feedback/notices.py, pure): the milestone each
event is, its key (the same for the same milestone sent again), the text, the notice's stable id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

from services.feedback.notices import (
    ANSWER_MAX,
    MILESTONE_EVENTS,
    milestone,
    notice,
    notice_id,
)
from shared.contract.events import (
    CaseAccepted,
    CaseDispatched,
    CaseEscalated,
    CaseExtended,
    CaseNotified,
    CaseResolved,
    NoticeKind,
)

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CASE = "C20261123-0000000001"


def dispatched(attempt: int = 1, unit: str = "WC-YY-OJY-G01") -> CaseDispatched:
    return CaseDispatched(
        case_id=CASE,
        tier="grid",
        unit=unit,
        handler_id="h-0001",
        respond_by=AT + timedelta(hours=2),
        resolve_by=AT + timedelta(hours=8),  # 18:00 in Shanghai
        attempt=attempt,
        dispatched_at=AT,
    )


def resolved(note: str, at: datetime = AT) -> CaseResolved:
    return CaseResolved(
        case_id=CASE,
        resolved_at=at,
        tier="community",
        unit="WC-YY-OJY",
        handler_id="h-0002",
        note=note,
        on_time=True,
    )


def test_assigned_names_the_unit_and_the_deadline_in_shanghai_time() -> None:
    m = milestone(dispatched(), at=AT, unit_name="欧景苑第一网格")
    assert (m.kind, m.key, m.at, m.deadline) == (
        "assigned",
        "assigned:1",
        AT,
        AT + timedelta(hours=8),
    )
    assert (
        m.text
        == f"您反映的问题（{CASE}）已派至欧景苑第一网格办理，办理时限至2026年11月23日 18:00。"
    )


def test_a_unit_the_registry_does_not_name_is_told_by_its_tier() -> None:
    m = milestone(dispatched(unit="WC-YY-XX-G09"), at=AT, unit_name=None)
    assert "已派至网格办理" in m.text and "WC-YY-XX-G09" not in m.text


def test_the_same_milestone_sent_again_has_the_same_key_and_another_does_not() -> None:
    """A re-dispatch of the same attempt is the same milestone, whatever its time; the next
    attempt (after an escalation, a transfer) is another."""
    first = milestone(dispatched(1), at=AT, unit_name=None)
    again = milestone(dispatched(1), at=AT + timedelta(minutes=5), unit_name=None)
    assert first.key == again.key
    assert milestone(dispatched(2), at=AT, unit_name=None).key == "assigned:2"
    # the time keys are in UTC whatever the offset of the event's time
    local = AT.astimezone(ZoneInfo("Asia/Shanghai"))
    assert (
        milestone(resolved("好", local), at=local, unit_name=None).key
        == milestone(resolved("好"), at=AT, unit_name=None).key
    )
    assert milestone(resolved("好", AT + timedelta(seconds=1)), at=AT, unit_name=None).key != (
        milestone(resolved("好"), at=AT, unit_name=None).key
    )


def test_accepted_and_extended() -> None:
    accepted = CaseAccepted(
        case_id=CASE,
        tier="grid",
        unit="WC-YY-OJY-G01",
        handler_id="h-1",
        accepted_at=AT,
        on_time=True,
    )
    m = milestone(accepted, at=AT, unit_name="欧景苑第一网格")
    assert (m.kind, m.deadline) == ("accepted", None)
    assert m.text == f"您反映的问题（{CASE}）已由欧景苑第一网格接单，正在办理。"
    new = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
    extended = CaseExtended(
        case_id=CASE,
        tier="grid",
        unit="WC-YY-OJY-G01",
        previous_resolve_by=AT,
        resolve_by=new,
        reason="等待配件",
        approved_by="h-0002",
        requested_at=AT,
        extended_at=AT + timedelta(hours=1),
    )
    m = milestone(extended, at=extended.extended_at, unit_name=None)
    assert (m.kind, m.deadline) == ("extended", new)
    assert m.key == "extended:2026-11-23T03:00:00+00:00"
    assert m.text == f"您反映的问题（{CASE}）办理时限已延长至2026年11月30日 17:30。"
    assert "等待配件" not in m.text  # the handler's reason is not the residents'


def test_resolved_tells_the_answer_with_personal_numbers_masked() -> None:
    m = milestone(resolved("  已联系物业清运，王师傅 13812345678 负责  "), at=AT, unit_name=None)
    assert m.kind == "resolved"
    assert m.text == f"您反映的问题（{CASE}）已办结。答复：已联系物业清运，王师傅 138****5678 负责"
    assert (
        milestone(resolved("   "), at=AT, unit_name=None).text == f"您反映的问题（{CASE}）已办结。"
    )
    long = milestone(resolved("很" * (ANSWER_MAX + 50)), at=AT, unit_name=None).text
    assert long.endswith("…") and long.count("很") == ANSWER_MAX - 1


def test_which_events_are_milestones() -> None:
    assert {m.__name__ for m in MILESTONE_EVENTS} == {
        "CaseDispatched",
        "CaseAccepted",
        "CaseExtended",
        "CaseResolved",
        "CaseVerified",
        "CaseRelayed",  # 三代: the agent's relays
    }
    escalated = CaseEscalated(
        case_id=CASE, from_tier="grid", to_tier="community", unit="U", reason="r"
    )
    assert isinstance(dispatched(), MILESTONE_EVENTS) and not isinstance(
        escalated, MILESTONE_EVENTS
    )
    # every kind made is in the contract; "verified" (核查结案) is reserved there, made later
    assert set(get_args(NoticeKind)) == {
        "assigned",
        "accepted",
        "extended",
        "resolved",
        "verified",
        "relayed",
    }


def test_a_notice_is_the_milestone_for_one_reporter_with_a_stable_id() -> None:
    m = milestone(resolved("已清运"), at=AT, unit_name=None)
    row = {**vars(m), "reporter_ref": "r-1", "channel": "hotline_12345"}
    n = notice(CASE, row)
    assert isinstance(n, CaseNotified)
    assert (n.case_id, n.kind, n.reporter_ref, n.channel, n.text, n.at) == (
        CASE,
        "resolved",
        "r-1",
        "hotline_12345",
        m.text,
        AT,
    )
    assert n.notice_id == notice(CASE, dict(row)).notice_id == notice_id(CASE, m.key, "r-1")
    others = {
        notice_id(CASE, m.key, "r-2"),
        notice_id(CASE, "assigned:1", "r-1"),
        notice_id("C-other", m.key, "r-1"),
    }
    assert n.notice_id not in others and len(others) == 3
    assert n.record_key() == CASE  # keyed by case id, as every case event
