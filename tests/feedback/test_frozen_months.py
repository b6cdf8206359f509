"""Frozen months on the real broker and database, with a clock the test moves: a month's figures
are provisional until it closed plus the grace, then frozen (by the first read or the sweep) and
served as the official figures; later events show as adjustments beside them, never in them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cli.client import Publisher
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.feedback.app import create_service
from services.feedback.freezing import FreezePolicy
from services.feedback.official import FreezeSweep
from shared.runtime.uow import UnitOfWork
from tests.dispatch.support import FakeClock
from tests.feedback.helpers import (
    accepted,
    dispatched,
    http_get,
    new_case_id,
    opened,
    resolved,
    send,
    sh,
)
from tests.samples import sample_registry, wait_registry

G01 = "WC-YY-OJY-G01"
GRACE = timedelta(days=5)


def october_case(case_id: str, day: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("cases.opened", opened(case_id, at=sh(10, day, 9))),
        ("cases.dispatched", dispatched(case_id, "grid", G01, sh(10, day, 9, 5))),
        ("cases.accepted", accepted(case_id, "grid", G01, sh(10, day, 9, 30), True)),
        ("cases.resolved", resolved(case_id, "grid", G01, sh(10, day, 15), on_time=True)),
    ]


async def test_a_closed_month_is_frozen_and_late_events_are_adjustments(bed: Testbed) -> None:
    clock = FakeClock(sh(10, 20, 12))
    svc = await bed.start(
        "feedback",
        lambda s: create_service(s, clock=clock),
        WANGGE_METRICS_FREEZE_GRACE=GRACE,
        # the service's own sweep only at its start (September then): this test runs the sweep
        WANGGE_FREEZE_SWEEP_INTERVAL_S=3600,
    )
    settings = bed.settings()
    await publish_registry(settings, sample_registry())
    await wait_registry(bed)
    first, late = new_case_id(), new_case_id()

    async def metrics(code: str, period: str = "2026-10") -> Any:
        status, body = await http_get(svc, f"/units/{code}/metrics?period={period}")
        assert status == 200, body
        return body

    async with Publisher(settings, source="test/upstream") as pub:
        for topic, body in october_case(first, 5):
            await send(pub, topic, body)

        async def resolved_once() -> Any:
            body = await metrics("WC-YY-OJY")
            return body if body["metrics"]["resolved"] == 1 else None

        live = await eventually(resolved_once, timeout=30, what="the first case counted")
        assert (live["status"], live["freezes_at"]) == ("provisional", "2026-11-06T00:00:00+08:00")
        assert live["adjustments"] == []

        clock.now = sh(11, 10, 9)  # October closed, and its grace is over
        frozen = await metrics("WC-YY-OJY")
        assert frozen["status"] == "frozen"
        assert frozen["frozen_at"] == "2026-11-10T09:00:00+08:00"
        assert (frozen["metrics"]["received"], frozen["metrics"]["resolved"]) == (1, 1)
        assert frozen["adjustments"] == []
        assert (await metrics("WC-YY-OJY", "2026-11"))["status"] == "provisional"

        # an October case whose events come in November, after the freeze
        for topic, body in october_case(late, 7):
            await send(pub, topic, body)

        async def adjusted() -> Any:
            body = await metrics("WC-YY-OJY")
            figures = {a["figure"]: a for a in body["adjustments"]}
            return body if "resolved" in figures else None

        after = await eventually(adjusted, timeout=30, what="the late case as an adjustment")
    assert after["metrics"] == frozen["metrics"]  # never rewritten
    assert after["frozen_at"] == frozen["frozen_at"]
    changes = {a["figure"]: a for a in after["adjustments"]}
    assert changes["received"] == {"figure": "received", "frozen": 1, "current": 2, "change": 1}
    assert changes["resolved"]["change"] == 1
    assert changes["response_rate"]["change"] == {"numerator": 1, "denominator": 1}

    # the sweep freezes every other unit's October as it stands (both cases by now)
    async with svc.pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, source="test", topic_prefix=settings.topic_prefix)
        swept = await FreezeSweep(FreezePolicy(GRACE))(uow, clock())
        units = await conn.fetchval(
            "SELECT (SELECT count(*) FROM units WHERE level <> 'building')"
            " + (SELECT count(*) FROM departments)"
        )
        rows = await conn.fetchval("SELECT count(*) FROM frozen_figures WHERE period = '2026-10'")
    assert swept == units - 1 and rows == units  # all but the community frozen by the read
    street = await metrics("WC-YY")
    assert (street["status"], street["metrics"]["received"], street["adjustments"]) == (
        "frozen",
        2,
        [],
    )
    # a frozen month ranks by its frozen figures
    status, ranking = await http_get(svc, "/units/WC-YY/ranking?period=2026-10&by=received")
    assert status == 200
    received = {r["code"]: r["received"] for r in ranking["ranking"]}
    assert received["WC-YY-OJY"] == 1
