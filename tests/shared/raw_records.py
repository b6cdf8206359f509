"""Records with any bytes a Kafka client can put on the wire, for hostile-input tests.

aiokafka encodes header names as UTF-8 (its compiled record builder takes ``str`` only), so a
name that is not UTF-8 (which a librdkafka or Go client can send) is written here through
aiokafka's pure-Python builder, with a ``str`` standing for the name whose ``encode`` returns the
raw bytes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from shared.runtime.settings import Settings

Header = tuple[str | bytes, bytes | None]


class _RawName(str):
    """A header name written as the bytes it stands for."""

    raw: bytes

    def __new__(cls, raw: bytes) -> _RawName:
        obj = super().__new__(cls, "x" * len(raw))
        obj.raw = raw
        return obj

    def encode(self, *_: Any, **__: Any) -> bytes:
        return self.raw


@contextlib.contextmanager
def _python_builder() -> Iterator[None]:
    modules = (message_accumulator, producer_module)
    originals = [m.DefaultRecordBatchBuilder for m in modules]
    for m in modules:
        m.DefaultRecordBatchBuilder = _DefaultRecordBatchBuilderPy
    try:
        yield
    finally:
        for m, original in zip(modules, originals, strict=True):
            m.DefaultRecordBatchBuilder = original


class RawProducer:
    """Publishes (key, value, headers) exactly as given to a logical topic of ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            max_request_size=4 * 1024 * 1024,
            linger_ms=5,
        )
        self._builder = _python_builder()

    async def __aenter__(self) -> RawProducer:
        self._builder.__enter__()
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        self._builder.__exit__(None, None, None)

    async def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[Header] = (),
        partition: int | None = None,
    ) -> Any:
        hdrs = [(_RawName(n) if isinstance(n, bytes) else n, v) for n, v in headers]
        fut = await self.producer.send(
            self.settings.topic(topic), value, key=key, headers=hdrs, partition=partition
        )
        return await fut
