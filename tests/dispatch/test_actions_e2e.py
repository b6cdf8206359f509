"""Handler actions on the real broker and database: the state machine, who may act, rejections,
idempotency, and the timeline that `wangge case show` prints."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console

from cli.case import render
from devstack.testbed import Testbed
from services.dispatch import store
from tests.dispatch.api_client import api
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
)


async def test_a_case_through_every_action(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        sent = await d.open(case_opened())
        cid = sent["case_id"]
        t = clock()

        # rules broken: nothing changes, a rejection says why
        aid = await d.act(cid, "h-0001", "resolve", at=t, note="已处理")
        assert "resolve needs an accepted case" in await d.rejected(aid, cid)
        aid = await d.act(cid, "h-0003", "accept", at=t)  # another grid's worker
        assert "assigned" in await d.rejected(aid, cid)
        aid = await d.act(cid, "h-9999", "accept", at=t)
        assert await d.rejected(aid, cid) == "unknown handler"
        aid = await d.act("c-nope", "h-0001", "accept", at=t)
        assert await d.rejected(aid, "c-nope") == "unknown case"
        aid = await d.act(cid, "h-0001", "escalate", at=t)  # escalate needs a note
        assert "note is required for escalate" in await d.rejected(aid, cid)

        # accept (any handler of the unit), twice with one action_id: applied once
        aid = await d.act(cid, "h-0002", "accept", at=t + timedelta(minutes=5))
        await d.act(cid, "h-0002", "accept", at=t + timedelta(minutes=5), action_id=aid)
        accepted = await d.one("cases.accepted", cid)
        assert accepted == {
            **accepted,
            "tier": "grid",
            "unit": "WC-YY-OJY-G01",
            "handler_id": "h-0002",
            "on_time": True,
        }
        again = await d.act(cid, "h-0001", "accept", at=t)
        assert "already accepted" in await d.rejected(again, cid)
        await d.act(cid, "h-0002", "progress", at=t + timedelta(minutes=30), note="已联系物业")

        # 上报/吹哨: one tier up, a new dispatch, and the grid can no longer act
        await d.act(cid, "h-0002", "escalate", at=t, note="需要社区协调物业")
        esc = await d.one("cases.escalated", cid)
        up = await d.one("cases.dispatched", cid, attempt=2)
        assert esc.pop("escalated_at") == up["dispatched_at"]  # when the new dispatch went out
        assert esc == {
            "case_id": cid,
            "from_tier": "grid",
            "to_tier": "community",
            "unit": "WC-YY-OJY",
            "reason": "handler: 需要社区协调物业",
        }
        up = await d.one("cases.dispatched", cid, attempt=2)
        assert (up["tier"], up["unit"], up["handler_id"]) == ("community", "WC-YY-OJY", "h-0010")
        late = await d.act(cid, "h-0002", "progress", at=t, note="还在跟进")
        assert "assigned" in await d.rejected(late, cid)

        # 退单: not the community's: to the command centre, which keeps the category; dispatched
        # past the community (here: one tier up)
        await d.act(cid, "h-0010", "accept", at=t)
        await d.one("cases.accepted", cid, handler_id="h-0010")
        await d.act(cid, "h-0010", "return", at=t, note="不属于社区职责")
        returned = await d.one("cases.returned", cid)
        assert (returned["unit"], returned["attempt"], returned["held_by"]) == (
            "WC-YY-OJY",
            2,
            "WC",
        )
        status, body = await http.post(f"/triage/{cid}", http.centre(), {"category": "sanitation"})
        assert status == 200, body
        back = await d.one("cases.dispatched", cid, attempt=3)
        assert (back["tier"], back["unit"], back["handler_id"]) == ("street", "WC-YY", "h-0020")
        decided = await d.one("cases.reclassified", cid)
        assert (decided["origin"], decided["to_category"]) == ("return", "sanitation")

        # transfer: to another unit of the same tier only
        bad = await d.act(cid, "h-0020", "transfer", at=t, target_unit="WC-YY-OJY-G02")
        assert "tier" in await d.rejected(bad, cid)
        await d.act(cid, "h-0020", "transfer", at=t, target_unit="WC-YY-SZ", note="市政所负责")
        moved = await d.one("cases.dispatched", cid, attempt=4)
        assert (moved["tier"], moved["unit"], moved["handler_id"]) == (
            "street",
            "WC-YY-SZ",
            "h-0022",
        )

        # 议事会: the deadline pauses until decide_by, then resolve with a note
        await d.act(cid, "h-0022", "accept", at=t)
        decide_by = t + timedelta(days=2)
        await d.act(cid, "h-0022", "deliberate", at=t, decide_by=decide_by, note="提交居民议事会")
        resolved_by = datetime.fromisoformat(moved["resolve_by"])
        await d.act(cid, "h-0022", "resolve", at=resolved_by + timedelta(days=1), note="已修复")
        resolved = await d.one("cases.resolved", cid)
        assert resolved == {
            **resolved,
            "tier": "street",
            "unit": "WC-YY-SZ",
            "handler_id": "h-0022",
            "note": "已修复",
            "on_time": True,  # a day after the original deadline, within the paused one
            "verifier_unit": "WC-YY-OJY-G01",  # the grid worker verifies a department's work
        }
        early = await d.act(cid, "h-0022", "progress", at=t, note="回访")
        assert "not allowed in state verifying" in await d.rejected(early, cid)
        await d.act(cid, "h-0001", "verify", at=t, note="现场已核实")
        await d.one("cases.verified", cid)
        done = await d.act(cid, "h-0022", "progress", at=t, note="回访")
        assert "the case is resolved" in await d.rejected(done, cid)

        await d.drain()
        assert len(d.of("cases.accepted", cid)) == 3  # the duplicate action_id was applied once
        assert len(d.of("cases.resolved", cid)) == 1

        case = await svc.pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", cid)
        assert case is not None
        assert case["state"] == "resolved" and case["resolved_tier"] == "street"
        assert case["excluded_units"] == ["WC-YY-OJY"]
        async with svc.pool.acquire() as conn:
            rows = [dict(r) for r in await store.timeline(conn, cid)]
        assert [(r["event"], r["to_state"]) for r in rows] == [
            ("dispatched", "dispatched"),
            ("accept", "accepted"),
            ("progress", "accepted"),
            ("escalate", "escalated"),
            ("accept", "accepted"),
            ("return", "triage"),
            ("reclassify", "dispatched"),
            ("transfer", "transferred"),
            ("accept", "accepted"),
            ("deliberate", "deliberating"),
            ("resolve", "verifying"),
            ("verify", "resolved"),
        ]
        out = Console(width=200, record=True)
        out.print(render(cid, dict(case), rows))
        text = out.export_text()
        assert "deliberate" in text and "WC-YY-SZ" in text and "state resolved" in text


async def test_party_volunteers_take_cases_of_their_community(bed: Testbed) -> None:
    await start_dispatch(bed)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d:
        cid = (await d.open(case_opened()))["case_id"]
        nope = await d.act(cid, "h-0013", "progress", note="看看")
        assert "only accept" in await d.rejected(nope, cid)
        await d.act(cid, "h-0013", "accept")  # 接单
        taken = await d.one("cases.accepted", cid)
        assert (taken["handler_id"], taken["unit"]) == ("h-0013", "WC-YY-OJY-G01")
        esc = await d.act(cid, "h-0013", "escalate", note="太难了")
        assert "party volunteers may not escalate" in await d.rejected(esc, cid)
        await d.act(cid, "h-0013", "resolve", note="已帮忙清理")
        assert (await d.one("cases.resolved", cid))["handler_id"] == "h-0013"

        other = (
            await d.open(
                case_opened(
                    location={
                        "district": "WC",
                        "street": "WC-ZHL",
                        "community": "WC-ZHL-QHJ",
                        "grid": "WC-ZHL-QHJ-G01",
                    }
                )
            )
        )["case_id"]
        far = await d.act(other, "h-0013", "accept")
        assert "own community" in await d.rejected(far, other)

        # an app claiming a time after the response deadline does not make an accept late: the
        # time dispatch applied it decides (tests/dispatch/test_server_time_e2e.py, backdated)
        slow = await d.open(case_opened())
        late = datetime.fromisoformat(slow["respond_by"]) + timedelta(minutes=1)
        await d.act(slow["case_id"], slow["handler_id"], "accept", at=late)
        accepted = await d.one("cases.accepted", slow["case_id"])
        assert accepted["on_time"] is True
        assert datetime.fromisoformat(accepted["reported_at"]) == late
        assert datetime.fromisoformat(accepted["accepted_at"]) < late
