"""A small Kafka client for tools, the demo and tests: publish JSON events, read topics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel

from shared.contract.cloudevents import decode_headers, make_headers
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.producer import OutRecord, Producer
from shared.runtime.record_bytes import tolerate_undecodable_header_names
from shared.runtime.settings import Settings


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]  # the UTF-8 ones; the last of a repeated name
    value: bytes | None
    raw_key: bytes | None = None
    raw_headers: tuple[tuple[str, bytes | None], ...] = ()  # as they came, in order

    def json(self) -> Any:
        return orjson.loads(self.value) if self.value else None


class Publisher:
    """Publishes with CloudEvents headers through ``shared.producer.Producer`` (acks=all,
    idempotent, replaced after a Kafka error, which is raised so that the caller can retry)."""

    def __init__(self, settings: Settings, source: str = "wangge/cli") -> None:
        self.settings = settings
        self.source = source
        self.producer = Producer(settings, client_id=source)

    async def __aenter__(self) -> Publisher:
        try:
            await self.producer.start()
        except BaseException:
            await self.producer.stop()  # a failed start leaves its connections open
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(
        self,
        topic: str,
        value: BaseModel | Mapping[str, Any] | bytes | None,
        *,
        key: str | None = None,
        subject: str | None = None,
        headers: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> Any:
        """Send to the logical ``topic``; returns the broker's metadata, or a future."""
        if isinstance(value, BaseModel):
            body: bytes | None = value.model_dump_json().encode()
        elif isinstance(value, Mapping):
            body = orjson.dumps(value)
        else:
            body = value
        hdrs = make_headers(source=self.source, topic=topic, subject=subject)
        hdrs.update(headers or {})
        record = OutRecord(self.settings.topic(topic), key, body, hdrs)
        return await self.producer.send(record, wait=wait)


class TopicReader:
    """Reads every partition of some topics from the beginning, without a consumer group."""

    def __init__(self, settings: Settings, *topics: str) -> None:
        self.settings = settings
        self.topics = [settings.topic(t) for t in topics]
        self.records: list[Record] = []
        tolerate_undecodable_header_names()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            **client_security_kwargs(settings),
        )
        self._prefix = len(settings.topic_prefix)

    async def __aenter__(self) -> TopicReader:
        try:
            await self.consumer.start()
        except BaseException:
            await self.consumer.stop()  # a failed start leaves its connections open
            raise
        parts = []
        for t in self.topics:
            for p in self.consumer.partitions_for_topic(t) or await self._partitions(t):
                parts.append(TopicPartition(t, p))
        self.consumer.assign(parts)
        await self.consumer.seek_to_beginning(*parts)
        return self

    async def _partitions(self, topic: str) -> set[int]:
        await self.consumer._client.force_metadata_update()
        return self.consumer.partitions_for_topic(topic) or set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int = 100) -> list[Record]:
        batch = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        new = [
            Record(
                tp.topic[self._prefix :],
                r.partition,
                r.offset,
                r.key.decode("utf-8", "replace") if r.key is not None else None,
                decode_headers(r.headers),
                r.value,
                r.key,
                tuple(r.headers),
            )
            for tp, recs in batch.items()
            for r in recs
        ]
        self.records.extend(new)
        return new

    def of(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]

    async def wait_for(
        self, cond: Callable[[TopicReader], Any], *, timeout: float = 30, what: str = ""
    ) -> Any:
        """Read until ``cond(self)`` is truthy; its value is returned. Fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = cond(self)
            if result:
                return result
            if time.monotonic() > deadline:
                seen = {t: len(self.of(t[self._prefix :])) for t in self.topics}
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}; seen {seen}")
            await self.poll()

    async def read_to_end(self) -> list[Record]:
        """Everything up to the end offsets as of now."""
        parts = list(self.consumer.assignment())
        end = await self.consumer.end_offsets(parts)
        for tp, off in end.items():
            while await self.consumer.position(tp) < off:
                await self.poll(200)
        return self.records
