"""缓办/延期 and 挂起 on the real broker and database: an extension asked for on handler.actions,
decided by the community (not by the case's own grid), its clock paused meanwhile, the approved
deadline judging the resolve; a suspension ended by the sweeper; both over the handler API, with
the approver's list, the case's extension and the timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch import store
from tests.dispatch.api_client import OJY, api
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
    sweeps_pass,
)

FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}
# Monday 7 December 2026, 09:00 in Shanghai: an extension request made then is decided by the
# close of the next working day (decide_within 1wd), Tuesday 17:30 Shanghai
MONDAY = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def steps(svc: Any, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with svc.pool.acquire() as conn:
        return [(r["event"], r["detail"]) for r in await store.timeline(conn, case_id)]


async def state_is(svc: Any, case_id: str, state: str) -> None:
    await eventually(
        lambda: svc.pool.fetchval(
            "SELECT state = $2 FROM cases WHERE case_id = $1", case_id, state
        ),
        what=f"{case_id} {state}",
    )


async def test_an_approved_extension_sets_the_deadline_that_judges_the_resolve(
    bed: Testbed,
) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/handler-app") as d:
        sent = await d.open(case_opened(opened_at=MONDAY))
        cid = sent["case_id"]
        first_deadline = at(sent["resolve_by"])
        assert first_deadline == MONDAY + 24 * HOUR  # grid: resolve within 24 h
        await d.act(cid, "h-0001", "accept", at=clock())
        await d.one("cases.accepted", cid)

        clock.advance(HOUR)
        extend_to = MONDAY + 72 * HOUR
        note = "需等待配件到货"
        await d.act(cid, "h-0001", "request_extension", at=clock(), note=note, extend_to=extend_to)
        await state_is(svc, cid, "extension_requested")

        # the case's own grid may not decide; the answer says who does
        own = await d.act(cid, "h-0002", "approve_extension", at=clock())
        assert "only the unit one tier up (WC-YY-OJY)" in await d.rejected(own, cid)

        # past the first deadline while the request waits: the grid's clock is paused, so no red
        # card and no escalation
        clock.advance(24 * HOUR)
        await sweeps_pass(svc)
        assert d.of("cases.overdue", cid) == [] and d.of("cases.escalated", cid) == []

        await d.act(cid, "h-0010", "approve_extension", at=clock())
        extended = await d.one("cases.extended", cid)
        assert at(extended["resolve_by"]) == extend_to
        # the deadline the pause had moved back by its 24 hours
        assert at(extended["previous_resolve_by"]) == first_deadline + 24 * HOUR
        assert (extended["approved_by"], extended["handler_id"]) == ("h-0010", "h-0001")
        assert extended["reason"] == "需等待配件到货" and at(extended["extended_at"]) == clock()

        # resolved 60 h after dispatch: late for the first deadline, on time for the approved one
        clock.advance(35 * HOUR)
        await d.act(cid, "h-0001", "resolve", at=clock(), note="配件到货后已更换")
        resolved = await d.one("cases.resolved", cid)
        assert resolved["on_time"] is True
        assert d.of("cases.overdue", cid) == []

    events = [e for e, _ in await steps(svc, cid)]
    assert events[-4:] == ["accept", "request_extension", "approve_extension", "resolve"]
    detail = dict(await steps(svc, cid))
    assert detail["request_extension"]["clock_paused"] is True
    assert detail["request_extension"]["approver"] == OJY
    assert at(detail["approve_extension"]["resolve_by"]) == extend_to


async def test_a_refused_and_a_lapsed_request_keep_the_deadline_moved_by_the_pause(
    bed: Testbed,
) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/handler-app") as d:
        refused = (await d.open(case_opened(opened_at=MONDAY)))["case_id"]
        lapsed = (await d.open(case_opened(opened_at=MONDAY)))["case_id"]
        for cid in (refused, lapsed):
            await d.act(cid, "h-0001", "accept", at=clock())
            await d.one("cases.accepted", cid)
            await d.act(
                cid,
                "h-0001",
                "request_extension",
                at=clock(),
                note="等待施工队",
                extend_to=MONDAY + 48 * HOUR,
            )
            await state_is(svc, cid, "extension_requested")

        clock.advance(2 * HOUR)
        await d.act(refused, "h-0010", "refuse_extension", at=clock(), note="可先行处置")
        await state_is(svc, refused, "accepted")
        row = await svc.pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", refused)
        assert (
            row is not None
            and row["resolve_by"] == MONDAY + 26 * HOUR
            and row["extension_to"] is None
        )
        assert d.of("cases.extended", refused) == []

        # nobody decides the other: at Tuesday 17:30 Shanghai (09:30 UTC) it lapses, the clock
        # having stopped from Monday 09:00 to then
        limit = datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
        clock.now = limit + timedelta(minutes=3)
        await state_is(svc, lapsed, "accepted")
        row = await svc.pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", lapsed)
        assert row is not None and row["resolve_by"] == MONDAY + 24 * HOUR + (limit - MONDAY)
        assert row["paused_at"] is None and row["extension_approver"] is None
        lapse = dict(await steps(svc, lapsed))["extension_lapsed"]
        assert lapse["paused_s"] == (limit - MONDAY).total_seconds()


async def test_a_suspension_stops_the_clock_until_resume_by(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/handler-app") as d:
        cid = (await d.open(case_opened(opened_at=MONDAY)))["case_id"]
        await d.act(cid, "h-0001", "accept", at=clock())
        await d.one("cases.accepted", cid)
        clock.advance(HOUR)
        await d.act(
            cid,
            "h-0001",
            "suspend",
            at=clock(),
            note="居民出差，约定周三上门",
            resume_by=MONDAY + 30 * HOUR,
        )
        await state_is(svc, cid, "suspended")

        # past the first deadline while suspended: nothing happens
        clock.advance(26 * HOUR)
        await sweeps_pass(svc)
        assert await svc.pool.fetchval("SELECT state FROM cases WHERE case_id = $1", cid) == (
            "suspended"
        )
        assert d.of("cases.overdue", cid) == [] and d.of("cases.warned", cid) == []

        # resume_by reached: running again, 29 hours added
        clock.advance(4 * HOUR)
        await state_is(svc, cid, "accepted")
        resolve_by = await svc.pool.fetchval("SELECT resolve_by FROM cases WHERE case_id = $1", cid)
        assert resolve_by == MONDAY + 24 * HOUR + 29 * HOUR
        ended = dict(await steps(svc, cid))["suspension_ended"]
        assert ended["paused_s"] == 29 * 3600


async def test_extensions_and_suspension_over_the_handler_api(bed: Testbed) -> None:
    clock = FakeClock(MONDAY)
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=3600)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened(opened_at=MONDAY)))["case_id"]
        me = http.worker("h-0001")
        community = http.auth("community_staff", OJY, "h-0010")
        assert (await http.act(cid, me, {"action": "accept"}))[0] == 200

        # the fields each action needs and may carry
        status, body = await http.act(cid, me, {"action": "request_extension", "note": "原因"})
        assert status == 422 and [e["field"] for e in body["errors"]] == ["body.extend_to"]
        status, body = await http.act(
            cid, me, {"action": "accept", "resume_by": (MONDAY + HOUR).isoformat()}
        )
        assert status == 422 and [e["field"] for e in body["errors"]] == ["body.resume_by"]
        too_early = {"action": "request_extension", "note": "原因", "extend_to": MONDAY.isoformat()}
        status, body = await http.act(cid, me, too_early)
        assert status == 422 and body["errors"][0]["field"] == "body.extend_to", body

        extend_to = MONDAY + 96 * HOUR
        status, body = await http.act(
            cid,
            me,
            {"action": "request_extension", "note": "需配件", "extend_to": extend_to.isoformat()},
        )
        assert status == 200, body
        assert body["case"]["state"] == "extension_requested"
        assert body["case"]["next_deadline"] is None  # the grid's clock is paused

        # the community sees the request in its list and the case's extension, and may decide
        assert cid in await http.my_case_ids(community)
        status, case = await http.get(f"/cases/{cid}", community)
        assert status == 200, case
        assert case["extension"]["approver"] == OJY and at(case["extension"]["extend_to"]) == (
            extend_to
        )
        assert set(case["actions"]) >= {"approve_extension", "refuse_extension"}
        status, mine = await http.get(f"/cases/{cid}", me)
        assert "approve_extension" not in mine["actions"]
        status, body = await http.act(cid, me, {"action": "approve_extension"})
        assert status == 403, body

        status, body = await http.act(cid, community, {"action": "refuse_extension"})
        assert status == 422 and body["errors"][0]["field"] == "body.note"
        clock.advance(HOUR)
        status, body = await http.act(cid, community, {"action": "approve_extension"})
        assert status == 200, body
        assert at(body["case"]["resolve_by"]) == extend_to
        status, case = await http.get(f"/cases/{cid}", me)
        assert case["extension"] is None and case["extensions"] == 1

        # suspend and resume: four hours added
        suspend = {
            "action": "suspend",
            "note": "居民外出",
            "resume_by": (clock() + 48 * HOUR).isoformat(),
        }
        assert (await http.act(cid, me, suspend))[0] == 200
        clock.advance(4 * HOUR)
        status, body = await http.act(cid, me, {"action": "resume"})
        assert status == 200, body
        assert at(body["case"]["resolve_by"]) == extend_to + 4 * HOUR
        status, body = await http.act(cid, me, {"action": "resume"})
        assert status == 409 and "resume needs a suspended case" in body["detail"], body
