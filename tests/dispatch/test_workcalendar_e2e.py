"""Working-time deadlines on the real broker and database: a report on the Friday evening before
the 2025 National Day holiday, with a controllable clock — the deadlines dispatch publishes and
stores, the durable sweeps firing on them (not before), a fresh response deadline in working
time, and a deliberation over the holiday extending the resolution by the working time paused."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch.workcalendar import TZ
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
    sweeps_pass,
)

RULES = """
sla:
  grid: {respond: 2wh, resolve: 5wd}
  community: {respond: 4wh, resolve: 3d}
  street: {respond: 8h, resolve: 7d}
  district: {respond: 24h, resolve: 15d}
calendar:
  working_hours: ["08:30-12:00", "13:30-17:30"]
"""


def sh(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=TZ)


def at(record: dict[str, object], field: str) -> datetime:
    value = record[field]
    assert isinstance(value, str)
    return datetime.fromisoformat(value)


async def test_national_day_deadlines_in_working_time(bed: Testbed, tmp_path: Path) -> None:
    """Reported Friday 26 September 2025 at 19:40 (the hand computation is in
    ``tests/dispatch/test_workcalendar.py``): respond within 2 working hours is Sunday 28
    September 10:30 (a make-up working day, 调休), resolve within 5 working days is the close of
    Friday 10 October, 17:30 (the holiday 1-8 October skipped)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    clock = FakeClock(sh(9, 26, 19, 40))
    svc = await start_dispatch(
        bed, clock, WANGGE_TIER_RULES_FILE=str(rules), WANGGE_SWEEP_INTERVAL_S=0.1
    )
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        opened = await d.open(case_opened())
        cid = opened["case_id"]
        assert opened["tier"] == "grid"
        assert at(opened, "respond_by") == sh(9, 28, 10, 30)
        assert at(opened, "resolve_by") == sh(10, 10, 17, 30)
        stored = await svc.pool.fetchrow(
            "SELECT respond_by, resolve_by FROM cases WHERE case_id = $1", cid
        )
        assert stored is not None
        assert (stored["respond_by"], stored["resolve_by"]) == (
            sh(9, 28, 10, 30),
            sh(10, 10, 17, 30),
        )

        # Saturday is a rest day and Sunday's first two working hours are not over at 10:29
        clock.now = sh(9, 28, 10, 29)
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.overdue", cid) == []

        # 10:31 on the make-up Sunday: missed; the next handler has 2 working hours from now:
        # 10:31-12:00 is 1 h 29 min, the other 31 minutes after lunch, 13:30-14:01
        clock.now = sh(9, 28, 10, 31)
        await d.one("cases.overdue", cid, deadline="respond")
        again = await d.one("cases.dispatched", cid, attempt=2)
        assert at(again, "respond_by") == sh(9, 28, 14, 1)
        handler = again["handler_id"]
        await d.act(cid, handler, "accept", at=clock())
        assert (await d.one("cases.accepted", cid))["on_time"] is True

        # to the residents' council from Tuesday 30 September 15:30 until Thursday 9 October
        # 10:30: 2 working hours on Tuesday and 2 on Thursday are paused, so the resolution moves
        # from Friday 10 October 17:30 by 4 working hours: to Saturday 11 October (a make-up
        # working day), 08:30-12:00 and 13:30-14:00
        clock.now = sh(9, 30, 15, 30)
        await d.act(cid, handler, "deliberate", at=clock(), decide_by=sh(10, 9, 10, 30))
        extended = sh(10, 11, 14, 0)

        async def paused_until_saturday() -> bool:
            row = await svc.pool.fetchrow(
                "SELECT state, resolve_by FROM cases WHERE case_id = $1", cid
            )
            return row is not None and (row["state"], row["resolve_by"]) == (
                "deliberating",
                extended,
            )

        await eventually(paused_until_saturday, what="deliberating, resolve_by extended")

        # back from the council on 9 October; not overdue at 13:59 on Saturday 11 October
        clock.now = sh(10, 9, 10, 31)
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT state = 'accepted' FROM cases WHERE case_id = $1", cid
            ),
            what="deliberation ended",
        )
        clock.now = sh(10, 11, 13, 59)
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.escalated", cid) == []
        # and escalated once its extended deadline has passed
        clock.now = sh(10, 11, 14, 1)
        assert (await d.one("cases.escalated", cid))["reason"] == "timeout"
        up = await d.one("cases.dispatched", cid, attempt=3)
        # the community's 4 working hours from Saturday 14:01: 14:01-17:30, then Sunday 12
        # October is a rest day, Monday 13 October 08:30-09:01
        assert at(up, "respond_by") == sh(10, 13, 9, 1)
        assert at(up, "resolve_by") - sh(10, 11, 14, 1) == timedelta(days=3)  # natural per rule
