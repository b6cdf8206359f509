"""The outbox relay: publishes committed outbox rows to Kafka in id order, then deletes them.

One relay per schema is active at a time (a PostgreSQL advisory lock elects it), so rows of one key
leave in the order they were written, even with several replicas. The producer is idempotent with
``acks=all``; a crash between publishing and deleting re-publishes the same rows with the same
``ce_id``, which consumers' inboxes ignore (at-least-once delivery, exactly-once effects). A stop
(a cancel) lets the batch in hand finish, published rows deleted, so that only a crash repeats rows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg

from shared.runtime.db import TRANSIENT_DB_ERRORS, Connection, connect
from shared.runtime.logging import get_logger
from shared.runtime.producer import OutRecord, Producer, refused_for_good
from shared.runtime.record_bytes import decode_raw
from shared.runtime.retry import Backoff

log = get_logger(component="outbox")
FINISH_TIMEOUT_S = 5.0  # how long a stop waits for the batch in hand (publish, then delete)


class OutboxRelay:
    def __init__(
        self,
        *,
        dsn: str,
        schema: str,
        producer: Producer,
        poll_s: float = 0.5,
        batch: int = 1000,
        max_backoff_s: float = 30.0,
        on_published: Callable[[str, int], None] | None = None,
        on_parked: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.producer = producer
        self.poll_s = poll_s
        self.batch = batch
        self.max_backoff_s = max_backoff_s
        self.published = 0
        self.on_published = on_published  # (physical topic, count) after each batch is acked
        self.on_parked = on_parked  # (count) after rows the broker refused for good are parked
        self._wake = asyncio.Event()

    def _notified(self, *_: Any) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = Backoff(cap=self.max_backoff_s)
        while True:
            conn: Connection | None = None
            try:
                conn = await connect(self.dsn, self.schema)
                await conn.add_listener(f"{self.schema}_outbox", self._notified)
                while not await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext($1))", f"outbox:{self.schema}"
                ):
                    await self._wait()
                log.info("outbox relay is leader", schema=self.schema)
                backoff.reset()
                while True:
                    if not await self._relay_batch(conn):
                        await self._wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # transient: database or broker away; wait and retry
                delay = backoff.next()
                log.warning("outbox relay retrying", error=repr(exc), delay_s=round(delay, 2))
                await asyncio.sleep(delay)
            finally:
                if conn is not None:
                    with contextlib.suppress(*TRANSIENT_DB_ERRORS, Exception):
                        async with asyncio.timeout(5):
                            await conn.close()

    async def _wait(self) -> None:
        """Until a NOTIFY or ``poll_s``. ``asyncio.timeout``, never ``asyncio.wait_for``: on Python
        3.11, wait_for drops a cancellation that arrives as the event is set, and the relay would
        then never stop (tests/shared/test_outbox_stop.py)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_s):
                await self._wake.wait()
        self._wake.clear()

    async def _relay_batch(self, conn: Connection) -> int:
        """``relay_once``, finished even when the relay is cancelled meanwhile: rows the broker
        acknowledged are deleted before the relay stops, so a graceful stop between the publish
        and the delete does not publish them again at the next start (a dead letter read twice
        on ``<topic>.dlq``, tests/shared/test_outbox_stop.py). A cancel waits for the batch at
        most ``FINISH_TIMEOUT_S``; a crash still republishes, which inboxes make harmless."""
        batch = asyncio.ensure_future(self.relay_once(conn))
        try:
            return await asyncio.shield(batch)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(FINISH_TIMEOUT_S):
                    await batch
            batch.cancel()
            raise

    async def relay_once(self, conn: Connection) -> int:
        """Publish the oldest rows, delete the ones the broker acknowledged and park the ones it
        refused for good (``outbox_parked``, with its answer: a dead letter too large for its
        topic must not block every later row, nor have the rows before it published again and
        again). Any other failure is raised after that: the relay retries the rest."""
        rows = await conn.fetch(
            "SELECT id, topic, key, headers, payload, raw FROM outbox ORDER BY id LIMIT $1",
            self.batch,
        )
        if not rows:
            return 0
        errors = await self.producer.send_each(
            [
                OutRecord(
                    r["topic"],
                    r["key"],
                    r["payload"],
                    r["headers"],
                    decode_raw(r["raw"]) if r["raw"] is not None else None,
                )
                for r in rows
            ]
        )
        sent = [r for r, e in zip(rows, errors, strict=True) if e is None]
        refused = [(r, e) for r, e in zip(rows, errors, strict=True) if e and refused_for_good(e)]
        async with conn.transaction():
            if refused:
                await self._park(conn, refused)
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])",
                [r["id"] for r in sent] + [r["id"] for r, _ in refused],
            )
        self.published += len(sent)
        if self.on_published is not None:
            for topic, n in Counter(r["topic"] for r in sent).items():
                self.on_published(topic, n)
        failed = [e for e in errors if e is not None and not refused_for_good(e)]
        if failed:
            raise failed[0]
        return len(rows)

    async def _park(
        self, conn: Connection, refused: list[tuple[asyncpg.Record, BaseException]]
    ) -> None:
        for row, error in refused:
            log.error(
                "event refused by the broker for good, parked in outbox_parked",
                outbox_id=row["id"],
                topic=row["topic"],
                error=repr(error),
            )
        await conn.executemany(
            "INSERT INTO outbox_parked (id, topic, key, headers, payload, raw, created_at, error) "
            "SELECT id, topic, key, headers, payload, raw, created_at, $2 FROM outbox "
            "WHERE id = $1 ON CONFLICT (id) DO NOTHING",
            [(row["id"], repr(error)) for row, error in refused],
        )
        if self.on_parked is not None:
            self.on_parked(len(refused))
