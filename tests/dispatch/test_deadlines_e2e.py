"""Deadlines on the real broker and database: the sweepers reassign, escalate and resume; several
replicas never act twice on one case; WANGGE_SLA_SCALE runs a day in seconds; the due-date
queries use their indexes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch import store
from tests.dispatch.support import (
    Driver,
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
    sweeps_pass,
)

FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}


async def test_missed_deadlines_reassign_then_escalate(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        cid = (await d.open(case_opened()))["case_id"]
        top = (await d.open(case_opened(category="demolition")))["case_id"]
        council = (await d.open(case_opened(category="parking")))["case_id"]
        await d.act(council, "h-0010", "accept", at=clock())
        await d.one("cases.accepted", council)
        await d.act(
            council,
            "h-0010",
            "deliberate",
            at=clock(),
            decide_by=clock() + timedelta(days=5),
            note="业主意见不一，提交议事会",
        )
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT state = 'deliberating' FROM cases WHERE case_id = $1", council
            ),
            what="deliberating",
        )

        # response deadline (2 h) missed: the next handler of the grid, a fresh response deadline
        clock.advance(timedelta(hours=2, minutes=1))
        overdue = await d.one("cases.overdue", cid, deadline="respond")
        assert (overdue["unit"], overdue["handler_id"]) == ("WC-YY-OJY-G01", "h-0001")
        again = await d.one("cases.dispatched", cid, attempt=2)
        assert (again["tier"], again["handler_id"]) == ("grid", "h-0002")
        assert datetime.fromisoformat(again["respond_by"]) == clock() + timedelta(hours=2)
        await d.act(cid, "h-0002", "accept", at=clock())
        assert (await d.one("cases.accepted", cid))["on_time"] is True  # within the new deadline

        # resolution deadline (24 h) missed: one tier up, reason timeout, exactly once
        clock.advance(timedelta(hours=22))
        esc = await d.one("cases.escalated", cid)
        assert datetime.fromisoformat(esc.pop("escalated_at")) == clock()  # the sweep's time
        assert esc == {
            "case_id": cid,
            "from_tier": "grid",
            "to_tier": "community",
            "unit": "WC-YY-OJY",
            "reason": "timeout",
        }
        up = await d.one("cases.dispatched", cid, attempt=3)
        assert (up["tier"], up["handler_id"]) == ("community", "h-0010")
        await d.one("cases.overdue", cid, deadline="resolve")
        await sweeps_pass(svc)
        await d.drain()
        assert len(d.of("cases.escalated", cid)) == 1

        # the council's case is paused: 3 days passed its resolve_by, but no escalation yet
        clock.advance(timedelta(days=3))
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.escalated", council) == []
        # at decide_by it is back in the handler's hands, its deadline pushed back by the pause
        clock.advance(timedelta(days=2))
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT state = 'accepted' FROM cases WHERE case_id = $1", council
            ),
            what="deliberation ended",
        )
        # and 3 days + 5 days of pause after its dispatch, the resolution deadline fires
        clock.advance(timedelta(days=3))
        assert (await d.one("cases.escalated", council))["reason"] == "timeout"

        # at the top tier: overdue once, nothing to escalate to
        clock.advance(timedelta(days=15))
        await d.one("cases.overdue", top, deadline="resolve")
        await sweeps_pass(svc)
        await d.drain()
        assert len(d.of("cases.overdue", top, deadline="resolve")) == 1
        assert d.of("cases.escalated", top) == []
        async with svc.pool.acquire() as conn:
            events = [r["event"] for r in await store.timeline(conn, cid)]
        assert events[:4] == ["dispatched", "respond_timeout", "accept", "resolve_timeout"]

        # what operators see on /metrics: missed deadlines and the open cases by tier
        await svc.metrics.refresh()
        text = svc.metrics.render().decode()
        assert 'wangge_deadline_breaches_total{deadline="respond",tier="grid"} 1.0' in text
        assert 'wangge_deadline_breaches_total{deadline="resolve",tier="grid"} 1.0' in text
        assert 'wangge_deadline_breaches_total{deadline="resolve",tier="district"} 1.0' in text
        open_now = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("wangge_open_cases{")
        ]
        assert len(open_now) == 4 and sum(open_now) == 3


async def test_replicas_escalate_each_case_exactly_once(bed: Testbed) -> None:
    clock = FakeClock()
    replicas = [await start_dispatch(bed, clock, **FAST) for _ in range(2)]
    await load_registry(bed)
    n = 150
    async with (
        Publisher(bed.settings(), source="test/intake") as pub,
        TopicReader(bed.settings(), "cases.dispatched", "cases.escalated") as reader,
    ):
        d = Driver(pub, reader)
        cases = [case_opened() for _ in range(n)]
        await asyncio.gather(*(d.send("cases.opened", c, c.case_id) for c in cases))
        await reader.wait_for(lambda r: len(r.of("cases.dispatched")) >= n, what="dispatched")

        clock.advance(timedelta(days=1, minutes=1))  # every grid case is past its resolve_by
        await reader.wait_for(lambda r: len(r.of("cases.escalated")) >= n, what="escalations")
        for svc in replicas:
            await sweeps_pass(svc, 3)
        await d.drain()
        escalated = [r.json()["case_id"] for r in reader.of("cases.escalated")]
        assert sorted(escalated) == sorted(c.case_id for c in cases)  # each exactly once
        swept = await replicas[0].pool.fetchval(
            "SELECT count(*) FROM timeline WHERE event = 'resolve_timeout'"
        )
        assert swept == n


async def test_sla_scale_runs_a_day_in_seconds(bed: Testbed) -> None:
    # scale 1e-5: grid responds in 0.07 s and resolves in 0.86 s; community resolves in 2.6 s
    svc = await start_dispatch(bed, WANGGE_SLA_SCALE=1e-5, WANGGE_SWEEP_INTERVAL_S=0.2)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        cid = (await d.open(case_opened()))["case_id"]
        await d.one("cases.overdue", cid, deadline="respond", timeout=15)
        esc = await d.one("cases.escalated", cid, from_tier="grid", timeout=15)
        assert (esc["to_tier"], esc["reason"]) == ("community", "timeout")
        assert await svc.pool.fetchval("SELECT tier FROM cases WHERE case_id = $1", cid) in (
            "community",
            "street",
        )


async def test_due_queries_use_their_indexes(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    async with svc.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        for sql, index in (
            (store.RESPOND_DUE_SQL, "cases_respond_due"),
            (store.RESOLVE_DUE_SQL, "cases_resolve_due"),
            (store.PAUSES_DUE_SQL, "cases_pause_due"),
            (store.RESPOND_WARN_DUE_SQL, "cases_respond_warn_due"),
            (store.RESOLVE_WARN_DUE_SQL, "cases_resolve_warn_due"),
        ):
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, FakeClock()(), 500))
            assert index in plan, plan
