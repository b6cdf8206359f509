"""三代 agency: an agent (代理人/代办员) beside the handler for a category whose taxonomy asks for
one, the resident's commission (委托) and the agent's relays to the resident.

Pure: who is chosen (on duty, community staff or a party volunteer of the case's community, the
fewest open agencies, never the case's handler), which categories get one, what the agent may
record and when. On the real broker and database, dispatch and feedback together: an agent is
assigned (cases.agent_assigned) to a welfare case and not to a sanitation one, a batch spreads
agents as one at a time would, the agent alone records the commission and relays progress over
HTTP (others reaching the case: 403; outside: 404), follows the case when it is escalated out of
the community, every non-anonymous reporter hears the relay (cases.notified kind relayed), and
feedback counts cases, commissions and relays per agency mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cli.client import TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch.agency import (
    Agency,
    AgentLoad,
    agency_mode_of,
    commission_refusal,
    pick_agent,
    plan_assignment,
    plan_commission,
    plan_relay,
    relay_refusal,
)
from services.feedback.formulas import AgencyRow, agency
from services.feedback.notices import milestone
from services.feedback.periods import period_of
from shared.contract.events import CaseRelayed
from shared.contract.taxonomy import default_taxonomy
from tests.dispatch.api_client import OJY, api
from tests.dispatch.support import (
    T0,
    FakeClock,
    a_case,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
)
from tests.feedback.helpers import http_get, of_case

QUIET = 3600.0
STAFF, VOLUNTEER = "h-0010", "h-0013"  # OJY's community staff and party volunteer


# --- pure ---------------------------------------------------------------------------------------


def test_the_agent_is_the_least_busy_of_the_communitys_staff_and_volunteers() -> None:
    pool = [
        AgentLoad("h-3", "community_staff", True, 2),
        AgentLoad("h-2", "party_volunteer", True, 1),
        AgentLoad("h-1", "community_staff", True, 1),
        AgentLoad("h-0", "community_staff", False, 0),  # off duty
        AgentLoad("h-9", "grid_worker", True, 0),  # not an agent's role
    ]
    assert pick_agent(pool, handler_id=None) == pool[2]  # fewest, ties by id
    assert pick_agent(pool, handler_id="h-1") == pool[1]  # never the case's handler
    assert pick_agent(pool[3:], handler_id=None) is None
    assert pick_agent([], handler_id=None) is None


def test_which_categories_get_an_agent_and_in_which_mode() -> None:
    tax = default_taxonomy()
    assert agency_mode_of(tax, a_case(category="welfare")) == "errand_service"
    assert agency_mode_of(tax, a_case(category="elevator_retrofit")) == "voice_advocacy"
    assert agency_mode_of(tax, a_case(category="legal_petition")) == "proxy_petition"
    assert agency_mode_of(tax, a_case(category="sanitation")) is None  # agent: false
    assert agency_mode_of(tax, a_case(category="welfare", community=None)) is None
    # each mode has at least one category with an agent
    modes = {c.agency_mode for c in tax.categories if c.agent}
    assert modes == {"proxy_petition", "voice_advocacy", "errand_service"}


def test_assignment_commission_and_relay_as_planned() -> None:
    case = a_case(category="welfare", tier="community", unit=OJY, handler_id=STAFF)
    agent = AgentLoad(VOLUNTEER, "party_volunteer", True, 0)
    row, step, event = plan_assignment(case, "errand_service", agent, T0)
    assert (row.agent_id, row.community, event.agent_id, event.handler_id) == (
        VOLUNTEER,
        OJY,
        VOLUNTEER,
        STAFF,
    )
    assert (step.event, step.from_state, step.to_state) == (
        "agent_assigned",
        "dispatched",
        "dispatched",
    )

    now = T0 + timedelta(hours=1)
    asked = T0 + timedelta(minutes=30)
    assert commission_refusal(row, case, VOLUNTEER, "代办低保申请", asked, now) is None
    for who, note, at, status, field in (
        (STAFF, "代办", asked, 403, None),  # the handler is not the agent
        (VOLUNTEER, "  ", asked, 422, "note"),
        (VOLUNTEER, "代办", now + timedelta(minutes=1), 422, "commissioned_at"),
        (VOLUNTEER, "代办", T0 - timedelta(days=1), 422, "commissioned_at"),
    ):
        why = commission_refusal(row, case, who, note, at, now)
        assert why is not None and (why.status, why.field) == (status, field), (who, note, at)
    commissioned = Agency(
        row.case_id, row.agency_mode, row.agent_id, row.agent_role, row.community,
        row.assigned_at, commissioned_at=asked, commission_note="代办",
    )  # fmt: skip
    again = commission_refusal(commissioned, case, VOLUNTEER, "代办", asked, now)
    assert again is not None and again.status == 409
    resolved = commission_refusal(row, a_case(state="resolved"), VOLUNTEER, "代办", asked, now)
    assert resolved is not None and resolved.status == 409
    none = commission_refusal(None, case, VOLUNTEER, "代办", asked, now)
    assert none is not None and none.status == 409
    step, ev = plan_commission(row, case, "代办低保申请", asked, now)
    assert (step.event, step.handler_id, ev.commissioned_at, ev.recorded_at) == (
        "commission",
        VOLUNTEER,
        asked,
        now,
    )

    assert relay_refusal(row, VOLUNTEER, "已受理") is None
    assert relay_refusal(row, STAFF, "已受理").status == 403  # type: ignore[union-attr]
    assert relay_refusal(None, VOLUNTEER, "已受理").status == 409  # type: ignore[union-attr]
    step, relayed = plan_relay(row, case, "街道已受理", 2, now)
    assert (step.event, step.detail["relay"], relayed.relay, relayed.unit) == ("relay", 2, 2, OJY)


def test_a_relay_is_told_in_the_agents_name_with_numbers_masked() -> None:
    ev = CaseRelayed(
        case_id="C-1",
        agency_mode="errand_service",
        agent_id=VOLUNTEER,
        relay=1,
        tier="community",
        unit=OJY,
        note="已受理，有事请打 13812345678",
        relayed_at=T0,
    )
    m = milestone(ev, at=T0, unit_name="欧景苑社区")
    assert (m.kind, m.key) == ("relayed", "relayed:1")
    assert m.text == "您反映的问题（C-1）的代办员告知您：已受理，有事请打 138****5678"


def test_agency_figures_per_mode() -> None:
    rows = [
        AgencyRow("c1", "errand_service", "assigned"),
        AgencyRow("c1", "errand_service", "commissioned"),
        AgencyRow("c1", "errand_service", "relayed"),
        AgencyRow("c1", "errand_service", "relayed"),
        AgencyRow("c2", "voice_advocacy", "assigned"),
    ]
    got = agency(rows)
    assert got["cases"] == 2 and got["commissioned"] == 1 and got["relays"] == 2
    assert got["errand_service"] == {"cases": 1, "commissioned": 1, "relays": 2}
    assert got["voice_advocacy"] == {"cases": 1, "commissioned": 0, "relays": 0}
    assert got["proxy_petition"] == {"cases": 0, "commissioned": 0, "relays": 0}
    assert agency([])["cases"] == 0


# --- on Kafka and PostgreSQL --------------------------------------------------------------------


async def test_an_agent_is_assigned_commissioned_and_relays_to_the_residents(
    bed: Testbed,
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    feedback = await bed.start("feedback")
    await load_registry(bed)
    async with (
        driving(bed, "test/intake") as d,
        api(bed, svc) as http,
        TopicReader(bed.settings(), "cases.notified") as told,
    ):
        # a welfare case (事务代办, community tier): its handler is the community's staff, so its
        # agent is the party volunteer; a sanitation case gets none
        welfare = case_opened(category="welfare", opened_at=clock.now - timedelta(hours=1))
        plain = case_opened(category="sanitation")
        first = await d.open(welfare)
        await d.open(plain)
        cid = welfare.case_id
        assert (first["unit"], first["handler_id"]) == (OJY, STAFF)
        assigned = await d.one("cases.agent_assigned", cid)
        assert assigned == {
            **assigned,
            "agency_mode": "errand_service",
            "agent_id": VOLUNTEER,
            "agent_role": "party_volunteer",
            "community": OJY,
            "category": "welfare",
            "tier": "community",
            "unit": OJY,
            "handler_id": STAFF,
        }
        # a supporter (附议) and an anonymous one: only the first hears the relays
        await d.send("cases.merged", _merged(cid, "ref-supporter"), cid)
        await d.send("cases.merged", {**_merged(cid, "anon-1"), "anonymous": True}, cid)

        # a batch of grid-tier public_service cases (事务代办): agents spread by their load
        batch = [case_opened(category="public_service") for _ in range(4)]
        for ev in batch:
            await d.send("cases.opened", ev, ev.case_id)
        agents = [(await d.one("cases.agent_assigned", ev.case_id))["agent_id"] for ev in batch]
        # the volunteer already has the welfare case: 3 to the staff, 1 to the volunteer
        assert (agents.count(STAFF), agents.count(VOLUNTEER)) == (3, 1), agents

        volunteer = http.auth("party_volunteer", OJY, VOLUNTEER)
        staff = http.auth("community_staff", OJY, STAFF)
        other_grid = http.worker("h-0003", "WC-YY-OJY-G02")

        # the agent's list marks the case theirs as agent; the case shows its agency
        mine = {c["case_id"]: c for c in (await http.my_cases(volunteer))["items"]}
        assert mine[cid]["my_agency"] is True and mine[cid]["assigned_to_me"] is False
        status, case = await http.get(f"/cases/{cid}", volunteer)
        assert status == 200 and case["agency"]["agent_id"] == VOLUNTEER
        assert case["agency_actions"] == ["commission", "relay"]
        assert [s["event"] for s in case["timeline"]][:2] == ["dispatched", "agent_assigned"]
        status, seen_by_staff = await http.get(f"/cases/{cid}", staff)
        assert status == 200 and seen_by_staff["agency_actions"] == []
        assert (await http.get(f"/cases/{plain.case_id}", volunteer))[1].get("agency") is None

        # only the agent may commission and relay: 403 within reach, 404 outside, 409 without an
        # agent, 422 a bad field
        commission = f"/cases/{cid}/commission"
        body = {"note": "王阿姨委托代办临时救助申请", "commissioned_at": _iso(clock.now)}
        assert (await http.post(commission, staff, body))[0] == 403
        assert (await http.post(commission, other_grid, body))[0] == 404
        assert (await http.post(commission, None, body))[0] == 401
        no_agent = await http.post(f"/cases/{plain.case_id}/commission", http.worker(), body)
        assert no_agent[0] == 409, no_agent
        late = {**body, "commissioned_at": _iso(clock.now + timedelta(hours=1))}
        status, bad = await http.post(commission, volunteer, late)
        assert status == 422 and bad["errors"][0]["field"] == "body.commissioned_at", bad
        status, bad = await http.post(commission, volunteer, {**body, "agent_id": STAFF})
        assert status == 422 and bad["errors"][0]["field"] == "body.agent_id", bad

        recorded_at = clock.advance(timedelta(minutes=10))
        resp = await http.client.post(
            commission,
            json=body,
            headers={"Authorization": f"Bearer {volunteer}", "Idempotency-Key": "cm-1"},
        )
        assert resp.status_code == 200, resp.text
        again = await http.client.post(
            commission,
            json=body,
            headers={"Authorization": f"Bearer {volunteer}", "Idempotency-Key": "cm-1"},
        )
        assert again.status_code == 200 and again.json()["note"] == body["note"]
        assert (await http.post(commission, volunteer, body))[0] == 409  # once per case
        published = await d.one("cases.commissioned", cid)
        assert (published["agent_id"], published["agency_mode"]) == (VOLUNTEER, "errand_service")
        assert datetime.fromisoformat(published["recorded_at"]) == recorded_at
        assert datetime.fromisoformat(published["commissioned_at"]) == datetime.fromisoformat(
            body["commissioned_at"]
        )

        # the case escalates to the street: the agent still follows it and relays progress
        assert (await http.act(cid, staff, {"action": "accept"}))[0] == 200
        status, up = await http.act(cid, staff, {"action": "escalate", "note": "需街道审批"})
        assert status == 200 and up["case"]["tier"] == "street", up
        assert (await http.get(f"/cases/{cid}", volunteer))[0] == 200
        assert cid in await http.my_case_ids(volunteer)
        relay = f"/cases/{cid}/relay"
        # the community's staff no longer reach it (a street case): 404, as for an unknown one
        assert (await http.post(relay, staff, {"note": "x"}))[0] == 404
        street = http.auth("street_staff", "WC-YY", "h-0020")  # reaches it, is not its agent
        assert (await http.post(relay, street, {"note": "x"}))[0] == 403
        status, first_relay = await http.post(relay, volunteer, {"note": "街道民政科已受理"})
        assert status == 200 and first_relay["relay"] == 1, first_relay
        resp = await http.client.post(
            relay,
            json={"note": "预计下周三前审核完毕，电话 13812345678"},
            headers={"Authorization": f"Bearer {volunteer}", "Idempotency-Key": "rl-2"},
        )
        assert resp.status_code == 200 and resp.json()["relay"] == 2
        retry = await http.client.post(
            relay,
            json={"note": "预计下周三前审核完毕，电话 13812345678"},
            headers={"Authorization": f"Bearer {volunteer}", "Idempotency-Key": "rl-2"},
        )
        assert retry.json()["relay"] == 2
        relays = await d.reader.wait_for(
            lambda _: len(d.of("cases.relayed", cid)) >= 2 and d.of("cases.relayed", cid),
            timeout=20,
            what="two relays",
        )
        assert [r["relay"] for r in relays] == [1, 2] and relays[0]["tier"] == "street"
        status, case = await http.get(f"/cases/{cid}", volunteer)
        events = [s["event"] for s in case["timeline"]]
        assert events.count("relay") == 2 and events.count("commission") == 1, events
        assert case["agency"]["relays"] == 2 and case["agency_actions"] == ["relay"]

        # feedback: the reporters hear each relay (the anonymous one nothing), in the agent's name
        notices = await told.wait_for(
            lambda r: len(_relayed(r, cid)) >= 4 and _relayed(r, cid),
            timeout=30,
            what="the relays told",
        )
        assert {n["reporter_ref"] for n in notices} == {welfare.reporter_ref, "ref-supporter"}
        assert all(n["text"].startswith(f"您反映的问题（{cid}）的代办员告知您：") for n in notices)
        assert any("138****5678" in n["text"] for n in notices)
        assert not any("13812345678" in n["text"] for n in notices)

        # the figures: per agency mode, this month, in the community
        month = period_of(clock.now).label
        figures = await _agency_figures(feedback, OJY, month, want_relays=2)
        assert figures["errand_service"] == {"cases": 5, "commissioned": 1, "relays": 2}, figures
        assert figures["voice_advocacy"]["cases"] == 0
        assert (figures["cases"], figures["commissioned"], figures["relays"]) == (5, 1, 2)
        # bed's cases only: no sanitation case counted
        assert (
            await feedback.pool.fetchval(
                "SELECT count(*) FROM agent_assignments WHERE case_id = $1", plain.case_id
            )
            == 0
        )


def _iso(at: datetime) -> str:
    return at.isoformat()


def _merged(case_id: str, ref: str) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "report_id": f"r-{ref}",
        "source": "hotline_12345",
        "merged_at": datetime.now(UTC).isoformat(),
        "supporter_count": 2,
        "reporter_ref": ref,
    }


def _relayed(reader: TopicReader, case_id: str) -> list[dict[str, Any]]:
    return [n for n in of_case(reader, "cases.notified", case_id) if n["kind"] == "relayed"]


async def _agency_figures(svc: Any, unit: str, month: str, *, want_relays: int) -> dict[str, Any]:
    """The unit's agency figures once feedback has read the relays (a condition, waited on)."""
    seen: dict[str, Any] = {}

    async def ready() -> bool:
        status, body = await http_get(svc, f"/units/{unit}/metrics?period={month}")
        assert status == 200, body
        seen.update(body["metrics"]["agency"])
        return bool(seen["relays"] >= want_relays and seen["commissioned"] >= 1)

    await eventually(ready, timeout=30, what="agency figures")
    return seen
