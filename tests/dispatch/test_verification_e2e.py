"""核查结案 on the real broker and database: a resolution waits for its verifier (the community
for its grid's, the grid worker for a street department's), is sent back and done again, then
verified; a verification left too long gets its yellow and red cards once; and all of it over the
handler API (the verifier's list, the case's verification and actions, the timeline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch import store
from tests.dispatch.api_client import G01, OJY, api
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
    sweeps_pass,
)

FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}
# Monday 7 December 2026, 09:00 in Shanghai: a resolution then is verified by the close of the
# next working day (verify 1wd), Tuesday 17:30 Shanghai
MONDAY = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
TUESDAY_CLOSE = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def events_of(svc: Any, case_id: str) -> list[str]:
    async with svc.pool.acquire() as conn:
        return [r["event"] for r in await store.timeline(conn, case_id)]


async def state_is(svc: Any, case_id: str, state: str) -> None:
    await eventually(
        lambda: svc.pool.fetchval(
            "SELECT state = $2 FROM cases WHERE case_id = $1", case_id, state
        ),
        what=f"{case_id} {state}",
    )


async def test_a_resolution_sent_back_is_done_again_and_then_verified(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/handler-app") as d:
        sent = await d.open(case_opened(opened_at=MONDAY))
        cid = sent["case_id"]
        await d.act(cid, "h-0001", "accept", at=clock())
        await d.one("cases.accepted", cid)
        clock.advance(2 * HOUR)
        await d.act(cid, "h-0001", "resolve", at=clock(), note="垃圾已清运")
        first = await d.one("cases.resolved", cid)
        assert first["verifier_unit"] == OJY and at(first["verify_by"]) == TUESDAY_CLOSE
        await state_is(svc, cid, "verifying")

        # the resolver, and another handler of the grid, may not verify
        own = await d.act(cid, "h-0001", "verify", at=clock())
        assert "only the staff of WC-YY-OJY" in await d.rejected(own, cid)
        same_grid = await d.act(cid, "h-0002", "verify", at=clock())
        assert "only the staff of WC-YY-OJY" in await d.rejected(same_grid, cid)
        # a send-back needs its reason
        bare = await d.act(cid, "h-0010", "send_back", at=clock())
        assert "note" in await d.rejected(bare, cid)

        clock.advance(3 * HOUR)
        await d.act(cid, "h-0010", "send_back", at=clock(), note="现场仍有垃圾")
        back = await d.one("cases.sent_back", cid)
        assert back["reason"] == "现场仍有垃圾" and back["verifier_id"] == "h-0010"
        assert at(back["resolved_at"]) == at(first["resolved_at"])
        # 3 hours in verification do not count against the handler
        assert at(back["resolve_by"]) == at(sent["resolve_by"]) + 3 * HOUR
        await state_is(svc, cid, "accepted")

        clock.advance(HOUR)
        await d.act(cid, "h-0001", "resolve", at=clock(), note="已再次清运并消毒")
        await d.reader.wait_for(lambda _: d.of("cases.resolved", cid)[1:], what="second resolve")
        clock.advance(HOUR)
        await d.act(cid, "h-0010", "verify", at=clock(), note="现场已核实")
        verified = await d.one("cases.verified", cid)
        assert verified["on_time"] is True and verified["handler_id"] == "h-0001"
        assert verified["verifier_unit"] == OJY and verified["note"] == "现场已核实"
        assert at(verified["verified_at"]) == clock()
        await state_is(svc, cid, "resolved")
    assert (await events_of(svc, cid))[-4:] == ["resolve", "send_back", "resolve", "verify"]


async def test_a_verification_left_too_long_is_warned_then_overdue_once(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/handler-app") as d:
        cid = (await d.open(case_opened(opened_at=MONDAY)))["case_id"]
        await d.act(cid, "h-0001", "accept", at=clock())
        await d.one("cases.accepted", cid)
        await d.act(cid, "h-0001", "resolve", at=clock(), note="已修复")
        await d.one("cases.resolved", cid)
        await state_is(svc, cid, "verifying")

        clock.now = TUESDAY_CLOSE - HOUR  # past 80 % of the working time to the deadline
        warned = await d.one("cases.warned", cid, stage="verify")
        assert warned["unit"] == OJY and at(warned["due_at"]) == TUESDAY_CLOSE

        clock.now = TUESDAY_CLOSE + HOUR
        overdue = await d.one("cases.overdue", cid, deadline="verify")
        assert overdue["unit"] == OJY and at(overdue["due_at"]) == TUESDAY_CLOSE
        await sweeps_pass(svc)
        assert len(d.of("cases.overdue", cid)) == 1  # once
        assert len(d.of("cases.warned", cid, stage="verify")) == 1

        # still verifiable, late
        await d.act(cid, "h-0010", "verify", at=clock())
        verified = await d.one("cases.verified", cid)
        assert verified["on_time"] is False


async def test_verification_over_the_handler_api(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    street_place = {
        "district": "WC",
        "street": "WC-YY",
        "community": OJY,
        "grid": G01,
    }
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        # a street department's case (municipal facilities: 杨园街道市政所)
        opened = case_opened(category="municipal_facility", location=street_place, opened_at=MONDAY)
        sent = await d.open(opened)
        cid = sent["case_id"]
        assert sent["tier"] == "street" and sent["unit"] == "WC-YY-SZ"
        dept = http.auth("department_staff", "WC-YY-SZ", "h-0022")
        worker = http.worker()
        other = http.worker("h-0003", "WC-YY-OJY-G02")

        # the grid worker cannot see the department's case before it is resolved
        status, _ = await http.get(f"/cases/{cid}", worker)
        assert status == 404
        for kind, note in (("accept", None), ("resolve", "路灯已更换")):
            body = {"action": kind, **({"note": note} if note else {})}
            status, result = await http.act(cid, dept, body)
            assert status in (200, 202), result
        await state_is(svc, cid, "verifying")

        # now it is on the grid worker's list, with what they may do
        assert cid in await http.my_case_ids(worker)
        assert cid not in await http.my_case_ids(other)
        status, case = await http.get(f"/cases/{cid}", worker)
        assert status == 200, case
        assert case["state"] == "verifying"
        assert case["verification"]["verifier_unit"] == G01
        assert at(case["verification"]["verify_by"]) > MONDAY
        assert case["actions"] == ["verify", "send_back"]
        status, by_dept = await http.get(f"/cases/{cid}", dept)
        assert status == 200 and by_dept["actions"] == []
        status, _ = await http.get(f"/cases/{cid}", other)
        assert status == 404

        status, problem = await http.act(cid, dept, {"action": "verify"})
        assert status == 403, problem
        status, result = await http.act(cid, worker, {"action": "verify", "note": "路灯已亮"})
        assert status in (200, 202), result
        verified = await d.one("cases.verified", cid)
        assert verified["verifier_id"] == "h-0001" and verified["handler_id"] == "h-0022"
        status, case = await http.get(f"/cases/{cid}", dept)
        assert case["state"] == "resolved" and case["verification"] is None
        assert [s["event"] for s in case["timeline"]][-2:] == ["resolve", "verify"]
