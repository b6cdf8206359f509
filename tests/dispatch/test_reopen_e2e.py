"""Reopen and supervision (督办) on the real broker and database; deadlines survive a restart."""

from __future__ import annotations

from datetime import timedelta

from devstack.testbed import Testbed
from shared.contract.events import CaseReopened
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
)


async def test_reopens_go_one_tier_up_then_under_supervision(bed: Testbed) -> None:
    clock = FakeClock()
    await start_dispatch(bed, clock)
    await load_registry(bed)
    async with driving(bed, "test/feedback") as d:
        cid = (await d.open(case_opened()))["case_id"]
        await d.act(cid, "h-0001", "accept", at=clock())
        await d.act(cid, "h-0001", "resolve", at=clock(), note="已清运")
        await d.one("cases.resolved", cid, tier="grid")
        await d.act(cid, "h-0010", "verify", at=clock())  # the community verifies the grid's
        await d.one("cases.verified", cid)
        reopen = CaseReopened(case_id=cid, reason="unsatisfied", reopen_count=1)
        await d.send("cases.reopened", reopen, cid)

        # resolved at grid, reopened: dispatched again at community, no supervision yet
        first = await d.one("cases.dispatched", cid, attempt=2)
        assert (first["tier"], first["unit"], first["handler_id"]) == (
            "community",
            "WC-YY-OJY",
            "h-0010",
        )
        assert "reopened (1): unsatisfied" in first["tier_reasons"]
        aid = await d.act(cid, "h-0001", "progress", at=clock(), note="grid is out of it")
        assert "assigned" in await d.rejected(aid, cid)

        await d.act(cid, "h-0010", "accept", at=clock())
        await d.act(cid, "h-0010", "resolve", at=clock(), note="社区已协调")
        await d.one("cases.resolved", cid, tier="community")
        await d.act(cid, "h-0001", "verify", at=clock())  # the grid worker the community's
        await d.reader.wait_for(lambda _: d.of("cases.verified", cid)[1:], what="verified")
        await d.send(
            "cases.reopened", CaseReopened(case_id=cid, reason="unsatisfied", reopen_count=2), cid
        )

        # the second reopen: one tier above community, and 督办 by the street
        second = await d.one("cases.dispatched", cid, attempt=3)
        assert (second["tier"], second["unit"], second["handler_id"]) == (
            "street",
            "WC-YY",
            "h-0020",
        )
        esc = await d.one("cases.escalated", cid)
        assert esc.pop("escalated_at") == second["dispatched_at"]
        assert esc == {
            "case_id": cid,
            "from_tier": "community",
            "to_tier": "street",
            "unit": "WC-YY",
            "reason": "supervision",
        }
        await d.drain()
        assert len(d.of("cases.escalated", cid)) == 1  # the first reopen did not escalate


async def test_deadlines_survive_a_restart(bed: Testbed) -> None:
    clock = FakeClock()
    first = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=0.1)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        cid = (await d.open(case_opened()))["case_id"]
        await bed.stop(first)  # no timer lives in memory: the deadline is a row
        clock.advance(timedelta(days=1, minutes=1))
        await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=0.1)
        esc = await d.one("cases.escalated", cid)
        assert (esc["from_tier"], esc["to_tier"], esc["reason"]) == ("grid", "community", "timeout")
