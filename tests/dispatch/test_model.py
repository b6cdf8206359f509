"""The typed case and its changes, the events built from them and plans (pure), and the one
mapping of rows to cases (on the real database)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from devstack.testbed import Testbed
from services.dispatch import emit, store
from services.dispatch.model import CASE_COLUMNS, CHANGE_COLUMNS, Case, CaseChange, Step
from services.dispatch.planning import Plan
from tests.dispatch.support import T0, a_case, start_dispatch


def test_a_change_sets_only_what_it_names() -> None:
    change = CaseChange(urgent=True, handler_id=None, state="accepted")
    assert change.columns() == {"state": "accepted", "handler_id": None, "urgent": True}
    assert list(change.columns()) == ["urgent", "handler_id", "state"]  # as given
    assert CaseChange().columns() == {}
    later = change | CaseChange(state="resolved", resolved_unit="U")
    assert later.columns() == {
        "state": "resolved",
        "handler_id": None,
        "resolved_unit": "U",
        "urgent": True,
    }
    assert list(later.columns()) == ["urgent", "handler_id", "state", "resolved_unit"]
    assert later == CaseChange(state="resolved", handler_id=None, urgent=True, resolved_unit="U")
    assert change.columns() == {"state": "accepted", "handler_id": None, "urgent": True}
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(change, "state", "resolved")  # noqa: B010
    assert set(CHANGE_COLUMNS) <= set(CASE_COLUMNS)


def test_applying_a_change_gives_a_new_case() -> None:
    case = a_case()
    after = case.apply(CaseChange(state="accepted", handler_id="h-0002", accepted_at=T0))
    assert (after.state, after.handler_id, after.accepted_at) == ("accepted", "h-0002", T0)
    assert after == dataclasses.replace(case, state="accepted", handler_id="h-0002", accepted_at=T0)
    assert (case.state, case.handler_id) == ("dispatched", "h-0001")  # unchanged
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.state = "resolved"  # type: ignore[misc]
    assert case.apply(CaseChange()) == case
    with pytest.raises(TypeError, match=r"missing \['category', .*unknown \[\]"):
        Case(case_id="c-2")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"unknown \['colour'\]"):
        Case(**{**case.__dict__, "colour": "red"})


def test_events_are_built_from_the_case() -> None:
    case = a_case(attempt=2, respond_within_s=1800.0)
    assert case.respond_within == timedelta(minutes=30)
    out = emit.dispatched(case, T0)
    assert out.topic == "cases.dispatched"
    assert out.model_dump() == {
        "case_id": "c-1",
        "tier": "grid",
        "unit": "WC-YY-OJY-G01",
        "handler_id": "h-0001",
        "respond_by": T0 + timedelta(hours=2),
        "resolve_by": T0 + timedelta(hours=24),
        "tier_reasons": ["category default: grid"],
        "attempt": 2,
        "category": "sanitation",
        "dispatched_at": T0,
    }
    up = a_case(tier="community", unit="WC-YY-OJY")
    esc = emit.escalated(up, from_tier="grid", reason="timeout")
    assert (esc.topic, esc.model_dump()) == (
        "cases.escalated",
        {
            "case_id": "c-1",
            "from_tier": "grid",
            "to_tier": "community",
            "unit": "WC-YY-OJY",
            "reason": "timeout",
            "escalated_at": T0,
        },
    )
    assert emit.escalated(up, from_tier="grid", reason="supervision", unit="WC-YY").unit == (
        "WC-YY"
    )
    over = emit.overdue(case, "respond", T0 + timedelta(hours=3))
    assert (over.topic, over.model_dump()) == (
        "cases.overdue",
        {
            "case_id": "c-1",
            "deadline": "respond",
            "unit": "WC-YY-OJY-G01",
            "handler_id": "h-0001",
            "tier": "grid",
            "due_at": case.respond_by,
            "overdue_at": T0 + timedelta(hours=3),
            "order_id": None,  # the case's own deadline, not a work order's
        },
    )


def test_plans_chain() -> None:
    case = a_case()
    step = Step("c-1", T0, "merged")
    more = CaseChange(supporters=5)
    first = Plan(case, more, case.apply(more), (step,))
    up = CaseChange(state="escalated")
    second = Plan(
        first.after, up, first.after.apply(up), (step,), (emit.overdue(case, "resolve", T0),)
    )
    both = first.then(second)
    assert both.case == case
    assert both.change.columns() == {"state": "escalated", "supporters": 5}
    assert both.after == case.apply(both.change) == second.after
    assert len(both.steps) == 2 and len(both.events) == 1
    a, b = emit.overdue(case, "respond", T0), emit.dispatched(case, T0)
    assert both.publishing(b, first=[a]).events == (a, *both.events, b)


async def test_a_row_is_read_back_as_the_case_written(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=3600)
    columns = await svc.pool.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'dispatch' AND table_name = 'cases' ORDER BY ordinal_position"
    )
    # every column but updated_at, in the table's order (columns added later come after it)
    names = [r["column_name"] for r in columns]
    assert "updated_at" in names
    assert [n for n in names if n != "updated_at"] == list(CASE_COLUMNS)
    later = T0 + timedelta(days=3650)  # nothing due for the service's own sweeps
    case = a_case(
        excluded_units=("WC-YY-OJY-G02",),
        households=12,
        respond_within_s=1800.0,
        respond_by=later,
        resolve_by=later,
    )
    async with svc.pool.acquire() as conn:
        await store.insert_cases(conn, [case])
        assert await store.load_case(conn, "c-1") == case
        assert await store.load_case(conn, "c-nope") is None
        change = CaseChange(state="accepted", accepted_at=T0, tier_reasons=("a", "b"))
        await store.update_cases(conn, [("c-1", change)])
        assert await store.load_cases(conn, ["c-1", "c-nope"]) == [case.apply(change)]
