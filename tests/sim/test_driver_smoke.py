"""A short real-broker run of the workload driver: a small simulated city through intake,
dispatch and feedback; the driver's handlers act on cases.dispatched and its residents rate
on feedback.requested, so cases get resolved and closed."""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial

from cli.client import TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from sim.driver import Driver
from sim.territory import TerritorySize, generate_territory
from sim.workload import HandlerModel, ReportFactory, ResidentModel

SCALE = 0.0002  # a simulated day in about 17 s, for the stack's deadlines and the driver's delays


async def test_driver_plays_reports_actions_and_ratings(bed: Testbed):
    t = generate_territory(TerritorySize.small(), seed=3)
    for name in ("intake", "dispatch", "feedback"):
        await bed.start(name, WANGGE_SLA_SCALE=SCALE, WANGGE_SWEEP_INTERVAL_S=0.5)
    await publish_registry(bed.settings(), t.records(), prune=False)
    last = t.handlers[-1].id
    for svc in bed.running:
        await eventually(
            partial(svc.pool.fetchval, "SELECT 1 FROM handlers WHERE id = $1", last),
            timeout=30,
            what=f"{svc.name} to read the registry",
        )
    driver = Driver(
        bed.settings(),
        ReportFactory(t, seed=21),
        handlers=HandlerModel(t, seed=22),
        residents=ResidentModel(seed=23),
        rate=40,
        count=60,
        time_scale=SCALE,
        tail_s=60,  # cancelled as soon as the loop is seen closing
        progress=False,
    )
    run = asyncio.create_task(driver.run())
    try:
        async with TopicReader(
            bed.settings(),
            "cases.opened",
            "reports.rejected",
            "cases.resolved",
            "cases.closed",
            "handler.actions.rejected",
        ) as reader:
            await reader.wait_for(
                lambda r: (
                    len(r.of("cases.resolved")) >= 10
                    and any(x.json()["outcome"] == "satisfied" for x in r.of("cases.closed"))
                ),
                timeout=40,
                what="resolved cases and a case closed by a rating",
            )
            assert driver.stats.offered == 60
            assert driver.stats.sent["handler.actions"] >= 10
            assert driver.stats.sent["feedback.submitted"] >= 1
            assert driver.stats.seen["cases.dispatched"] >= 10
            # the invalid reports the factory drew are rejected, the rest open or merge
            assert len(reader.of("cases.opened")) >= driver.reports.kinds["new"] - 5
            assert not driver.stats.send_errors
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
