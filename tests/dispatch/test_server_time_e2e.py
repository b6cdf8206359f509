"""The server's time decides (on the real broker and database): an action from ``handler.actions``
is on time or late by when dispatch applied it, not by the ``at`` its app sent; that ``at`` is
kept (``reported_at``, the timeline), and a skew beyond WANGGE_ACTION_SKEW_MAX_S is counted."""

from __future__ import annotations

from datetime import datetime, timedelta

from devstack.testbed import Testbed
from services.dispatch import store
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch

# one sweep at start-up, then none within the test: a late accept meets its missed deadline
# before any sweep reassigns the case
NO_SWEEPS = {"WANGGE_SWEEP_INTERVAL_S": 3600}
SKEWED = "wangge_action_time_skewed_total"


def skewed(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in (line.rsplit(" ", 1) for line in text.splitlines())
        if name.startswith(SKEWED + "{")
    }


async def test_a_backdated_accept_from_the_topic_stays_late(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, **NO_SWEEPS)
    await load_registry(bed)
    async with driving(bed, "test/handler-app") as d:
        late = await d.open(case_opened())
        prompt = await d.open(case_opened())
        respond_by = datetime.fromisoformat(late["respond_by"])

        # an app whose clock is right: on time, at the applied time, nothing counted
        clock.advance(timedelta(minutes=10))
        await d.act(prompt["case_id"], prompt["handler_id"], "accept", at=clock())
        ok = await d.one("cases.accepted", prompt["case_id"])
        assert ok["on_time"] is True
        assert datetime.fromisoformat(ok["accepted_at"]) == clock()
        assert skewed(svc.metrics.render().decode()) == {}

        # 2 h 10 min after dispatch, an accept claiming to be from 30 minutes in (before the
        # response deadline): late, at the time dispatch applied it
        clock.advance(timedelta(hours=2))
        claimed = respond_by - timedelta(minutes=90)
        await d.act(late["case_id"], late["handler_id"], "accept", at=claimed)
        accepted = await d.one("cases.accepted", late["case_id"])
        assert accepted["on_time"] is False
        assert datetime.fromisoformat(accepted["accepted_at"]) == clock() > respond_by
        assert datetime.fromisoformat(accepted["reported_at"]) == claimed
        async with svc.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT accepted_at FROM cases WHERE case_id = $1", late["case_id"]
            )
            step = [
                r for r in await store.timeline(conn, late["case_id"]) if r["event"] == "accept"
            ]
        assert row is not None and row["accepted_at"] == clock()
        (accept,) = step
        assert accept["at"] == clock()
        assert accept["detail"]["reported_at"] == claimed.isoformat()
        assert accept["detail"]["on_time"] is False

        # its skew (1 h 40 min, beyond 300 s) is counted on /metrics
        assert skewed(svc.metrics.render().decode()) == {f'{SKEWED}{{action="accept"}}': 1.0}

        # resolving: the time applied is resolved_at and judges it; the app's time beside it
        clock.advance(timedelta(minutes=1))
        future = clock() + timedelta(minutes=2)  # within the bound: not counted
        await d.act(late["case_id"], late["handler_id"], "resolve", at=future, note="已处理")
        resolved = await d.one("cases.resolved", late["case_id"])
        assert datetime.fromisoformat(resolved["resolved_at"]) == clock()
        assert datetime.fromisoformat(resolved["reported_at"]) == future
        assert resolved["on_time"] is True
        assert skewed(svc.metrics.render().decode()) == {f'{SKEWED}{{action="accept"}}': 1.0}
