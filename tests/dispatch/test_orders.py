"""Work orders (派单/协办, 吹哨报到) and councils (议事会/联席会), pure: the order transition table,
who may issue and act, the named units, what a step sets and publishes, the lead's resolve, a
report deadline missed, the council's refusals and plan; the doc tables equal to the code."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta
from pathlib import Path

from services.dispatch import orders
from services.dispatch.councils import (
    Decide,
    Measure,
    decision_refusal,
    plan_decision,
    recorder_refusal,
)
from services.dispatch.orders import (
    ORDER_STATES,
    ORDER_TRANSITIONS,
    Issue,
    Order,
    action_refusal,
    allowed_order_actions,
    plan_action,
    plan_issue,
    report_missed,
    resolve_refusal,
    units_refusal,
    whistle_refusal,
)
from services.dispatch.states import Actor, transition
from tests.dispatch.support import T0, a_case

STREET_CASE = a_case(tier="street", unit="WC-YY", state="accepted", handler_id="h-0020")
LEAD = Actor("h-0020", "WC-YY", "street_staff")
SZ = Actor("h-0022", "WC-YY-SZ", "department_staff")
CGJ = Actor("h-0021", "WC-CGJ", "department_staff")


def an_order(**over: object) -> Order:
    base = Order(
        order_id="c-1.o1",
        case_id="c-1",
        n=1,
        unit="WC-YY-SZ",
        tier="street",
        handler_id="h-0022",
        required=True,
        origin="whistle",
        state="issued",
        report_by=T0 + timedelta(hours=2),
        resolve_by=T0 + timedelta(days=5),
        issued_by="h-0020",
        issued_by_unit="WC-YY",
        note="请到场",
        council_id=None,
        issued_at=T0,
    )
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


def test_the_order_table_ends_in_done_returned_or_cancelled() -> None:
    assert orders.next_order_state("issued", "report") == "reported"
    assert orders.next_order_state("reported", "done") == "done"
    assert orders.next_order_state("issued", "done") is None  # report (报到) first
    for final in ("done", "returned", "cancelled"):
        assert not [e for (s, e) in ORDER_TRANSITIONS if s == final]
    assert {to for to in ORDER_TRANSITIONS.values()} <= set(ORDER_STATES)
    assert orders.next_order_state("issued", "report_timeout") == "issued"


def test_the_order_table_in_the_docs_is_the_code() -> None:
    doc = Path("docs/dispatch.md").read_text(encoding="utf-8")
    assert orders.markdown_table() in doc


def test_who_blows_the_whistle() -> None:
    assert whistle_refusal(LEAD, STREET_CASE, "street") is None
    community = a_case(tier="community", unit="WC-YY-OJY", state="dispatched")
    assert (
        whistle_refusal(Actor("h-0010", "WC-YY-OJY", "community_staff"), community, "community")
        is None
    )
    centre = Actor("command_centre.WC", "WC", "command_centre")
    assert whistle_refusal(centre, STREET_CASE, "street") is None
    other_centre = Actor("command_centre.HK", "HK", "command_centre")
    assert whistle_refusal(other_centre, STREET_CASE, "street").status == 403  # type: ignore[union-attr]
    assert whistle_refusal(SZ, STREET_CASE, "street").status == 403  # type: ignore[union-attr]
    volunteer = Actor("h-0013", "WC-YY-OJY", "party_volunteer")
    assert whistle_refusal(volunteer, community, "community").status == 403  # type: ignore[union-attr]
    grid = a_case()  # the grid's case: escalate it first
    worker = Actor("h-0001", "WC-YY-OJY-G01", "grid_worker")
    assert whistle_refusal(worker, grid, "grid").status == 409  # type: ignore[union-attr]
    dept_case = a_case(tier="street", unit="WC-YY-SZ")
    assert whistle_refusal(SZ, dept_case, None).status == 409  # type: ignore[union-attr]
    for state in ("triage", "verifying", "resolved"):
        done = dataclasses.replace(STREET_CASE, state=state)
        assert whistle_refusal(LEAD, done, "street").status == 409  # type: ignore[union-attr]


def test_the_units_named() -> None:
    known = {"WC-YY-SZ": None, "WC-CGJ": None, "WC-YY-OJY-G01-B03": "building", "WC-YY": "street"}
    assert units_refusal(STREET_CASE, ["WC-YY-SZ", "WC-CGJ"], known, []) is None
    for units, why in (
        ([], "at least one"),
        (["WC-YY-SZ", "WC-YY-SZ"], "twice"),
        (["WC-NOPE"], "unknown"),
        (["WC-YY-OJY-G01-B03"], "building"),
        (["WC-YY"], "lead"),
    ):
        refused = units_refusal(STREET_CASE, units, known, [])
        assert refused is not None and why in str(refused) and refused.field == "units"
    busy = units_refusal(STREET_CASE, ["WC-YY-SZ"], known, [an_order()])
    assert busy is not None and "open order" in str(busy)
    assert units_refusal(STREET_CASE, ["WC-YY-SZ"], known, [an_order(state="done")]) is None


def test_who_acts_on_an_order() -> None:
    o = an_order()
    assert allowed_order_actions(SZ, o) == ["report", "return"]
    assert allowed_order_actions(LEAD, o) == ["cancel"]
    assert allowed_order_actions(CGJ, o) == []
    assert action_refusal(CGJ, o, "report").status == 403  # type: ignore[union-attr]
    assert action_refusal(SZ, o, "cancel").status == 403  # type: ignore[union-attr]
    assert action_refusal(SZ, o, "done").status == 409  # type: ignore[union-attr]
    centre = Actor("command_centre.WC", "WC", "command_centre")
    assert action_refusal(centre, o, "report").status == 403  # type: ignore[union-attr]
    reported = an_order(state="reported")
    assert allowed_order_actions(SZ, reported) == ["progress", "done", "return"]
    assert allowed_order_actions(SZ, an_order(state="done")) == []


def test_issuing_and_steps_publish_what_they_set() -> None:
    ask = Issue(
        units=(("WC-YY-SZ", "h-0022", "street"), ("WC-CGJ", None, "district")),
        required=True,
        note="请到场",
        report_by=T0 + timedelta(hours=2),
        resolve_by=T0 + timedelta(days=5),
        issued_by="h-0020",
        issued_by_unit="WC-YY",
    )
    issued = plan_issue(STREET_CASE, ask, 3, T0)
    assert [o.order_id for o in issued.orders] == ["c-1.o3", "c-1.o4"]
    assert [e.unit for e in issued.events] == ["WC-YY-SZ", "WC-CGJ"]
    assert issued.events[1].handler_id is None and issued.events[0].issued_at == T0
    assert [s.event for s in issued.steps] == ["order_issued", "order_issued"]
    assert issued.steps[0].to_state == STREET_CASE.state  # the lead's state stays

    late = T0 + timedelta(hours=3)
    acted = plan_action(STREET_CASE, issued.orders[0], SZ, "report", None, late)
    assert acted.order.state == "reported" and acted.order.reported_at == late
    assert acted.event.on_time is False and acted.event.state == "reported"
    done = plan_action(STREET_CASE, acted.order, SZ, "done", "已修复", late)
    assert done.event.on_time is True and done.order.done_at == late
    assert done.step.event == "order_done" and done.step.detail["note"] == "已修复"
    returned = plan_action(STREET_CASE, issued.orders[1], CGJ, "return", "非本单位职责", late)
    assert returned.order.closed_at == late and returned.event.on_time is None


def test_the_lead_resolves_when_every_required_order_is_done() -> None:
    assert resolve_refusal([]) is None
    waiting = resolve_refusal([an_order(), an_order(unit="WC-CGJ", state="done")])
    assert waiting is not None and "WC-YY-SZ (issued)" in waiting and "WC-CGJ" not in waiting
    assert resolve_refusal([an_order(required=False)]) is None
    for final in ("done", "returned", "cancelled"):
        assert resolve_refusal([an_order(state=final)]) is None


def test_a_report_deadline_missed_is_a_red_card_for_the_ordered_unit() -> None:
    step, event = report_missed(STREET_CASE, an_order(), T0 + timedelta(hours=3))
    assert event.order_id == "c-1.o1" and event.deadline == "respond"
    assert event.unit == "WC-YY-SZ" and event.tier == "street"
    assert event.due_at == T0 + timedelta(hours=2)
    assert step.event == "order_report_timeout" and step.unit == "WC-YY-SZ"


def test_a_councils_decision() -> None:
    deliberating = a_case(state="deliberating", paused_at=T0, paused_until=T0 + timedelta(days=3))
    staff = Actor("h-0010", "WC-YY-OJY", "community_staff")
    assert recorder_refusal(staff, deliberating) is None  # the community's staff
    assert recorder_refusal(Actor("h-0001", "WC-YY-OJY-G01", "grid_worker"), deliberating) is None
    assert recorder_refusal(Actor("h-0013", "WC-YY-OJY", "party_volunteer"), deliberating)
    assert recorder_refusal(Actor("h-0011", "WC-YY-HPY", "community_staff"), deliberating)
    ask = Decide(
        body="居民议事会",
        meeting_date=date(2026, 3, 2),
        decision="同意加装",
        votes_for=9,
        votes_against=1,
        votes_abstain=0,
        measures=(Measure("安装", "WC-YY-OJY-WY"),),
    )
    today = date(2026, 3, 2)
    assert decision_refusal(deliberating, ask, today) is None
    future = dataclasses.replace(ask, meeting_date=date(2026, 3, 3))
    assert decision_refusal(deliberating, future, today).field == "meeting_date"  # type: ignore[union-attr]
    early = dataclasses.replace(ask, meeting_date=date(2026, 3, 1))
    assert decision_refusal(deliberating, early, today).field == "meeting_date"  # type: ignore[union-attr]
    blank = dataclasses.replace(ask, measures=(Measure(" ", "WC-YY-SZ"),))
    assert decision_refusal(deliberating, blank, today).field == "measures"  # type: ignore[union-attr]
    t = transition("deliberating", "council_decision")
    assert t is not None and t.to_state == "accepted"
    assert transition("accepted", "council_decision") is None
    decided = plan_decision(deliberating, t, ask, "c-1.k1", ["c-1.o1"], staff, T0)
    assert decided.change.columns() == {
        "state": "accepted",
        "paused_at": None,
        "paused_until": None,
    }
    assert decided.event.votes_for == 9 and decided.event.measures[0].order_id == "c-1.o1"
    assert decided.step.detail["votes"] == {"for": 9, "against": 1, "abstain": 0}


def test_the_dispatch_doc_names_every_order_event() -> None:
    doc = Path("docs/dispatch.md").read_text(encoding="utf-8")
    for topic in ("cases.order_issued", "cases.order_updated", "cases.council_decided"):
        assert re.search(rf"\| `{re.escape(topic)}` \|", doc), topic
