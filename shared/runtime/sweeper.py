"""Durable timers: a periodic sweep over deadlines that live in the database.

Each sweep runs ``fn(uow, now)`` inside one transaction with the outbox, like a message handler.
``fn`` claims due rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` and moves them past their
deadline in the same transaction, so several replicas never act on the same row twice and a
restart loses nothing (no timer lives only in memory). Returns how many rows it handled; while a
sweep handles a full batch, the next one starts at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from shared.runtime.clock import utcnow
from shared.runtime.consumer import TRANSIENT_ERRORS
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff
from shared.runtime.uow import UnitOfWork

if TYPE_CHECKING:
    import asyncpg

    from shared.runtime.settings import Settings

log = get_logger(component="sweeper")
SweepFn = Callable[[UnitOfWork, datetime], Awaitable[int]]


class SweeperContext(Protocol):
    """What a sweeper needs of the service that runs it (``shared.service.Service`` is one)."""

    name: str
    settings: Settings

    @property
    def pool(self) -> asyncpg.Pool: ...


class Sweeper:
    def __init__(
        self,
        service: SweeperContext,
        name: str,
        fn: SweepFn,
        *,
        interval_s: float,
        batch: int = 500,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.service = service
        self.name = name
        self.fn = fn
        self.interval_s = interval_s
        self.batch = batch
        self.clock = clock
        self.sweeps = 0

    async def sweep_once(self) -> int:
        svc = self.service
        async with svc.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(
                conn, source=f"wangge/{svc.name}", topic_prefix=svc.settings.topic_prefix
            )
            handled = await self.fn(uow, self.clock())
            await uow.flush()
        self.sweeps += 1
        return handled

    async def run(self) -> None:
        backoff = Backoff(cap=self.service.settings.retry_max_backoff_s)
        while True:
            try:
                handled = await self.sweep_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except TRANSIENT_ERRORS as exc:
                delay = backoff.next()
                log.warning("sweep failed, retrying", sweeper=self.name, error=repr(exc))
                await asyncio.sleep(delay)
                continue
            except Exception:
                log.exception("sweep failed", sweeper=self.name)
                handled = 0
            if handled < self.batch:
                await asyncio.sleep(self.interval_s)
