"""``python -m bench.http``: Open311 POSTs to intake over HTTP, against the framework's limit.

One run, on this machine, against a testbed (its own database and topic prefix): intake as
``python -m services.intake`` (uvicorn, one process) with a generated city in its registry and
an api key; the load from vegeta (``bench.vegeta``), every POST a distinct report (its own
Idempotency-Key, a building and a category of the city, a text of the labelled corpus), form-
encoded as the specification says. Measured:

- ``latency_at_200``: 200 requests/s for ``--latency-s`` after a warm-up: p50/p99;
- ``sustained``: as fast as 64 connections go, for ``--rate-s``: accepted (2xx) POSTs per second;
- the limit, in the same run and the same way: a bare endpoint of the same framework in the same
  process set-up (``bench.bare_http``: FastAPI on uvicorn with uvloop, one process, parsing the
  same form and answering a fixed body), at 200/s and flat out.

Writes the figures to ``--out`` as JSON (``bench/results/<date>http.json``) and prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import vegeta
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
from devstack.infra import resolve
from devstack.paths import RUN, free_port
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from services.intake.open311 import store as open311_store
from services.intake.open311.apikeys import new_key
from shared.contract.taxonomy import default_taxonomy
from shared.runtime.db import connect
from sim.territory import Territory, TerritorySize, generate_territory
from sim.texts import TEMPLATES, report_text

PATH = "/open311/v2/requests.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__.split("\n")[0])
    p.add_argument("--latency-s", type=float, default=20, help="seconds at 200/s")
    p.add_argument("--rate-s", type=float, default=20, help="seconds flat out")
    p.add_argument("--warmup-s", type=float, default=5)
    p.add_argument("--workers", type=int, default=64, help="connections when flat out")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=None, help="write the JSON here")
    p.add_argument("--profile", type=Path, default=None, help="pyinstrument intake to this dir")
    return p.parse_args(argv)


def targets(url: str, key: str, territory: Territory, n: int, seed: int) -> list[vegeta.Target]:
    rng = random.Random(seed)
    categories = [c.code for c in default_taxonomy().categories if c.code in TEMPLATES]
    out = []
    for i in range(n):
        b = rng.choice(territory.buildings)
        category = rng.choice(categories)
        text, _ = report_text(category, b.address, rng)
        form = {
            "api_key": key,
            "service_code": category,
            "address_id": b.code,
            "description": f"{text}（{i}）",
            "phone": f"138{rng.randrange(10**8):08d}",
        }
        out.append(
            vegeta.Target(
                "POST",
                url + PATH,
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Idempotency-Key": uuid.uuid4().hex,
                },
                urlencode(form).encode(),
            )
        )
    return out


async def issue_key(bed: Testbed) -> str:
    key = new_key()
    conn = await connect(bed.service_dsns["intake"], "intake")
    try:
        await open311_store.insert_key(conn, key.key_id, "bench", "open311", key.digest)
    finally:
        await conn.close()
    return key.key


def cpu_snapshot(server: ServiceProcess) -> dict[str, float]:
    busy, stolen, total = machine_cpu_seconds()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # vegeta, once it has exited
    return {
        "server": cpu_seconds(server.proc.pid),
        **cpu_seconds_by_program("java", "postgres"),
        "vegeta": children.ru_utime + children.ru_stime,
        "machine": busy,
        "stolen": stolen,
        "wall": total,
    }


def cpu_per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """CPU µs per request by process (the server, Kafka, PostgreSQL, the load generator, the
    rest), how busy the machine was, and how much of it the hypervisor gave to others."""
    used = {k: after[k] - before[k] for k in before}
    n = max(1, requests)
    named = ("server", "java", "postgres", "vegeta")
    out: dict[str, float] = {k: round(used[k] / n * 1e6) for k in named}
    out["rest"] = round((used["machine"] - sum(used[k] for k in named)) / n * 1e6)
    wall = used["wall"] or 1
    out["machine_busy_pct"] = round(100 * used["machine"] / wall)
    out["machine_stolen_pct"] = round(100 * used["stolen"] / wall)
    return out


def measure(
    server: ServiceProcess, tgts: list[vegeta.Target], args: argparse.Namespace
) -> dict[str, Any]:
    """Warm-up, 200/s, then flat out, each attack on targets of its own (a target sent twice
    would be a retry, answered from the first)."""
    warm = int(200 * args.warmup_s) + 1
    steady = int(200 * args.latency_s) + 1
    rest = tgts[warm + steady :]
    vegeta.attack(tgts[:warm], rate=200, duration_s=args.warmup_s)
    at_200 = vegeta.summary(
        vegeta.attack(tgts[warm : warm + steady], rate=200, duration_s=args.latency_s)
    )
    before = cpu_snapshot(server)
    flat = vegeta.summary(vegeta.attack(rest, rate=0, duration_s=args.rate_s, workers=args.workers))
    flat["cpu_us_per_request"] = cpu_per_request(before, cpu_snapshot(server), flat["requests"])
    return {"latency_at_200": at_200, "sustained": flat}


def start_bare(logs: Path) -> ServiceProcess:
    port = free_port()
    log = logs / "bare_http.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_http", str(port)], stdout=f, stderr=f
        )
    bare = ServiceProcess("bare_http", proc, port, log)
    wait_ready(bare, timeout=30)
    return bare


async def run(args: argparse.Namespace) -> dict[str, Any]:
    if not vegeta.available():
        raise SystemExit("vegeta is not built: make vegeta (needs Go)")
    # in a thread: starting the local broker waits for it with a loop of its own
    infra = await asyncio.to_thread(resolve, RUN / "bench", for_tests=True)
    bed = await create_testbed(infra.bootstrap, infra.admin_dsn, name=f"bh{uuid.uuid4().hex[:6]}")
    logs = RUN / "bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(), "machine": machine()}
    procs: list[ServiceProcess] = []
    try:
        size = TerritorySize(streets=4, communities=40, grids=360, buildings=6000)
        territory = generate_territory(size, seed=args.seed)
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        intake = start_service(
            bed,
            "intake",
            logs,
            env_over={"WANGGE_LOG_LEVEL": "WARNING"},
            profile_to=args.profile / "intake.txt" if args.profile else None,
        )
        procs.append(intake)
        wait_ready(intake)
        await seed_registry(bed, territory, ("intake",))
        key = await issue_key(bed)
        per_run = int(200 * (args.warmup_s + args.latency_s) + args.rate_s * 5000) + 2
        tgts = targets(intake.url, key, territory, per_run, args.seed)
        results["open311_post"] = measure(intake, tgts, args)
        bare = start_bare(logs)
        procs.append(bare)
        bare_tgts = [vegeta.Target(t.method, bare.url + PATH, t.headers, t.body) for t in tgts]
        results["bare_endpoint"] = measure(bare, bare_tgts, args)
    finally:
        for p in procs:
            p.stop(signal.SIGINT if args.profile and p.name == "intake" else signal.SIGTERM)
        await destroy_testbed(bed, infra.admin_dsn)
        infra.stop()  # only what this run started
    post, bare_r = results["open311_post"], results["bare_endpoint"]
    limit = bare_r["sustained"]["ok_per_s"]
    results["summary"] = {
        "open311_accepted_posts_per_s": post["sustained"]["ok_per_s"],
        "limit_bare_posts_per_s": limit,
        "ratio_to_limit": round(post["sustained"]["ok_per_s"] / limit, 3) if limit else None,
        "p50_ms_at_200": post["latency_at_200"]["p50_ms"],
        "p99_ms_at_200": post["latency_at_200"]["p99_ms"],
        "bare_p99_ms_at_200": bare_r["latency_at_200"]["p99_ms"],
        "cpu_us_per_post": post["sustained"]["cpu_us_per_request"],
        "cpu_us_per_bare_post": bare_r["sustained"]["cpu_us_per_request"],
    }
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = asyncio.run(run(args))
    text = json.dumps(results, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
