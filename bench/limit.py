"""The limits of this design on this machine, from bare hops: an aiokafka consumer that reads the
report messages, COPYs them into a PostgreSQL table with no logic, publishes one event per
message, and commits its offsets. Whatever a service does on top of this costs throughput.

- ``measure_limit``: one such hop, in the benchmark's process (``limit_reports_per_s``);
- ``measure_chain_limit``: as many hops as the measured path has (reports.submitted -> intake ->
  cases.opened -> dispatch -> cases.dispatched: 2), chained through topics of their own, each
  hop an OS process of its own (``python -m bench.limit --hop``), all running at once as the
  services do (``limit_chain_reports_per_s``).

``python -m bench.limit --hop ...`` runs one hop as a process (its environment a service's:
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``WANGGE_TOPIC_PREFIX``...) and prints what it did
as one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client

OUT_TOPIC = "bench.limit.out"
HOPS = 2  # of the measured path: intake, then dispatch


async def create_topics(settings: Settings, names: Sequence[str], partitions: int) -> None:
    """The logical topics ``names`` (prefixed), those missing."""
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(settings.topic(n), partitions, replication_factor=1)
            for n in names
            if settings.topic(n) not in existing
        ]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


async def delete_topics(settings: Settings, names: Sequence[str]) -> None:
    """Delete the logical topics ``names`` (the testbed deletes only the contract's topics)."""
    admin = admin_client(settings)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics([settings.topic(n) for n in names])
    finally:
        await admin.close()


async def measure_limit(
    settings: Settings,
    admin_dsn: str,
    expected: int,
    *,
    partitions: int,
    passes: int = 3,
    timeout: float = 300,
) -> dict[str, Any]:
    """Consume ``expected`` messages of ``reports.submitted`` from the beginning, ``passes`` times
    (each pass a consumer group of its own, into an emptied table); reports/s is the median pass.
    One pass over the default backlog lasts about a second, so one pass alone swings with
    whatever else the machine does in that second."""
    await create_topics(settings, [OUT_TOPIC], partitions)
    runs = []
    for n in range(passes):
        runs.append(
            await run_hop(
                settings,
                admin_dsn,
                source="reports.submitted",
                target=OUT_TOPIC,
                group=f"bench-limit-{n}",
                table="bench_limit",
                expected=expected,
                timeout=timeout,
            )
        )
    return median_pass(runs)


async def run_hop(
    settings: Settings,
    admin_dsn: str,
    *,
    source: str,
    target: str,
    group: str,
    table: str,
    expected: int,
    timeout: float,
    forward: bool = False,
    announce: bool = False,
) -> dict[str, Any]:
    """One bare hop: consume ``source`` (a logical topic) from its beginning in consumer group
    ``group`` until ``expected`` messages (or ``timeout`` s), COPY each batch into ``table``
    (emptied first), publish one event per message to ``target`` (``forward``: the message's own
    body, as a service's next event carries the report on; else a small one), commit the
    offsets. ``announce``: print ``assigned`` once the group has assigned the hop its partitions
    (what the chain waits for before it starts the hop before this one). reports/s: from the
    first batch to the last."""
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (part int, off bigint, key text, body bytea)"
    )
    await conn.execute(f"TRUNCATE {table}")
    consumer = AIOKafkaConsumer(
        settings.topic(source),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        **client_security_kwargs(settings),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **client_security_kwargs(settings),
    )
    await consumer.start()
    await producer.start()
    done = 0
    first: float | None = None
    out = settings.topic(target)
    try:
        deadline = time.monotonic() + timeout
        while done < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(
                timeout_ms=100 if first is None else 500, max_records=2000
            )
            if announce and consumer.assignment():
                announce = False
                print("assigned", flush=True)
            if not batch:
                continue
            if first is None:
                first = time.monotonic()
            rows = [
                (r.partition, r.offset, r.key.decode() if r.key else None, r.value)
                for records in batch.values()
                for r in records
            ]
            async with conn.transaction():
                await conn.copy_records_to_table(
                    table, records=rows, columns=["part", "off", "key", "body"]
                )
            futures = [
                await producer.send(
                    out,
                    body if forward and body is not None else b'{"seen":%d}' % off,
                    key=key.encode() if key else None,
                )
                for _, off, key, body in rows
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(rows)
        elapsed = time.monotonic() - (first or time.monotonic())
    finally:
        await consumer.stop()
        await producer.stop()
        stored = await conn.fetchval(f"SELECT count(*) FROM {table}")
        await conn.close()
    return {
        "messages": done,
        "stored": stored,
        "elapsed_s": round(elapsed, 3),
        "reports_per_s": round(done / elapsed, 1) if elapsed else 0.0,
    }


async def arrivals(
    settings: Settings,
    topic: str,
    expected: int,
    *,
    timeout: float,
    started: asyncio.Event,
) -> list[float]:
    """The monotonic times at which the records of ``topic`` (a logical topic, read from its end
    as of the start) are read, until ``expected`` records or ``timeout`` s; ``started`` is set
    once the reader is positioned."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **client_security_kwargs(settings),
    )
    await consumer.start()
    times: list[float] = []
    try:
        name = settings.topic(topic)

        async def partitions() -> set[int]:  # a topic just created is known after a while
            await consumer._client.force_metadata_update()
            return consumer.partitions_for_topic(name) or set()

        found = await eventually(partitions, timeout=30, interval=0.2, what=f"{name}'s partitions")
        parts = [TopicPartition(name, p) for p in sorted(found)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        started.set()
        deadline = time.monotonic() + timeout
        while len(times) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            at = time.monotonic()
            times += [at for records in batch.values() for _ in records]
        return times
    finally:
        started.set()
        await consumer.stop()


def median_pass(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pass of median ``reports_per_s``, with every pass's rate beside it."""
    median = sorted(runs, key=lambda r: r["reports_per_s"])[len(runs) // 2]
    return {**median, "passes_reports_per_s": [r["reports_per_s"] for r in runs]}


async def measure_chain_limit(
    bed: Testbed,
    expected: int,
    *,
    partitions: int,
    logs: Path,
    hops: int = HOPS,
    passes: int = 3,
    timeout: float = 300,
) -> dict[str, Any]:
    """``hops`` bare hops chained (hop 1 reads the backlog in ``reports.submitted``, each next
    hop the topic the one before publishes to, the last publishes to an out topic), each hop a
    process of its own, all running at once; rate = the last hop's completions (the times this
    process reads them) between their 10th and 90th percentile, as the pipeline's
    (``bench.pipeline.sustained_rate``); reports/s is the median of ``passes`` passes, each over
    topics, groups and tables of its own."""
    runs = [
        await _chain_pass(
            bed, expected, n, partitions=partitions, logs=logs, hops=hops, timeout=timeout
        )
        for n in range(passes)
    ]
    return {**median_pass(runs), "hops": hops, "processes": hops}


async def _chain_pass(
    bed: Testbed,
    expected: int,
    n: int,
    *,
    partitions: int,
    logs: Path,
    hops: int,
    timeout: float,
) -> dict[str, Any]:
    from bench.pipeline import sustained_rate

    settings = bed.settings()
    topics = [f"bench.chain.{n}.{i}" for i in range(1, hops + 1)]
    sources = ["reports.submitted", *topics[:-1]]
    await create_topics(settings, topics, partitions)
    started = asyncio.Event()
    reader = asyncio.create_task(
        arrivals(settings, topics[-1], expected, timeout=timeout, started=started)
    )
    await started.wait()
    procs: list[asyncio.subprocess.Process] = []
    try:
        # the last hop first, each started once its group has assigned it its partitions, so
        # that every hop is listening when the first one starts on the backlog
        for i in reversed(range(hops)):
            argv = [
                *("--source", sources[i], "--target", topics[i]),
                *("--group", f"bench-chain-{n}-{i + 1}", "--table", f"bench_chain_{i + 1}"),
                *("--expected", str(expected), "--timeout", str(timeout), "--forward"),
            ]
            log = _log_file(logs, f"chain-{bed.prefix}{n}-{i + 1}.log")
            proc = await start_hop(bed, argv, log, announce=i > 0)
            procs.insert(0, proc)
            if i > 0:
                await _assigned(proc, what=f"chain hop {i + 1}", timeout=60)
        times = await reader
        results = [await _outcome(p, timeout) for p in procs]
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        reader.cancel()
        await delete_topics(settings, topics)
    return {
        "messages": len(times),
        "finished": len(times) >= expected,
        "elapsed_s": round(times[-1] - times[0], 3) if times else 0.0,
        "reports_per_s": round(sustained_rate(times), 1),
        "hop_results": results,
    }


def _log_file(logs: Path, name: str) -> Path:
    logs.mkdir(parents=True, exist_ok=True)
    return logs / name


async def start_hop(
    bed: Testbed, argv: list[str], log: Path, *, announce: bool
) -> asyncio.subprocess.Process:
    """``python -m bench.limit --hop <argv>`` against ``bed`` (a service's environment, with the
    testbed's admin DSN), its log (stderr) to ``log``."""
    from devstack.paths import ROOT

    env = bed.process_env("intake", DATABASE_URL=bed.admin_dsn)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.limit", "--hop", *argv),
            *(["--announce"] if announce else []),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=fd,
        )
    finally:
        os.close(fd)


async def _assigned(proc: asyncio.subprocess.Process, *, what: str, timeout: float) -> None:
    """Until the hop says it has its partitions (its first line)."""
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        line = await proc.stdout.readline()
    if line.strip() != b"assigned":
        raise RuntimeError(f"{what} did not start (exit {await proc.wait()}): {line!r}")


async def _outcome(proc: asyncio.subprocess.Process, timeout: float) -> dict[str, Any]:
    """What the hop printed last (its result), once it has exited."""
    async with asyncio.timeout(timeout):
        stdout, _ = await proc.communicate()
    lines = stdout.decode().strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        result = {}
    return {**result, "returncode": proc.returncode}


async def measure_commit_ms(settings: Settings, messages: int = 300) -> float:
    """Milliseconds per message when a consumer commits its offset after every message (what
    a per-message acknowledgement costs on this broker), over the backlog topic."""
    consumer = AIOKafkaConsumer(
        settings.topic("reports.submitted"),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}bench-commit",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    n, first = 0, None
    try:
        while n < messages:
            batch = await consumer.getmany(timeout_ms=500, max_records=100)
            for records in batch.values():
                for _ in records:
                    if first is None:
                        first = time.perf_counter()
                    await consumer.commit()
                    n += 1
        return round((time.perf_counter() - (first or 0)) / n * 1000, 2)
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.limit", description=__doc__.split("\n")[0])
    p.add_argument("--hop", action="store_true", required=True, help="run one bare hop")
    p.add_argument("--source", required=True, help="the logical topic read")
    p.add_argument("--target", required=True, help="the logical topic published to")
    p.add_argument("--group", required=True, help="the consumer group (prefixed)")
    p.add_argument("--table", required=True, help="the table COPYed into (emptied first)")
    p.add_argument("--expected", type=int, required=True, help="stop after as many messages")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--forward", action="store_true", help="publish each message's own body")
    p.add_argument("--announce", action="store_true", help="print 'assigned' once assigned")
    args = p.parse_args(argv)
    settings = Settings()
    result = asyncio.run(
        run_hop(
            settings,
            os.environ["DATABASE_URL"],
            source=args.source,
            target=args.target,
            group=args.group,
            table=args.table,
            expected=args.expected,
            timeout=args.timeout,
            forward=args.forward,
            announce=args.announce,
        )
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
