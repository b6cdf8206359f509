"""The consumer pipeline every input topic goes through.

Messages are consumed in batches (up to ``WANGGE_CONSUME_BATCH``, whatever is there when a poll
returns). For each message: decode JSON, validate against the topic's model. Then the batch is
applied in one transaction, set-based: one inbox claim for all its messages (a message already
claimed is a duplicate and skipped), the handler called once over the claimed valid messages, then
the ``on_invalid`` hook for each invalid one (it changes no state, only answers with a rejection),
their events written to the outbox with the commit: one database commit and one offset commit
per batch instead of per message.

The invariant, kept here and nowhere else: **a record's offset is committed only after the
transaction holding its effects, or its dead letter, has committed.** FastStream commits the
offsets (``AckPolicy.NACK_ON_ERROR``) only when ``_on_batch`` returns; it returns only once every
record of the batch is applied or dead-lettered. Should anything escape it all the same (a bug),
the offsets are not committed: FastStream rewinds the batch's partitions to its first records
and the batch is read again after a backoff.

A handler is either per message (``Handler``: ``(uow, event, meta)``) or per batch
(``BatchHandler``: ``(conn, [Claimed])``, for set-based SQL); a per-message handler is run as a
batch handler by ``one_by_one``.

- Bytes that are not a JSON object: to ``<topic>.dlq`` (each dead letter is an outbox row written
  in the batch's transaction, with the record's position claimed in the inbox: written once).
- A payload that fails validation: the topic's ``on_invalid`` hook (a rejection event), else DLQ.
- Headers or a key that break the contract (``shared.runtime.record_bytes``): to ``<topic>.dlq``.
- A handler's permanent error: the batch's transaction is rolled back and the batch applied again
  message by message, each in its own savepoint with its own inbox claim, so that only the failing
  message is rolled back and dead-lettered.
- An unexpected error in that careful pass (writing a dead letter, a savepoint that cannot be
  rolled back): each message in a transaction of its own, so that the failing one is known; it is
  dead-lettered in a transaction of its own. If even that fails, wait with capped backoff and try
  again: the batch is never acknowledged unapplied.
- Transient failures (database or broker away): wait with capped exponential backoff and retry the
  same batch; never skip it. A shutdown cancels the wait and leaves the offsets uncommitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import asyncpg
import orjson
import structlog
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import Topic
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from shared.contract.events import FieldError
from shared.runtime.db import TRANSIENT_DB_ERRORS, Connection
from shared.runtime.logging import get_logger
from shared.runtime.record_bytes import clean_headers, header_problem, needs_cleaning, text_safe
from shared.runtime.retry import Backoff
from shared.runtime.tracing import child_headers, new_root, parse_traceparent
from shared.runtime.uow import OutgoingEvent, UnitOfWork

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

    from shared.runtime.metrics import ServiceMetrics
    from shared.runtime.settings import Settings

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
    # This hop's trace headers (shared.runtime.tracing): what the events it causes carry.
    trace_headers: dict[str, str] = field(default_factory=dict)

    @property
    def ce_id(self) -> str | None:
        return self.headers.get("ce_id")


Handler = Callable[[UnitOfWork, M, Meta], Awaitable[None]]
InvalidHandler = Callable[[UnitOfWork, Any, list[FieldError], Meta], Awaitable[None]]


@dataclass
class Claimed(Generic[M]):
    """A message of a batch claimed in the inbox: its event (``None`` for a tombstone), its
    metadata and its own unit of work (its events carry its trace headers; all share the batch's
    connection and transaction)."""

    event: M
    meta: Meta
    uow: UnitOfWork
    key: str = ""  # its inbox key
    released: bool = False
    context: Any = None  # what an in-process caller attached (``Subscription.apply_now``)

    def release(self) -> None:
        """Drop this message's inbox claim with the transaction: a later message with the same
        key is applied, not ignored as a duplicate (a report rejected for its content may come
        back corrected under the same id)."""
        self.released = True


BatchHandler = Callable[[Connection, list[Claimed[M]]], Awaitable[None]]


def one_by_one(handler: Handler[M]) -> BatchHandler[M]:
    """A per-message handler as a batch handler: each claimed message in order."""

    async def handle(conn: Connection, claimed: list[Claimed[M]]) -> None:
        for c in claimed:
            with _log_context(c.meta):
                await handler(c.uow, c.event, c.meta)

    handle.__name__ = getattr(handler, "__name__", "handle")
    return handle


def locked_first(
    lock: Callable[[Connection, list[str]], Awaitable[None]],
    key: Callable[[M], str],
    handler: Handler[M],
) -> BatchHandler[M]:
    """A per-message handler as a batch handler that first takes the batch's row locks
    (``locked_batch``), then applies each message in order."""
    return locked_batch(lock, key, one_by_one(handler))


def locked_batch(
    lock: Callable[[Connection, list[str]], Awaitable[None]],
    key: Callable[[M], str],
    handler: BatchHandler[M],
) -> BatchHandler[M]:
    """A batch handler that first takes the batch's row locks: ``lock`` gets the sorted
    distinct ``key`` of its messages (a case id) and locks their rows in that order, then
    ``handler`` has the batch. Each topic is its own consumer and transaction; where one
    entity's events on several topics follow each other within milliseconds, batches that lock
    the same rows in their own orders deadlock, and PostgreSQL finds it only after its
    ``deadlock_timeout`` (both batches held until then, one retried)."""

    async def handle(conn: Connection, claimed: list[Claimed[M]]) -> None:
        keys = sorted({key(c.event) for c in claimed if c.event is not None})
        if keys:
            await lock(conn, keys)
        await handler(conn, claimed)

    handle.__name__ = getattr(handler, "__name__", "handle")
    return handle


def field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        out.append(FieldError(field=loc, message=err["msg"]))
    return out


@dataclass(frozen=True)
class Polling:
    """How a subscription waits for records. An idle consumer polls (``getmany``) for
    ``poll_ms``, then FastStream sleeps as long again; aiokafka keeps one fetch in flight per
    broker, for the partitions with nothing buffered, and the broker holds it up to
    ``fetch_max_wait_ms`` when they have no data (a partition just drained waits for it). Short
    waits pick up a record within milliseconds, at the cost of tens of empty polls and fetches a
    second per consumer, on the service and on Kafka, when idle."""

    fetch_max_wait_ms: int
    poll_ms: int


# The report path (reports.submitted -> cases.opened/merged -> cases.dispatched) and handlers'
# actions: picked up within about 20 ms.
PROMPT = Polling(fetch_max_wait_ms=20, poll_ms=10)
# Everything else: within about 200 ms, at a fifth of the idle cost.
RELAXED = Polling(fetch_max_wait_ms=100, poll_ms=50)


class ConsumerContext(Protocol):
    """What a subscription needs of the service that runs it (``shared.service.Service`` is one):
    a narrow view, so that the pipeline does not depend on the service that builds it."""

    name: str
    settings: Settings
    broker: KafkaBroker
    metrics: ServiceMetrics

    @property
    def pool(self) -> asyncpg.Pool: ...

    def dead_letter_event(
        self, topic: str, record: Any, meta: Meta, error_class: str, error: str
    ) -> OutgoingEvent: ...


@dataclass
class Subscription(Generic[M]):
    service: ConsumerContext
    topic: str  # logical name
    model: type[M]
    handler: BatchHandler[M]
    group: str
    idempotency_key: Callable[[M, Meta], str | None] | None = None
    on_invalid: InvalidHandler | None = None
    allow_tombstone: bool = False
    polling: Polling = RELAXED
    _in_process: InProcessQueue | None = field(default=None, init=False, repr=False)

    @property
    def consumer_name(self) -> str:
        return self.group

    def register(self) -> None:
        svc = self.service
        sub = svc.broker.subscriber(
            # made by `wangge ops setup` or the Topic Operator with their partitions and
            # configuration, never by FastStream (nor needing the right to: shared.contract.acls)
            Topic(svc.settings.topic(self.topic), declare=False),
            group_id=svc.settings.topic_prefix + self.group,
            # committed when _on_batch returns; an exception rewinds the batch (module docstring)
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            batch=True,
            max_records=svc.settings.consume_batch,
            batch_timeout_ms=self.polling.poll_ms,
            fetch_max_wait_ms=self.polling.fetch_max_wait_ms,
            title=self.group,
            description=self.model.__doc__,
            decoder=_raw_body,
            parser=_safe_headers,
        )
        sub(self._on_batch)
        self._subscriber = sub
        self._escapes = Backoff(cap=svc.settings.retry_max_backoff_s)

    def assigned_partitions(self) -> set[int]:
        """The partitions of the topic this instance consumes right now (empty before the group
        has assigned any)."""
        consumer = getattr(getattr(self, "_subscriber", None), "consumer", None)
        return {tp.partition for tp in consumer.assignment()} if consumer is not None else set()

    async def _on_batch(self, msg: KafkaMessage) -> None:
        records = msg.raw_message
        batch = records if isinstance(records, tuple) else (records,)
        # FastStream has decoded every record's headers already (after _safe_headers)
        headers = msg.batch_headers if isinstance(records, tuple) else [msg.headers]
        started = time.perf_counter()
        now = datetime.now(UTC)
        try:
            items = [self._prepare_safely(r, h, now) for r, h in zip(batch, headers, strict=True)]
            await self._apply_batch(items)
        except Exception:
            # Nothing should get here (_apply_batch isolates every failure it can): not
            # acknowledged, the batch's partitions rewound by FastStream, read again after this
            log.exception("batch not applied, reading it again", topic=self.topic, n=len(batch))
            self.service.metrics.failures.labels(self.topic, "unexpected").inc()
            await asyncio.sleep(self._escapes.next())
            raise
        self._escapes.reset()
        each = (time.perf_counter() - started) / max(1, len(items))
        self.service.metrics.observe_consumed(self.topic, each, len(items))

    def _meta(self, record: Any, headers: dict[str, str], received_at: datetime) -> Meta:
        return Meta(
            topic=self.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if isinstance(record.key, bytes) else None,
            headers=headers,
            received_at=received_at,
            trace_headers=child_headers(headers),
        )

    def _prepare_safely(self, record: Any, headers: dict[str, str], received_at: datetime) -> _Item:
        """``_prepare``, and a dead letter for the record if it raises (a bug, or input no check
        foresaw), so that one record cannot stop its batch."""
        try:
            return self._prepare(record, headers, received_at)
        except Exception as exc:
            meta = Meta(self.topic, record.partition, record.offset, None, {}, received_at)
            with _log_context(meta):
                log.exception("could not read the message, dead-lettering")
            return _Item(meta, record, dead=(type(exc).__name__, str(exc)))

    def _prepare(self, record: Any, headers: dict[str, str], received_at: datetime) -> _Item:
        """Decode and validate one record (its ``headers`` decoded): what to do with it inside
        the batch's transaction, or why it goes to the dead-letter topic."""
        problem = header_problem(record.headers or (), record.key)
        if problem is not None:
            meta = Meta(self.topic, record.partition, record.offset, None, {}, received_at)
            return _Item(meta, record, dead=("BadHeaders", problem))
        meta = self._meta(record, headers, received_at)
        value: bytes | None = record.value
        position = f"{meta.partition}:{meta.offset}"
        if value is None:
            if self.allow_tombstone:
                return _Item(meta, record, position, valid=True)
            return _Item(meta, record, dead=("EmptyMessage", "no body"))
        if len(value) > MAX_BODY_BYTES:
            return _Item(meta, record, dead=("MessageTooLarge", f"{len(value)} bytes"))
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return _Item(meta, record, dead=("NotJson", str(exc)))
        if not isinstance(obj, dict):
            return _Item(meta, record, dead=("NotJsonObject", f"JSON {type(obj).__name__}"))
        try:
            event = self.model.model_validate(obj)
        except ValidationError as exc:
            errors = field_errors(exc)
            with _log_context(meta):
                log.info("invalid message", errors=[e.model_dump() for e in errors][:10])
            if self.on_invalid is None:
                # the fields and messages, not str(exc): that would quote the input (a phone)
                reason = "; ".join(f"{e.field}: {e.message}" for e in errors)
                return _Item(meta, record, dead=("ValidationError", reason))
            return _Item(
                meta,
                record,
                meta.ce_id or f"invalid:{position}",
                invalid=(obj, errors),
            )
        key = (self.idempotency_key(event, meta) if self.idempotency_key else None) or meta.ce_id
        return _Item(meta, record, key or position, event=event, valid=True)

    def _uow(self, conn: Connection, meta: Meta) -> UnitOfWork:
        svc = self.service
        return UnitOfWork(
            conn,
            source=f"wangge/{svc.name}",
            topic_prefix=svc.settings.topic_prefix,
            trace_headers=meta.trace_headers,
        )

    async def _apply_batch(self, items: list[_Item]) -> None:
        """Apply the batch in one transaction, set-based: one inbox claim for all its messages,
        then the handler over all its valid messages, then ``on_invalid`` for each invalid one;
        their events go to the outbox with the commit.

        If a message fails permanently, the transaction is rolled back and the batch is applied
        again message by message (``_apply_careful``), so that only the failing message is
        dead-lettered; if that pass fails unexpectedly, each message in a transaction of its own
        (``_apply_isolated``). A transient failure, or a failure of that last pass, retries
        after a capped backoff: this returns only once every message is applied or
        dead-lettered."""
        svc = self.service
        backoff = Backoff(cap=svc.settings.retry_max_backoff_s)
        mode = _Mode.FAST
        while True:
            try:
                if mode is _Mode.ISOLATED:
                    dead = await self._apply_isolated(items)
                else:
                    async with svc.pool.acquire() as conn, conn.transaction():
                        if mode is _Mode.CAREFUL:
                            outgoing, dead = await self._apply_careful(conn, items)
                        else:
                            outgoing, dead = await self._apply_fast(conn, items)
                        dead = await self._dead_letters(conn, dead, outgoing)
                        await self._uow_flush(conn, outgoing)
                break
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
                delay = backoff.next()
                log.warning("transient failure, retrying", error=repr(exc), delay_s=round(delay, 2))
                svc.metrics.failures.labels(self.topic, "transient").inc()
                await asyncio.sleep(delay)
            except Exception as exc:
                if mode is _Mode.FAST:
                    log.warning(
                        "batch failed, applying it again message by message",
                        topic=self.topic,
                        messages=len(items),
                        error=repr(exc),
                    )
                    mode = _Mode.CAREFUL
                    continue
                svc.metrics.failures.labels(self.topic, "unexpected").inc()
                if mode is _Mode.CAREFUL:
                    log.exception(
                        "careful pass failed, each message in a transaction of its own",
                        topic=self.topic,
                        messages=len(items),
                    )
                    mode = _Mode.ISOLATED
                    continue
                delay = backoff.next()
                log.exception("could not apply or dead-letter a message, retrying", delay_s=delay)
                await asyncio.sleep(delay)
        for item, error_class, error in dead:
            with _log_context(item.meta):
                log.warning("dead-lettered", error_class=error_class, error=text_safe(error[:300]))
            svc.metrics.dead_letters.labels(self.topic).inc()

    async def _uow_flush(self, conn: Connection, outgoing: list[OutgoingEvent]) -> None:
        await UnitOfWork(conn, source=f"wangge/{self.service.name}", pending=outgoing).flush()

    async def _apply_isolated(self, items: list[_Item]) -> list[tuple[_Item, str, str]]:
        """Each message in a transaction of its own (claim, handler, events), and the dead
        letter of one that fails in another: the failing message is known for sure, and the
        others are committed (a retry of the batch finds them claimed). A failure to write the
        dead letter is raised: the caller waits and tries the batch again."""
        pool = self.service.pool
        written: list[tuple[_Item, str, str]] = []
        for item in items:
            dead: tuple[_Item, str, str] | None = None
            if item.dead is not None:
                dead = (item, *item.dead)
            else:
                with _log_context(item.meta):
                    try:
                        async with pool.acquire() as conn, conn.transaction():
                            await self._uow_flush(conn, await self._apply_one(conn, item))
                    except TRANSIENT_ERRORS:
                        raise
                    except Exception as exc:
                        log.exception("permanent failure, dead-lettering")
                        self.service.metrics.failures.labels(self.topic, "permanent").inc()
                        dead = (item, type(exc).__name__, str(exc))
            if dead is not None:
                async with pool.acquire() as conn, conn.transaction():
                    outgoing: list[OutgoingEvent] = []
                    written += await self._dead_letters(conn, [dead], outgoing)
                    await self._uow_flush(conn, outgoing)
        return written

    async def _claim(self, conn: Connection, keys: list[str]) -> set[str]:
        """Claim ``keys`` in the inbox for this transaction; the ones not claimed before."""
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer, message_key) SELECT $1, k FROM unnest($2::text[]) k "
            "ON CONFLICT DO NOTHING RETURNING message_key",
            self.consumer_name,
            keys,
        )
        return {r["message_key"] for r in rows}

    async def _release(self, conn: Connection, keys: list[str]) -> None:
        """Drop the inbox claims of ``keys`` (``Claimed.release``), in this transaction."""
        if keys:
            await conn.execute(
                "DELETE FROM inbox WHERE consumer = $1 AND message_key = ANY($2::text[])",
                self.consumer_name,
                keys,
            )

    async def _dead_letters(
        self,
        conn: Connection,
        dead: list[tuple[_Item, str, str]],
        outgoing: list[OutgoingEvent],
    ) -> list[tuple[_Item, str, str]]:
        """Write the dead letters of the batch to the outbox, in its transaction, each once: the
        record's position (partition and offset) is claimed in the inbox with them, so a batch
        redelivered after a crash does not dead-letter its records again. The position, not the
        message key: a message replayed from the dead-letter topic is a new record and is applied
        (``wangge dlq replay``). Returns the dead letters written now."""
        if not dead:
            return []
        keys = [f"dead:{item.meta.partition}:{item.meta.offset}" for item, _, _ in dead]
        fresh = await self._claim(conn, keys)
        written = []
        for (item, error_class, error), key in zip(dead, keys, strict=True):
            if key not in fresh:
                with _log_context(item.meta):
                    log.info("dead letter written before, not again", message_key=key)
                continue
            outgoing.append(
                self.service.dead_letter_event(
                    self.topic, item.record, item.meta, error_class, error
                )
            )
            written.append((item, error_class, error))
        return written

    async def _apply_fast(
        self, conn: Connection, items: list[_Item]
    ) -> tuple[list[OutgoingEvent], list[tuple[_Item, str, str]]]:
        dead = [(item, *item.dead) for item in items if item.dead is not None]
        fresh = await self._claim(
            conn, [item.key for item in items if item.dead is None and item.key is not None]
        )
        outgoing: list[OutgoingEvent] = []
        valid: list[Claimed[M]] = []
        invalid: list[tuple[UnitOfWork, _Item]] = []
        for item in items:
            if item.dead is not None or item.key is None:
                continue
            if item.key not in fresh:
                with _log_context(item.meta):
                    log.info("duplicate message ignored", message_key=item.key)
                continue
            fresh.discard(item.key)  # a second copy within the batch is a duplicate too
            uow = self._uow(conn, item.meta)
            if item.valid:
                valid.append(Claimed(item.event, item.meta, uow, item.key))
            else:
                invalid.append((uow, item))
        # One handler call over every valid message of the batch; then the invalid ones, which
        # change no state (they are answered with a rejection), so a few of them do not cut the
        # batch into short runs, and an invalid copy of a report can never displace the valid one
        if valid:
            await self.handler(conn, valid)
            for c in valid:
                outgoing.extend(c.uow.pending)
            await self._release(conn, [c.key for c in valid if c.released])
        for uow, item in invalid:
            await self._on_invalid(uow, item)
            outgoing.extend(uow.pending)
        return outgoing, dead

    async def _apply_careful(
        self, conn: Connection, items: list[_Item]
    ) -> tuple[list[OutgoingEvent], list[tuple[_Item, str, str]]]:
        """Each message in its own savepoint with its own inbox claim: a permanent failure rolls
        back only that message, which is dead-lettered."""
        svc = self.service
        outgoing: list[OutgoingEvent] = []
        dead: list[tuple[_Item, str, str]] = []
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
                    dead.append((item, type(exc).__name__, str(exc)))
        return outgoing, dead

    async def _apply_one(self, conn: Connection, item: _Item) -> list[OutgoingEvent]:
        """One message: its savepoint, its inbox claim, its handler."""
        assert item.key is not None
        async with conn.transaction():
            if not await self._claim(conn, [item.key]):
                log.info("duplicate message ignored", message_key=item.key)
                return []
            uow = self._uow(conn, item.meta)
            if item.valid:
                claimed = Claimed(item.event, item.meta, uow, item.key)
                await self.handler(conn, [claimed])
                await self._release(conn, [claimed.key] if claimed.released else [])
            else:
                await self._on_invalid(uow, item)
            return uow.pending

    async def apply_now(
        self,
        event: M,
        *,
        key: str | None = None,
        trace_headers: dict[str, str] | None = None,
        context: Any = None,
    ) -> Applied:
        """Apply ``event`` in-process, as if it had arrived on the topic: the same inbox claim
        (``key``, by default the subscription's idempotency key, so a copy of it that later
        arrives over Kafka is a duplicate, and the other way round), the same handler, its events
        to the outbox. For the HTTP front doors; ``Applied.duplicate`` when the key was applied
        before (nothing is done again). ``context`` rides on the ``Claimed`` the handler gets.

        Requests that arrive while a transaction is running are applied together in the next
        one (group commit: ``InProcessQueue``), as a Kafka batch is; each gets its own outcome."""
        now = datetime.now(UTC)
        meta = Meta(self.topic, -1, -1, None, {}, now, trace_headers or new_root())
        key = key or (self.idempotency_key(event, meta) if self.idempotency_key else None)
        if not key:
            raise ValueError(f"{self.topic}: an in-process message needs an idempotency key")
        if self._in_process is None:
            self._in_process = InProcessQueue(self)
        return await self._in_process.submit(_Submitted(event, meta, key, context))

    async def apply_submitted(self, batch: list[_Submitted]) -> list[Applied]:
        """One transaction for ``batch``: the inbox claims (a key claimed before, or twice in
        the batch, is a duplicate), the handler over the claimed messages, their events."""
        async with self.service.pool.acquire() as conn, conn.transaction():
            fresh = await self._claim(conn, sorted({s.key for s in batch}))
            claimed: list[Claimed[M] | None] = []
            for s in batch:
                if s.key in fresh:
                    fresh.discard(s.key)
                    uow = self._uow(conn, s.meta)
                    claimed.append(Claimed(s.event, s.meta, uow, s.key, context=s.context))
                else:
                    claimed.append(None)
            applying = [c for c in claimed if c is not None]
            if applying:
                with _log_context(applying[0].meta):
                    await self.handler(conn, applying)
                await self._release(conn, [c.key for c in applying if c.released])
            outcomes = [
                Applied(duplicate=True, events=[])
                if c is None
                else Applied(duplicate=False, events=list(c.uow.emitted))
                for c in claimed
            ]
            outgoing = [e for c in applying for e in c.uow.pending]
            await self._uow_flush(conn, outgoing)
        return outcomes

    async def _on_invalid(self, uow: UnitOfWork, item: _Item) -> None:
        assert self.on_invalid is not None and item.invalid is not None
        obj, errors = item.invalid
        with _log_context(item.meta):
            await self.on_invalid(uow, obj, errors, item.meta)


@dataclass(frozen=True)
class _Submitted:
    event: Any
    meta: Meta
    key: str
    context: Any = None


class InProcessQueue:
    """The messages HTTP requests submit to one subscription, applied in transactions of up to
    ``max_batch``: the first alone, and those that arrive meanwhile together in the next (so a
    burst costs a few commits, not one each, and nothing waits for a timer). Up to
    ``in_flight`` transactions run at once (while one waits for the database, the next batch is
    applied; they serialise where they touch the same rows, as two replicas' would). If a
    transaction fails for a reason other than a transient one, its messages are applied again
    one by one, so that only the faulty one fails; a transient failure fails them all (the
    caller answers 503)."""

    def __init__(self, sub: Subscription[Any], max_batch: int = 200, in_flight: int = 2) -> None:
        self.sub = sub
        self.max_batch = max_batch
        self.in_flight = in_flight
        self.waiting: list[tuple[_Submitted, asyncio.Future[Applied]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: _Submitted) -> Applied:
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if sum(not t.done() for t in self._tasks) < self.in_flight:
            task = asyncio.create_task(self._drain(), name=f"in-process:{self.sub.topic}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        while self.waiting:
            batch = self.waiting[: self.max_batch]
            del self.waiting[: self.max_batch]
            await self._apply(batch)

    async def _apply(self, batch: list[tuple[_Submitted, asyncio.Future[Applied]]]) -> None:
        try:
            outcomes = await self.sub.apply_submitted([item for item, _ in batch])
        except TRANSIENT_ERRORS as exc:
            for _, future in batch:
                _settle(future, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for one in batch:  # only the faulty one fails
                await self._apply([one])
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome)


def _settle(future: asyncio.Future[Applied], outcome: Applied | BaseException) -> None:
    if future.done():  # the caller went away (a client that disconnected)
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@dataclass(frozen=True)
class Applied:
    """What ``Subscription.apply_now`` did: the events the handler emitted, or nothing for a
    duplicate."""

    duplicate: bool
    events: list[Any]


class _Mode(enum.Enum):
    """How ``_apply_batch`` applies a batch: all in one transaction, set-based; one transaction
    with a savepoint per message; a transaction per message."""

    FAST = "fast"
    CAREFUL = "careful"
    ISOLATED = "isolated"


@dataclass
class _Item:
    meta: Meta
    record: Any  # the ConsumerRecord as it came (its key, value and headers' bytes)
    key: str | None = None  # the inbox key
    event: Any = None  # the validated event (None for a tombstone)
    valid: bool = False  # for the handler (a validated event or an allowed tombstone)
    invalid: tuple[Any, list[FieldError]] | None = None  # (JSON object, errors): for on_invalid
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
    would be skipped unseen): it parses text-safe copies of such records, and the message keeps
    the records as they came (``raw_message``), so that the pipeline sees them, checks their
    headers (``shared.runtime.record_bytes``) and dead-letters them byte for byte."""
    records = msg if isinstance(msg, tuple) else (msg,)
    dirty = [needs_cleaning(r.headers or ()) for r in records]
    if not any(dirty):
        return await original(msg)
    cleaned = tuple(
        dataclasses.replace(r, headers=clean_headers(r.headers or ())) if d else r
        for r, d in zip(records, dirty, strict=True)
    )
    parsed = await original(cleaned if isinstance(msg, tuple) else cleaned[0])
    parsed.raw_message = msg
    return parsed


async def _raw_body(msg: Any) -> Any:
    """Leave the body as bytes: decoding is the pipeline's job, so that bytes that are not JSON
    reach it (and its dead-letter queue) instead of failing inside FastStream."""
    return msg.body
