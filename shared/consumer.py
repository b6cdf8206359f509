"""The consumer pipeline every input topic goes through.

For each message: decode JSON, validate against the topic's model, then, in one transaction,
claim the message in the inbox, run the handler, and write its events to the outbox. The Kafka
offset is committed by FastStream (``AckPolicy.ACK``) only after this returns, that is after the
effects are durable.

- Bytes that are not a JSON object, or a handler's permanent error: to ``<topic>.dlq``.
- A payload that fails validation: the topic's ``on_invalid`` hook (a rejection event), else DLQ.
- Transient failures (database or broker away): wait with capped exponential backoff and retry the
  same message; never skip it. A shutdown cancels the wait and leaves the offset uncommitted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import orjson
import structlog
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from shared.cloudevents import decode_headers
from shared.db import TRANSIENT_DB_ERRORS
from shared.events import FieldError
from shared.logging import get_logger
from shared.retry import Backoff
from shared.tracing import child_headers, parse_traceparent
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from shared.service import Service

M = TypeVar("M", bound=BaseModel)
log = get_logger(component="consumer")

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DB_ERRORS, KafkaError)
MAX_BODY_BYTES = 1_000_000 + 64_000


class PermanentError(Exception):
    """A message that can never be processed, whatever the retries: dead-letter it."""


@dataclass(frozen=True)
class Meta:
    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    received_at: datetime
    # This hop's trace headers (shared.tracing): what the events it causes carry.
    trace_headers: dict[str, str] = field(default_factory=dict)

    @property
    def ce_id(self) -> str | None:
        return self.headers.get("ce_id")


Handler = Callable[[UnitOfWork, M, Meta], Awaitable[None]]
InvalidHandler = Callable[[UnitOfWork, Any, list[FieldError], Meta], Awaitable[None]]


def field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        out.append(FieldError(field=loc, message=err["msg"]))
    return out


@dataclass
class Subscription(Generic[M]):
    service: Service
    topic: str  # logical name
    model: type[M]
    handler: Handler[M]
    group: str
    idempotency_key: Callable[[M, Meta], str | None] | None = None
    on_invalid: InvalidHandler | None = None
    allow_tombstone: bool = False

    @property
    def consumer_name(self) -> str:
        return self.group

    def register(self) -> None:
        svc = self.service
        sub = svc.broker.subscriber(
            svc.settings.topic(self.topic),
            group_id=svc.settings.topic_prefix + self.group,
            ack_policy=AckPolicy.ACK,
            auto_offset_reset="earliest",
            max_poll_records=200,
            title=self.group,
            description=self.model.__doc__,
            decoder=_raw_body,
        )
        sub(self._on_message)
        self._subscriber = sub

    def assigned_partitions(self) -> set[int]:
        """The partitions of the topic this instance consumes right now (empty before the group
        has assigned any)."""
        consumer = getattr(getattr(self, "_subscriber", None), "consumer", None)
        return {tp.partition for tp in consumer.assignment()} if consumer is not None else set()

    async def _on_message(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert not isinstance(record, tuple)
        headers = decode_headers(record.headers)
        trace = child_headers(headers)
        meta = Meta(
            topic=self.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else None,
            headers=headers,
            received_at=datetime.now(UTC),
            trace_headers=trace,
        )
        parent = parse_traceparent(trace["traceparent"])
        structlog.contextvars.bind_contextvars(
            topic=self.topic,
            partition=meta.partition,
            offset=meta.offset,
            ce_id=meta.ce_id,
            case_id=meta.headers.get("ce_subject"),
            trace_id=parent.trace_id if parent else None,
        )
        started = time.perf_counter()
        try:
            await self._process(record.value, meta)
        finally:
            self.service.metrics.observe_consumed(self.topic, time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars(
                "topic", "partition", "offset", "ce_id", "case_id", "trace_id"
            )

    async def _process(self, value: bytes | None, meta: Meta) -> None:
        if value is None:
            if self.allow_tombstone:
                await self._apply(
                    meta,
                    lambda uow: self.handler(uow, None, meta),  # type: ignore[arg-type]
                    key=f"{meta.partition}:{meta.offset}",
                )
                return
            await self.service.dead_letter(self.topic, value, meta, "EmptyMessage", "no body")
            return
        if len(value) > MAX_BODY_BYTES:
            await self.service.dead_letter(
                self.topic, value, meta, "MessageTooLarge", f"{len(value)} bytes"
            )
            return
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            await self.service.dead_letter(self.topic, value, meta, "NotJson", str(exc))
            return
        if not isinstance(obj, dict):
            await self.service.dead_letter(
                self.topic, value, meta, "NotJsonObject", f"JSON {type(obj).__name__}"
            )
            return
        try:
            event = self.model.model_validate(obj)
        except ValidationError as exc:
            errors = field_errors(exc)
            log.info("invalid message", errors=[e.model_dump() for e in errors][:10])
            if self.on_invalid is None:
                await self.service.dead_letter(
                    self.topic, value, meta, "ValidationError", str(exc)[:2000]
                )
                return
            on_invalid = self.on_invalid
            await self._apply(
                meta,
                lambda uow: on_invalid(uow, obj, errors, meta),
                key=meta.ce_id or f"invalid:{meta.partition}:{meta.offset}",
            )
            return
        key = (self.idempotency_key(event, meta) if self.idempotency_key else None) or meta.ce_id
        await self._apply(
            meta,
            lambda uow: self.handler(uow, event, meta),
            key=key or f"{meta.partition}:{meta.offset}",
            value=value,
        )

    async def _apply(
        self,
        meta: Meta,
        work: Callable[[UnitOfWork], Awaitable[None]],
        *,
        key: str,
        value: bytes | None = None,
    ) -> None:
        """Run ``work`` once in a transaction with inbox and outbox; retry transient failures."""
        svc = self.service
        backoff = Backoff(cap=svc.settings.retry_max_backoff_s)
        trace_headers = meta.trace_headers or _trace_headers(meta.headers)
        while True:
            try:
                async with svc.pool.acquire() as conn, conn.transaction():
                    claimed = await conn.fetchval(
                        "INSERT INTO inbox (consumer, message_key) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING RETURNING true",
                        self.consumer_name,
                        key,
                    )
                    if not claimed:
                        log.info("duplicate message ignored", message_key=key)
                        return
                    uow = UnitOfWork(
                        conn,
                        source=f"wangge/{svc.name}",
                        topic_prefix=svc.settings.topic_prefix,
                        trace_headers=trace_headers,
                    )
                    await work(uow)
                    await uow.flush()
                return
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
                delay = backoff.next()
                log.warning("transient failure, retrying", error=repr(exc), delay_s=round(delay, 2))
                svc.metrics.failures.labels(self.topic, "transient").inc()
                await asyncio.sleep(delay)
            except Exception as exc:
                log.exception("permanent failure, dead-lettering")
                svc.metrics.failures.labels(self.topic, "permanent").inc()
                await svc.dead_letter(self.topic, value, meta, type(exc).__name__, str(exc)[:2000])
                return


async def _raw_body(msg: Any) -> Any:
    """Leave the body as bytes: decoding is the pipeline's job, so that bytes that are not JSON
    reach it (and its dead-letter queue) instead of failing inside FastStream."""
    return msg.body


def _trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """This hop's trace headers: the incoming trace with a new span, or a new trace."""
    return child_headers(headers)
