"""The real pipeline, reports.submitted -> intake -> cases.opened -> dispatch -> cases.dispatched:
sustained throughput from a backlog, latency at a fixed offered load, and two dispatch replicas.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.runtime.kafka import client_security_kwargs
from shared.runtime.settings import Settings
from sim.driver import Driver
from sim.territory import Territory
from sim.workload import Mix, ReportFactory

OUTCOME_TOPICS = ("cases.opened", "cases.merged", "reports.rejected", "cases.dispatched")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


@dataclass
class Outcomes:
    """What came out of the pipeline, with the monotonic time each record was read."""

    times: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in OUTCOME_TOPICS})
    dispatched_first: Counter[str] = field(default_factory=Counter)  # case_id -> attempt-1 count
    opened_reports: dict[str, str] = field(default_factory=dict)  # case_id -> first report id
    dispatched_at: dict[str, float] = field(default_factory=dict)  # case_id -> read time
    # (topic, case_id) -> the record's Kafka timestamp (ms; when the outbox relay produced it)
    produced_ms: dict[tuple[str, str], int] = field(default_factory=dict)
    # cases intake opened itself (未诉先办 hotspots, no report's): not counted as reports done
    proactive: set[str] = field(default_factory=set)

    def add(self, topic: str, body: dict[str, Any], at: float, produced_ms: int = 0) -> None:
        if topic == "cases.opened" and not body.get("report_ids"):
            self.proactive.add(body.get("case_id", ""))
            return
        if topic == "cases.dispatched" and body.get("case_id") in self.proactive:
            return
        if topic in ("cases.opened", "cases.dispatched") and "case_id" in body:
            self.produced_ms.setdefault((topic, body["case_id"]), produced_ms)
        if topic == "cases.dispatched":
            if int(body.get("attempt", 1)) != 1:
                return
            self.dispatched_first[body["case_id"]] += 1
            self.dispatched_at.setdefault(body["case_id"], at)
        elif topic == "cases.opened":
            self.opened_reports[body["case_id"]] = body["report_ids"][0]
        self.times[topic].append(at)

    @property
    def reports_done(self) -> int:
        """Reports through the pipeline: dispatched (first time), merged or rejected."""
        return (
            len(self.times["cases.dispatched"])
            + len(self.times["cases.merged"])
            + len(self.times["reports.rejected"])
        )

    def done_times(self) -> list[float]:
        return sorted(
            self.times["cases.dispatched"]
            + self.times["cases.merged"]
            + self.times["reports.rejected"]
        )


async def _reader(settings: Settings, topics: tuple[str, ...]) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **client_security_kwargs(settings),
    )
    await consumer.start()
    await consumer._client.force_metadata_update()
    parts = [
        TopicPartition(settings.topic(t), p)
        for t in topics
        for p in sorted(consumer.partitions_for_topic(settings.topic(t)) or ())
    ]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)
    return consumer


async def collect(
    settings: Settings,
    outcomes: Outcomes,
    until: Any,
    *,
    timeout: float,
    started: asyncio.Event | None = None,
) -> bool:
    """Read the outcome topics (from their end as of now) until ``until(outcomes)`` or timeout."""
    consumer = await _reader(settings, OUTCOME_TOPICS)
    if started is not None:
        started.set()
    prefix = len(settings.topic_prefix)
    deadline = time.monotonic() + timeout
    try:
        while not until(outcomes):
            if time.monotonic() > deadline:
                return False
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            at = time.monotonic()
            for tp, records in batch.items():
                for r in records:
                    if r.value is not None:
                        body = orjson.loads(r.value)
                        outcomes.add(tp.topic[prefix:], body, at, r.timestamp)
        return True
    finally:
        await consumer.stop()


def sustained_rate(times: list[float], lo: float = 0.1, hi: float = 0.9) -> float:
    """Completions per second between the ``lo`` and ``hi`` quantiles of completion times
    (leaves out the start-up and the tail)."""
    if len(times) < 20:
        return 0.0
    a, b = int(len(times) * lo), int(len(times) * hi)
    span = times[b] - times[a]
    return (b - a) / span if span > 0 else 0.0


async def preload_backlog(
    settings: Settings, territory: Territory, n: int, seed: int, tag: str
) -> float:
    """Publish ``n`` reports as fast as the producer goes; report ids start with ``tag``."""
    driver = Driver(
        settings, ReportFactory(territory, seed=seed, run_tag=tag), count=n, progress=True
    )
    stats = await driver.run()
    if stats.send_errors:
        raise RuntimeError(f"{stats.send_errors} backlog reports not sent")
    return stats.offered_rate


async def latency_run(
    settings: Settings,
    territory: Territory,
    rate: float,
    duration: float,
    seed: int,
    drain: float,
    tag: str = "",
) -> dict[str, Any]:
    """Offer new reports (each opens a case) at ``rate`` for ``duration`` s; latency from publish
    to reading ``cases.dispatched``, over the reports whose case was dispatched. Report ids start
    with ``tag`` (default ``lat<rate>``)."""
    published: dict[str, float] = {}
    outcomes = Outcomes()
    driver = Driver(
        settings,
        ReportFactory(territory, seed=seed, mix=Mix.clean(), run_tag=tag or f"lat{int(rate)}"),
        rate=rate,
        duration_s=duration,
        on_published=lambda rid, t: published.__setitem__(rid, t),
        progress=True,
    )
    target = int(rate * duration)
    ready = asyncio.Event()
    reader = asyncio.create_task(
        collect(
            settings,
            outcomes,
            lambda o: len(o.dispatched_first) >= target,
            timeout=duration + drain,
            started=ready,
        )
    )
    await ready.wait()
    stats = await driver.run()
    await reader
    done = [
        (case, rid)
        for case, rid in outcomes.opened_reports.items()
        if case in outcomes.dispatched_at and rid in published
    ]
    lat = [(outcomes.dispatched_at[case] - published[rid]) * 1000 for case, rid in done]
    return {
        "offered_per_s": round(stats.offered_rate, 1),
        "offered": stats.offered,
        "dispatched": len(lat),
        **{f"p{q}": _round(percentile(lat, q)) for q in (50, 95, 99)},
        "max": round(max(lat), 1) if lat else None,
        "hops_ms": _hops(outcomes, published, done),
        # the slowest report published in each second of the run: when the tail happened
        "max_per_second": _max_per_second(
            [(published[rid], ms) for (_, rid), ms in zip(done, lat, strict=True)]
        ),
    }


def _max_per_second(points: list[tuple[float, float]]) -> list[float]:
    """(publish time, latency ms) -> the largest latency of each second from the first publish."""
    if not points:
        return []
    t0 = min(t for t, _ in points)
    out = [0.0] * (int(max(t for t, _ in points) - t0) + 1)
    for t, ms in points:
        out[int(t - t0)] = max(out[int(t - t0)], round(ms, 1))
    return out


def _hops(
    outcomes: Outcomes, published: dict[str, float], done: list[tuple[str, str]]
) -> dict[str, dict[str, float | None]]:
    """Where the latency goes, from the Kafka timestamps the outbox relays give the records
    (producer time, wall clock): publish -> cases.opened produced (intake, with its relay),
    -> cases.dispatched produced (dispatch, with its relay), -> read by this benchmark."""
    to_wall = time.time() - time.monotonic()  # published/read times are monotonic
    spans: dict[str, list[float]] = {"intake": [], "dispatch": [], "read": []}
    for case, rid in done:
        opened = outcomes.produced_ms.get(("cases.opened", case))
        dispatched = outcomes.produced_ms.get(("cases.dispatched", case))
        if not opened or not dispatched:
            continue
        spans["intake"].append(opened - (published[rid] + to_wall) * 1000)
        spans["dispatch"].append(dispatched - opened)
        spans["read"].append((outcomes.dispatched_at[case] + to_wall) * 1000 - dispatched)
    return {hop: {f"p{q}": _round(percentile(v, q)) for q in (50, 99)} for hop, v in spans.items()}


def _round(v: float | None) -> float | None:
    return round(v, 1) if v is not None else None


async def duplicated_effects(admin_dsn: str, database: str) -> dict[str, int]:
    """Dispatch's own record: cases, and cases dispatched (first time) more than once."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        cases = await conn.fetchval("SELECT count(*) FROM dispatch.cases")
        twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT case_id FROM dispatch.timeline
               WHERE event = 'dispatched' GROUP BY case_id HAVING count(*) > 1) d"""
        )
        return {"dispatch_cases": cases, "cases_with_two_dispatch_entries": twice}
    finally:
        await conn.close()
