"""The outbox relay stops when it is cancelled, even if a NOTIFY wakes it at the same moment.

On Python 3.11, ``asyncio.wait_for`` returns the inner result and drops a cancellation that arrives
in the same loop step as the inner future completes; the relay then kept running and a service's
shutdown (or a test's teardown) waited for it forever. Pure asyncio, no broker needed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import cast

import pytest

from shared.runtime.db import Connection
from shared.runtime.outbox import OutboxRelay
from shared.runtime.producer import Producer


async def test_a_cancel_that_coincides_with_a_wake_up_is_not_lost() -> None:
    relay = OutboxRelay(dsn="unused", schema="unused", producer=cast(Producer, None), poll_s=60)
    waiting = asyncio.create_task(relay._wait())
    for _ in range(3):  # a few loop steps: the relay runs until it blocks on the event
        await asyncio.sleep(0)
    assert relay._wake._waiters, "the relay should be waiting for a NOTIFY"
    relay._notified()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await waiting


class _Conn:
    """The two statements of ``relay_once``: one row to publish, then its delete."""

    def __init__(self) -> None:
        self.deleted: list[list[int]] = []

    async def fetch(self, sql: str, *args: object) -> list[dict[str, object]]:
        row = {"id": 7, "topic": "t.dlq", "key": None, "headers": {}, "payload": b"x"}
        return [{**row, "raw": None}]

    async def execute(self, sql: str, ids: list[int]) -> None:
        self.deleted.append(ids)

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()


class _SlowProducer:
    """Acknowledges a batch only when ``ack`` is set (a broker answering slowly)."""

    def __init__(self) -> None:
        self.sending = asyncio.Event()
        self.ack = asyncio.Event()

    async def send_each(self, records: list[object]) -> list[None]:
        self.sending.set()
        await self.ack.wait()
        return [None] * len(records)


async def test_a_stop_while_a_batch_is_acknowledged_deletes_its_rows() -> None:
    """A stop that lands between the publish and the delete used to leave the published rows in
    the outbox; the next start published them again (a dead letter read twice on its topic)."""
    producer = _SlowProducer()
    relay = OutboxRelay(dsn="unused", schema="unused", producer=cast(Producer, producer))
    conn = _Conn()
    task = asyncio.create_task(relay._relay_batch(cast(Connection, conn)))
    async with asyncio.timeout(5):
        await producer.sending.wait()
    task.cancel()
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done(), "the relay should wait for the batch in hand"
    producer.ack.set()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert conn.deleted == [[7]]
