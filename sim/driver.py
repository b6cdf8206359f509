"""The workload driver: offers simulated reports to ``reports.submitted`` at a fixed rate (or as
fast as the producer goes) and plays the handlers and residents: handler actions to
``handler.actions`` in answer to ``cases.dispatched``, ratings to ``feedback.submitted`` in
answer to ``feedback.requested``, each after its simulated delay times ``time_scale``. The
residents open the follow-up requests as the notifier does (``shared.contract.notify``), with
``WANGGE_NOTIFY_KEY`` (``make up`` writes it to ``.run/env``).

The reactions read only what is published after the driver starts (it seeks to the end first).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.progress import Progress

from cli.client import Publisher
from shared.contract.keys import KeyFormatError
from shared.contract.notify import NotifyKeys, SealError, open_request
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings
from sim.workload import HandlerModel, Planned, ReportFactory, ResidentModel, now_iso

log = get_logger(component="sim")
REACT_TOPICS = ("cases.dispatched", "cases.resolved", "feedback.requested")
# (logical topic, decoded JSON body, monotonic receive time)
Observer = Callable[[str, Any, float], None]


@dataclass
class RunStats:
    offered: int = 0
    elapsed_s: float = 0.0
    sent: Counter[str] = field(default_factory=Counter)  # by topic
    seen: Counter[str] = field(default_factory=Counter)  # by topic
    pending_at_end: int = 0
    send_errors: int = 0
    unopened: int = 0  # follow-up requests the notify key does not open

    @property
    def offered_rate(self) -> float:
        return self.offered / self.elapsed_s if self.elapsed_s else 0.0


@dataclass
class Driver:
    settings: Settings
    reports: ReportFactory
    handlers: HandlerModel | None = None
    residents: ResidentModel | None = None
    rate: float | None = None  # reports per second; None: as fast as possible
    duration_s: float | None = None
    count: int | None = None
    time_scale: float = 0.001  # real seconds per simulated second (as WANGGE_SLA_SCALE)
    tail_s: float = 0.0  # keep reacting this long after the last report
    observe_topics: tuple[str, ...] = ()
    observer: Observer | None = None
    on_published: Callable[[str, float], None] | None = None  # (report_id, monotonic time)
    progress: bool = True
    max_in_flight: int = 20_000
    notify_keys: NotifyKeys | None = None  # default: the settings' WANGGE_NOTIFY_KEY
    stats: RunStats = field(default_factory=RunStats)
    _heap: list[tuple[float, int, Planned]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _seen_keys: set[tuple[Any, ...]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.count is None and self.duration_s is None:
            raise ValueError("give a count of reports or a duration")
        if self.residents is not None and self.notify_keys is None:
            key = self.settings.notify_key
            try:
                self.notify_keys = NotifyKeys.parse(key.get_secret_value() if key else None)
            except KeyFormatError as exc:
                raise ValueError(
                    f"the simulated residents open the follow-up requests with the notifier's "
                    f"key: {exc}"
                ) from None

    @property
    def reacting(self) -> bool:
        return self.handlers is not None or self.residents is not None

    async def run(self) -> RunStats:
        topics = tuple(dict.fromkeys((*REACT_TOPICS, *self.observe_topics)))
        listen = self.reacting or bool(self.observe_topics)
        consumer = await self._consumer(topics) if listen else None
        try:
            async with Publisher(self.settings, source="wangge/sim") as pub:
                reader = (
                    asyncio.create_task(self._read(consumer, pub)) if consumer is not None else None
                )
                sender = asyncio.create_task(self._send_due(pub)) if self.reacting else None
                try:
                    await self._offer(pub)
                    if self.tail_s > 0:
                        await asyncio.sleep(self.tail_s)  # the tail of the run: keep reacting
                finally:
                    for task in (reader, sender):
                        if task is not None:
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
                await pub.producer.flush()
        finally:
            if consumer is not None:
                await consumer.stop()
        self.stats.pending_at_end = len(self._heap)
        return self.stats

    async def _consumer(self, topics: tuple[str, ...]) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            **client_security_kwargs(self.settings),
        )
        await consumer.start()
        await consumer._client.force_metadata_update()
        parts = [
            TopicPartition(self.settings.topic(t), p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(self.settings.topic(t)) or ())
        ]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the positions now, before the first report goes out
            await consumer.position(tp)
        return consumer

    # --- offering reports ----------------------------------------------------------------------

    def _total(self) -> int | None:
        if self.count is not None:
            return self.count
        if self.rate and self.duration_s:
            return int(self.rate * self.duration_s)
        return None

    async def _offer(self, pub: Publisher) -> None:
        total = self._total()
        futures: list[asyncio.Future[Any]] = []
        start = time.monotonic()
        end = start + self.duration_s if self.duration_s else None
        with Progress(transient=True, disable=not self.progress) as bar:
            task = bar.add_task(
                f"offering reports at {self.rate or 'max'}/s",
                total=total if total is not None else self.duration_s,
            )
            for i in itertools.count():
                if total is not None and i >= total:
                    break
                now = time.monotonic()
                if end is not None and now >= end:
                    break
                if self.rate:
                    due = start + i / self.rate
                    if due > now:
                        await asyncio.sleep(due - now)  # pacing, not synchronisation
                key, body = self.reports.next()
                fut = await pub.send(
                    "reports.submitted", orjson.dumps(body), key=key, subject=None, wait=False
                )
                if self.on_published is not None:
                    self.on_published(body["report_id"], time.monotonic())
                futures.append(fut)
                self.stats.offered += 1
                if len(futures) >= self.max_in_flight:
                    await self._settle(futures)
                if i % 100 == 0:
                    bar.update(
                        task,
                        completed=i if total is not None else time.monotonic() - start,
                    )
            await self._settle(futures)
        self.stats.sent["reports.submitted"] += self.stats.offered
        self.stats.elapsed_s = time.monotonic() - start

    async def _settle(self, futures: list[asyncio.Future[Any]]) -> None:
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self.stats.send_errors += len(errors)
            log.warning("reports not sent", errors=len(errors), first=repr(errors[0]))
        futures.clear()

    # --- reacting --------------------------------------------------------------------------------

    async def _read(self, consumer: AIOKafkaConsumer, pub: Publisher) -> None:
        prefix = len(self.settings.topic_prefix)
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=2000)
            received = time.monotonic()
            for tp, records in batch.items():
                topic = tp.topic[prefix:]
                for r in records:
                    if r.value is None:
                        continue
                    body = orjson.loads(r.value)
                    self.stats.seen[topic] += 1
                    if self.observer is not None and topic in self.observe_topics:
                        self.observer(topic, body, received)
                    self._react(topic, body, received)

    def _react(self, topic: str, body: dict[str, Any], now: float) -> None:
        plans: list[Planned] = []
        if topic == "cases.dispatched" and self.handlers is not None:
            key: tuple[Any, ...] = (topic, body["case_id"], body.get("attempt"), body["unit"])
            if key not in self._seen_keys:
                self._seen_keys.add(key)
                plans = self.handlers.react(body)
        elif topic == "cases.resolved" and self.handlers is not None:
            key = (topic, body["case_id"], body.get("resolved_at"))
            if key not in self._seen_keys:
                self._seen_keys.add(key)
                plans = self.handlers.verify(body)
        elif topic == "feedback.requested" and self.residents is not None:
            try:
                token = open_request(body, self.notify_keys).rating_token
            except SealError as exc:
                self.stats.unopened += 1
                log.warning("a follow-up request does not open", error=str(exc))
                return
            key = (topic, token)  # a request published as v1 and v2 is answered once
            if key not in self._seen_keys:
                self._seen_keys.add(key)
                plans = self.residents.react({**body, "rating_token": token})
        for p in plans:
            heapq.heappush(self._heap, (now + p.delay_s * self.time_scale, next(self._seq), p))

    def _count_error(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.stats.send_errors += 1

    async def _send_due(self, pub: Publisher) -> None:
        while True:
            now = time.monotonic()
            while self._heap and self._heap[0][0] <= now:
                _, _, p = heapq.heappop(self._heap)
                # wait=False: one key's messages keep their order (idempotent producer)
                fut = await pub.send(
                    p.topic, {**p.body, "at": now_iso()}, key=p.key, subject=p.key, wait=False
                )
                fut.add_done_callback(self._count_error)
                self.stats.sent[p.topic] += 1
            wait = self._heap[0][0] - now if self._heap else 0.05
            await asyncio.sleep(min(max(wait, 0.005), 0.05))  # a timer wheel's tick
