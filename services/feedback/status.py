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
    "dispatched": 2,
    "accepted": 3,
    "resolved": 4,
    "reopened": 5,
    "closed": 6,
}
# What the resident sees after each event.
STATE_AFTER = {
    "opened": "received",  # 已受理
    "escalated": "escalated",  # 已上报
    "dispatched": "dispatched",  # 已派单
    "accepted": "in_progress",  # 办理中
    "resolved": "resolved",  # 已办结，待回访
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
