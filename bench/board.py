"""``python -m bench.board``: the command-centre board's speed, as issue #17 asks it.

- **first load**: ``--cases`` open cases (100,000) bulk-loaded (COPY) into dispatch's ``cases``
  over the simulated district (its streets, communities, grids and buildings, ``--overdue`` of
  them past their deadlines), then what the page opening the board asks for, as the district's
  command centre: ``GET /console/api/board?buildings=false``, then ``GET /console/api/map``
  and ``GET /console/api/counts`` (the page asks for both at once: the first load is the board
  and the slower of the two), each the first time after dispatch started (a fresh process,
  once its board's read model keeps the loaded cases, as a running dispatch keeps them:
  ``read_model_kept_s`` is how long that took after it was ready) and ``--loads`` times more
  (median), body included; then the whole board and the map with counts;
- **event to board**: the board open (``GET /console/api/events?deltas=true``, server-sent
  events: the board, then the deltas applied to it and to the map's counts) while
  reports flow at ``--rate`` (500/s) through intake and dispatch, and beside them a probe report
  every ``--probe-every-s`` in a building of its own (no other report goes there): the latency
  from publishing a probe to the first board sent whose count of its building has grown.

Intake and dispatch run as processes (``python -m services.<name>``) on a testbed of the Kafka and
PostgreSQL ``devstack.infra`` resolves; the registry is written into their copies directly (as
``make bench`` does). Intake's cross-channel duplicate radius is 1 m here, so that no probe is
merged (附议) into a report of a neighbouring building. Writes ``--out`` (JSON) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline import _reader, percentile
from bench.procs import (
    ServiceProcess,
    cpu_per_report,
    cpu_seconds,
    cpu_snapshot,
    machine,
    start_service,
    wait_ready,
)
from bench.seed import seed_registry
from bench.sweep import load_cases
from cli.client import Publisher
from devstack.infra import resolve
from devstack.paths import ROOT, RUN
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from shared.runtime.db import connect
from sim.driver import Driver
from sim.territory import Territory, TerritorySize, generate_territory
from sim.workload import Mix, ReportFactory

RESULTS = ROOT / "bench" / "results"
TARGET_MS = 2000  # both targets of the issue: first load, and an event on an open board


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.board", description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=100_000, help="open cases in the district")
    p.add_argument("--overdue", type=int, default=1_000, help="of them past both deadlines")
    p.add_argument("--loads", type=int, default=5, help="loads after the first (median)")
    p.add_argument("--rate", type=float, default=500, help="reports per second around the probes")
    p.add_argument("--duration-s", type=float, default=30, help="seconds of reports and probes")
    p.add_argument("--probe-every-s", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="the JSON (default: printed only)")
    return p.parse_args(argv)


async def timed_get(client: httpx.AsyncClient, path: str, token: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    resp = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    ms = (time.perf_counter() - t0) * 1000
    resp.raise_for_status()
    return {"ms": round(ms, 1), "bytes": len(resp.content)}


async def first_loads(url: str, token: str, loads: int, server: ServiceProcess) -> dict[str, Any]:
    """The board and the map: the first request of each after dispatch started, then ``loads``
    more; with dispatch's CPU per load."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for path in PAGE + LEGACY:
            cpu0 = cpu_seconds(server.proc.pid)
            first = await timed_get(client, path, token)
            again = [await timed_get(client, path, token) for _ in range(loads)]
            cpu = cpu_seconds(server.proc.pid) - cpu0
            times = [a["ms"] for a in again]
            out[path] = {
                "first_ms": first["ms"],
                "median_ms": round(statistics.median(times), 1) if times else None,
                "max_ms": max(times) if times else None,
                "bytes": first["bytes"],
                "dispatch_cpu_ms_per_load": round(cpu * 1000 / (1 + loads), 1),
            }
    # the page asks for the map and the counts at once, after the board
    board, area_map, counts = (out[p] for p in PAGE)
    out["first_load_ms"] = round(
        board["first_ms"] + max(area_map["first_ms"], counts["first_ms"]), 1
    )
    out["load_ms_median"] = round(
        (board["median_ms"] or 0) + max(area_map["median_ms"] or 0, counts["median_ms"] or 0), 1
    )
    return out


# what the page asks for (the board without its buildings, the map's geometry and every unit's
# counts; a browser opening the page for the first time has no copy of the map), then what
# other clients ask for (after the page's: the due times already kept)
PAGE = ("/console/api/board?buildings=false", "/console/api/map", "/console/api/counts")
LEGACY = ("/console/api/board", "/console/api/map?counts=true")


@dataclasses.dataclass
class Stream:
    """The boards one open board receives: (monotonic arrival, open count per unit code)."""

    boards: list[tuple[float, dict[str, int]]] = dataclasses.field(default_factory=list)
    bytes: list[int] = dataclasses.field(default_factory=list)
    connected: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def read(self, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        timeout = httpx.Timeout(10, read=None)
        async with (
            httpx.AsyncClient(base_url=url, timeout=timeout) as client,
            client.stream("GET", "/console/api/events?deltas=true", headers=headers) as resp,
        ):
            resp.raise_for_status()
            data: list[str] = []
            counts: dict[str, int] = {}
            async for line in resp.aiter_lines():
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    at = time.monotonic()
                    text = "\n".join(data)
                    data = []
                    board = json.loads(text)
                    if (
                        not self.connected.is_set()
                    ):  # the board, then every unit's counts (the page)
                        tallies = (await client.get("/console/api/counts", headers=headers)).json()
                        counts = {code: row[0] for code, row in tallies["units"].items()}
                    counts = {**counts, **{u["code"]: u["open"] for u in board["units"]}}
                    self.boards.append((at, counts))
                    self.bytes.append(len(text))
                    self.connected.set()

    def seen_at(self, building: str, published: float, before: int) -> float | None:
        """When the first board after ``published`` counting more than ``before`` open cases at
        ``building`` arrived."""
        for at, counts in self.boards:
            if at >= published and counts.get(building, 0) > before:
                return at
        return None


def probe_territory(territory: Territory, n: int) -> tuple[Territory, Territory]:
    """(the background's territory, the probes'): ``n`` buildings, one every len/n, are the
    probes' alone."""
    step = max(1, len(territory.buildings) // max(n, 1))
    probes = territory.buildings[::step][:n]
    codes = {b.code for b in probes}
    rest = [b for b in territory.buildings if b.code not in codes]
    return dataclasses.replace(territory, buildings=rest), dataclasses.replace(
        territory, buildings=probes
    )


async def event_to_board(
    bed: Testbed,
    territory: Territory,
    procs: list[ServiceProcess],
    url: str,
    token: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    n_probes = int(args.duration_s / args.probe_every_s)
    background, probes = probe_territory(territory, n_probes)
    settings = bed.settings()
    stream = Stream()
    reader = asyncio.create_task(stream.read(url, token))
    async with asyncio.timeout(120):
        await stream.connected.wait()
    baseline = dict(stream.boards[-1][1])
    published: dict[str, float] = {}
    probe_factory = ReportFactory(
        probes,
        seed=args.seed,
        mix=Mix(duplicate=0, invalid=0, by_grid_code=0, by_point=0, by_address=0),
        run_tag=f"probe{uuid.uuid4().hex[:4]}",
    )
    buildings: dict[str, str] = {}  # report id -> its building

    def on_probe(rid: str, at: float) -> None:
        published[rid] = at

    probe_reports = []
    for _ in range(n_probes):
        key, body = probe_factory.next()
        buildings[body["report_id"]] = body["location"]["building_code"]
        probe_reports.append((key, body))
    load = Driver(
        settings,
        ReportFactory(background, seed=args.seed + 1, mix=Mix.clean(), run_tag="boardbg"),
        rate=args.rate,
        duration_s=args.duration_s,
        progress=False,
    )
    stages = await ProbeStages.start(settings)
    cpu_start = cpu_snapshot(*procs)
    batches_start = batch_counts(procs)
    t0 = time.monotonic()
    first_board = len(stream.boards)
    flowing = asyncio.create_task(load.run())
    await publish_probes(bed, probe_reports, args.probe_every_s, on_probe)
    stats = await flowing
    cpu_end = cpu_snapshot(*procs)
    batches_end = batch_counts(procs)
    await asyncio.sleep(5)  # a sampling window for the last probes, not synchronisation
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
        await reader
    await stages.read(set(published))
    lat, missed = [], []
    timeline: list[list[float]] = []  # per seen probe: s after the start, ms in all, its way
    split: dict[str, list[float]] = {
        "submitted_opened": [],
        "opened_dispatched": [],
        "dispatched_board": [],
    }
    for rid, at in published.items():
        b = buildings[rid]
        seen = stream.seen_at(b, at, baseline.get(b, 0))
        if seen is None:
            missed.append(rid)
            continue
        lat.append((seen - at) * 1000)
        opened, dispatched = stages.points(rid)
        if opened is not None and dispatched is not None:
            way = (
                opened - (at + stages.to_wall) * 1000,
                dispatched - opened,
                (seen + stages.to_wall) * 1000 - dispatched,
            )
            for name, ms in zip(split, way, strict=True):
                split[name].append(ms)
            timeline.append([round(at - t0, 1), round(lat[-1]), *(round(ms) for ms in way)])
    boards = stream.boards[first_board:]
    gaps = [(b[0] - a[0]) * 1000 for a, b in itertools.pairwise(boards)]
    elapsed = time.monotonic() - t0
    return {
        "offered_per_s": round(stats.offered_rate, 1),
        "probes": len(published),
        "probes_seen": len(lat),
        "probes_missed": missed[:10],
        **{f"p{q}_ms": _r(percentile(lat, q)) for q in (50, 90, 99)},
        "max_ms": _r(max(lat)) if lat else None,
        # each seen probe's way, from the Kafka timestamps of its cases.opened and
        # cases.dispatched (when dispatch's and intake's relays produced them)
        "stages_ms": {
            name: {f"p{q}": _r(percentile(v, q)) for q in (50, 90, 99)} for name, v in split.items()
        },
        # CPU per offered report by process while the reports and probes were offered
        "cpu_us_per_report": cpu_per_report(cpu_start, cpu_end, stats.offered + len(published)),
        # the batches the services applied meanwhile: how many, and their mean size
        "batches": {
            key: {
                "batches": batches_end[key][0] - batches_start[key][0],
                "mean_messages": round(
                    (batches_end[key][1] - batches_start[key][1])
                    / max(1, batches_end[key][0] - batches_start[key][0]),
                    1,
                ),
            }
            for key in batches_end
        },
        "probes_timeline": timeline,
        "boards_sent": len(boards),
        "boards_per_s": round(len(boards) / elapsed, 2),
        "board_interval_ms_median": _r(statistics.median(gaps)) if gaps else None,
        "board_bytes_median": int(statistics.median(stream.bytes)) if stream.bytes else None,
    }


# the subscriptions on the probes' way: (process, topic)
PROBE_WAY = (("intake", "reports.submitted"), ("dispatch", "cases.opened"))


def batch_counts(procs: list[ServiceProcess]) -> dict[str, tuple[float, float]]:
    """(batches, messages) applied so far, per subscription on the probes' way."""
    by_name = {p.name: p for p in procs}
    out = {}
    for name, topic in PROBE_WAY:
        p = by_name[name]
        out[f"{name}:{topic}"] = (
            p.metric("wangge_consumed_batch_messages_count", topic),
            p.metric("wangge_consumed_batch_messages_sum", topic),
        )
    return out


@dataclasses.dataclass
class ProbeStages:
    """The probes' cases.opened and cases.dispatched records, read after the run from the
    offsets at its start (their reading kept out of the measured run)."""

    consumer: Any
    start_offsets: dict[Any, int]
    to_wall: float = dataclasses.field(default_factory=lambda: time.time() - time.monotonic())
    opened_ms: dict[str, int] = dataclasses.field(default_factory=dict)  # report id -> ms
    case_of: dict[str, str] = dataclasses.field(default_factory=dict)  # report id -> case id
    dispatched_ms: dict[str, int] = dataclasses.field(default_factory=dict)  # case id -> ms

    @classmethod
    async def start(cls, settings: Any) -> ProbeStages:
        consumer = await _reader(settings, ("cases.opened", "cases.dispatched"))
        parts = list(consumer.assignment())
        offsets = {tp: await consumer.position(tp) for tp in parts}
        consumer.unsubscribe()  # nothing fetched in the background while the run is measured
        return cls(consumer, offsets)

    async def read(self, report_ids: set[str]) -> None:
        c = self.consumer
        try:
            c.assign(list(self.start_offsets))
            for tp, offset in self.start_offsets.items():
                c.seek(tp, offset)
            ends = await c.end_offsets(list(self.start_offsets))
            while [tp for tp in self.start_offsets if await c.position(tp) < ends[tp]]:
                batch = await c.getmany(timeout_ms=200, max_records=10_000)
                for tp, records in batch.items():
                    opened = tp.topic.endswith("cases.opened")
                    for r in records:
                        if r.value is None:
                            continue
                        if opened:
                            body = json.loads(r.value)
                            for rid in body.get("report_ids") or ():
                                if rid in report_ids:
                                    self.opened_ms.setdefault(rid, r.timestamp)
                                    self.case_of.setdefault(rid, body["case_id"])
                        elif r.key is not None:
                            self.dispatched_ms.setdefault(r.key.decode(), r.timestamp)
        finally:
            await c.stop()

    def points(self, report_id: str) -> tuple[int | None, int | None]:
        """(cases.opened, cases.dispatched) Kafka timestamps of a probe's case, wall ms."""
        case = self.case_of.get(report_id)
        return self.opened_ms.get(report_id), self.dispatched_ms.get(case) if case else None


async def publish_probes(
    bed: Testbed, reports: list[tuple[str, dict[str, Any]]], every_s: float, on_published: Any
) -> None:
    """One probe report every ``every_s``, on reports.submitted (as the upstream channels do):
    its publish time is when it was handed to the producer."""
    async with Publisher(bed.settings(), source="bench/board") as pub:
        start = time.monotonic()
        for i, (key, body) in enumerate(reports):
            delay = start + i * every_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the probes' schedule, not synchronisation
            sent = time.monotonic()
            await pub.send("reports.submitted", body, key=key)
            on_published(body["report_id"], sent)


async def kept_read_model(dsn: str, open_cases: int) -> float:
    """Wait until dispatch's board keeps every open case (``board_due``) and no mark is left
    (``board_stale``); the seconds it took after dispatch was ready."""
    t0 = time.monotonic()
    conn = await connect(dsn, "dispatch")
    try:
        async with asyncio.timeout(300):
            while True:
                kept = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM board_due) >= $1 "
                    "AND NOT EXISTS (SELECT 1 FROM board_stale)",
                    open_cases,
                )
                if kept:
                    return round(time.monotonic() - t0, 1)
                await asyncio.sleep(0.5)  # polling a condition (with the timeout above)
    finally:
        await conn.close()


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    infra = await asyncio.to_thread(resolve, RUN / "bench", for_tests=False)
    bed = await create_testbed(infra.bootstrap, infra.admin_dsn, name=f"bb{uuid.uuid4().hex[:6]}")
    logs = RUN / "bench" / "logs"
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python -m bench.board",
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
    }
    procs: list[ServiceProcess] = []
    env = {"WANGGE_LOG_LEVEL": "WARNING", "WANGGE_SWEEP_INTERVAL_S": "3600"}
    try:
        territory = generate_territory(TerritorySize(), seed=args.seed)
        district = territory.district.code
        results["territory"] = {
            "streets": territory.count("street"),
            "communities": territory.count("community"),
            "grids": territory.count("grid"),
            "buildings": territory.count("building"),
        }
        dispatch = start_service(bed, "dispatch", logs, tag="-board", env_over=env)
        procs.append(dispatch)
        wait_ready(dispatch)
        await seed_registry(bed, territory, ("dispatch",))
        t0 = time.monotonic()
        now = datetime.now(UTC)
        await load_cases(bed.service_dsns["dispatch"], territory, args.cases, args.overdue, now)
        results["load_s"] = round(time.monotonic() - t0, 1)
        conn = await connect(bed.service_dsns["dispatch"], "dispatch")
        try:
            results["open_cases"] = await conn.fetchval(
                "SELECT count(*) FROM cases WHERE state <> 'resolved' AND district = $1", district
            )
        finally:
            await conn.close()
        # dispatch again, so that the first load is a fresh process's; its board's read model
        # kept first (the 100,000 cases COPYed just now: at start it works them all out), as a
        # running dispatch keeps it
        dispatch.stop()
        dispatch = start_service(bed, "dispatch", logs, tag="-board2", env_over=env)
        procs.append(dispatch)
        wait_ready(dispatch)
        results["read_model_kept_s"] = await kept_read_model(
            bed.service_dsns["dispatch"], results["open_cases"]
        )
        token = bed.token("command_centre", district)
        results["first_load"] = await first_loads(dispatch.url, token, args.loads, dispatch)
        intake = start_service(
            bed, "intake", logs, tag="-board", env_over={**env, "WANGGE_NEARBY_RADIUS_M": "1"}
        )
        procs.append(intake)
        wait_ready(intake, timeout=180)
        await seed_registry(bed, territory, ("intake",))
        results["event_to_board"] = await event_to_board(
            bed, territory, [intake, dispatch], dispatch.url, token, args
        )
    finally:
        for p in procs:
            p.stop()
        await destroy_testbed(bed, infra.admin_dsn)
        infra.stop()  # only what this run started
    fl, ev = results["first_load"], results["event_to_board"]
    results["summary"] = {
        "open_cases": results["open_cases"],
        "first_load_ms": fl["first_load_ms"],
        "board_first_ms": fl[PAGE[0]]["first_ms"],
        "map_first_ms": fl[PAGE[1]]["first_ms"],
        "counts_first_ms": fl[PAGE[2]]["first_ms"],
        "whole_board_median_ms": fl[LEGACY[0]]["median_ms"],
        "event_p50_ms": ev["p50_ms"],
        "event_p99_ms": ev["p99_ms"],
        "event_max_ms": ev["max_ms"],
        "offered_per_s": ev["offered_per_s"],
        "first_load_under_2s": fl["first_load_ms"] < TARGET_MS,
        "event_under_2s": ev["max_ms"] is not None
        and ev["max_ms"] < TARGET_MS
        and ev["probes_seen"] == ev["probes"],
    }
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = asyncio.run(amain(args))
    text = json.dumps(results, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(results["summary"], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
