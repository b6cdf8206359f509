"""Work orders (派单/协办, 吹哨报到) and councils (议事会/联席会) on the real broker and database,
over the handler API with a controlled clock: a street blows the whistle for two departments,
one reports on time and one late (a red card, once), the lead's resolve is refused until every
required order is done; a council's decision with votes and measures, each measure a work order
(one of them to a 物业 the registry holds as a department of its community); and who may see
and do what (another unit: 404, a unit that may not: 403)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from cli.case import render, vars_of
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch import orders_store, store
from shared.contract.events import Department, Handler
from tests.dispatch.api_client import Api, api
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
    sweeps_pass,
)

FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}
# Monday 7 December 2026, 09:00 in Shanghai: a whistle then is reported by 11:00 (2wh)
MONDAY = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
REPORT_BY = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
STREET = "WC-YY"
SZ, CGJ = "WC-YY-SZ", "WC-CGJ"  # 杨园街道市政所, 武昌区城管执法局
WY = "WC-YY-OJY-WY"  # 欧景苑物业: a 物业 is a department of the community it serves
PROPERTY = (
    Department(code=WY, name="欧景苑物业服务中心", parent="WC-YY-OJY", categories=[]),
    Handler(id="h-wy01", name="物业周师傅", unit=WY, role="property_staff"),
)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def state_is(svc: Any, case_id: str, state: str) -> None:
    await eventually(
        lambda: svc.pool.fetchval(
            "SELECT state = $2 FROM cases WHERE case_id = $1", case_id, state
        ),
        what=f"{case_id} {state}",
    )


async def registry_with_property(bed: Testbed, svc: Any) -> None:
    await load_registry(bed, *PROPERTY)
    await eventually(
        lambda: svc.pool.fetchval("SELECT 1 FROM handlers WHERE id = 'h-wy01'"),
        what="the 物业 in the registry",
    )


async def step(http: Api, order_id: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    return await http.post(f"/orders/{order_id}/actions", token, body)


async def test_a_street_whistles_two_departments(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        # 100 households: the street's case, with its office (no department owns sanitation)
        sent = await d.open(case_opened(households=100, opened_at=MONDAY))
        cid = sent["case_id"]
        assert sent["tier"] == "street" and sent["unit"] == STREET
        lead = http.auth("street_staff", STREET, "h-0020")
        sz = http.auth("department_staff", SZ, "h-0022")
        cgj = http.auth("department_staff", CGJ, "h-0021")
        status, body = await http.act(cid, lead, {"action": "accept"})
        assert status == 200, body

        # who may not blow the whistle: outside the street (404), a grid's worker (404)
        whistle = {"units": [SZ, CGJ], "note": "路面塌陷，请市政所和城管到场"}
        community = http.auth("community_staff", "WC-YY-OJY", "h-0010")
        for token in (community, http.worker()):
            status, _ = await http.post(f"/cases/{cid}/orders", token, whistle)
            assert status == 404
        status, problem = await http.post(f"/cases/{cid}/orders", lead, {"units": ["nope"]})
        assert status == 422 and problem["errors"][0]["field"] == "body.units", problem
        status, problem = await http.post(f"/cases/{cid}/orders", lead, {"units": [STREET]})
        assert status == 422, problem  # the lead's own unit

        status, issued = await http.post(f"/cases/{cid}/orders", lead, whistle)
        assert status == 200, issued
        by_unit = {o["unit"]: o for o in issued["orders"]}
        assert by_unit[SZ]["handler_id"] == "h-0022" and by_unit[CGJ]["handler_id"] == "h-0021"
        assert all(at(o["report_by"]) == REPORT_BY for o in issued["orders"])
        assert all(o["required"] and o["state"] == "issued" for o in issued["orders"])
        sz_id, cgj_id = by_unit[SZ]["order_id"], by_unit[CGJ]["order_id"]
        event = await d.one("cases.order_issued", cid, order_id=sz_id)
        assert event["issued_by"] == "h-0020" and event["origin"] == "whistle"
        assert event["issued_by_unit"] == STREET and event["note"] == whistle["note"]
        await d.one("cases.order_issued", cid, order_id=cgj_id)
        status, problem = await http.post(f"/cases/{cid}/orders", lead, {"units": [SZ]})
        assert status == 422, problem  # SZ already holds an open order of the case

        # the ordered units read the case and list their orders; they act on nothing else
        status, case = await http.get(f"/cases/{cid}", sz)
        assert status == 200 and case["actions"] == [], case
        assert {o["unit"]: o["actions"] for o in case["orders"]}[SZ] == ["report", "return"]
        status, _ = await http.act(cid, sz, {"action": "resolve", "note": "x"})
        assert status == 404
        status, mine = await http.get("/me/orders", sz)
        assert status == 200 and [o["order_id"] for o in mine["items"]] == [sz_id]
        other_dept = http.auth("department_staff", "WC-FWJ", "h-0023")
        status, _ = await http.get(f"/cases/{cid}", other_dept)
        assert status == 404
        status, _ = await step(http, sz_id, other_dept, {"action": "report"})
        assert status == 404
        status, _ = await step(http, sz_id, cgj, {"action": "report"})
        assert status == 403  # another ordered unit's order
        status, _ = await step(http, sz_id, sz, {"action": "done", "note": "已处理"})
        assert status == 409  # report first (报到)

        clock.advance(HOUR)
        status, reported = await step(http, sz_id, sz, {"action": "report"})
        assert status == 200 and reported["state"] == "reported", reported
        on_time = await d.one("cases.order_updated", cid, order_id=sz_id, state="reported")
        assert on_time["on_time"] is True and on_time["handler_id"] == "h-0022"

        # 城管 has not reported at 11:00: a red card for it, once
        clock.now = REPORT_BY + timedelta(minutes=30)
        overdue = await d.one("cases.overdue", cid, order_id=cgj_id)
        assert overdue["deadline"] == "respond" and overdue["unit"] == CGJ
        assert at(overdue["due_at"]) == REPORT_BY and overdue["handler_id"] == "h-0021"
        await sweeps_pass(svc)
        assert len(d.of("cases.overdue", cid)) == 1
        status, late = await step(http, cgj_id, cgj, {"action": "report"})
        assert status == 200, late
        late_ev = await d.one("cases.order_updated", cid, order_id=cgj_id, state="reported")
        assert late_ev["on_time"] is False

        # the lead may not resolve while a required order is open
        status, case = await http.get(f"/cases/{cid}", lead)
        assert "resolve" not in case["actions"] and "progress" in case["actions"], case
        assert sorted(case["resolve_waits_for"]) == sorted([sz_id, cgj_id])
        status, problem = await http.act(cid, lead, {"action": "resolve", "note": "已修复"})
        assert status == 409 and "work order" in problem["detail"], problem
        assert CGJ in problem["detail"] and SZ in problem["detail"]
        rejected = await d.one("handler.actions.rejected", cid)
        assert "work order" in rejected["reason"]
        status, done = await step(http, sz_id, sz, {"action": "done", "note": "管道已抢修"})
        assert status == 200 and done["state"] == "done"
        status, problem = await http.act(cid, lead, {"action": "resolve", "note": "已修复"})
        assert status == 409 and CGJ in problem["detail"] and SZ not in problem["detail"]
        status, done = await step(http, cgj_id, cgj, {"action": "done", "note": "占道已清理"})
        assert status == 200, done
        await d.one("cases.order_updated", cid, order_id=cgj_id, state="done")
        status, case = await http.get(f"/cases/{cid}", lead)
        assert "resolve" in case["actions"] and case["resolve_waits_for"] == []
        status, body = await http.act(cid, lead, {"action": "resolve", "note": "已修复"})
        assert status == 200, body
        await state_is(svc, cid, "verifying")
        status, mine = await http.get("/me/orders", sz)
        assert mine["items"] == []

    async with svc.pool.acquire() as conn:
        steps = [dict(r) for r in await store.timeline(conn, cid)]
        case_row = dict(await store.get_case(conn, cid) or {})
        work = [vars_of(o) for o in await orders_store.orders_of(conn, cid)]
    events = [s["event"] for s in steps]
    assert events.count("order_issued") == 2 and "order_report_timeout" in events
    assert events[-1] == "resolve" and events.index("order_done") < events.index("resolve")
    out = Console(width=220, record=True)  # wangge case show
    out.print(render(cid, case_row, steps, work))
    text = out.export_text()
    assert "work orders (协办)" in text and f"{cgj_id}" in text and "(late)" in text


async def test_a_grid_does_not_whistle_and_an_optional_order_does_not_hold(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened(opened_at=MONDAY)))["case_id"]  # the grid's
        worker = http.worker()
        status, problem = await http.post(f"/cases/{cid}/orders", worker, {"units": [SZ]})
        assert status == 409 and "community or a street" in problem["detail"], problem
        # the community's case: its staff whistle, not required, with their own limit
        cid = (await d.open(case_opened(households=10, opened_at=MONDAY)))["case_id"]
        staff = http.auth("community_staff", "WC-YY-OJY", "h-0010")
        volunteer = http.auth("party_volunteer", "WC-YY-OJY", "h-0013")
        ask = {"units": [SZ], "required": False, "report_within": "30m"}
        status, _ = await http.post(f"/cases/{cid}/orders", volunteer, ask)
        assert status == 403
        status, problem = await http.post(
            f"/cases/{cid}/orders", staff, {**ask, "report_within": "soon"}
        )
        assert status == 422 and problem["errors"][0]["field"] == "body.report_within"
        status, issued = await _post_key(http, f"/cases/{cid}/orders", staff, ask, "k1")
        assert status == 200, issued
        (order,) = issued["orders"]
        assert at(order["report_by"]) == MONDAY + timedelta(minutes=30)
        status, again = await _post_key(http, f"/cases/{cid}/orders", staff, ask, "k1")
        assert status == 200 and again["orders"][0]["order_id"] == order["order_id"]
        await d.one("cases.order_issued", cid)
        assert len(d.of("cases.order_issued", cid)) == 1  # the retry issued nothing
        status, body = await http.act(cid, staff, {"action": "accept"})
        assert status == 200, body
        status, body = await http.act(cid, staff, {"action": "resolve", "note": "已处理"})
        assert status == 200, body  # an optional order does not hold the lead
        # the issuing unit cancels it (with a reason); the ordered unit may not
        sz = http.auth("department_staff", SZ, "h-0022")
        status, _ = await step(http, order["order_id"], sz, {"action": "cancel", "note": "x"})
        assert status == 403
        status, _ = await step(http, order["order_id"], staff, {"action": "cancel"})
        assert status == 422
        status, gone = await step(
            http, order["order_id"], staff, {"action": "cancel", "note": "社区已自行处理"}
        )
        assert status == 200 and gone["state"] == "cancelled", gone


async def _post_key(
    http: Api, path: str, token: str, body: dict[str, Any], key: str
) -> tuple[int, Any]:
    resp = await http.client.post(
        path, json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    )
    return resp.status_code, resp.json()


async def test_a_councils_decision_with_votes_and_measures(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await registry_with_property(bed, svc)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened(households=10, opened_at=MONDAY)))["case_id"]
        staff = http.auth("community_staff", "WC-YY-OJY", "h-0010")
        decision = {
            "body": "欧景苑社区居民议事会",
            "meeting_date": "2026-12-07",
            "decision": "同意使用公共维修资金更换3栋楼道照明，市政所修复门前路灯",
            "votes": {"for": 11, "against": 2, "abstain": 1},
            "measures": [
                {"text": "更换3栋楼道照明", "unit": WY},
                {"text": "修复门前路灯", "unit": SZ},
            ],
        }
        path = f"/cases/{cid}/council"
        status, body = await http.act(cid, staff, {"action": "accept"})
        assert status == 200, body
        status, problem = await http.post(path, staff, decision)
        assert status == 409 and "council_decision" in problem["detail"], problem
        clock.advance(HOUR)
        status, body = await http.act(
            cid, staff, {"action": "deliberate", "decide_by": (MONDAY + 72 * HOUR).isoformat()}
        )
        assert status == 200, body
        await state_is(svc, cid, "deliberating")

        bad_votes = {**decision, "votes": {"for": -1, "against": 0, "abstain": 0}}
        status, problem = await http.post(path, staff, bad_votes)
        assert status == 422 and "votes" in problem["errors"][0]["field"], problem
        status, problem = await http.post(path, staff, {**decision, "meeting_date": "2026-12-09"})
        assert status == 422 and problem["errors"][0]["field"] == "body.meeting_date"
        unknown = {**decision, "measures": [{"text": "x", "unit": "WC-NOPE"}]}
        status, problem = await http.post(path, staff, unknown)
        assert status == 422 and problem["errors"][0]["field"] == "body.measures"
        volunteer = http.auth("party_volunteer", "WC-YY-OJY", "h-0013")
        status, _ = await http.post(path, volunteer, decision)
        assert status == 403
        status, _ = await http.post(
            path, http.auth("community_staff", "WC-YY-HPY", "h-0011"), decision
        )
        assert status == 404

        status, decided = await http.post(path, staff, decision)
        assert status == 200, decided
        assert decided["votes"] == {"for": 11, "against": 2, "abstain": 1}
        assert [o["unit"] for o in decided["orders"]] == [WY, SZ]
        assert all(o["origin"] == "council" and o["required"] for o in decided["orders"])
        assert decided["orders"][0]["handler_id"] == "h-wy01"
        assert decided["orders"][0]["note"] == "更换3栋楼道照明"
        ev = await d.one("cases.council_decided", cid)
        assert ev["body"] == "欧景苑社区居民议事会" and ev["meeting_date"] == "2026-12-07"
        assert (ev["votes_for"], ev["votes_against"], ev["votes_abstain"]) == (11, 2, 1)
        assert [m["order_id"] for m in ev["measures"]] == [o["order_id"] for o in decided["orders"]]
        issued = await d.reader.wait_for(
            lambda _: d.of("cases.order_issued", cid)[1:], what="both measures' orders"
        )
        assert {o["council_id"] for o in issued} == {ev["council_id"]}
        await state_is(svc, cid, "accepted")  # the deliberation ended
        status, _ = await http.post(path, staff, decision)
        assert status == 409  # no deliberation now

        # the measures hold the lead's resolve until done
        status, problem = await http.act(cid, staff, {"action": "resolve", "note": "已完成"})
        assert status == 409 and WY in problem["detail"]
        wy = http.auth("department_staff", WY, "h-wy01")  # 物业 staff sign in as a department's
        sz = http.auth("department_staff", SZ, "h-0022")
        for order, token in zip(decided["orders"], (wy, sz), strict=True):
            for body in ({"action": "report"}, {"action": "done", "note": "已完成"}):
                status, result = await step(http, order["order_id"], token, body)
                assert status == 200, result
        status, body = await http.act(cid, staff, {"action": "resolve", "note": "已完成"})
        assert status == 200, body
        status, case = await http.get(f"/cases/{cid}", wy)
        assert status == 200 and {o["state"] for o in case["orders"]} == {"done"}
        council = next(s for s in case["timeline"] if s["event"] == "council_decision")
        assert council["detail"]["votes"] == {"for": 11, "against": 2, "abstain": 1}
        assert council["to_state"] == "accepted"


async def test_two_replicas_give_each_late_order_one_red_card(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    other = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    units = [SZ, CGJ, "WC-FWJ", "WC-YY-SFS"]
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        lead = http.auth("street_staff", STREET, "h-0020")
        cases = [
            (await d.open(case_opened(households=100, opened_at=MONDAY)))["case_id"]
            for _ in range(5)
        ]
        for cid in cases:
            status, body = await http.post(f"/cases/{cid}/orders", lead, {"units": units})
            assert status == 200, body
        clock.now = REPORT_BY + HOUR
        await d.reader.wait_for(
            lambda _: [r for r in d.reader.of("cases.overdue") if r.json().get("order_id")][19:],
            what="20 red cards",
        )
        await sweeps_pass(svc)
        await sweeps_pass(other)
        late = [r.json()["order_id"] for r in d.reader.of("cases.overdue")]
        assert len(late) == len(set(late)) == 20  # once each, whichever replica found it


async def test_the_order_sweep_uses_its_index(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    async with svc.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch("EXPLAIN " + orders_store.UNREPORTED_SQL, MONDAY, 500)
        plan = "\n".join(r[0] for r in rows)
        assert "work_orders_report_due" in plan, plan
