"""``make bench`` / ``python -m bench``: one run measuring, on this machine,

1. the limit: a bare consumer that COPYs the report messages into a table and publishes one small
   event per message (``bench.limit``);
2. the sustained throughput of the real pipeline (reports.submitted -> intake -> dispatch ->
   cases.dispatched; one process each, ``python -m services.<name>``) from a backlog, and its
   ratio to the limit;
3. the latency from publish to cases.dispatched at offered loads (200/s and 1,000/s);
4. two dispatch replicas sharing the work (each consumed part of it, no case dispatched twice);
5. dispatch's deadline sweeps over 1,000,000 open cases (``bench.sweep``);

against an isolated database and topic prefix (a testbed) on the Kafka and PostgreSQL that
``devstack.infra`` resolves (env, else local processes in ``.run/bench``). Writes
``bench/results/<date>.json`` and ``<date>.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg

from bench.chart import draw
from bench.limit import measure_commit_ms, measure_limit
from bench.pipeline import (
    Outcomes,
    collect,
    duplicated_effects,
    latency_run,
    preload_backlog,
    sustained_rate,
)
from bench.procs import (
    ServiceProcess,
    cpu_seconds,
    cpu_seconds_by_program,
    machine,
    machine_cpu_seconds,
    start_service,
    wait_ready,
)
from bench.sweep import load_cases, time_sweeps, utcnow
from cli.registry import publish_registry
from devstack.infra import Infra, resolve
from devstack.paths import ROOT, RUN
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from devstack.wait import eventually
from shared.registry.store import upsert_record
from shared.runtime.db import connect
from shared.runtime.logging import configure_logging
from shared.runtime.settings import Settings
from sim.territory import Territory, TerritorySize, generate_territory

RESULTS = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument(
        "--backlog", type=int, default=20000, help="reports in the throughput run (at 2,500/s: 8 s)"
    )
    p.add_argument("--rates", default="200,1000", help="offered loads of the latency runs")
    p.add_argument("--latency-s", type=float, default=15, help="seconds per latency run")
    p.add_argument(
        "--warmup-s",
        type=float,
        default=30,
        help="an unrecorded run at the first latency rate before the latency runs (0: none)",
    )
    p.add_argument("--drain-s", type=float, default=30, help="wait for stragglers after a run")
    p.add_argument("--pipeline-timeout-s", type=float, default=150)
    p.add_argument("--replica-reports", type=int, default=1000, help="0: skip the replica run")
    p.add_argument("--sweep-cases", type=int, default=1_000_000, help="0: skip the sweep run")
    p.add_argument("--sweep-due", type=int, default=100, help="cases past both deadlines")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument(
        "--registry-via-kafka",
        action="store_true",
        help="load the registry through registry.units (about 13 min for the default city)",
    )
    p.add_argument("--small-city", action="store_true", help="a small territory (quick runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-level", default="INFO", help="the services' WANGGE_LOG_LEVEL")
    p.add_argument("--profile", action="store_true", help="run the services under pyinstrument")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--tag", default="", help="suffix of the result files")
    return p.parse_args(argv)


class RssSampler:
    """RSS of every running service process, once a second (for 'memory flat over a run')."""

    def __init__(self) -> None:
        self.procs: dict[str, ServiceProcess] = {}
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.t0 = time.monotonic()

    def watch(self, label: str, p: ServiceProcess) -> None:
        self.procs[label] = p
        self.samples.setdefault(label, [])

    async def run(self) -> None:
        while True:
            for label, p in list(self.procs.items()):
                if p.proc.poll() is None:
                    with contextlib.suppress(OSError):
                        self.samples[label].append((time.monotonic() - self.t0, p.rss()))
            await asyncio.sleep(1.0)  # a sampling period, not synchronisation

    def first_after(self, label: str, at: float) -> float | None:
        """The first RSS sample of ``label`` taken at or after monotonic time ``at``."""
        return next((mb for t, mb in self.samples.get(label, []) if t >= at - self.t0), None)


async def wait_registry(bed: Testbed, territory: Territory, schemas: tuple[str, ...]) -> None:
    last = territory.handlers[-1].id
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        for schema in schemas:
            sql = f"SELECT 1 FROM {schema}.handlers WHERE id = $1"
            await eventually(
                partial(conn.fetchval, sql, last),
                timeout=600,
                interval=0.5,
                what=f"{schema} to read the registry",
            )
    finally:
        await conn.close()


async def seed_registry(
    bed: Testbed, territory: Territory, schemas: tuple[str, ...] = ("intake", "dispatch")
) -> None:
    """Write the registry straight into the copies of ``schemas`` (intake's and dispatch's)
    with the function the registry consumer applies (``shared.registry_store.upsert_record``),
    in one transaction each; intake's location index is rebuilt on its next report, as after a
    registry message."""
    from services.intake.store import bump_registry_version

    for schema in schemas:
        conn = await connect(bed.service_dsns[schema], schema)
        try:
            async with conn.transaction():
                for r in territory.records():
                    await upsert_record(conn, r)
                if schema == "intake":
                    await bump_registry_version(conn)
        finally:
            await conn.close()


REST_PROGRAMS = {"java": "kafka", "postgres": "postgresql"}


def cpu_snapshot(*procs: ServiceProcess) -> dict[str, float]:
    busy, stolen, total = machine_cpu_seconds()
    by_program = cpu_seconds_by_program(*REST_PROGRAMS)
    return {
        "machine": busy,
        "stolen": stolen,
        "wall": total,
        **{p.name: cpu_seconds(p.proc.pid) for p in procs},
        **{f"rest:{name}": by_program[comm] for comm, name in REST_PROGRAMS.items()},
        "rest:bench": cpu_seconds(os.getpid()),
    }


def cpu_per_report(
    start: dict[str, float], end: dict[str, float], reports: int
) -> dict[str, float]:
    used = {k: end[k] - start[k] for k in start}
    machine = ("machine", "stolen", "wall")
    services = {k: v for k, v in used.items() if k not in machine and ":" not in k}
    per = max(1, reports)
    out: dict[str, float] = {k: round(v / per * 1e6) for k, v in services.items()}
    rest = used["machine"] - sum(services.values())
    out["rest_of_machine"] = round(rest / per * 1e6)
    # the rest split: Kafka's JVM, PostgreSQL's processes, the benchmark's own process (its
    # reader), and what is left (other processes, the kernel's own work)
    parts = {k.split(":", 1)[1]: v for k, v in used.items() if k.startswith("rest:")}
    out.update({f"rest_{k}": round(v / per * 1e6) for k, v in parts.items()})
    out["rest_other"] = round((rest - sum(parts.values())) / per * 1e6)
    wall = used["wall"] or 1
    out["machine_busy_pct"] = round(100 * used["machine"] / wall)
    out["machine_stolen_pct"] = round(100 * used["stolen"] / wall)
    return out


def stop(p: ServiceProcess, profiled: bool) -> None:
    p.stop(signal.SIGINT if profiled else signal.SIGTERM)


@dataclass
class BenchRun:
    """What the steps of one run share: its options and testbed, the results they fill in (in the
    order the steps run), the territory, and the service processes started (all stopped at the
    end) with the sampler of their RSS."""

    args: argparse.Namespace
    bed: Testbed
    results: dict[str, Any]
    settings: Settings
    stamp: str
    territory: Territory
    env: dict[str, str]  # the services' environment overrides
    prof: Path | None  # the profiles' folder (--profile), else None
    sampler: RssSampler
    logs: Path = RUN / "bench" / "logs"
    procs: list[ServiceProcess] = field(default_factory=list)

    def profile_to(self, name: str) -> Path | None:
        return self.prof / f"{name}.txt" if self.prof is not None else None


def prepare(args: argparse.Namespace, bed: Testbed, results: dict[str, Any]) -> BenchRun:
    """The territory (recorded in ``results``), the profiles' folder and the sampler."""
    settings = bed.settings()
    stamp = results["started_at"].replace(":", "")
    size = TerritorySize.small() if args.small_city else TerritorySize()
    territory = generate_territory(size, seed=args.seed)
    results["territory"] = {
        "streets": territory.count("street"),
        "communities": territory.count("community"),
        "grids": territory.count("grid"),
        "buildings": territory.count("building"),
        "departments": len(territory.departments),
        "handlers": len(territory.handlers),
    }
    env = {"WANGGE_LOG_LEVEL": args.log_level}
    prof = args.out / f"profile-{stamp}" if args.profile else None
    if prof is not None:
        prof.mkdir(parents=True, exist_ok=True)
    return BenchRun(args, bed, results, settings, stamp, territory, env, prof, RssSampler())


async def bench(args: argparse.Namespace, bed: Testbed, results: dict[str, Any]) -> None:
    run = prepare(args, bed, results)
    sampling = asyncio.create_task(run.sampler.run())
    try:
        await measure_services(run)
    finally:
        sampling.cancel()
        for p in run.procs:
            stop(p, args.profile)
    results["rss_samples"] = {
        k: [(round(t, 1), round(m, 1)) for t, m in v] for k, v in run.sampler.samples.items()
    }
    if run.prof is not None:
        results["profiles"] = sorted(str(p) for p in run.prof.glob("*.txt"))
    if args.sweep_cases:
        await measure_sweeps(run)


async def measure_services(run: BenchRun) -> None:
    """Every step that runs the services: registry, backlog, limit, pipeline, replicas, latency,
    then the services' memory."""
    args, bed, stamp = run.args, run.bed, run.stamp
    intake = start_service(bed, "intake", run.logs, tag=f"-{stamp}-1", env_over=run.env)
    dispatch = start_service(
        bed,
        "dispatch",
        run.logs,
        tag=f"-{stamp}",
        profile_to=run.profile_to("dispatch"),
        env_over=run.env,
    )
    run.procs += [intake, dispatch]
    wait_ready(intake, dispatch)
    run.sampler.watch("dispatch", dispatch)

    await load_registry(run, intake)
    limit_per_s = await backlog_and_limit(run)
    intake, done = await drain_backlog(run, dispatch, limit_per_s)
    if args.replica_reports:
        print(f"replicas: two dispatch processes, {args.replica_reports} reports")
        run.results["replicas"] = await replicas(
            args, bed, run.territory, dispatch, run.logs, stamp, run.env
        )
        run.procs.append(run.results["replicas"].pop("_proc"))
    await latency_runs(run)
    # "start": once both services have handled their first batch (intake builds its location
    # index then, dispatch its caches), so that start and end compare the same working set;
    # "at_ready": when /readyz first answered
    first_done = done[0] if done else time.monotonic()
    run.results["rss_mb"] = {
        name: {
            "start": round(run.sampler.first_after(name, first_done) or p.rss_start_mb, 1),
            "end": round(p.rss(), 1),
            "at_ready": round(p.rss_start_mb, 1),
        }
        for name, p in (("intake", intake), ("dispatch", dispatch))
    }


async def load_registry(run: BenchRun, intake: ServiceProcess) -> None:
    """The territory's registry into both services; intake (the first one) is stopped after."""
    args, territory = run.args, run.territory
    print(f"registry: {len(territory.records())} records")
    t0 = time.monotonic()
    if args.registry_via_kafka:
        await publish_registry(run.settings, territory.records(), prune=False)
        await wait_registry(run.bed, territory, ("intake", "dispatch"))
        intake.stop()  # the backlog builds up while intake is away
    else:
        intake.stop()
        await seed_registry(run.bed, territory)
    run.results["registry"] = {
        "records": len(territory.records()),
        "via": "registry.units" if args.registry_via_kafka else "upsert_record (direct)",
        "load_s": round(time.monotonic() - t0, 1),
    }


async def backlog_and_limit(run: BenchRun) -> float:
    """The backlog published while intake is away, and the bare consumer's limit on as many
    messages; returns the limit in reports per second."""
    args, settings, results = run.args, run.settings, run.results
    print(f"backlog: {args.backlog} reports")
    results["backlog_publish_per_s"] = round(
        await preload_backlog(settings, run.territory, args.backlog, seed=args.seed + 10, tag="bl"),
        1,
    )

    print("limit: bare consumer, COPY + one event per message")
    limit = await measure_limit(
        settings, run.bed.admin_dsn, args.backlog, partitions=args.partitions
    )
    results["limit"] = limit
    results["kafka_commit_per_message_ms"] = await measure_commit_ms(settings)
    results["limit_reports_per_s"] = limit["reports_per_s"]
    return float(limit["reports_per_s"])


async def drain_backlog(
    run: BenchRun, dispatch: ServiceProcess, limit_per_s: float
) -> tuple[ServiceProcess, list[float]]:
    """A new intake and the running dispatch drain the backlog; returns that intake and the
    times the reports were done."""
    args, results = run.args, run.results
    print("pipeline: intake + dispatch draining the backlog")
    outcomes = Outcomes()
    ready = asyncio.Event()
    reader = asyncio.create_task(
        collect(
            run.settings,
            outcomes,
            lambda o: o.reports_done >= args.backlog,
            timeout=args.pipeline_timeout_s,
            started=ready,
        )
    )
    await ready.wait()
    t0 = time.monotonic()
    intake = start_service(
        run.bed,
        "intake",
        run.logs,
        tag=f"-{run.stamp}-2",
        profile_to=run.profile_to("intake"),
        env_over=run.env,
    )
    run.procs.append(intake)
    wait_ready(intake)
    run.sampler.watch("intake", intake)
    cpu_start = cpu_snapshot(intake, dispatch)
    finished = await reader
    cpu = cpu_per_report(cpu_start, cpu_snapshot(intake, dispatch), outcomes.reports_done)
    batches = {
        "intake reports.submitted": intake.batches("reports.submitted"),
        "dispatch cases.opened": dispatch.batches("cases.opened"),
        "dispatch cases.merged": dispatch.batches("cases.merged"),
    }
    done = outcomes.done_times()
    pipeline_rate = sustained_rate(done)
    intake_done = sorted(
        outcomes.times["cases.opened"]
        + outcomes.times["cases.merged"]
        + outcomes.times["reports.rejected"]
    )
    results["pipeline"] = {
        "reports": args.backlog,
        "reports_done": outcomes.reports_done,
        "finished": finished,
        "wall_s_from_intake_start": round((done[-1] - t0) if done else 0.0, 1),
        "sustained_reports_per_s": round(pipeline_rate, 1),
        "intake_hop_reports_per_s": round(sustained_rate(intake_done), 1),
        "opened": len(outcomes.times["cases.opened"]),
        "merged": len(outcomes.times["cases.merged"]),
        "rejected": len(outcomes.times["reports.rejected"]),
        "dispatched": len(outcomes.times["cases.dispatched"]),
        # completions per second from intake's start: reports done, and intake's outcomes
        "per_second": per_second(done, t0),
        "intake_per_second": per_second(intake_done, t0),
        # from intake's start to the last report: CPU per report of each service and of
        # everything else on the machine (Kafka, PostgreSQL, the benchmark itself)
        "cpu_us_per_report": cpu,
        # polled batches (one transaction and one offset commit each) since each started
        "batches": batches,
    }
    results["pipeline_reports_per_s"] = round(pipeline_rate, 1)
    results["ratio_to_limit"] = round(pipeline_rate / limit_per_s, 3) if limit_per_s else None
    return intake, done


async def latency_runs(run: BenchRun) -> None:
    """An unrecorded warm-up, then one latency run at each offered load."""
    args, settings, territory, results = run.args, run.settings, run.territory, run.results
    results["latency_ms"] = {}
    rates = [float(r) for r in args.rates.split(",") if r]
    if rates and args.warmup_s:
        # In a fresh broker's first minutes the tail is longer (most likely its JVM compiling
        # the request paths as they get hot): p99 at 200/s 150-200 ms against 45-70 ms a few
        # minutes later (docs/performance.md). A production broker runs for months, so the
        # measured runs come after a warm-up at the first rate; its figures are kept apart.
        print(f"warm-up: {rates[0]:.0f} reports/s for {args.warmup_s:.0f} s")
        results["latency_warmup_ms"] = await latency_run(
            settings, territory, rates[0], args.warmup_s, args.seed + 7, args.drain_s, "warm"
        )
    for rate in rates:
        print(f"latency: {rate:.0f} reports/s for {args.latency_s:.0f} s")
        results["latency_ms"][str(int(rate))] = await latency_run(
            settings, territory, rate, args.latency_s, args.seed + int(rate), args.drain_s
        )


async def measure_sweeps(run: BenchRun) -> None:
    """Dispatch's deadline sweeps over ``--sweep-cases`` open cases (the services stopped)."""
    args, bed, results = run.args, run.bed, run.results
    print(f"sweep: loading {args.sweep_cases} open cases into dispatch.cases")
    now = utcnow()
    dsn = bed.service_dsns["dispatch"]
    load_s = await load_cases(dsn, run.territory, args.sweep_cases, args.sweep_due, now)
    sweeps = await time_sweeps(dsn, bed.settings("dispatch"), now)
    sweeps["load_s"] = round(load_s, 1)
    sweeps["due"] = args.sweep_due
    results["sweep"] = sweeps
    results["sweep_ms_1m_open"] = max(
        sweeps["response_due"]["median_ms"], sweeps["resolution_due"]["median_ms"]
    )


async def replicas(
    args: argparse.Namespace,
    bed: Testbed,
    territory: Territory,
    first: ServiceProcess,
    logs: Path,
    stamp: str,
    env: dict[str, str],
) -> dict[str, Any]:
    settings = bed.settings()
    second = start_service(bed, "dispatch", logs, tag=f"-{stamp}-replica2", env_over=env)
    wait_ready(second)
    before = {"first": first.consumed("cases.opened"), "second": second.consumed("cases.opened")}
    outcomes = Outcomes()
    ready = asyncio.Event()
    reader = asyncio.create_task(
        collect(
            settings,
            outcomes,
            lambda o: o.reports_done >= args.replica_reports,
            timeout=args.pipeline_timeout_s,
            started=ready,
        )
    )
    await ready.wait()
    await preload_backlog(settings, territory, args.replica_reports, seed=args.seed + 99, tag="rep")
    finished = await reader
    after = {"first": first.consumed("cases.opened"), "second": second.consumed("cases.opened")}
    twice = sum(1 for n in outcomes.dispatched_first.values() if n > 1)
    effects = await duplicated_effects(bed.admin_dsn, bed.database)
    return {
        "reports": args.replica_reports,
        "finished": finished,
        "cases_opened": len(outcomes.times["cases.opened"]),
        "cases_dispatched_first_time": len(outcomes.dispatched_first),
        "cases_dispatched_twice": twice,
        "cases_opened_consumed_by_replica": {k: after[k] - before[k] for k in after},
        **effects,
        "_proc": second,
    }


def per_second(times: list[float], t0: float | None = None) -> list[int]:
    """How many of ``times`` fell in each second from ``t0`` (default: the first)."""
    if not times:
        return []
    t0 = times[0] if t0 is None else t0
    out = [0] * (int(times[-1] - t0) + 1)
    for t in times:
        out[int(t - t0)] += 1
    return out


TARGETS = {
    "pipeline_reports_per_s": 3000,
    "ratio_to_limit": 0.25,
    "latency_p99_ms_at_200": 100,
    "sweep_ms_1m_open": 100,
}


def verdicts(r: dict[str, Any]) -> dict[str, Any]:
    p99 = r.get("latency_ms", {}).get("200", {}).get("p99")
    rss = r.get("rss_mb", {})
    return {
        "pipeline >= 3000/s": (r.get("pipeline_reports_per_s") or 0) >= 3000,
        "ratio >= 25%": (r.get("ratio_to_limit") or 0) >= 0.25,
        "p99 <= 100 ms at 200/s": p99 is not None and p99 <= 100,
        "sweep < 100 ms": (r.get("sweep_ms_1m_open") or 1e9) < 100,
        "memory flat (end <= start * 1.25)": all(
            v["end"] <= v["start"] * 1.25 for v in rss.values()
        )
        if rss
        else None,
    }


async def amain(args: argparse.Namespace, infra: Infra) -> Path:
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "make bench",
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine(),
        "profiled": args.profile,
    }
    results["infra"] = infra.kind
    bed = await create_testbed(
        infra.bootstrap, infra.admin_dsn, partitions=args.partitions, name=f"bench{started:%H%M%S}"
    )
    try:
        await bench(args, bed, results)
    finally:
        await destroy_testbed(bed, infra.admin_dsn)
    results["targets"] = TARGETS
    results["verdicts"] = verdicts(results)
    results["elapsed_s"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    out: Path = args.out
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    name = f"{started:%Y-%m-%d}{args.tag}"
    path = out / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    draw(results, out / f"{name}.png")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("bench", "WARNING")
    infra = resolve(RUN / "bench", for_tests=False)  # env, else local processes in .run/bench
    try:
        path = asyncio.run(amain(args, infra))
    finally:
        infra.stop()  # only what this run started
    data = json.loads(path.read_text())
    keys = (
        "limit_reports_per_s",
        "pipeline_reports_per_s",
        "ratio_to_limit",
        "latency_ms",
        "sweep_ms_1m_open",
        "rss_mb",
        "verdicts",
        "elapsed_s",
    )
    for k in keys:
        print(f"{k}: {json.dumps(data.get(k), ensure_ascii=False)}")
    print(f"results: {path} (+ .png)")
    return 0
