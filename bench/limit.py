"""The limit of one hop on this machine: a bare aiokafka consumer that reads the report messages,
COPYs them into a PostgreSQL table with no logic, publishes one small event per message, and
commits its offsets. Whatever a service does on top of this costs throughput."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic

from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client

OUT_TOPIC = "bench.limit.out"


async def _create_out_topic(settings: Settings, partitions: int) -> None:
    admin = admin_client(settings)
    await admin.start()
    try:
        if settings.topic(OUT_TOPIC) not in set(await admin.list_topics()):
            await admin.create_topics(
                [NewTopic(settings.topic(OUT_TOPIC), partitions, replication_factor=1)]
            )
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
    await _create_out_topic(settings, partitions)
    runs = []
    for n in range(passes):
        runs.append(await _one_pass(settings, admin_dsn, expected, f"bench-limit-{n}", timeout))
    median = sorted(runs, key=lambda r: r["reports_per_s"])[len(runs) // 2]
    return {**median, "passes_reports_per_s": [r["reports_per_s"] for r in runs]}


async def _one_pass(
    settings: Settings, admin_dsn: str, expected: int, group: str, timeout: float
) -> dict[str, float]:
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_limit (part int, off bigint, key text, body bytea)"
    )
    await conn.execute("TRUNCATE bench_limit")
    consumer = AIOKafkaConsumer(
        settings.topic("reports.submitted"),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )
    await consumer.start()
    await producer.start()
    done = 0
    first: float | None = None
    try:
        deadline = time.monotonic() + timeout
        while done < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
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
                    "bench_limit", records=rows, columns=["part", "off", "key", "body"]
                )
            futures = [
                await producer.send(
                    settings.topic(OUT_TOPIC),
                    b'{"seen":%d}' % off,
                    key=key.encode() if key else None,
                )
                for _, off, key, _ in rows
            ]
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(rows)
        elapsed = time.monotonic() - (first or time.monotonic())
    finally:
        await consumer.stop()
        await producer.stop()
        stored = await conn.fetchval("SELECT count(*) FROM bench_limit")
        await conn.close()
    return {
        "messages": done,
        "stored": stored,
        "elapsed_s": round(elapsed, 3),
        "reports_per_s": round(done / elapsed, 1) if elapsed else 0.0,
    }


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
