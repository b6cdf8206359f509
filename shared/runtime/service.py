"""The runtime every service shares: broker, pool, migrations, outbox relay, HTTP, lifecycle.

A service module builds a ``Service``, registers its subscriptions and HTTP routes, and is started
either in-process (``await service.start()``, as the tests do) or under uvicorn by ``run`` (as
``python -m services.<name>`` does): on SIGTERM the message in hand finishes, its offset is
committed, background tasks stop, and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from shared.runtime.consumer import (
    PROMPT,
    RELAXED,
    TRANSIENT_ERRORS,
    BatchHandler,
    Handler,
    InvalidHandler,
    Meta,
    Subscription,
    one_by_one,
)
from shared.runtime.db import KIT_MIGRATIONS, connect, create_pool, migrate
from shared.runtime.http import create_app
from shared.runtime.identity import TokenVerifier
from shared.runtime.kafka import create_broker, kafka_reachable
from shared.runtime.logging import configure_logging, get_logger
from shared.runtime.metrics import ServiceMetrics
from shared.runtime.outbox import OutboxRelay
from shared.runtime.producer import Producer
from shared.runtime.record_bytes import encode_raw, text_safe
from shared.runtime.retry import Backoff
from shared.runtime.settings import ConfigurationError, Settings
from shared.runtime.sweeper import Sweeper, SweepFn
from shared.runtime.uow import OutgoingEvent, UnitOfWork

M = TypeVar("M", bound=BaseModel)
log = get_logger(component="service")
STOP_TIMEOUT_S = 10.0  # how long a stop waits for the background tasks it cancelled


class Service:
    def __init__(self, name: str, settings: Settings, migrations: Path) -> None:
        self.name = name
        self.schema = name
        self.settings = settings
        self.migrations = migrations
        self.broker = create_broker(settings, name)  # consumes; publishing goes through:
        self.producer = Producer(settings, f"wangge-{name}")
        self.metrics = ServiceMetrics(name)
        self.verifier = TokenVerifier(settings)
        self.app = create_app(name, _version(), self._lifespan)
        self.app.state.service = self
        self.app.state.verifier = self.verifier
        self.subscriptions: list[Subscription[Any]] = []
        self._pool: asyncpg.Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.relay = OutboxRelay(
            dsn=self.dsn,
            schema=self.schema,
            producer=self.producer,
            poll_s=settings.outbox_poll_s,
            max_backoff_s=settings.retry_max_backoff_s,
            on_published=self._count_published,
            on_parked=self.metrics.outbox_parked.inc,
        )
        self.background(self.relay.run)
        self.metrics.on_scrape(self._outbox_backlog)
        self.inbox_pruner = self.sweeper(
            "inbox-prune", self._prune_inbox, interval_s=600, batch=10_000
        )
        self._started = False
        self._add_ops_routes()

    @property
    def dsn(self) -> str:
        return self.settings.database_url.get_secret_value()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name}: not started")
        return self._pool

    # --- wiring -------------------------------------------------------------------------------

    def subscribe(
        self,
        topic: str,
        model: type[M],
        *,
        group: str | None = None,
        idempotency_key: Callable[[M, Meta], str | None] | None = None,
        on_invalid: InvalidHandler | None = None,
        allow_tombstone: bool = False,
        prompt: bool = False,
    ) -> Callable[[Handler[M]], Handler[M]]:
        """Register a per-message ``handler`` for a logical topic, in consumer group
        ``wangge-<service>.<topic>`` (one group per subscription, so rebalances stay local).
        ``prompt``: a record is picked up within about 20 ms instead of 200 ms, for the topics
        whose latency residents and handlers see (``shared.consumer.Polling``)."""

        def deco(handler: Handler[M]) -> Handler[M]:
            self.subscribe_batch(
                topic,
                model,
                group=group,
                idempotency_key=idempotency_key,
                on_invalid=on_invalid,
                allow_tombstone=allow_tombstone,
                prompt=prompt,
            )(one_by_one(handler))
            return handler

        return deco

    def subscribe_batch(
        self,
        topic: str,
        model: type[M],
        *,
        group: str | None = None,
        idempotency_key: Callable[[M, Meta], str | None] | None = None,
        on_invalid: InvalidHandler | None = None,
        allow_tombstone: bool = False,
        prompt: bool = False,
    ) -> Callable[[BatchHandler[M]], BatchHandler[M]]:
        """Like ``subscribe``, for a handler that takes the claimed messages of a batch at once
        (``shared.consumer.BatchHandler``), to do its SQL set-based."""

        def deco(handler: BatchHandler[M]) -> BatchHandler[M]:
            sub = Subscription(
                service=self,
                topic=topic,
                model=model,
                handler=handler,
                group=group or f"wangge-{self.name}.{topic}",
                idempotency_key=idempotency_key,
                on_invalid=on_invalid,
                allow_tombstone=allow_tombstone,
                polling=PROMPT if prompt else RELAXED,
            )
            sub.register()
            self.subscriptions.append(sub)
            return handler

        return deco

    def subscription(self, topic: str) -> Subscription[Any]:
        """The subscription of a logical topic (``Subscription.apply_now`` applies a message
        in-process, for the HTTP side)."""
        for sub in self.subscriptions:
            if sub.topic == topic:
                return sub
        raise KeyError(f"{self.name} does not subscribe to {topic}")

    def background(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A long-running task started after the broker and cancelled at shutdown."""
        self._background.append(fn)

    def sweeper(
        self, name: str, fn: SweepFn, *, interval_s: float | None = None, batch: int = 500
    ) -> Sweeper:
        """A durable-timer sweep (see ``shared.runtime.sweeper``) run every
        ``WANGGE_SWEEP_INTERVAL_S``."""
        sw = Sweeper(
            self, name, fn, interval_s=interval_s or self.settings.sweep_interval_s, batch=batch
        )
        self.background(sw.run)
        return sw

    async def _prune_inbox(self, uow: UnitOfWork, now: datetime) -> int:
        """Forget applied message keys older than ``WANGGE_INBOX_RETENTION`` (longer than any
        topic's retention, so a redelivered message is still recognised)."""
        deleted: str = await uow.conn.execute(
            "DELETE FROM inbox WHERE ctid = ANY(ARRAY(SELECT ctid FROM inbox "
            "WHERE processed_at < $1 LIMIT 10000))",
            now - self.settings.inbox_retention,
        )
        return int(deleted.split()[-1])

    def _add_ops_routes(self) -> None:
        @self.app.get("/healthz", tags=["ops"], response_model=Health)
        async def healthz() -> Health:
            """The process answers (liveness)."""
            return Health(status="ok", service=self.name)

        @self.app.get(
            "/readyz",
            tags=["ops"],
            response_model=Readiness,
            responses={503: {"model": Readiness, "description": "Not ready"}},
        )
        async def readyz() -> Any:
            """Started, and both PostgreSQL and Kafka answer (readiness); 503 otherwise."""
            checks = await self.readiness()
            ready = Readiness(ready=all(checks.values()), checks=checks)
            if ready.ready:
                return ready
            return JSONResponse(ready.model_dump(), status_code=503)

        @self.app.get(
            "/metrics",
            tags=["ops"],
            response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        )
        async def metrics() -> PlainTextResponse:
            """Prometheus text exposition."""
            await self.metrics.refresh()
            return PlainTextResponse(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def _outbox_backlog(self) -> None:
        if self._pool is not None:
            backlog = await self._pool.fetchval("SELECT count(*) FROM outbox")
            self.metrics.outbox_backlog.set(backlog)

    def _count_published(self, topic: str, count: int) -> None:
        prefix = self.settings.topic_prefix
        self.metrics.observe_published(topic.removeprefix(prefix) if prefix else topic, count)

    async def readiness(self) -> dict[str, bool]:
        db_ok = False
        if self._pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    db_ok = await self._pool.fetchval("SELECT 1") == 1
        kafka_ok = False
        if self._started:
            with contextlib.suppress(Exception):
                kafka_ok = bool(await self.broker.ping(timeout=2))
        return {"started": self._started, "database": db_ok, "kafka": kafka_ok}

    # --- dead letters -------------------------------------------------------------------------

    def dead_letter_event(
        self, topic: str, record: Any, meta: Meta, error_class: str, error: str
    ) -> OutgoingEvent:
        """The dead letter of ``record``, a message of ``topic``: its original key, value and
        headers byte for byte on ``<topic>.dlq`` (``shared.runtime.record_bytes``), then ``dlq_*``
        headers saying why and where from. The consumer pipeline writes it to the outbox in the
        batch's transaction (``shared.runtime.consumer``)."""
        original = list(record.headers or ())
        headers = {
            "dlq_error_class": text_safe(error_class),
            "dlq_error": text_safe(error[:1000]),
            "dlq_original_topic": self.settings.topic(topic),
            "dlq_original_partition": str(meta.partition),
            "dlq_original_offset": str(meta.offset),
            "dlq_service": self.name,
            "dlq_time": datetime.now(UTC).isoformat(),
        }
        trace = meta.trace_headers.get("traceparent")
        if trace and not any(name == "traceparent" for name, _ in original):
            headers["traceparent"] = trace
        if meta.key is not None:
            headers["dlq_original_key"] = text_safe(meta.key[:256])
        return OutgoingEvent(
            self.settings.topic(f"{topic}.dlq"),
            None,
            headers,
            record.value,
            raw=encode_raw(record.key, original),
        )

    # --- lifecycle ----------------------------------------------------------------------------

    async def open_resources(self) -> None:
        """Migrate and open the pool, then make sure Kafka answers; while either is away (a
        restart, a failover), wait with capped backoff instead of exiting."""
        await self._until_available("database", self._open_database)
        await self._until_available("kafka", partial(kafka_reachable, self.settings))

    async def _until_available(self, what: str, attempt: Callable[[], Awaitable[object]]) -> None:
        backoff = Backoff(cap=self.settings.retry_max_backoff_s)
        while True:
            try:
                if await attempt() is not False:
                    return
                error = "no answer"
            except TRANSIENT_ERRORS as exc:
                error = repr(exc)
            delay = backoff.next()
            log.warning("waiting for a dependency", dependency=what, error=error, delay_s=delay)
            await asyncio.sleep(delay)

    async def _open_database(self) -> None:
        conn = await connect(self.dsn)
        try:
            applied = await migrate(
                conn, self.schema, {"shared": KIT_MIGRATIONS, self.name: self.migrations}
            )
        finally:
            await conn.close()
        if applied:
            log.info("migrations applied", files=applied)
        self._pool = await create_pool(self.dsn, self.schema, max_size=self.settings.db_pool_max)

    async def start_background(self) -> None:
        self._started = True
        for fn in self._background:
            self._tasks.append(asyncio.create_task(fn(), name=f"{self.name}:{fn.__name__}"))

    async def stop_background(self) -> None:
        self._started = False
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error(
                        "background task failed", task=task.get_name(), exc_info=task.exception()
                    )
            for task in pending:  # a task that ignores its cancel must not hang the shutdown
                log.error("background task did not stop", task=task.get_name())
        self._tasks.clear()

    async def close_resources(self) -> None:
        await self.producer.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def start(self) -> None:
        """Start in-process: migrations, pool, broker and subscribers, background tasks."""
        try:
            await self.open_resources()
            await self.broker.start()
            await self.start_background()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop in the same order as a SIGTERM does: background tasks, consumers (the message in
        hand finishes and is committed), then the pool."""
        await self.stop_background()
        await self.broker.stop()
        await self.close_resources()

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        """uvicorn's lifespan: start as ``start`` does; at SIGTERM, stop as ``stop`` does."""
        if not self.verifier.configured:
            log.warning(
                "no token key configured: every endpoint that needs a caller answers 401",
                settings="WANGGE_AUTH_JWT_SECRET, WANGGE_AUTH_JWT_PUBLIC_KEY or "
                "WANGGE_AUTH_JWKS_URL",
            )
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def asgi(self) -> FastAPI:
        return self.app


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wangge")
    except PackageNotFoundError:
        return "0.0.0"


def run(factory: Callable[[Settings], Service]) -> None:
    """Entry point of ``python -m services.<name>``: uvicorn with uvloop, JSON logs."""
    import uvicorn

    settings = Settings()
    try:
        service = factory(settings)
    except ConfigurationError as exc:  # a bad setting: one log line, no traceback, exit 2
        configure_logging(_service_name(factory), settings.log_level, once=True)
        log.error("cannot start: a setting is wrong", error=str(exc))
        raise SystemExit(2) from None
    configure_logging(service.name, settings.log_level, once=True)
    uvicorn.run(
        service.asgi(),
        host=settings.http_host,
        port=settings.http_port,
        lifespan="on",
        log_config=None,
        access_log=False,
        loop="uvloop",
        timeout_graceful_shutdown=30,
    )


def _service_name(factory: Callable[[Settings], Service]) -> str:
    """``intake`` for ``services.intake.app.create_service`` (before the service exists)."""
    parts = getattr(factory, "__module__", "").split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "services" else "wangge"
