"""未诉先办 hotspot rule (services/intake/hotspots.py) on the simulator's workload: no alarm on
ordinary days, one task for a burst, early, and once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.hotspots import (
    BUCKET,
    Decision,
    HotspotRule,
    Replay,
    bucket_of,
    poisson_tail,
)
from sim.territory import TerritorySize, generate_territory
from sim.workload import Mix, ReportFactory

START = datetime(2026, 11, 1, tzinfo=UTC)
PER_DAY = 300  # reports a day over 20 communities: a busy district's rate per community


def simulated(days: int, seed: int = 5) -> list[tuple[str, str, datetime]]:
    """The cases the simulator's reports open (its mix of categories and buildings; the
    duplicates it sends join a case), each with the community of its building and a time of a
    Poisson process over ``days``."""
    territory = generate_territory(
        TerritorySize(streets=4, communities=20, grids=120, buildings=1200), seed=seed
    )
    community_of = {b.code: b.community for b in territory.buildings}
    grid_of = {b.grid: b.community for b in territory.buildings}
    by_address = {b.address: b.community for b in territory.buildings}
    by_point = {(b.lon, b.lat): b.community for b in territory.buildings}
    factory = ReportFactory(territory, seed=seed, mix=Mix(invalid=0.0))
    rng = random.Random(seed)
    at, end, out = START, START + timedelta(days=days), []
    while at < end:
        at += timedelta(seconds=rng.expovariate(PER_DAY / 86400))
        duplicates = factory.kinds["duplicate"]
        _, body = factory.next()
        if factory.kinds["duplicate"] > duplicates:
            continue  # a second report of a building's matter joins its case: not counted
        loc = body["location"]
        community = (
            community_of.get(loc.get("building_code", ""))
            or grid_of.get(loc.get("grid_code", ""))
            or by_address.get(loc.get("address", ""))
            or by_point.get((loc.get("lon"), loc.get("lat")))
        )
        category = body.get("category") or factory._last_category
        assert community is not None
        out.append((community, category, at))
    return out


@pytest.fixture(scope="module")
def workload() -> list[tuple[str, str, datetime]]:
    return simulated(days=42)


def test_ordinary_days_raise_next_to_no_alarm(workload):
    bursts = Replay(HotspotRule()).run(workload)
    after_warm_up = [b for b in bursts if b.at >= START + timedelta(days=28)]
    # 14 days x 20 communities x 21 categories judged at every report
    assert len(after_warm_up) <= 1, after_warm_up


def test_a_burst_is_one_task_before_the_eighth_call(workload):
    rule = HotspotRule()
    quiet = [r for r in workload if r[2] < START + timedelta(days=35)]
    community = quiet[-1][0]
    replay = Replay(rule)
    replay.run(quiet)
    before = len(replay.bursts)
    t = START + timedelta(days=35)
    decisions = [
        replay.add(community, "ebike_charging", t + timedelta(minutes=20 * i)) for i in range(12)
    ]
    assert decisions.count(Decision.NEW) == 1
    assert decisions.index(Decision.NEW) < 7  # early: by the 7th report
    assert all(d is Decision.ONGOING for d in decisions[decisions.index(Decision.NEW) + 1 :])
    assert len(replay.bursts) == before + 1
    burst = replay.bursts[-1]
    assert burst.community == community and burst.category == "ebike_charging"
    assert burst.recent >= rule.min_reports and burst.expected < 1
    # after the burst has gone quiet for a window, a new burst is a new task
    later = t + timedelta(days=2)
    again = [
        replay.add(community, "ebike_charging", later + timedelta(minutes=i)) for i in range(12)
    ]
    assert again.count(Decision.NEW) == 1


def test_a_busy_baseline_needs_more_reports():
    rule = HotspotRule()
    assert rule.is_burst(5, 0)
    busy = 28 * 4 * 3  # three reports every six hours, for 28 days
    assert not rule.is_burst(6, busy)
    assert rule.is_burst(14, busy)
    assert not rule.is_burst(4, 0)  # never below the minimum


def test_decide():
    rule = HotspotRule()
    now = START
    assert rule.decide(2, 0, None, now) is Decision.NONE
    assert rule.decide(6, 0, None, now) is Decision.NEW
    assert rule.decide(6, 0, now + timedelta(hours=1), now) is Decision.ONGOING
    assert rule.decide(6, 0, now - timedelta(seconds=1), now) is Decision.NEW


def test_counted_at_stays_within_the_baseline_and_now():
    rule = HotspotRule()
    now = START
    assert rule.counted_at(now + timedelta(days=1), now) == now
    assert rule.counted_at(None, now) == now
    assert rule.counted_at(now - timedelta(days=400), now) == now - rule.window - rule.baseline
    assert rule.counted_at(now - timedelta(hours=1), now) == now - timedelta(hours=1)


@given(st.integers(0, 60), st.floats(0.01, 30))
def test_poisson_tail_matches_the_textbook_sum(k, mean):
    import math

    exact = 1 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))
    assert poisson_tail(k, mean) == pytest.approx(max(0.0, exact), abs=1e-9)


@given(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 1, 1)))
def test_bucket_of(at):
    at = at.replace(tzinfo=UTC)
    b = bucket_of(at)
    assert b <= at < b + BUCKET
    assert bucket_of(b) == b
