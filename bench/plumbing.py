"""The plumbing limit: the measured path's two hops with the project's own plumbing and no domain
logic, what the framework alone costs here (``limit_plumbing_reports_per_s``).

Each hop is a ``shared.runtime.service.Service`` run as a process of its own
(``python -m bench.plumbing ...``, under uvicorn as ``python -m services.<name>`` is): its
FastStream subscriber in batches with prompt polling (as intake's reports.submitted and
dispatch's cases.opened), the consumer pipeline's decoding and validation, one inbox claim and
one transaction per batch, the outbox written with the commit, and the outbox relay publishing.
Its handler does nothing else: one event per message (``Forwarded``, the report as it came,
about the size of the ``cases.opened`` intake publishes for it). Hop 1 reads the backlog in
``reports.submitted`` (an invalid report answered with a ``Refused`` straight to the out topic,
as intake answers one with ``reports.rejected``), hop 2 the topic hop 1 publishes to; the rate is
read on the out topic as the pipeline's (``bench.pipeline.sustained_rate``). The schemas
(``plumbing<hop>_<pass>``: the shared migrations' inbox and outbox, nothing of their own) are
created in the testbed's database by the hops at start, as a service creates its own.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from bench.limit import arrivals, create_topics, delete_topics, median_pass
from bench.procs import ServiceProcess, wait_ready
from devstack.paths import ROOT
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.events import FieldError, Message, ReportSubmitted
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.db import Connection
from shared.runtime.service import Service, run
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client
from shared.runtime.uow import UnitOfWork

MIGRATIONS = Path(__file__).parent / "plumbing_migrations"
HOPS = 2
E = TypeVar("E", bound=Message)


class Forwarded(Message):
    """A report carried on by a plumbing hop, as it came."""

    topic: ClassVar[str] = "bench.plumbing"  # each hop publishes on a subclass of its own topic
    key_field: ClassVar[str] = "report_id"

    report_id: str
    report: ReportSubmitted


class Refused(Message):
    """An invalid report answered by hop 1 (as intake answers one with reports.rejected)."""

    topic: ClassVar[str] = "bench.plumbing"
    key_field: ClassVar[str] = "report_id"

    report_id: str | None = None
    errors: list[FieldError]


def on_topic(cls: type[E], topic: str) -> type[E]:
    """``cls`` published on ``topic`` (a logical topic)."""
    return type(cls.__name__, (cls,), {"topic": topic, "__module__": __name__})


def create_service(
    settings: Settings, *, hop: int, schema: str, source: str, target: str, done: str, group: str
) -> Service:
    """Hop ``hop`` (1: reads reports, 2: reads what hop 1 forwarded) in ``schema``: consumes
    ``source`` in ``group``, publishes to ``target`` (``done``: where hop 1's refusals go)."""
    svc = Service(schema, settings, MIGRATIONS)
    out = on_topic(Forwarded, target)
    if hop == 1:
        refused = on_topic(Refused, done)

        async def forward_reports(
            conn: Connection, claimed: list[Claimed[ReportSubmitted]]
        ) -> None:
            for c in claimed:
                c.uow.emit(out(report_id=c.event.report_id, report=c.event))

        async def refuse(uow: UnitOfWork, obj: Any, errors: list[FieldError], meta: Meta) -> None:
            rid = obj.get("report_id")
            uow.emit(refused(report_id=rid if isinstance(rid, str) else None, errors=errors))

        svc.subscribe_batch(
            source,
            ReportSubmitted,
            group=group,
            idempotency_key=lambda r, _: f"{r.source}:{r.report_id}",  # as intake's
            on_invalid=refuse,
            prompt=True,
        )(forward_reports)
    else:

        async def forward(conn: Connection, claimed: list[Claimed[Forwarded]]) -> None:
            for c in claimed:
                c.uow.emit(out(report_id=c.event.report_id, report=c.event.report))

        svc.subscribe_batch(source, Forwarded, group=group, prompt=True)(forward)
    return svc


def start_hop(
    bed: Testbed,
    hop: int,
    n: int,
    source: str,
    target: str,
    done: str,
    logs: Path,
    env_over: dict[str, str],
) -> ServiceProcess:
    """Hop ``hop`` of pass ``n`` as a process, with a service's environment and the testbed's
    admin DSN (its schema created at its start)."""
    schema = f"plumbing{hop}_{n}"
    env = bed.process_env("intake", DATABASE_URL=bed.admin_dsn, **env_over)
    cmd = [
        *(sys.executable, "-m", "bench.plumbing", "--hop", str(hop), "--schema", schema),
        *("--source", source, "--target", target, "--done", done, "--group", group_of(hop, n)),
    ]
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{schema}-{bed.prefix}log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return ServiceProcess(schema, proc, int(env["WANGGE_HTTP_PORT"]), log)


def group_of(hop: int, n: int) -> str:
    return f"bench-plumbing-{hop}-{n}"


async def group_stable(settings: Settings, group: str) -> bool:
    """The consumer group (prefixed) has members and is Stable (its partitions assigned)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        for response in await admin.describe_consumer_groups([settings.topic_prefix + group]):
            for (
                g
            ) in response.groups:  # (error_code, group, state, protocol_type, protocol, members)
                if g[2] == "Stable" and g[5]:
                    return True
        return False
    finally:
        await admin.close()


async def measure_plumbing_limit(
    bed: Testbed,
    expected: int,
    *,
    partitions: int,
    logs: Path,
    env_over: dict[str, str] | None = None,
    passes: int = 3,
    timeout: float = 300,
) -> dict[str, Any]:
    """The plumbing hops over the ``expected`` reports of the backlog, ``passes`` times (each
    over topics, groups and schemas of its own); reports/s: the median pass."""
    runs = [
        await _plumbing_pass(
            bed, expected, n, partitions=partitions, logs=logs, env=env_over or {}, timeout=timeout
        )
        for n in range(passes)
    ]
    return {**median_pass(runs), "hops": HOPS, "processes": HOPS}


async def _plumbing_pass(
    bed: Testbed,
    expected: int,
    n: int,
    *,
    partitions: int,
    logs: Path,
    env: dict[str, str],
    timeout: float,
) -> dict[str, Any]:
    from bench.pipeline import sustained_rate

    settings = bed.settings()
    mid, out = f"bench.plumbing.{n}.mid", f"bench.plumbing.{n}.out"
    await create_topics(settings, [mid, out], partitions)
    started = asyncio.Event()
    reader = asyncio.create_task(
        arrivals(settings, out, expected, timeout=timeout, started=started)
    )
    await started.wait()
    procs: list[ServiceProcess] = []
    try:
        # hop 2 first, listening (its group stable) before hop 1 starts on the backlog
        second = start_hop(bed, 2, n, mid, out, out, logs, env)
        procs.append(second)
        await asyncio.to_thread(wait_ready, second)
        await eventually(
            partial(group_stable, settings, group_of(2, n)),
            timeout=60,
            interval=0.2,
            what="plumbing hop 2's group to be stable",
        )
        first = start_hop(bed, 1, n, "reports.submitted", mid, out, logs, env)
        procs.append(first)
        times = await reader
        batches = {
            "hop1 reports.submitted": first.batches("reports.submitted"),
            "hop2": second.batches(mid),
        }
        rss = {p.name: round(p.rss(), 1) for p in procs}
    finally:
        reader.cancel()
        for p in procs:
            await asyncio.to_thread(p.stop, signal.SIGTERM)
        await delete_topics(settings, [mid, out])
    return {
        "messages": len(times),
        "finished": len(times) >= expected,
        "elapsed_s": round(times[-1] - times[0], 3) if times else 0.0,
        "reports_per_s": round(sustained_rate(times), 1),
        "batches": batches,
        "rss_mb_at_end": rss,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plumbing", description=__doc__.split("\n")[0])
    p.add_argument("--hop", type=int, choices=(1, 2), required=True)
    p.add_argument("--schema", required=True, help="the hop's schema (its service name)")
    p.add_argument("--source", required=True, help="the logical topic consumed")
    p.add_argument("--target", required=True, help="the logical topic published to")
    p.add_argument("--done", required=True, help="where hop 1 answers an invalid report")
    p.add_argument("--group", required=True, help="the consumer group (prefixed)")
    args = p.parse_args(argv)
    factory = partial(
        create_service,
        hop=args.hop,
        schema=args.schema,
        source=args.source,
        target=args.target,
        done=args.done,
        group=args.group,
    )
    run(factory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
