"""The producer every service publishes with: idempotent, ``acks=all``, and replaced when it dies.

An idempotent aiokafka producer stops for good on some broker answers (``OutOfOrderSequenceNumber``
after a broker restart, ``ProducerFenced``): its sender task ends and every later send fails. This
wrapper closes such a producer and starts a fresh one (a new producer id) on the next send; callers
retry the records that were not acknowledged, which consumers' inboxes make harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from shared.runtime.kafka import client_security_kwargs
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings

log = get_logger(component="producer")
MAX_REQUEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class OutRecord:
    topic: str  # physical topic name
    key: str | None
    value: bytes | None
    headers: Mapping[str, str]
    # A dead letter's original key and headers (shared.record_bytes.decode_raw): the key
    # published instead of ``key``, the headers before ``headers``
    original: tuple[bytes | None, Sequence[tuple[str, bytes | None]]] | None = None


REFUSED_FOR_GOOD = (MessageSizeTooLargeError, RecordListTooLargeError, CorruptRecordException)


def refused_for_good(exc: BaseException) -> bool:
    """An answer that sending the same record again cannot change."""
    return isinstance(exc, REFUSED_FOR_GOOD)


class Producer:
    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.settings.kafka_bootstrap_servers,
                    client_id=self.client_id,
                    acks="all",
                    enable_idempotence=True,
                    # Callers hand over whole batches (the outbox relay: up to 1,000 rows), which
                    # are batched as they are queued; waiting for more only adds latency.
                    linger_ms=0,
                    max_batch_size=256 * 1024,
                    # A dead letter is its original record (up to the input topic's limit,
                    # 1 MiB by default) plus its dlq_* headers; the broker checks each topic's
                    # own max.message.bytes (shared.contract.topics)
                    max_request_size=MAX_REQUEST_BYTES,
                    **client_security_kwargs(self.settings),
                )
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        async with self._lock:
            if self._producer is producer:
                self._producer = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await producer.stop()

    async def start(self) -> None:
        """Connect now rather than at the first send."""
        await self._ensure()

    async def send(self, record: OutRecord, *, wait: bool = True) -> Any:
        """Send one record; returns the broker's metadata, or (``wait=False``) a future of it.
        On a Kafka error the producer is replaced and the error raised: retry the record."""
        producer = await self._ensure()
        try:
            fut = await self._queue(producer, record)
            return await fut if wait else fut
        except KafkaError as exc:
            await self._replaced(producer, exc)
            raise

    async def send_each(self, records: Sequence[OutRecord]) -> list[BaseException | None]:
        """Send the records in order and wait for the broker's answer to each: ``None`` where it
        acknowledged the record, else the error. After a retriable error the producer is
        replaced (retry those records); a permanent one (``refused_for_good``) concerns that
        record alone."""
        producer = await self._ensure()
        errors: list[BaseException | None] = [None] * len(records)
        queued: list[tuple[int, Any]] = []
        for i, r in enumerate(records):
            try:
                queued.append((i, await self._queue(producer, r)))
            except KafkaError as exc:  # refused before sending (larger than max_request_size)
                errors[i] = exc
        answers = await asyncio.gather(*(f for _, f in queued), return_exceptions=True)
        for (i, _), answer in zip(queued, answers, strict=True):
            if isinstance(answer, BaseException):
                errors[i] = answer
        retriable = [e for e in errors if e is not None and not refused_for_good(e)]
        if retriable and isinstance(retriable[0], KafkaError):
            await self._replaced(producer, retriable[0])
        return errors

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()

    @staticmethod
    async def _queue(producer: AIOKafkaProducer, r: OutRecord) -> Any:
        headers: list[tuple[str, bytes | None]] = [(k, v.encode()) for k, v in r.headers.items()]
        if r.original is None:
            key = r.key.encode() if r.key is not None else None
        else:
            key, original = r.original
            headers = [*original, *headers]
        return await producer.send(r.topic, r.value, key=key, headers=headers)

    async def _replaced(self, producer: AIOKafkaProducer, exc: KafkaError) -> None:
        log.warning("producer replaced after an error", error=repr(exc))
        await self._discard(producer)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._discard(self._producer)
