"""The resident-facing status of a case (pure): its timeline in order, and the state it shows.

Events come from different topics and may have been applied in any order; the timeline is
ordered by the time each event happened, ties broken by the natural order of the case's life.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LIFE_ORDER = {
    "opened": 0,
    "escalated": 1,
    "returned": 1,
    "dispatched": 2,
    "accepted": 3,
    "resolved": 4,
    "sent_back": 5,
    "verified": 6,
    "reopened": 7,
    "closed": 8,
}
# What the resident sees after each event.
STATE_AFTER = {
    "opened": "received",  # 已受理
    "escalated": "escalated",  # 已上报
    "returned": "received",  # 退单: back with the command centre, to be dispatched again
    "dispatched": "dispatched",  # 已派单
    "accepted": "in_progress",  # 办理中
    "resolved": "resolved",  # 已办结，待回访
    "sent_back": "in_progress",  # 核查未通过: 办理中 again
    "verified": "resolved",  # 已核查结案，待回访
    "reopened": "reopened",  # 重办
    "closed": "closed",  # 已结案
}


def ordered(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(events, key=lambda e: (e["at"], LIFE_ORDER.get(e["event"], 99)))


def resident_state(timeline: Sequence[Mapping[str, Any]]) -> str:
    """The state after the last event; a closed case stays closed whatever arrives late."""
    if any(e["event"] == "closed" for e in timeline):
        return "closed"
    return STATE_AFTER.get(timeline[-1]["event"], "received") if timeline else "received"


def current_assignment(timeline: Sequence[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """(tier, unit) of the latest event that names one."""
    for e in reversed(timeline):
        if e.get("unit"):
            return e.get("tier"), e["unit"]
    return None, None


# --- what a resident sees (the status link's page, services/feedback/resident.py) ------------

STATE_LABELS = {
    "received": "已受理",
    "escalated": "已上报",
    "dispatched": "已派单",
    "in_progress": "办理中",
    "resolved": "已办结，待回访",
    "reopened": "重新办理中",
    "closed": "已结案",
}
EVENT_LABELS = {
    "opened": "诉求已受理",
    "escalated": "已上报上级（吹哨）",
    "returned": "承办单位退回，重新分派中",
    "dispatched": "已派单",
    "accepted": "已接单，正在办理",
    "resolved": "已办结",
    "sent_back": "核查未通过，重新办理",
    "verified": "已核查结案",
    "reopened": "重新办理（重办）",
    "closed": "已结案",
}
TIER_LABELS = {"grid": "网格", "community": "社区", "street": "街道", "district": "区"}
# The code before the resident's comment in a reopen reason (``unsatisfied: 垃圾还在``): the
# comment itself is never shown on the public page.
REOPEN_LABELS = {"unsatisfied": "居民不满意", "not_resolved": "问题未解决"}
OUTCOME_LABELS = {"satisfied": "居民满意", "unrated": "评价期满，未评价"}


def resident_view(
    case_id: str,
    category_name: str | None,
    timeline: Sequence[Mapping[str, Any]],
    unit_names: Mapping[str, str],
) -> dict[str, Any]:
    """The resident's view of a case (``timeline``: ``ordered``): its state and each step, with
    the case id as the only identifier: no unit codes, handlers, reporters or comments."""
    state = resident_state(timeline)
    steps = []
    for e in timeline:
        event = e["event"]
        detail: str | None = None
        if event == "reopened":
            detail = REOPEN_LABELS.get(str(e.get("detail") or "").split(":", 1)[0].strip())
        elif event == "closed":
            detail = OUTCOME_LABELS.get(str(e.get("detail") or ""))
        tier = e.get("tier")
        steps.append(
            {
                "at": e["at"],
                "event": event,
                "label": EVENT_LABELS.get(event, event),
                "tier": tier,
                "tier_label": TIER_LABELS.get(tier) if tier else None,
                "unit_name": unit_names.get(e["unit"]) if e.get("unit") else None,
                "detail": detail,
            }
        )
    return {
        "case_id": case_id,
        "category_name": category_name,
        "state": state,
        "state_label": STATE_LABELS.get(state, state),
        "timeline": steps,
    }
