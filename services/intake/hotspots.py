"""未诉先办 (acting before residents call): a burst of reports of one category in one community,
above that community's own baseline, becomes a proactive task for it. Pure: no SQL, no Kafka.

Counted are the reports that open a case (a report that joins one, 附议, is the same matter
again: its case already tells the unit), per (community, category), in buckets of ``BUCKET``
(15 minutes) by the time they were made (``submitted_at``, never later than when intake handles
them, never earlier than the baseline's start). Whenever a batch of reports adds to a
(community, category), intake compares:

- ``recent``: the reports of the last ``window`` (``WANGGE_HOTSPOT_WINDOW``, 6 h), with
- ``expected``: the reports of the ``baseline`` before it (``WANGGE_HOTSPOT_BASELINE``, 28 days),
  plus one (a community without any still has a small rate), scaled to one window.

A **burst** is ``recent >= min_reports`` (``WANGGE_HOTSPOT_MIN_REPORTS``, 5) and a Poisson tail
``P(X >= recent | expected) < p`` (``WANGGE_HOTSPOT_P``, 0.0001): as many reports would come by
chance once in ten thousand windows. A quiet community's burst is a handful of reports; a busy
one's needs many more than its usual.

**Once per burst.** A burst opens a hotspot, active until ``window`` after the last report that
still made it a burst; while it is active, more reports extend it and open nothing. Only a burst
after it ended opens another. Intake decides this in the transaction of the report, under a lock
per (community, category), so two replicas or a restart never open two.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

BUCKET = timedelta(minutes=15)
_EPOCH = datetime(2000, 1, 1).astimezone()


def bucket_of(at: datetime) -> datetime:
    """The start of the bucket holding ``at``."""
    n = (at - _EPOCH) // BUCKET
    return _EPOCH + n * BUCKET


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    term = math.exp(-mean)  # P(X = 0)
    below = term
    for i in range(1, k):
        term *= mean / i
        below += term
    return max(0.0, 1.0 - below)


class Decision(StrEnum):
    NONE = "none"  # no burst
    NEW = "new"  # a burst and no active hotspot: open one (and its proactive case)
    ONGOING = "ongoing"  # a burst inside an active hotspot: extend it


@dataclass(frozen=True)
class HotspotRule:
    window: timedelta = timedelta(hours=6)
    baseline: timedelta = timedelta(days=28)
    min_reports: int = 5
    p: float = 0.0001

    def expected(self, baseline_count: int) -> float:
        """The reports one window holds at the baseline's rate (plus-one smoothed)."""
        return (baseline_count + 1) * (self.window / self.baseline)

    def is_burst(self, recent: int, baseline_count: int) -> bool:
        return recent >= self.min_reports and (
            poisson_tail(recent, self.expected(baseline_count)) < self.p
        )

    def decide(
        self, recent: int, baseline_count: int, active_until: datetime | None, now: datetime
    ) -> Decision:
        if not self.is_burst(recent, baseline_count):
            return Decision.NONE
        if active_until is not None and now < active_until:
            return Decision.ONGOING
        return Decision.NEW

    def counted_at(self, submitted_at: datetime | None, now: datetime) -> datetime:
        """When a report counts: when it was made, within [baseline start, now]."""
        if submitted_at is None or submitted_at > now:
            return now
        return max(submitted_at, now - self.window - self.baseline)

    def recent_since(self, now: datetime) -> datetime:
        """The first bucket of the recent window."""
        return bucket_of(now - self.window + BUCKET)

    def baseline_since(self, now: datetime) -> datetime:
        return self.recent_since(now) - self.baseline


@dataclass(frozen=True)
class Burst:
    community: str
    category: str
    at: datetime
    recent: int
    expected: float


@dataclass
class Replay:
    """The rule over a stream of reports in time order, as intake applies it report by report
    (the simulator's workload is tested through this)."""

    rule: HotspotRule
    counts: dict[tuple[str, str], dict[datetime, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    active_until: dict[tuple[str, str], datetime] = field(default_factory=dict)
    bursts: list[Burst] = field(default_factory=list)

    def add(self, community: str, category: str, at: datetime) -> Decision:
        key = (community, category)
        buckets = self.counts[key]
        buckets[bucket_of(self.rule.counted_at(at, at))] += 1
        recent_since, baseline_since = self.rule.recent_since(at), self.rule.baseline_since(at)
        recent = sum(n for b, n in buckets.items() if b >= recent_since)
        baseline = sum(n for b, n in buckets.items() if baseline_since <= b < recent_since)
        decision = self.rule.decide(recent, baseline, self.active_until.get(key), at)
        if decision is not Decision.NONE:
            self.active_until[key] = at + self.rule.window
        if decision is Decision.NEW:
            self.bursts.append(Burst(community, category, at, recent, self.rule.expected(baseline)))
        return decision

    def run(self, reports: Iterable[tuple[str, str, datetime]]) -> list[Burst]:
        for community, category, at in reports:
            self.add(community, category, at)
        return self.bursts


def task_title(community_name: str, category_name: str) -> str:
    return f"未诉先办：{community_name}{category_name}诉求集中"


def task_description(
    community_name: str, category_name: str, recent: int, expected: float, rule: HotspotRule
) -> str:
    hours = rule.window / timedelta(hours=1)
    return (
        f"近{hours:g}小时内{community_name}收到{recent}件「{category_name}」诉求，"
        f"高于平常（此前{rule.baseline.days}天平均每{hours:g}小时约{expected:.1f}件）。"
        "请主动排查、先行处置，不待更多居民来电。"
    )
