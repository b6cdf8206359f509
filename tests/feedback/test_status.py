"""The resident-facing status of a case (pure)."""

from __future__ import annotations

from services.feedback.status import current_assignment, ordered, resident_state
from tests.feedback.helpers import sh


def test_timeline_orders_by_time_then_life_order_and_derives_state() -> None:
    t = sh(11, 2, 9)
    events = [
        {"at": t, "event": "resolved", "tier": "grid", "unit": "G1"},
        {"at": t.replace(hour=8), "event": "dispatched", "tier": "grid", "unit": "G1"},
        {"at": t.replace(hour=8), "event": "opened", "tier": None, "unit": None},
    ]
    timeline = ordered(events)
    assert [e["event"] for e in timeline] == ["opened", "dispatched", "resolved"]
    assert resident_state(timeline) == "resolved"
    assert current_assignment(timeline) == ("grid", "G1")


def test_closed_stays_closed_and_empty_is_received() -> None:
    t = sh(11, 2, 9)
    timeline = ordered(
        [
            {"at": t, "event": "closed", "unit": None},
            {"at": t.replace(hour=10), "event": "accepted", "tier": "grid", "unit": "G1"},
        ]
    )
    assert resident_state(timeline) == "closed"
    assert resident_state([]) == "received"
    assert current_assignment([]) == (None, None)
