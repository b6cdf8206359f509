"""What residents hear at each milestone of their case (pure): ``cases.notified``, 居民告知.

A **milestone** is a step of the case a resident is told of, from one of dispatch's events:

- ``assigned`` (派单): every ``cases.dispatched`` (re-dispatches after an escalation, a transfer or
  a reopen included); its key is the dispatch attempt; told: the unit and the resolution deadline;
- ``accepted`` (接单): ``cases.accepted``; keyed by its time (dispatch's); told: who handles it;
- ``extended`` (缓办/延期): ``cases.extended``; keyed by dispatch's time of the approval; told: the
  new resolution deadline;
- ``resolved`` (办结): ``cases.resolved``; keyed by dispatch's time of it; told: the answer (答复),
  the handler's note;
- ``verified`` (核查结案): ``cases.verified``; keyed by dispatch's time of it; told: the resolution
  was confirmed on site and a follow-up (回访) comes;
- ``relayed`` (三代): ``cases.relayed``, progress the case's agent relays; keyed by its number;
  told: the agent's words (masked as an answer is).

Each reporter of the case hears each milestone once: a **notice** (one ``cases.notified``), whose
id is derived from the case, the milestone's key and the reporter, so the same notice published
again (a redelivered event, a re-dispatch of the same attempt, a reporter learnt again) has the
same id. A reporter learnt after some milestones (a supporter 附议 who joined later, a
``cases.opened`` read late) hears those at once, each with its own time. Anonymous reporters
(匿名) are never reporters here (``handlers``): they hear nothing.

The answer is the handler's note with the personal numbers in it masked (ID card, bank card and
phone numbers, ``shared.runtime.redaction``, as in the logs): it goes to every reporter of a merged
case, who are different residents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, assert_never

from shared.contract.events import (
    CaseAccepted,
    CaseDispatched,
    CaseExtended,
    CaseNotified,
    CaseRelayed,
    CaseResolved,
    CaseVerified,
    NoticeKind,
)
from shared.runtime.redaction import redact_numbers

from .periods import TZ
from .status import TIER_LABELS

MilestoneEvent = (
    CaseDispatched | CaseAccepted | CaseExtended | CaseResolved | CaseVerified | CaseRelayed
)
MILESTONE_EVENTS: tuple[type[MilestoneEvent], ...] = (
    CaseDispatched,
    CaseAccepted,
    CaseExtended,
    CaseResolved,
    CaseVerified,
    CaseRelayed,
)
# Who relays, as the resident knows them: an agent (代理人) who carries or voices their matter, an
# errand runner (代办员) who does it for them
AGENT_NAMES = {"proxy_petition": "代理人", "voice_advocacy": "代理人", "errand_service": "代办员"}
ANSWER_MAX = 2000  # characters of the answer told (a handler action's note is at most this)


@dataclass(frozen=True)
class Milestone:
    case_id: str
    kind: NoticeKind
    key: str  # its identity within the case: ``assigned:2``, ``resolved:<time>``
    at: datetime  # when it happened
    text: str  # what the resident is told
    deadline: datetime | None = None


def milestone(ev: MilestoneEvent, *, at: datetime, unit_name: str | None) -> Milestone:
    """The milestone ``ev`` is (``at``: when it happened, the event's own time or its
    ``ce_time``; ``unit_name``: the registry's name of ``ev.unit``, if known)."""
    unit = unit_name or TIER_LABELS[ev.tier]
    about = f"您反映的问题（{ev.case_id}）"
    match ev:
        case CaseDispatched():
            return Milestone(
                ev.case_id,
                "assigned",
                f"assigned:{ev.attempt}",
                at,
                f"{about}已派至{unit}办理，办理时限至{local_time(ev.resolve_by)}。",
                ev.resolve_by,
            )
        case CaseAccepted():
            return Milestone(
                ev.case_id,
                "accepted",
                _key("accepted", ev.accepted_at),
                at,
                f"{about}已由{unit}接单，正在办理。",
            )
        case CaseExtended():
            return Milestone(
                ev.case_id,
                "extended",
                _key("extended", ev.extended_at),
                at,
                f"{about}办理时限已延长至{local_time(ev.resolve_by)}。",
                ev.resolve_by,
            )
        case CaseResolved():
            answer = answer_text(ev.note)
            return Milestone(
                ev.case_id,
                "resolved",
                _key("resolved", ev.resolved_at),
                at,
                f"{about}已办结。答复：{answer}" if answer else f"{about}已办结。",
            )
        case CaseVerified():
            return Milestone(
                ev.case_id,
                "verified",
                _key("verified", ev.verified_at),
                at,
                f"{about}已经现场核查，确认办结。稍后将请您对办理结果进行评价。",
            )
        case CaseRelayed():
            return Milestone(
                ev.case_id,
                "relayed",
                f"relayed:{ev.relay}",
                at,
                f"{about}的{AGENT_NAMES[ev.agency_mode]}告知您：{answer_text(ev.note)}",
            )
        case _:
            assert_never(ev)


def answer_text(note: str) -> str:
    """The answer (答复) told to the residents: the note, its personal numbers masked, at most
    ``ANSWER_MAX`` characters."""
    text = redact_numbers(note.strip())
    return text if len(text) <= ANSWER_MAX else text[: ANSWER_MAX - 1] + "…"


def local_time(at: datetime) -> str:
    """``2026年11月24日 18:00``, in Asia/Shanghai."""
    t = at.astimezone(TZ)
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}"


def _key(kind: str, at: datetime) -> str:
    return f"{kind}:{at.astimezone(UTC).isoformat()}"


def notice_id(case_id: str, key: str, reporter_ref: str) -> str:
    """The same for the same notice, whenever and however often it is made."""
    digest = hashlib.sha256(f"{case_id}\n{key}\n{reporter_ref}".encode()).hexdigest()
    return f"n-{digest[:32]}"


def notice(case_id: str, row: Mapping[str, Any]) -> CaseNotified:
    """The notice of one milestone to one reporter (``row``: the milestone's ``key``, ``kind``,
    ``at``, ``text``, ``deadline``, and the reporter's ``reporter_ref`` and ``channel``)."""
    return CaseNotified(
        notice_id=notice_id(case_id, row["key"], row["reporter_ref"]),
        case_id=case_id,
        kind=row["kind"],
        reporter_ref=row["reporter_ref"],
        channel=row["channel"],
        text=row["text"],
        at=row["at"],
        deadline=row["deadline"],
    )
