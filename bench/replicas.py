"""Replicas and partitions (issue #21 part 4): the pipeline reports.submitted -> intake ->
cases.opened -> dispatch -> cases.dispatched draining a backlog with several ``python -m
services.<name>`` processes per service, each layout on a testbed of its own (its database and
topics, created with the layout's partition count).

For each layout (``I`` intake and ``D`` dispatch processes on ``P`` partitions, default
``1x1@1``, ``1x1@6`` and ``2x2@6``) it

1. starts the processes, writes the territory's registry into intake's and dispatch's schemas and
   waits until every consumer group of the pipeline has all its members and all its partitions
   assigned (Kafka's own view of the groups: the partitions each member owns);
2. has ``warmup`` reports done first (intake loads its classifier and builds its location index
   on its first reports), then publishes ``reports`` simulated reports as fast as the producer
   goes and reads the outcome topics until every report is done (its case dispatched for the
   first time, merged or rejected), then a few seconds more, to catch anything sent twice;
3. records the sustained rate (completions after the last report was published, between the
   10 % and 90 % quantiles), the CPU each process used per report, how many messages each
   replica consumed per topic (its own ``/metrics``), and checks that nothing was doubled:
   one outcome per report (on Kafka and in ``intake.reports``), each case opened once and
   dispatched once per attempt (distinct ``ce_id`` per case on the topics, ``dispatch.timeline``),
   as many cases in intake and in dispatch as were opened.

From the single-replica layouts it derives what one partition carries (a partition is read by
one process of the group: at most what one process does on one core) and from that the sizing of
docs/scaling.md (``sizing``: partitions and replicas for a rate of reports, each of about ten
events).

Run alone::

    python -m bench.replicas --out bench/results/<date>replicas.json [--reports 10000]
        [--layouts 1x1@1,1x1@6,2x2@6] [--small-city] [--seed 1]

or from ``bench/run.py``::

    result = await measure_replicas(
        bootstrap, admin_dsn, territory,
        reports=10_000,                      # reports per layout
        layouts=(Layout(1, 1, 1), Layout(1, 1, 6), Layout(2, 2, 6)),
        seed=1,                              # the simulator's seed (each layout its own + i)
        logs=RUN / "bench" / "logs",         # the services' logs
        env={"WANGGE_LOG_LEVEL": "INFO"},    # the services' environment overrides
        timeout_s=300,                       # per layout, for the backlog to drain
        settle_s=3,                          # read on after the last outcome (late doubles)
        warmup=200,                          # reports done before the measured window
    )

``bootstrap`` and ``admin_dsn`` are Kafka's address and an admin DSN of PostgreSQL (as
``devstack.infra.Infra`` gives them); ``territory`` the simulated district
(``sim.territory.generate_territory``). It creates and destroys its own testbeds, so it can run
before or after the other steps; it returns the dict written as JSON (``layouts``, one entry
each, ``comparison``, ``per_partition`` and ``sizing``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from bench.pipeline import preload_backlog, sustained_rate
from bench.procs import (
    ServiceProcess,
    cpu_seconds,
    cpu_seconds_by_program,
    machine,
    machine_cpu_seconds,
    start_service,
    wait_ready,
)
from bench.seed import seed_registry
from devstack.paths import ROOT, RUN
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from devstack.wait import WaitTimeout, eventually
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client
from sim.territory import Territory, TerritorySize, generate_territory

OUTCOME_TOPICS = ("cases.opened", "cases.merged", "reports.rejected", "cases.dispatched")
# what each service consumes on the pipeline's path (intake reads cases.dispatched for Open311)
CONSUMED = {
    "intake": ("reports.submitted", "cases.dispatched"),
    "dispatch": ("cases.opened", "cases.merged"),
}
# the consumer groups whose split is waited for and recorded
GROUPS = {
    "intake": ("reports.submitted",),
    "dispatch": ("cases.opened", "cases.merged"),
}


@dataclass(frozen=True)
class Layout:
    """``intake`` and ``dispatch`` processes on topics of ``partitions`` partitions."""

    intake: int
    dispatch: int
    partitions: int

    @property
    def label(self) -> str:
        return f"{self.intake}x{self.dispatch}@{self.partitions}"

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``"2x2@6"``: two intake, two dispatch, six partitions."""
        procs, _, parts = text.strip().partition("@")
        i, _, d = procs.partition("x")
        layout = cls(int(i), int(d), int(parts or 6))
        if min(layout.intake, layout.dispatch, layout.partitions) < 1:
            raise ValueError(f"layout {text!r}: every count must be at least 1")
        return layout


DEFAULT_LAYOUTS = (Layout(1, 1, 1), Layout(1, 1, 6), Layout(2, 2, 6))


# --- pure: what came out, doubled or not -------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One outcome record as read from Kafka."""

    topic: str
    ce_id: str
    case_id: str | None = None
    report_ids: tuple[str, ...] = ()  # opened: the reports it opens with; merged/rejected: one
    attempt: int = 1


def record_of(topic: str, body: dict[str, Any], headers: Iterable[tuple[str, bytes]]) -> Record:
    ce_id = next((v.decode() for k, v in headers if k == "ce_id"), "")
    if topic == "cases.opened":
        reports = tuple(body.get("report_ids") or ())
    else:
        reports = (body["report_id"],) if body.get("report_id") else ()
    return Record(topic, ce_id, body.get("case_id"), reports, int(body.get("attempt", 1) or 1))


def doubled_on_topics(report_ids: Iterable[str], records: Iterable[Record]) -> dict[str, int]:
    """What the outcome records say about the reports published (``report_ids``): each must
    have exactly one outcome (a case opened with it first, a merge, a rejection), each case be
    opened once and dispatched once per attempt. Counted by distinct ``ce_id``: the same event
    read twice (an outbox re-publishing after a crash, harmless downstream thanks to the
    inboxes) is counted in ``records_read_twice``, not as a doubled effect."""
    outcomes: dict[str, set[str]] = defaultdict(set)  # report id -> ce_ids of its outcomes
    opened: dict[str, set[str]] = defaultdict(set)  # case id -> ce_ids of cases.opened
    dispatched: dict[tuple[str, int], set[str]] = defaultdict(set)
    seen: Counter[str] = Counter()
    proactive: set[str] = set()  # cases intake opened itself (未诉先办 hotspots): no report
    for r in records:
        seen[r.ce_id] += 1
        if r.topic == "cases.opened" and r.case_id:
            opened[r.case_id].add(r.ce_id)
            if r.report_ids:
                outcomes[r.report_ids[0]].add(r.ce_id)
            else:
                proactive.add(r.case_id)
        elif r.topic in ("cases.merged", "reports.rejected"):
            for rid in r.report_ids:
                outcomes[rid].add(r.ce_id)
        elif r.topic == "cases.dispatched" and r.case_id:
            dispatched[(r.case_id, r.attempt)].add(r.ce_id)
    wanted = set(report_ids)
    dispatched_cases = {case for case, _ in dispatched}
    return {
        "reports": len(wanted),
        "reports_without_outcome": sum(1 for rid in wanted if not outcomes.get(rid)),
        "reports_with_two_outcomes": sum(1 for rid in wanted if len(outcomes.get(rid, ())) > 1),
        "outcomes_of_other_reports": sum(1 for rid in outcomes if rid not in wanted),
        "cases_opened": len(opened),
        "proactive_cases_opened": len(proactive),
        "cases_opened_twice": sum(1 for ids in opened.values() if len(ids) > 1),
        "cases_dispatched": len(dispatched_cases),
        "cases_dispatched_twice_in_an_attempt": sum(
            1 for ids in dispatched.values() if len(ids) > 1
        ),
        "cases_opened_not_dispatched": len(set(opened) - dispatched_cases),
        "records_read_twice": sum(n - 1 for n in seen.values() if n > 1),
    }


DOUBLED_KEYS = (
    "reports_with_two_outcomes",
    "cases_opened_twice",
    "cases_dispatched_twice_in_an_attempt",
    "intake_report_rows_doubled",
    "cases_with_two_dispatch_entries",
)


def nothing_doubled(checks: dict[str, int]) -> bool:
    """True when no doubled effect was found (``checks``: the topics' and the tables' counts),
    every report had its outcome and the tables hold as many cases as were opened."""
    return (
        all(checks.get(k, 0) == 0 for k in DOUBLED_KEYS)
        and checks.get("reports_without_outcome", 0) == 0
        and checks.get("intake_cases") == checks.get("cases_opened") == checks.get("dispatch_cases")
    )


def split_of(
    consumed: dict[str, dict[str, float]], totals: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per topic: what each replica consumed (``consumed[replica][topic]``), whether each got
    some and whether together they consumed exactly the topic's messages (``totals``)."""
    out: dict[str, dict[str, Any]] = {}
    for topic, total in totals.items():
        by = {rep: int(c.get(topic, 0)) for rep, c in consumed.items() if topic in c}
        out[topic] = {
            "by_replica": by,
            "sum": sum(by.values()),
            "messages": total,
            "each_got_some": all(n > 0 for n in by.values()),
            "sum_equals_messages": sum(by.values()) == total,
        }
    return out


# --- pure: the sizing of docs/scaling.md --------------------------------------------------------

EVENTS_PER_REPORT = 10  # a report's life: submitted, opened, dispatched, accepted, resolved, ...
CONSUMERS_PER_EVENT = 2  # most case events are read by two services (feedback and one other)
BUSIEST_TOPIC_PER_REPORT = 3  # handler.actions: accept, resolve, verify


def size_for(
    reports_per_s: float,
    cpu_us_per_consumed: float,
    cpu_us_per_report_hop: dict[str, float],
    *,
    events_per_report: int = EVENTS_PER_REPORT,
    consumers_per_event: int = CONSUMERS_PER_EVENT,
    busiest_topic_per_report: int = BUSIEST_TOPIC_PER_REPORT,
    utilisation: float = 0.5,
    min_replicas: int = 2,
    partition_step: int = 6,
) -> dict[str, Any]:
    """Partitions and replicas for ``reports_per_s``, each report causing ``events_per_report``
    events, each event read by ``consumers_per_event`` services, each read costing
    ``cpu_us_per_consumed`` µs of a service's CPU (measured: the pipeline's service CPU over
    the messages its services consumed, the report's classification included, so dear for a
    status event), a replica being one process on one core kept at ``utilisation`` at the peak
    (the rest is headroom).

    - service cores: ``reports/s * events * consumers * µs``, all services together;
    - replicas per service: as if each service read every event (an upper bound: feedback
      reads nearly all, intake and dispatch about half), at ``utilisation`` of a core each, and
      at least ``min_replicas`` (one can fail or be restarted without a pause);
    - partitions per topic: the busiest topic (``busiest_topic_per_report`` messages a report:
      handler.actions, accept, resolve and verify) over what one partition carries, one process
      reading it at ``utilisation`` (``1e6 / µs`` of the dearest hop per message); at least the
      replicas (a replica without a partition idles), rounded up to a multiple of
      ``partition_step`` (6 today: partitions can be added, never removed, and adding moves keys,
      so start with room, in a count that splits evenly over 2, 3 or 6 replicas)."""
    events_per_s = reports_per_s * events_per_report
    consumed_per_s = events_per_s * consumers_per_event
    cores = consumed_per_s * cpu_us_per_consumed / 1e6
    per_service_cores = events_per_s * cpu_us_per_consumed / 1e6
    replicas = max(min_replicas, math.ceil(per_service_cores / utilisation))
    per_partition = 1e6 / max(cpu_us_per_report_hop.values())  # messages/s, one process, 1 core
    topic_per_s = reports_per_s * busiest_topic_per_report
    partitions_for_rate = math.ceil(topic_per_s / (per_partition * utilisation))
    needed = max(replicas, partitions_for_rate)
    partitions = partition_step * math.ceil(needed / partition_step)
    return {
        "reports_per_s": reports_per_s,
        "events_per_s": events_per_s,
        "consumed_per_s": consumed_per_s,
        "service_cores": round(cores, 3),
        "cores_per_service_at_most": round(per_service_cores, 3),
        "replicas_per_service": replicas,
        "busiest_topic_per_s": topic_per_s,
        "per_partition_messages_per_s": round(per_partition),
        "partitions_for_rate": partitions_for_rate,
        "partitions_per_topic": partitions,
        "utilisation": utilisation,
    }


# --- the run ------------------------------------------------------------------------------------


async def group_assignments(settings: Settings, group: str) -> list[list[int]]:
    """The partitions each member of consumer group ``group`` (logical name) owns, by Kafka."""
    admin = admin_client(settings)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.topic_prefix + group])
        [g] = response.groups
        members = g[5]  # (member_id, client_id, client_host, metadata, assignment)
        out: list[list[int]] = []
        for m in members:
            raw = m[-1]
            if not raw:
                out.append([])
                continue
            a = ConsumerProtocolMemberAssignment.decode(raw)
            out.append(sorted(p for _, parts in a.assignment for p in parts))
        return sorted(out)
    finally:
        await admin.close()


async def wait_split(settings: Settings, layout: Layout, timeout: float = 90) -> dict[str, Any]:
    """Wait until every pipeline group has its replicas as members and all partitions owned."""
    want = {"intake": layout.intake, "dispatch": layout.dispatch}
    groups = {
        f"wangge-{svc}.{topic}": want[svc] for svc, topics in GROUPS.items() for topic in topics
    }
    seen: dict[str, list[list[int]]] = {}

    async def split() -> bool:
        for group, members in groups.items():
            seen[group] = await group_assignments(settings, group)
            owned = sorted(p for m in seen[group] for p in m)
            if len(seen[group]) != members or owned != list(range(layout.partitions)):
                return False
        return True

    await eventually(split, timeout=timeout, interval=0.5, what="the groups to split partitions")
    return dict(seen)


@dataclass
class Reader:
    """The outcome topics from their beginning (a fresh testbed), every record kept, and when
    each report was done: merged, rejected, or its case dispatched (the proactive cases intake
    opens itself, 未诉先办, are no report's)."""

    settings: Settings
    records: list[Record] = field(default_factory=list)
    done: dict[str, float] = field(default_factory=dict)  # report id -> read time
    intake_done: dict[str, float] = field(default_factory=dict)  # report id -> its outcome read
    all_done: asyncio.Event = field(default_factory=asyncio.Event)  # set when ``until`` holds
    _report_of: dict[str, str] = field(default_factory=dict)  # case id -> its first report
    _dispatched: set[str] = field(default_factory=set)  # cases dispatched (first attempt)

    def reports_done(self) -> int:
        return len(self.done)

    def _add(self, rec: Record, at: float) -> None:
        self.records.append(rec)
        case = rec.case_id
        if rec.topic == "cases.dispatched":
            if rec.attempt == 1 and case:
                self._dispatched.add(case)
                if case in self._report_of:
                    self.done.setdefault(self._report_of[case], at)
        elif rec.topic == "cases.opened":
            if case and rec.report_ids:
                self._report_of[case] = rec.report_ids[0]
                self.intake_done.setdefault(rec.report_ids[0], at)
                if case in self._dispatched:
                    self.done.setdefault(rec.report_ids[0], at)
        else:
            for rid in rec.report_ids:
                self.intake_done.setdefault(rid, at)
                self.done.setdefault(rid, at)

    async def run(
        self, until: Any, *, timeout: float, settle: float, started: asyncio.Event
    ) -> bool:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            **client_security_kwargs(s),
        )
        await consumer.start()
        prefix = len(s.topic_prefix)
        try:
            await consumer._client.force_metadata_update()
            parts = [
                TopicPartition(s.topic(t), p)
                for t in OUTCOME_TOPICS
                for p in sorted(consumer.partitions_for_topic(s.topic(t)) or ())
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            started.set()
            deadline = time.monotonic() + timeout
            finished_at: float | None = None
            while True:
                now = time.monotonic()
                if finished_at is None and until(self):
                    finished_at = now
                    self.all_done.set()
                if finished_at is not None and now - finished_at >= settle:
                    return True
                if finished_at is None and now > deadline:
                    return False
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                at = time.monotonic()
                for tp, records in batch.items():
                    for r in records:
                        if r.value is not None:
                            rec = record_of(tp.topic[prefix:], orjson.loads(r.value), r.headers)
                            self._add(rec, at)
        finally:
            await consumer.stop()


async def table_facts(bed: Testbed, tag: str) -> dict[str, int]:
    """What the tables hold of this run: reports and their outcomes in intake, cases in intake
    and dispatch, cases with two ``dispatched`` steps in dispatch's timeline."""
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT outcome, count(*) AS n, count(DISTINCT report_id) AS d FROM intake.reports"
            " WHERE report_id LIKE $1 GROUP BY outcome",
            f"{tag}%",
        )
        by = {r["outcome"]: r["n"] for r in rows}
        doubled = sum(r["n"] - r["d"] for r in rows)
        per_report = await conn.fetchval(
            "SELECT count(*) FROM (SELECT report_id FROM intake.reports WHERE report_id LIKE $1"
            " GROUP BY report_id HAVING count(*) > 1) d",
            f"{tag}%",
        )
        twice = await conn.fetchval(
            """SELECT count(*) FROM (SELECT case_id FROM dispatch.timeline
               WHERE event = 'dispatched' GROUP BY case_id HAVING count(*) > 1) d"""
        )
        return {
            "intake_reports_rows": sum(by.values()),
            **{f"intake_reports_{k}": v for k, v in sorted(by.items())},
            "intake_report_rows_doubled": doubled + per_report,
            "intake_cases": await conn.fetchval("SELECT count(*) FROM intake.cases"),
            "dispatch_cases": await conn.fetchval("SELECT count(*) FROM dispatch.cases"),
            "cases_with_two_dispatch_entries": twice,
        }
    finally:
        await conn.close()


async def _at_least(reader: Reader, n: int) -> bool:
    return reader.reports_done() >= n


async def consumed_by_replica(
    procs: Sequence[ServiceProcess], totals: dict[str, int], timeout: float = 120
) -> dict[str, dict[str, float]]:
    """What each replica consumed per topic (its /metrics), once the replicas together have
    consumed every message of ``totals`` (intake reads cases.dispatched without hurry: its
    subscription polls relaxed) or after ``timeout`` s (then as far as they got)."""
    seen: dict[str, dict[str, float]] = {}

    def all_consumed() -> bool:
        seen.clear()
        for i, p in enumerate(procs):
            seen[f"{p.name}-{i}"] = {t: p.consumed(t) for t in CONSUMED[p.name]}
        sums: Counter[str] = Counter()
        for c in seen.values():
            sums.update(c)
        return all(sums[t] >= n for t, n in totals.items())

    # after the timeout, recorded as they are: split_of says which sums fall short
    with contextlib.suppress(WaitTimeout):
        await eventually(
            lambda: asyncio.to_thread(all_consumed), timeout=timeout, interval=0.5, what="consumed"
        )
    return dict(seen)


def _cpu(procs: Sequence[ServiceProcess]) -> dict[str, float]:
    busy, stolen, wall = machine_cpu_seconds()
    rest = cpu_seconds_by_program("java", "postgres")
    out = {"machine": busy, "stolen": stolen, "wall": wall, "kafka": rest["java"]}
    out["postgresql"] = rest["postgres"]
    out["bench"] = cpu_seconds(os.getpid())
    for i, p in enumerate(procs):
        out[f"{p.name}-{i}"] = cpu_seconds(p.proc.pid)
    return out


def cpu_use(
    start: dict[str, float], end: dict[str, float], reports: int, seconds: float
) -> dict[str, Any]:
    """CPU µs per report per service (its replicas summed) and of Kafka, PostgreSQL (every
    process of those programs on the machine: shared with whatever else runs) and the bench;
    each replica's share of a core over ``seconds``; the machine's busy and stolen share."""
    used = {k: end[k] - start[k] for k in start}
    per = max(1, reports)
    services: dict[str, float] = defaultdict(float)
    cores: dict[str, float] = {}
    for k, v in used.items():
        name, _, idx = k.rpartition("-")
        if idx.isdigit():
            services[name] += v
            cores[k] = round(v / seconds, 2) if seconds > 0 else 0.0
    wall = used["wall"] or 1
    return {
        "us_per_report": {
            **{k: round(v / per * 1e6) for k, v in services.items()},
            **{k: round(used[k] / per * 1e6) for k in ("kafka", "postgresql", "bench")},
        },
        "replica_cores": cores,
        "machine_busy_pct": round(100 * used["machine"] / wall),
        "machine_stolen_pct": round(100 * used["stolen"] / wall),
    }


async def run_layout(
    bootstrap: str,
    admin_dsn: str,
    territory: Territory,
    layout: Layout,
    *,
    reports: int,
    seed: int,
    logs: Path,
    env: dict[str, str],
    timeout_s: float,
    settle_s: float,
    name: str,
    warmup: int = 200,
) -> dict[str, Any]:
    bed = await create_testbed(bootstrap, admin_dsn, partitions=layout.partitions, name=name)
    procs: list[ServiceProcess] = []
    try:
        settings = bed.settings()

        def start(svc: str, i: int) -> ServiceProcess:
            p = start_service(bed, svc, logs, tag=f"-{name}-{i}", env_over=env)
            procs.append(p)
            return p

        # one of each migrates its schema; the registry then goes straight into the tables
        wait_ready(start("intake", 0), *[start("dispatch", i) for i in range(layout.dispatch)])
        t0 = time.monotonic()
        await seed_registry(bed, territory)
        seed_s = time.monotonic() - t0
        wait_ready(*[start("intake", i) for i in range(1, layout.intake)])
        assignments = await wait_split(settings, layout)
        intakes = [p for p in procs if p.name == "intake"]
        dispatches = [p for p in procs if p.name == "dispatch"]
        ordered = intakes + dispatches

        reader = Reader(settings)
        started = asyncio.Event()
        reading = asyncio.create_task(
            reader.run(
                lambda r: r.reports_done() >= warmup + reports,
                timeout=timeout_s,
                settle=settle_s,
                started=started,
            )
        )
        await started.wait()
        tag = f"r{layout.intake}{layout.dispatch}p{layout.partitions}"
        if warmup:
            # intake loads its classifier and builds its location index on its first reports:
            # done before the measured window
            await preload_backlog(settings, territory, warmup, seed=seed + 1000, tag=f"{tag}w")
            await eventually(
                partial(_at_least, reader, warmup), timeout=timeout_s, what="the warm-up"
            )
        load_start = os.getloadavg()
        cpu0, t_pub = _cpu(ordered), time.monotonic()
        publish_rate = await preload_backlog(settings, territory, reports, seed=seed, tag=tag)
        t_published = time.monotonic()
        # CPU until the last report is done (or the reader gave up)
        waiting = asyncio.create_task(reader.all_done.wait())
        await asyncio.wait((reading, waiting), return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        cpu1, t_done = _cpu(ordered), time.monotonic()
        finished = await reading

        mine = f"{tag}-"
        done = sorted(t for rid, t in reader.done.items() if rid.startswith(mine))
        intake_done = sorted(t for rid, t in reader.intake_done.items() if rid.startswith(mine))
        after_publish = [t for t in done if t >= t_published]
        topic_counts = Counter(r.topic for r in reader.records)
        totals = {
            "reports.submitted": warmup + reports,
            "cases.opened": topic_counts["cases.opened"],
            "cases.merged": topic_counts["cases.merged"],
            "cases.dispatched": topic_counts["cases.dispatched"],
        }
        consumed = await consumed_by_replica(ordered, totals)
        ids = [f"{tag}-{n:08d}" for n in range(1, reports + 1)]
        ids += [f"{tag}w-{n:08d}" for n in range(1, warmup + 1)]
        checks = {**doubled_on_topics(ids, reader.records), **await table_facts(bed, tag)}
        checks["warmup_reports"] = warmup
        consumed_total = sum(sum(c.values()) for c in consumed.values())
        cpu = cpu_use(cpu0, cpu1, reports, t_done - t_pub)
        service_us = sum(cpu["us_per_report"][s] for s in ("intake", "dispatch"))
        return {
            "layout": layout.label,
            "intake_replicas": layout.intake,
            "dispatch_replicas": layout.dispatch,
            "partitions": layout.partitions,
            "reports": reports,
            "warmup_reports": warmup,
            "finished": finished,
            "registry_seed_s": round(seed_s, 1),
            "publish_per_s": round(publish_rate, 1),
            "wall_s_from_publish": round((done[-1] - t_pub) if done else 0.0, 2),
            # completions after the backlog was published, between their 10 % and 90 %
            "sustained_reports_per_s": round(sustained_rate(after_publish), 1),
            "intake_hop_reports_per_s": round(
                sustained_rate([t for t in intake_done if t >= t_published]), 1
            ),
            "cpu": cpu,
            "consumed_per_report": round(consumed_total / reports, 3),
            "service_cpu_us_per_consumed": round(
                service_us * reports / max(1.0, consumed_total), 1
            ),
            "split": split_of(consumed, totals),
            "group_assignments": assignments,
            "checks": checks,
            "nothing_doubled": nothing_doubled(checks),
            "load_avg": {"at_publish": list(load_start), "at_end": list(os.getloadavg())},
        }
    finally:
        for p in procs:
            p.stop()
        await destroy_testbed(bed, admin_dsn)


def derive(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison 2x2 vs 1x1 on the same partitions, what one partition carries (from the
    single-replica layouts) and the sizing for the national peak and a tenfold surge (layouts
    that failed are left out)."""
    results = [r for r in results if "error" not in r]
    by = {r["layout"]: r for r in results}
    out: dict[str, Any] = {}
    singles = [r for r in results if r["intake_replicas"] == r["dispatch_replicas"] == 1]
    for r in results:
        if r["intake_replicas"] > 1 or r["dispatch_replicas"] > 1:
            base = by.get(f"1x1@{r['partitions']}")
            if base and base["sustained_reports_per_s"]:
                out.setdefault("comparison", {})[f"{r['layout']} / {base['layout']}"] = round(
                    r["sustained_reports_per_s"] / base["sustained_reports_per_s"], 2
                )
    if not singles:
        return out
    hop = {
        s: max(r["cpu"]["us_per_report"].get(s, 0) for r in singles) for s in ("intake", "dispatch")
    }
    per_consumed = max(r["service_cpu_us_per_consumed"] for r in singles)
    out["per_partition"] = {
        "measured_reports_per_s": {r["layout"]: r["sustained_reports_per_s"] for r in singles},
        "cpu_us_per_report": hop,
        # one process on one full core reading one partition
        "one_core_reports_per_s": {s: round(1e6 / us) for s, us in hop.items() if us},
        "replica_cores_measured": {r["layout"]: r["cpu"]["replica_cores"] for r in singles},
    }
    out["sizing"] = {
        label: size_for(rate, per_consumed, hop)
        for label, rate in (("national_peak_70", 70.0), ("surge_700", 700.0))
    }
    out["sizing_inputs"] = {
        "cpu_us_per_consumed": per_consumed,
        "events_per_report": EVENTS_PER_REPORT,
        "consumers_per_event": CONSUMERS_PER_EVENT,
        "busiest_topic_per_report": BUSIEST_TOPIC_PER_REPORT,
        "utilisation": 0.5,
    }
    return out


async def measure_replicas(
    bootstrap: str,
    admin_dsn: str,
    territory: Territory,
    *,
    reports: int = 10_000,
    layouts: Sequence[Layout] = DEFAULT_LAYOUTS,
    seed: int = 1,
    logs: Path = RUN / "bench" / "logs",
    env: dict[str, str] | None = None,
    timeout_s: float = 300,
    settle_s: float = 3,
    warmup: int = 200,
) -> dict[str, Any]:
    """Each layout on its own testbed, one after the other (see the module's docstring)."""
    stamp = datetime.now(UTC).strftime("%H%M%S")
    results = []
    for i, layout in enumerate(layouts):
        print(f"replicas: {layout.label}, {reports} reports")
        try:
            r = await run_layout(
                bootstrap,
                admin_dsn,
                territory,
                layout,
                reports=reports,
                seed=seed + i,
                logs=logs,
                env=env or {},
                timeout_s=timeout_s,
                settle_s=settle_s,
                name=f"rep{stamp}{i}",
                warmup=warmup,
            )
        except Exception as exc:  # one layout failing (a service that would not start) is recorded
            print(f"  failed: {exc!r}")
            results.append({"layout": layout.label, "error": repr(exc)})
            continue
        print(
            f"  {r['sustained_reports_per_s']} reports/s, nothing doubled: {r['nothing_doubled']}"
        )
        results.append(r)
    return {"layouts": results, **derive(results)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    p.add_argument(
        "--derive-only",
        action="store_true",
        help="no run: derive the comparison, per-partition figures and sizing of --out again",
    )
    p.add_argument("--reports", type=int, default=10_000, help="reports per layout")
    p.add_argument(
        "--layouts",
        default=",".join(lay.label for lay in DEFAULT_LAYOUTS),
        help="comma-separated <intake>x<dispatch>@<partitions>",
    )
    p.add_argument("--small-city", action="store_true", help="a small territory (quick runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout-s", type=float, default=300)
    p.add_argument("--warmup", type=int, default=200, help="reports done before the measure")
    p.add_argument("--log-level", default="INFO", help="the services' WANGGE_LOG_LEVEL")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    from devstack.infra import resolve

    infra = resolve(RUN / "bench", for_tests=False)  # env, else local processes in .run/bench
    try:
        size = TerritorySize.small() if args.small_city else TerritorySize()
        territory = generate_territory(size, seed=args.seed)
        started = datetime.now(UTC)
        out: dict[str, Any] = {
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python -m bench.replicas",
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": machine(),
            "infra": infra.kind,
        }
        out.update(
            await measure_replicas(
                infra.bootstrap,
                infra.admin_dsn,
                territory,
                reports=args.reports,
                layouts=[Layout.parse(x) for x in args.layouts.split(",") if x.strip()],
                seed=args.seed,
                env={"WANGGE_LOG_LEVEL": args.log_level},
                timeout_s=args.timeout_s,
                warmup=args.warmup,
            )
        )
        out["load_avg_at_end"] = list(os.getloadavg())
        out["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
        return out
    finally:
        infra.stop()  # only what this run started


def main(argv: list[str] | None = None) -> int:
    from shared.runtime.logging import configure_logging

    args = parse_args(argv)
    configure_logging("bench", "WARNING")
    path: Path = args.out if args.out.is_absolute() else ROOT / args.out
    if args.derive_only:
        out = json.loads(path.read_text())
        out.update(derive(out["layouts"]))
    else:
        out = asyncio.run(amain(args))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    for r in out["layouts"]:
        if "error" in r:
            print(f"{r['layout']}: failed: {r['error']}")
            continue
        print(
            f"{r['layout']}: {r['sustained_reports_per_s']} reports/s, cpu µs/report "
            f"{r['cpu']['us_per_report']}, nothing doubled: {r['nothing_doubled']}"
        )
    for k in ("comparison", "per_partition", "sizing"):
        print(f"{k}: {json.dumps(out.get(k), ensure_ascii=False)}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
