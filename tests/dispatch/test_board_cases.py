"""The board's open cases, kept per row version (``console.queries.OpenCases``), on the real
broker and database: what a kept set answers is what a fresh read answers, after cases are
opened, one accepted and then resolved (its row changed: awaiting its verification, 核查), and as
time passes (the due status moves without the row changing); ``forget`` drops what it is not
told is open."""

from __future__ import annotations

from datetime import timedelta

from devstack.testbed import Testbed
from services.dispatch.console.board import BoardCase
from services.dispatch.console.queries import OpenCases
from services.dispatch.due import DUE_SOON_FRACTION
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch

QUIET = 3600.0


async def test_kept_cases_are_what_a_fresh_read_gives(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    policy = svc.dispatch.policy
    kept = OpenCases(policy, DUE_SOON_FRACTION)

    async def both() -> tuple[list[BoardCase], list[BoardCase]]:
        async with svc.pool.acquire() as conn:
            units = [r["code"] for r in await conn.fetch("SELECT code FROM units")]
            fresh = await OpenCases(policy, DUE_SOON_FRACTION).of(conn, units, clock())
            again = await kept.of(conn, units, clock())
        return sorted(again, key=lambda c: c.case_id), sorted(fresh, key=lambda c: c.case_id)

    async with driving(bed, "test/intake") as d:
        first = await d.open(case_opened(opened_at=clock()))
        second = await d.open(case_opened(opened_at=clock()))
        got, want = await both()
        assert got == want and len(got) == 2
        assert {c.due for c in got} == {"on_track"}

        # a row changed: the kept one is read again
        await d.act(first["case_id"], first["handler_id"], "accept", at=clock())
        await d.one("cases.accepted", first["case_id"])
        got, want = await both()
        assert got == want
        states = {c.case_id: c.state for c in got}
        assert states[first["case_id"]] == "accepted"

        # time passes, no row changes: the second case's response is due soon, then overdue
        clock.advance(timedelta(minutes=100))
        got, want = await both()
        assert got == want
        dues = {c.case_id: c.due for c in got}
        assert dues[second["case_id"]] == "due_soon"
        clock.advance(timedelta(minutes=30))
        got, want = await both()
        assert got == want
        assert {c.case_id: c.due for c in got}[second["case_id"]] == "overdue"

        # resolved: awaiting its verification, only that deadline running
        await d.act(first["case_id"], first["handler_id"], "resolve", at=clock(), note="已清理")
        await d.one("cases.resolved", first["case_id"])
        got, want = await both()
        assert got == want
        states = {c.case_id: c.state for c in got}
        assert states == {first["case_id"]: "verifying", second["case_id"]: "dispatched"}
        kept.forget([second["case_id"]])
        assert set(kept.entries) == {second["case_id"]}
