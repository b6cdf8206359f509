"""The whole loop (#21 part 2): reports submitted -> cases opened (intake) -> dispatched ->
accepted and resolved by simulated handlers -> verified on site (核查) by the verifier unit ->
follow-up requested (feedback) -> rated by simulated residents -> closed, through all three
services, each its own process (``python -m services.<name>``, as ``make up`` runs them).

Alone: ``python -m bench.loop --out bench/results/<date>loop.json [--reports N] [--rate R]
[--warmup N] [--small-city] [--profile DIR]`` (a testbed of its own on the infrastructure
``devstack.infra`` resolves).

From ``bench.run``::

    result = await measure_loop(
        bed,                    # devstack.testbed.Testbed (its topics and service schemas made)
        territory,              # sim.territory.Territory (the simulated district)
        reports=5000,           # the burst of reports (a backlog published as fast as it goes)
        seed=1,
        logs=RUN / "bench" / "logs",
        tag="-<stamp>",         # suffix of the services' log files
        env={"WANGGE_LOG_LEVEL": "INFO"},  # the services' environment overrides
        profile_dir=None,       # a folder: the services run under pyinstrument, a profile each
        timeout_s=600,          # from the first report to the last case closed
        seed_schemas=("feedback",),  # the registry copies still to seed (upsert_record)
        sample_every_s=2.0,     # lags and outboxes sampled this often
        rate=None,              # None: a burst; else reports offered per second
        warmup=200,             # reports through the loop first, unmeasured
    )  # -> dict (the JSON's content; ``loop_closed_per_s`` is the headline)

It starts its own intake, dispatch and feedback and stops them at the end: call it with no other
service process of the testbed running. On a testbed used before, the services first catch up
on what is already in their topics (waited for: every lag of the loop's consumer groups 0).

How it measures: with the three services running and caught up, ``reports`` reports (the
simulator's mix without anonymous ones, whom nobody can ask to rate: 8 % duplicates, 2 % invalid)
are published as fast as the producer goes; the bench's batched driver (``LoopDriver``: one
consumer, one producer, a batch's sends not awaited one by one) plays the handlers (accept and
resolve each dispatched case at once), the verifiers (a handler of the ``verifier_unit`` other
than the resolver verifies) and the residents (open the sealed request as the notifier does,
rate satisfied), until every case opened is closed. Results:

- ``loop_closed_per_s``: closures between the 10th and 90th percentile of their Kafka
  timestamps (feedback's relay producing ``cases.closed``), as ``bench.pipeline.sustained_rate``;
- ``stages_ms``: per case, from the records' Kafka timestamps (the relay's produce time; the
  bench's own sends its send time): submitted -> opened -> dispatched -> accepted -> resolved ->
  verified -> feedback.requested -> rated (the bench's reaction) -> closed, p50/p95/p99, and the
  bench's share of the two handler stages (``bench_*``);
- ``cpu_us_per_closed``: CPU per closed case by process (intake, dispatch, feedback, Kafka's JVM,
  PostgreSQL, the bench process: its driver and publisher), from the first report to the last
  closure (``bench.procs.cpu_per_report``);
- ``lag``: each consumer group's lag on the loop's topics and each outbox's rows, every
  ``sample_every_s``, and the services' mean batch sizes: which one falls behind;
- ``doubled``: cases closed by more than one distinct ``ce_id`` (must be 0), and what was refused
  (``handler.actions.rejected``, ``feedback.rejected``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.pipeline import percentile, sustained_rate
from bench.procs import (
    ServiceProcess,
    cpu_per_report,
    cpu_snapshot,
    machine,
    start_service,
    wait_ready,
)
from bench.seed import seed_registry
from cli.client import Publisher
from devstack.paths import ROOT, RUN
from devstack.testbed import SERVICES, Testbed
from shared.contract.notify import NotifyKeys, SealError, open_request
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.settings import Settings
from sim.driver import Driver
from sim.territory import Territory, TerritorySize, generate_territory
from sim.workload import Mix, ReportFactory

TARGET_CLOSED_PER_S = 2000
# what the driver reads while the loop runs: to react, to account for every report, to see the
# end, and what was refused
LIVE_TOPICS = (
    "cases.opened",
    "cases.merged",
    "reports.rejected",
    "cases.dispatched",
    "cases.resolved",
    "feedback.requested",
    "cases.closed",
    "handler.actions.rejected",
    "feedback.rejected",
)
# read after the run, for their timestamps only (keeps their reading out of the measured CPU)
AFTER_TOPICS = ("cases.accepted", "cases.verified")
# the consumer groups whose lag is sampled: the loop's own topics
LAG_TOPICS = (
    "reports.submitted",
    "cases.opened",
    "cases.merged",
    "cases.dispatched",
    "handler.actions",
    "cases.accepted",
    "cases.resolved",
    "cases.verified",
    "feedback.submitted",
    "cases.closed",
)
# (stage, from point, to point); a point is the first record of its kind per case
STAGES = (
    ("submitted->opened", "submitted", "opened"),
    ("opened->dispatched", "opened", "dispatched"),
    ("dispatched->accepted", "dispatched", "accepted"),
    ("accepted->resolved", "accepted", "resolved"),
    ("resolved->verified", "resolved", "verified"),
    ("verified->requested", "verified", "requested"),
    ("requested->rated", "requested", "rated"),
    ("rated->closed", "rated", "closed"),
    ("submitted->closed", "submitted", "closed"),
    # the bench's own share of the handler stages: reading the event, sending the action
    ("bench_dispatched->accept_sent", "dispatched", "accept_sent"),
    ("bench_resolved->verify_sent", "resolved", "verify_sent"),
)
# which service consumes each batch-size metric's topic, for ``batches``
BATCH_TOPICS = {
    "intake": ("reports.submitted", "cases.closed", "cases.dispatched", "cases.resolved"),
    "dispatch": ("cases.opened", "cases.merged", "handler.actions"),
    "feedback": (
        "cases.opened",
        "cases.dispatched",
        "cases.accepted",
        "cases.resolved",
        "cases.verified",
        "feedback.submitted",
    ),
}


# --- the simulated people's decisions (pure) ----------------------------------------------------


@dataclass(frozen=True)
class Send:
    topic: str
    key: str
    body: dict[str, Any]


def staff_by_unit(territory: Territory) -> dict[str, list[str]]:
    """Who may act for a unit as a whole: its handlers other than party volunteers, by id."""
    return {
        unit: sorted(h.id for h in hs if h.role != "party_volunteer")
        for unit, hs in territory.handlers_by_unit.items()
    }


@dataclass
class Reactions:
    """What the simulated handlers, verifiers and residents answer, at once and always on the
    happy path: a dispatched case is accepted and resolved by its handler (or its unit's first),
    a resolution verified by the verifier unit's first handler other than the resolver, a
    follow-up request opened (``shared.contract.notify``) and rated satisfied. Idempotent: an
    event read twice is answered once (action ids fixed by the event)."""

    staff: Mapping[str, list[str]]
    keys: NotifyKeys
    note: str = "已到现场处理完毕"
    seen: set[tuple[str, ...]] = field(default_factory=set)
    unanswered: Counter[str] = field(default_factory=Counter)  # why an event got no answer
    stuck: set[str] = field(default_factory=set)  # cases nobody can act on: they cannot close

    def _once(self, *key: str) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def react(self, topic: str, body: Mapping[str, Any], at: str) -> list[Send]:
        if topic == "cases.dispatched":
            return self.dispatched(body, at)
        if topic == "cases.resolved":
            return self.resolved(body, at)
        if topic == "feedback.requested":
            return self.requested(body, at)
        return []

    def dispatched(self, ev: Mapping[str, Any], at: str) -> list[Send]:
        case_id, attempt = ev["case_id"], str(ev.get("attempt", 1))
        if not self._once("dispatched", case_id, attempt):
            return []
        handler = ev.get("handler_id") or next(iter(self.staff.get(ev["unit"], ())), None)
        if handler is None:
            self.unanswered[f"no handler in {ev['unit']}"] += 1
            self.stuck.add(case_id)
            return []
        return [
            self._action(case_id, handler, "accept", f"{case_id}:{attempt}:accept", at),
            self._action(
                case_id, handler, "resolve", f"{case_id}:{attempt}:resolve", at, note=self.note
            ),
        ]

    def resolved(self, ev: Mapping[str, Any], at: str) -> list[Send]:
        unit = ev.get("verifier_unit")
        case_id, resolved_at = ev["case_id"], str(ev.get("resolved_at"))
        if not unit or not self._once("resolved", case_id, resolved_at):
            return []
        verifier = next((h for h in self.staff.get(unit, ()) if h != ev.get("handler_id")), None)
        if verifier is None:
            self.unanswered[f"no verifier in {unit}"] += 1
            self.stuck.add(case_id)
            return []
        action_id = f"{case_id}:{resolved_at}:verify"
        return [self._action(case_id, verifier, "verify", action_id, at, note="现场已核实")]

    def requested(self, ev: Mapping[str, Any], at: str) -> list[Send]:
        try:
            token = open_request(ev, self.keys).rating_token
        except SealError:
            self.unanswered["request does not open"] += 1
            return []
        if not self._once("requested", token):
            return []  # a request published as v1 and v2 is rated once
        body = {
            "case_id": ev["case_id"],
            "rating_token": token,
            "at": at,
            "resolved": True,
            "satisfaction": "satisfied",
        }
        return [Send("feedback.submitted", ev["case_id"], body)]

    @staticmethod
    def _action(
        case_id: str, handler: str, action: str, action_id: str, at: str, **extra: Any
    ) -> Send:
        body = {
            "action_id": action_id,
            "case_id": case_id,
            "handler_id": handler,
            "action": action,
            "at": at,
            **extra,
        }
        return Send("handler.actions", case_id, body)


# --- what the records say (pure) ----------------------------------------------------------------


def stage_latencies(
    points: Mapping[str, Mapping[str, float]],
    stages: Iterable[tuple[str, str, str]] = STAGES,
) -> dict[str, dict[str, float | int | None]]:
    """Per stage, over the cases that have both points (ms): how many, p50, p95, p99."""
    out: dict[str, dict[str, float | int | None]] = {}
    for name, a, b in stages:
        start, end = points.get(a, {}), points.get(b, {})
        spans = [end[c] - t for c, t in start.items() if c in end]
        out[name] = {"cases": len(spans)}
        for q in (50, 95, 99):
            v = percentile(spans, q)
            out[name][f"p{q}"] = round(v, 1) if v is not None else None
    return out


def doubled_closures(closed_ids: Mapping[str, set[str]]) -> int:
    """Cases closed by more than one distinct event (a redelivery keeps its ``ce_id``)."""
    return sum(1 for ids in closed_ids.values() if len(ids) > 1)


def per_second(times_s: list[float], t0: float) -> list[int]:
    """How many of ``times_s`` fell in each second from ``t0``."""
    if not times_s:
        return []
    out = [0] * (int(max(times_s) - t0) + 1)
    for t in times_s:
        out[max(0, int(t - t0))] += 1
    return out


def lag_summary(samples: list[dict[str, Any]]) -> dict[str, dict[str, int | float]]:
    """Per consumer group: its largest lag, and when (s from the first report)."""
    out: dict[str, dict[str, int | float]] = {}
    for s in samples:
        for group, lag in s["lags"].items():
            if lag > out.get(group, {}).get("max", -1):
                out[group] = {"max": lag, "at_s": s["t"]}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["max"]))


# --- the batched driver ------------------------------------------------------------------------


@dataclass
class LoopDriver:
    """One consumer over ``LIVE_TOPICS`` (from their end as of ``start``), one producer: each
    polled batch is answered with sends queued at once (their acknowledgements counted by
    callbacks, not awaited one by one)."""

    settings: Settings
    reactions: Reactions
    consumer: AIOKafkaConsumer | None = None
    publisher: Publisher | None = None
    start_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    # point -> case_id -> ms (Kafka timestamps of what it read; wall clock of what it sent)
    points: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    first_report: dict[str, str] = field(default_factory=dict)  # case_id -> its first report
    closed_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    closed_read_at: list[float] = field(default_factory=list)  # monotonic, first per case
    outcomes: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    send_errors: int = 0
    refused: list[str] = field(default_factory=list)  # the first reasons of rejections
    submitted_ms: dict[str, float] = field(default_factory=dict)  # report id -> wall ms
    to_wall: float = field(default_factory=lambda: time.time() - time.monotonic())

    async def start(self, after_topics: tuple[str, ...] = AFTER_TOPICS) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **client_security_kwargs(self.settings),
        )
        await self.consumer.start()
        await self.consumer._client.force_metadata_update()
        parts = self._parts(LIVE_TOPICS + after_topics)
        live = [tp for tp in parts if tp.topic[len(self.settings.topic_prefix) :] in LIVE_TOPICS]
        ends = await self.consumer.end_offsets(parts)
        self.start_offsets = dict(ends)
        self.consumer.assign(live)
        for tp in live:
            self.consumer.seek(tp, ends[tp])
        self.publisher = Publisher(self.settings, source="bench/loop")
        await self.publisher.__aenter__()

    def _parts(self, topics: Iterable[str]) -> list[TopicPartition]:
        assert self.consumer is not None
        return [
            TopicPartition(self.settings.topic(t), p)
            for t in topics
            for p in sorted(self.consumer.partitions_for_topic(self.settings.topic(t)) or ())
        ]

    async def stop(self) -> None:
        if self.publisher is not None:
            await self.publisher.producer.flush()
            await self.publisher.__aexit__(None, None, None)
        if self.consumer is not None:
            await self.consumer.stop()

    def reports_done(self) -> int:
        o = self.outcomes
        return o["cases.opened"] + o["cases.merged"] + o["reports.rejected"]

    def finished(self, reports: int) -> bool:
        """Every report accounted for and every case opened closed (but those nobody can act
        on: a unit without a handler in the registry)."""
        closable = len(self.first_report) - len(self.reactions.stuck)
        return self.reports_done() >= reports and len(self.closed_ids) >= closable

    async def run(self, reports: int, timeout_s: float) -> bool:
        assert self.consumer is not None and self.publisher is not None
        prefix = len(self.settings.topic_prefix)
        deadline = time.monotonic() + timeout_s
        while not self.finished(reports):
            if time.monotonic() > deadline:
                return False
            batch = await self.consumer.getmany(timeout_ms=100, max_records=10_000)
            read_at = time.monotonic()
            at = datetime.now(UTC).isoformat()
            sends: list[Send] = []
            for tp, records in batch.items():
                topic = tp.topic[prefix:]
                self.seen[topic] += len(records)
                for r in records:
                    if r.value is not None:
                        sends += self._read(topic, r, read_at, at)
            await self._send(sends)
        return True

    def _read(self, topic: str, r: Any, read_at: float, at: str) -> list[Send]:
        points = self.points
        if topic in ("cases.merged", "reports.rejected"):
            self.outcomes[topic] += 1
            return []
        body = orjson.loads(r.value)
        case_id = body.get("case_id", "")
        if topic == "cases.opened":
            self.outcomes[topic] += 1
            self.first_report.setdefault(case_id, body["report_ids"][0])
            points["opened"].setdefault(case_id, r.timestamp)
        elif topic == "cases.dispatched":
            points["dispatched"].setdefault(case_id, r.timestamp)
        elif topic == "cases.resolved":
            points["resolved"].setdefault(case_id, r.timestamp)
        elif topic == "feedback.requested":
            points["requested"].setdefault(case_id, r.timestamp)
        elif topic == "cases.closed":
            if case_id not in self.first_report:
                self.outcomes["closed, opened before this run"] += 1
                return []
            ce_id = next((v.decode() for k, v in r.headers if k == "ce_id" and v), "")
            if case_id not in self.closed_ids:
                self.closed_read_at.append(read_at)
                points["closed"][case_id] = r.timestamp
                self.outcomes[f"closed {body.get('outcome')}"] += 1
            self.closed_ids[case_id].add(ce_id)
            return []
        else:  # a rejection
            self.outcomes[topic] += 1
            if len(self.refused) < 5:
                self.refused.append(f"{topic}: {body.get('reason') or body}")
            return []
        return self.reactions.react(topic, body, at)

    async def _send(self, sends: list[Send]) -> None:
        assert self.publisher is not None
        now_ms = time.time() * 1000
        for s in sends:
            fut = await self.publisher.send(s.topic, s.body, key=s.key, subject=s.key, wait=False)
            fut.add_done_callback(self._count_error)
            self.sent[s.topic] += 1
            point = "rated" if s.topic == "feedback.submitted" else f"{s.body['action']}_sent"
            self.points[point].setdefault(s.key, now_ms)

    def _count_error(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.send_errors += 1

    async def drive(
        self,
        territory: Territory,
        reports: int,
        *,
        seed: int,
        rate: float | None,
        timeout_s: float,
        run_tag: str,
    ) -> tuple[bool, float]:
        """Publish ``reports`` reports (as fast as the producer goes, or at ``rate``) while
        answering; returns whether every case closed within ``timeout_s``, and the rate the
        reports went out at."""
        running = asyncio.create_task(self.run(reports, timeout_s))
        publisher = Driver(
            self.settings,
            # no anonymous reports: nobody could be asked to rate their case
            ReportFactory(territory, seed=seed, mix=Mix(anonymous=0.0), run_tag=run_tag),
            count=reports,
            rate=rate,
            on_published=self.published,
            progress=False,
        )
        try:
            offered = await publisher.run()
        except BaseException:
            running.cancel()
            raise
        return await running, offered.offered_rate

    def published(self, report_id: str, monotonic: float) -> None:
        """``sim.driver.Driver``'s ``on_published``: the submitted point of a report (wall ms,
        as the producer stamps the record)."""
        self.submitted_ms[report_id] = (monotonic + self.to_wall) * 1000

    async def read_after(self) -> None:
        """The Kafka timestamps of ``AFTER_TOPICS`` since ``start`` (keys only: the case id),
        and each case's submitted point (its first report's)."""
        assert self.consumer is not None
        prefix = len(self.settings.topic_prefix)
        parts = [tp for tp in self.start_offsets if tp.topic[prefix:] in AFTER_TOPICS]
        self.consumer.assign(parts)
        for tp in parts:
            self.consumer.seek(tp, self.start_offsets[tp])
        ends = await self.consumer.end_offsets(parts)
        names = {"cases.accepted": "accepted", "cases.verified": "verified"}
        while [tp for tp in parts if await self.consumer.position(tp) < ends[tp]]:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp, records in batch.items():
                point = self.points[names[tp.topic[prefix:]]]
                for r in records:
                    if r.key is not None:
                        point.setdefault(r.key.decode(), r.timestamp)
        self.points["submitted"] = {
            case: self.submitted_ms[rid]
            for case, rid in self.first_report.items()
            if rid in self.submitted_ms
        }


# --- samplers ------------------------------------------------------------------------------------


async def loop_groups(bed: Testbed) -> list[str]:
    """The consumer groups of the testbed on ``LAG_TOPICS`` (``wangge-<service>.<topic>``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bed.bootstrap)
    await admin.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(bed.prefix)]
    finally:
        await admin.close()
    return sorted(g for g in groups if g[len(bed.prefix) :].partition(".")[2] in LAG_TOPICS)


@dataclass
class Sampler:
    """Every ``every_s``: each group's lag (end offsets minus committed, over its topic's
    partitions) and each service's outbox rows."""

    bed: Testbed
    groups: list[str]
    every_s: float = 2.0
    samples: list[dict[str, Any]] = field(default_factory=list)

    async def lags(self, admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer) -> dict[str, int]:
        prefix = len(self.bed.prefix)
        topics = {g: self.bed.prefix + g[prefix:].partition(".")[2] for g in self.groups}
        parts = {
            g: [TopicPartition(t, p) for p in probe.partitions_for_topic(t) or ()]
            for g, t in topics.items()
        }
        ends = await probe.end_offsets([tp for ps in parts.values() for tp in ps])
        out = {}
        for g in self.groups:
            offsets = await admin.list_consumer_group_offsets(g)
            done = {tp: max(0, m.offset) for tp, m in offsets.items()}
            out[g[prefix:]] = sum(ends[tp] - done.get(tp, 0) for tp in parts[g])
        return out

    async def run(self, t0: float) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bed.bootstrap)
        probe = AIOKafkaConsumer(bootstrap_servers=self.bed.bootstrap)
        await admin.start()
        await probe.start()
        conn = await asyncpg.connect(self.bed.admin_dsn)
        outbox_sql = "SELECT " + ", ".join(f"(SELECT count(*) FROM {s}.outbox)" for s in SERVICES)
        try:
            await probe._client.force_metadata_update()
            while True:
                lags = await self.lags(admin, probe)
                row = await conn.fetchrow(outbox_sql)
                outboxes = dict(zip(SERVICES, row.values(), strict=True)) if row else {}
                t = round(time.monotonic() - t0, 1)
                self.samples.append({"t": t, "lags": lags, "outboxes": outboxes})
                await asyncio.sleep(self.every_s)  # a sampling period, not synchronisation
        finally:
            await conn.close()
            await probe.stop()
            await admin.close()


async def caught_up(bed: Testbed, timeout_s: float) -> float:
    """Wait until every lag of the loop's groups is 0 (services started on a testbed used
    before first read what is already there); returns the seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    groups: list[str] = []
    while True:
        # the groups appear once each service's subscriptions joined
        groups = await loop_groups(bed)
        sampler = Sampler(bed, groups)
        admin = AIOKafkaAdminClient(bootstrap_servers=bed.bootstrap)
        probe = AIOKafkaConsumer(bootstrap_servers=bed.bootstrap)
        await admin.start()
        await probe.start()
        try:
            await probe._client.force_metadata_update()
            lags = await sampler.lags(admin, probe)
        finally:
            await probe.stop()
            await admin.close()
        services = {g.partition(".")[0] for g in lags}
        if len(services) == len(SERVICES) and not any(lags.values()):
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            raise TimeoutError(f"the services did not catch up in {timeout_s:.0f} s: {lags}")
        await asyncio.sleep(1.0)  # polling a condition with a deadline


# --- the run -------------------------------------------------------------------------------------


def failures(p: ServiceProcess) -> dict[str, float]:
    """``wangge_processing_failures_total`` of a service by topic and kind (deadlocks retried
    count here)."""
    with urllib.request.urlopen(f"{p.url}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(
        r'^wangge_processing_failures_total\{(?:kind="([^"]*)",topic="([^"]*)"|topic="([^"]*)",'
        r'kind="([^"]*)")\} (\S+)$',
        text,
        re.M,
    ):
        kind, topic = m.group(1) or m.group(4), m.group(2) or m.group(3)
        if float(m.group(5)):
            out[f"{topic} {kind}"] = float(m.group(5))
    return out


def stop(p: ServiceProcess, profiled: bool) -> None:
    p.stop(signal.SIGINT if profiled else signal.SIGTERM)


async def measure_loop(
    bed: Testbed,
    territory: Territory,
    *,
    reports: int = 5000,
    seed: int = 1,
    logs: Path = RUN / "bench" / "logs",
    tag: str = "",
    env: Mapping[str, str] | None = None,
    profile_dir: Path | None = None,
    timeout_s: float = 600,
    seed_schemas: tuple[str, ...] = ("feedback",),
    sample_every_s: float = 2.0,
    rate: float | None = None,
    warmup: int = 200,
) -> dict[str, Any]:
    """The whole loop over ``reports`` reports (module docstring); returns the results."""
    # no 未诉先办 task: a burst of reports would open proactive cases nobody reported, which
    # nobody rates (they close unrated after the window) and no report accounts for
    service_env = {"WANGGE_HOTSPOT_MIN_REPORTS": "1000000", **(env or {})}
    procs = {
        name: start_service(
            bed,
            name,
            logs,
            tag=f"{tag}-loop",
            profile_to=profile_dir / f"loop-{name}.txt" if profile_dir else None,
            env_over=service_env,
        )
        for name in SERVICES
    }
    settings = bed.settings()
    results: dict[str, Any] = {"reports": reports, "rate": rate, "warmup_reports": warmup}
    staff, keys = staff_by_unit(territory), NotifyKeys.parse(_notify_key(settings))
    driver = LoopDriver(settings, Reactions(staff, keys))
    sampling: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(wait_ready, *procs.values())
        t_seed = time.monotonic()
        if seed_schemas:
            await seed_registry(bed, territory, seed_schemas)
        results["registry_seed_s"] = round(time.monotonic() - t_seed, 1)
        results["catch_up_s"] = round(await caught_up(bed, timeout_s), 1)
        if warmup:
            # the services' first batches pay for what they build once (intake's classifier
            # and location index, caches, prepared statements): not the loop's rate
            results["warmup"] = await warm_up(settings, territory, staff, keys, warmup, timeout_s)
        await driver.start()
        sampler = Sampler(bed, await loop_groups(bed), sample_every_s)
        cpu_start = cpu_snapshot(*procs.values())
        t0, wall0 = time.monotonic(), time.time()
        sampling = asyncio.create_task(sampler.run(t0))
        finished, offered_rate = await driver.drive(
            territory, reports, seed=seed + 20, rate=rate, timeout_s=timeout_s, run_tag="loop"
        )
        results["finished"] = finished
        results["publish_per_s"] = round(offered_rate, 1)
        cpu_end = cpu_snapshot(*procs.values())
        wall_s = time.monotonic() - t0
        results["batches"] = {
            f"{name} {topic}": {
                **procs[name].batches(topic),
                "processing_s": round(
                    procs[name].metric("wangge_processing_seconds_sum", topic), 1
                ),
            }
            for name, topics in BATCH_TOPICS.items()
            for topic in topics
        }
        results["failures"] = {name: failures(p) for name, p in procs.items()}
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await driver.read_after()
    finally:
        if sampling is not None:
            sampling.cancel()
        await driver.stop()
        for p in procs.values():
            stop(p, profile_dir is not None)

    closed = len(driver.closed_ids)
    closed_s = sorted(ms / 1000 for ms in driver.points["closed"].values())
    results.update(
        {
            "cases_opened": len(driver.first_report),
            "cases_closed": closed,
            "reports_done": driver.reports_done(),
            "outcomes": dict(driver.outcomes),
            "wall_s": round(wall_s, 1),
            "loop_closed_per_s": round(sustained_rate(closed_s), 1),
            "loop_closed_per_s_as_read": round(sustained_rate(driver.closed_read_at), 1),
            "closed_per_second": per_second(closed_s, wall0),
            "stages_ms": stage_latencies(driver.points),
            "cpu_us_per_closed": cpu_per_report(cpu_start, cpu_end, closed),
            "doubled": {
                "cases_closed_twice": doubled_closures(driver.closed_ids),
                "closed_records": driver.seen["cases.closed"],
            },
            "refused": driver.refused,
            "unanswered": dict(driver.reactions.unanswered),
            "cases_nobody_can_close": len(driver.reactions.stuck),
            "seen": dict(driver.seen),
            "sent": dict(driver.sent),
            "send_errors": driver.send_errors,
            "lag": {"max": lag_summary(sampler.samples), "samples": sampler.samples},
            "target_closed_per_s": TARGET_CLOSED_PER_S,
            "target_met": sustained_rate(closed_s) >= TARGET_CLOSED_PER_S,
        }
    )
    if profile_dir is not None:
        results["profiles"] = [str(profile_dir / f"loop-{name}.txt") for name in SERVICES]
    return results


async def warm_up(
    settings: Settings,
    territory: Territory,
    staff: Mapping[str, list[str]],
    keys: NotifyKeys,
    reports: int,
    timeout_s: float,
) -> dict[str, Any]:
    """``reports`` reports through the whole loop, unmeasured, until their cases closed."""
    t0 = time.monotonic()
    driver = LoopDriver(settings, Reactions(staff, keys))
    await driver.start(after_topics=())
    try:
        finished, _ = await driver.drive(
            territory, reports, seed=7, rate=None, timeout_s=timeout_s, run_tag="warm"
        )
    finally:
        await driver.stop()
    return {
        "reports": reports,
        "finished": finished,
        "cases_closed": len(driver.closed_ids),
        "s": round(time.monotonic() - t0, 1),
    }


def _notify_key(settings: Settings) -> str | None:
    key = settings.notify_key
    return key.get_secret_value() if key else None


# --- alone ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.loop", description=__doc__.split("\n")[0])
    p.add_argument("--reports", type=int, default=5000, help="the reports of the measured run")
    p.add_argument(
        "--rate", type=float, default=None, help="offered reports/s (default: a burst, a backlog)"
    )
    p.add_argument("--warmup", type=int, default=200, help="reports through the loop first")
    p.add_argument("--small-city", action="store_true", help="a small territory (quick runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--timeout-s", type=float, default=600)
    p.add_argument("--sample-every-s", type=float, default=2.0)
    p.add_argument("--log-level", default="INFO", help="the services' WANGGE_LOG_LEVEL")
    p.add_argument(
        "--profile", type=Path, default=None, help="a folder: the services under pyinstrument"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results" / f"{datetime.now():%Y-%m-%d}loop.json",
    )
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    from devstack.infra import resolve
    from devstack.testbed import create_testbed, destroy_testbed

    started = datetime.now(UTC)
    infra = resolve(RUN / "bench", for_tests=False)  # env, else local processes in .run/bench
    out: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m bench.loop",
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
        "infra": infra.kind,
    }
    try:
        bed = await create_testbed(
            infra.bootstrap,
            infra.admin_dsn,
            partitions=args.partitions,
            name=f"loop{started:%H%M%S}",
        )
        try:
            size = TerritorySize.small() if args.small_city else TerritorySize()
            territory = generate_territory(size, seed=args.seed)
            out["territory"] = {
                "buildings": territory.count("building"),
                "grids": territory.count("grid"),
                "handlers": len(territory.handlers),
            }
            # the schemas exist once the services migrated them at their start: measure_loop
            # seeds every registry copy then
            out["loop"] = await measure_loop(
                bed,
                territory,
                reports=args.reports,
                seed=args.seed,
                tag=f"-{started:%H%M%S}",
                env={"WANGGE_LOG_LEVEL": args.log_level},
                profile_dir=args.profile,
                timeout_s=args.timeout_s,
                seed_schemas=SERVICES,
                sample_every_s=args.sample_every_s,
                rate=args.rate,
                warmup=args.warmup,
            )
        finally:
            await destroy_testbed(bed, infra.admin_dsn)
    finally:
        infra.stop()  # only what this run started
    out["load_avg_at_end"] = list(os.getloadavg())
    out["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    from shared.runtime.logging import configure_logging

    args = parse_args(argv)
    configure_logging("bench", "WARNING")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(amain(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    loop = results["loop"]
    for k in ("loop_closed_per_s", "cases_opened", "cases_closed", "finished", "wall_s"):
        print(f"{k}: {loop.get(k)}")
    print(f"cpu_us_per_closed: {json.dumps(loop['cpu_us_per_closed'])}")
    for stage, v in loop["stages_ms"].items():
        print(f"  {stage}: {json.dumps(v)}")
    print(f"doubled: {loop['doubled']}; refused: {loop['refused']}")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
