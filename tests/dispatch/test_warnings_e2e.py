"""Stage warnings (黄牌) on the real broker and database, with a clock the test moves: a stage is
warned once when its threshold is crossed (two replicas and a restart give no second warning),
again after a new dispatch attempt, never after its deadline (the red card, ``cases.overdue``);
the thresholds come from WANGGE_WARN_FRACTION and the rules file per tier; a deliberation moves
the warning back with the deadline; counted on /metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch import store
from services.dispatch.tiers import DEFAULT_RULES_FILE
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
    sweeps_pass,
)

FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}
MIN = timedelta(minutes=1)
SH = ZoneInfo("Asia/Shanghai")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_stage_is_warned_once_at_its_threshold(bed: Testbed) -> None:
    clock = FakeClock()
    replicas = [await start_dispatch(bed, clock, **FAST) for _ in range(2)]
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        first = await d.open(case_opened())  # grid: respond within 2 h, resolve within 24 h
        cid, start = first["case_id"], clock()

        # 95 of 120 minutes (79 %): no warning yet
        clock.advance(95 * MIN)
        for svc in replicas:
            await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.warned", cid) == []

        # 97 minutes (81 %): the yellow card, with the deadline and the share elapsed
        clock.advance(2 * MIN)
        warned = await d.one("cases.warned", cid, stage="respond")
        assert at(warned.pop("due_at")) == at(first["respond_by"])
        assert at(warned.pop("warned_at")) == clock()
        assert warned == {
            "case_id": cid,
            "stage": "respond",
            "tier": "grid",
            "unit": "WC-YY-OJY-G01",
            "handler_id": first["handler_id"],
            "elapsed_share": 0.808,
            "attempt": 1,
        }

        # both replicas sweep again, and a restarted one: still one warning
        restarted = await start_dispatch(bed, clock, **FAST)
        for svc in (*replicas, restarted):
            await sweeps_pass(svc, 3)
        await d.drain()
        assert len(d.of("cases.warned", cid)) == 1

        # the deadline (red card): reassigned, attempt 2 with a fresh response deadline and a
        # fresh warning 80 % into it; no yellow card for attempt 1 after its deadline
        clock.advance(24 * MIN)  # 2 h 1 min
        await d.one("cases.overdue", cid, deadline="respond")
        again = await d.one("cases.dispatched", cid, attempt=2)
        clock.advance(95 * MIN)
        for svc in replicas:
            await sweeps_pass(svc)
        await d.drain()
        assert len(d.of("cases.warned", cid)) == 1
        clock.advance(2 * MIN)
        second = await d.one("cases.warned", cid, stage="respond", attempt=2)
        assert at(second["due_at"]) == at(again["respond_by"])
        assert second["handler_id"] == again["handler_id"]

        # accepted: the response stage is over; the resolution stage is warned at 80 % of its
        # 24 hours (19.2 h after the first dispatch, which set it), once
        await d.act(cid, again["handler_id"], "accept", at=clock())
        await d.one("cases.accepted", cid)
        clock.advance(start + timedelta(hours=19, minutes=11) - clock())
        for svc in replicas:
            await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.warned", cid, stage="resolve") == []
        clock.advance(2 * MIN)
        resolve = await d.one("cases.warned", cid, stage="resolve")
        assert at(resolve["due_at"]) == at(first["resolve_by"])
        assert resolve["elapsed_share"] == 0.801 and resolve["attempt"] == 2
        for svc in replicas:
            await sweeps_pass(svc, 3)
        await d.drain()
        assert [w["stage"] for w in d.of("cases.warned", cid)] == ["respond", "respond", "resolve"]

        # the timeline says so, and /metrics counts every warning (summed over the replicas)
        async with replicas[0].pool.acquire() as conn:
            steps = [r for r in await store.timeline(conn, cid) if r["event"] == "warned"]
        assert len(steps) == 3
        counted: dict[str, float] = {}
        for svc in (*replicas, restarted):
            for line in svc.metrics.render().decode().splitlines():
                if line.startswith("wangge_stage_warnings_total{"):
                    name, value = line.rsplit(" ", 1)
                    counted[name] = counted.get(name, 0.0) + float(value)
        assert counted == {
            'wangge_stage_warnings_total{stage="respond",tier="grid"}': 2.0,
            'wangge_stage_warnings_total{stage="resolve",tier="grid"}': 1.0,
        }


async def test_thresholds_per_tier_and_setting(bed: Testbed, tmp_path: Path) -> None:
    rules = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    rules += "\nwarnings:\n  grid: {respond: 0.25}\n"
    path = tmp_path / "rules.yaml"
    path.write_text(rules, encoding="utf-8")
    clock = FakeClock()
    svc = await start_dispatch(
        bed, clock, WANGGE_TIER_RULES_FILE=str(path), WANGGE_WARN_FRACTION=0.5, **FAST
    )
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        grid = await d.open(case_opened())
        cid = grid["case_id"]
        # the grid's response: 25 % of 2 h (the rules file), so warned from 30 minutes
        clock.advance(29 * MIN)
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.warned", cid) == []
        clock.advance(2 * MIN)
        assert (await d.one("cases.warned", cid, stage="respond"))["elapsed_share"] == 0.258
        await d.act(cid, grid["handler_id"], "accept", at=clock())
        await d.one("cases.accepted", cid)
        # the grid's resolution: not in the file, so WANGGE_WARN_FRACTION: 50 % of 24 h
        clock.advance(timedelta(hours=11, minutes=58) - 31 * MIN)
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.warned", cid, stage="resolve") == []
        clock.advance(3 * MIN)
        assert (await d.one("cases.warned", cid, stage="resolve"))["elapsed_share"] == 0.501


async def test_a_deliberation_moves_the_warning_back(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, **FAST)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        first = await d.open(case_opened(category="parking"))  # community: resolve within 3 days
        cid, handler = first["case_id"], first["handler_id"]
        await d.act(cid, handler, "accept", at=clock())
        await d.one("cases.accepted", cid)
        await d.act(
            cid, handler, "deliberate", at=clock(), decide_by=clock() + timedelta(days=2), note="议"
        )
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT state = 'deliberating' FROM cases WHERE case_id = $1", cid
            ),
            what="deliberating",
        )
        # 80 % of 3 days is 57.6 h; paused 2 days, so not before 105.6 h
        clock.advance(timedelta(hours=100))
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.warned", cid) == []
        clock.advance(timedelta(hours=6))
        warned = await d.one("cases.warned", cid, stage="resolve")
        assert at(warned["due_at"]) == at(first["resolve_by"]) + timedelta(days=2)


async def test_a_working_time_stage_is_warned_in_working_time(bed: Testbed, tmp_path: Path) -> None:
    """The grid responds within 2 working hours (2wh): dispatched on Friday 20 November 2026 at
    17:00 (Shanghai), 30 minutes count that evening and the deadline is Monday 10:00; 80 % of the
    working time, 1 h 36 min, is reached on Monday at 09:36, not in the night (80 % of the 65
    natural hours would be Sunday 21:00)."""
    rules = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    assert "grid: {respond: 2h, resolve: 24h}" in rules
    path = tmp_path / "rules.yaml"
    working = "grid: {respond: 2wh, resolve: 3wd}"  # (so that nothing is missed over the weekend)
    path.write_text(rules.replace("grid: {respond: 2h, resolve: 24h}", working), encoding="utf-8")
    friday = datetime(2026, 11, 20, 17, 0, tzinfo=SH)
    clock = FakeClock(friday)
    svc = await start_dispatch(bed, clock, WANGGE_TIER_RULES_FILE=str(path), **FAST)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        grid = await d.open(case_opened(opened_at=friday))
        cid = grid["case_id"]
        assert at(grid["respond_by"]) == datetime(2026, 11, 23, 10, 0, tzinfo=SH)
        clock.advance(datetime(2026, 11, 23, 9, 35, tzinfo=SH) - clock())  # Monday 09:35
        await sweeps_pass(svc)
        await d.drain()
        assert d.of("cases.warned", cid) == []  # none on Sunday evening nor at 09:35
        clock.advance(2 * MIN)  # 09:37: 97 of the 120 working minutes
        warned = await d.one("cases.warned", cid, stage="respond")
        assert warned["elapsed_share"] == 0.808
        warn_at = await svc.pool.fetchval(
            "SELECT timeline.at FROM timeline WHERE case_id = $1 AND event = 'warned'", cid
        )
        assert warn_at == clock()
        due = await svc.pool.fetchval("SELECT respond_warn_at FROM cases WHERE case_id = $1", cid)
        assert due is None  # given
