"""The consumer pipeline every input topic goes through.

Messages are consumed in batches (up to ``WANGGE_CONSUME_BATCH``, whatever is there when a poll
returns). For each message: decode JSON, validate against the topic's model; then the batch is
applied in one transaction, each message in its own savepoint: claim it in the inbox, run the
handler, collect its events, which go to the outbox with the commit. The Kafka offsets are
committed by FastStream (``AckPolicy.ACK``) only after this returns, that is after the effects are
durable: one database commit and one offset commit per batch instead of per message.

- Bytes that are not a JSON object, or a handler's permanent error: to ``<topic>.dlq`` (a permanent
  error rolls back only that message's savepoint).
- A payload that fails validation: the topic's ``on_invalid`` hook (a rejection event), else DLQ.
- Transient failures (database or broker away): wait with capped exponential backoff and retry the
  same batch; never skip it. A shutdown cancels the wait and leaves the offsets uncommitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
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
from shared.uow import OutgoingEvent, UnitOfWork

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
            batch=True,
            max_records=svc.settings.consume_batch,
            batch_timeout_ms=50,
            title=self.group,
            description=self.model.__doc__,
            decoder=_raw_body,
            parser=_safe_headers,
        )
        sub(self._on_batch)
        self._subscriber = sub

    def assigned_partitions(self) -> set[int]:
        """The partitions of the topic this instance consumes right now (empty before the group
        has assigned any)."""
        consumer = getattr(getattr(self, "_subscriber", None), "consumer", None)
        return {tp.partition for tp in consumer.assignment()} if consumer is not None else set()

    async def _on_batch(self, msg: KafkaMessage) -> None:
        records = msg.raw_message
        batch = records if isinstance(records, tuple) else (records,)
        started = time.perf_counter()
        items = [self._prepare(r) for r in batch]
        await self._apply_batch(items)
        each = (time.perf_counter() - started) / max(1, len(items))
        for _ in items:
            self.service.metrics.observe_consumed(self.topic, each)

    def _meta(self, record: Any) -> Meta:
        headers = decode_headers(record.headers)
        return Meta(
            topic=self.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else None,
            headers=headers,
            received_at=datetime.now(UTC),
            trace_headers=child_headers(headers),
        )

    def _prepare(self, record: Any) -> _Item:
        """Decode and validate one record: what to do with it inside the batch's transaction,
        or why it goes to the dead-letter topic."""
        meta = self._meta(record)
        value: bytes | None = record.value
        if value is None:
            if self.allow_tombstone:
                return _Item(
                    meta,
                    value,
                    f"{meta.partition}:{meta.offset}",
                    lambda uow: self.handler(uow, None, meta),  # type: ignore[arg-type]
                )
            return _Item(meta, value, dead=("EmptyMessage", "no body"))
        if len(value) > MAX_BODY_BYTES:
            return _Item(meta, value, dead=("MessageTooLarge", f"{len(value)} bytes"))
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return _Item(meta, value, dead=("NotJson", str(exc)))
        if not isinstance(obj, dict):
            return _Item(meta, value, dead=("NotJsonObject", f"JSON {type(obj).__name__}"))
        try:
            event = self.model.model_validate(obj)
        except ValidationError as exc:
            errors = field_errors(exc)
            with _log_context(meta):
                log.info("invalid message", errors=[e.model_dump() for e in errors][:10])
            on_invalid = self.on_invalid
            if on_invalid is None:
                return _Item(meta, value, dead=("ValidationError", str(exc)[:2000]))
            return _Item(
                meta,
                value,
                meta.ce_id or f"invalid:{meta.partition}:{meta.offset}",
                lambda uow: on_invalid(uow, obj, errors, meta),
            )
        key = (self.idempotency_key(event, meta) if self.idempotency_key else None) or meta.ce_id
        return _Item(
            meta,
            value,
            key or f"{meta.partition}:{meta.offset}",
            lambda uow: self.handler(uow, event, meta),
        )

    async def _apply_batch(self, items: list[_Item]) -> None:
        """Apply the batch in one transaction, each message in its own savepoint with its inbox
        claim; its events go to the outbox with the commit. A permanent failure rolls back only
        that message's savepoint and dead-letters it; a transient one retries the whole batch."""
        svc = self.service
        backoff = Backoff(cap=svc.settings.retry_max_backoff_s)
        while True:
            dead: list[tuple[_Item, str, str]] = []
            try:
                async with svc.pool.acquire() as conn, conn.transaction():
                    outgoing: list[OutgoingEvent] = []
                    for item in items:
                        if item.dead is not None:
                            dead.append((item, *item.dead))
                            continue
                        with _log_context(item.meta):
                            try:
                                outgoing.extend(await self._apply_one(conn, item))
                            except TRANSIENT_ERRORS:
                                raise
                            except Exception as exc:
                                log.exception("permanent failure, dead-lettering")
                                svc.metrics.failures.labels(self.topic, "permanent").inc()
                                dead.append((item, type(exc).__name__, str(exc)[:2000]))
                    await UnitOfWork(conn, source=f"wangge/{svc.name}", pending=outgoing).flush()
                break
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
                delay = backoff.next()
                log.warning("transient failure, retrying", error=repr(exc), delay_s=round(delay, 2))
                svc.metrics.failures.labels(self.topic, "transient").inc()
                await asyncio.sleep(delay)
        for item, error_class, error in dead:
            with _log_context(item.meta):
                await svc.dead_letter(self.topic, item.value, item.meta, error_class, error)

    async def _apply_one(self, conn: Any, item: _Item) -> list[OutgoingEvent]:
        """One message inside the batch: its savepoint, its inbox claim, its handler."""
        assert item.work is not None and item.key is not None
        svc = self.service
        async with conn.transaction():
            claimed = await conn.fetchval(
                "INSERT INTO inbox (consumer, message_key) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                self.consumer_name,
                item.key,
            )
            if not claimed:
                log.info("duplicate message ignored", message_key=item.key)
                return []
            uow = UnitOfWork(
                conn,
                source=f"wangge/{svc.name}",
                topic_prefix=svc.settings.topic_prefix,
                trace_headers=item.meta.trace_headers,
            )
            await item.work(uow)
            return uow.pending


@dataclass
class _Item:
    meta: Meta
    value: bytes | None
    key: str | None = None  # the inbox key
    work: Callable[[UnitOfWork], Awaitable[None]] | None = None
    dead: tuple[str, str] | None = None  # (error class, error): straight to the DLQ


@contextlib.contextmanager
def _log_context(meta: Meta) -> Iterator[None]:
    parent = parse_traceparent(meta.trace_headers.get("traceparent", ""))
    with structlog.contextvars.bound_contextvars(
        topic=meta.topic,
        partition=meta.partition,
        offset=meta.offset,
        ce_id=meta.ce_id,
        case_id=meta.headers.get("ce_subject"),
        trace_id=parent.trace_id if parent else None,
    ):
        yield


async def _safe_headers(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream decodes every header value as UTF-8 and fails on one that is not (the message
    would be skipped unseen): replace such values before it parses, so the pipeline sees the
    message and can dead-letter it."""

    def clean(record: Any) -> Any:
        headers = [(k, v if _utf8(v) else b"") for k, v in (record.headers or ())]
        return dataclasses.replace(record, headers=headers)

    return await original(tuple(clean(r) for r in msg) if isinstance(msg, tuple) else clean(msg))


def _utf8(value: Any) -> bool:
    if not isinstance(value, bytes):
        return False
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _raw_body(msg: Any) -> Any:
    """Leave the body as bytes: decoding is the pipeline's job, so that bytes that are not JSON
    reach it (and its dead-letter queue) instead of failing inside FastStream."""
    return msg.body
