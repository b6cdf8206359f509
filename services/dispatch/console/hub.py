"""Live boards: one build per board and change, shared by every browser watching it.

Each replica holds one PostgreSQL connection that LISTENs on ``<schema>.cases``: the trigger of
migration 010 notifies it at the commit of every statement that writes ``cases`` (any replica's:
the consumers of cases.opened, merges, reopenings, handler actions over Kafka or HTTP, the
deadline sweeps, triage), naming the districts of the changed rows. Every board of such a
district is marked changed; its one builder task reads the board again (for all its browsers,
at most once per ``min_interval_s``, so a burst of events costs one read: the rows kept since
its last read, applied to the area's live board, ``queries.LiveArea``) and wakes
its streams, which send it, each as its client asked (the whole board, or what changed since
the last it sent: ``routes``; the whole board serialised once per build) (and waits as long as
that build took before the next one, up to ``MAX_PAUSE_S``, so that a board's builds take about
half of the service's time from its consumers at most; an area read whole, the longest build,
lets them run between its parts). A board is also rebuilt every
``refresh_s`` without an event, for the cases that become due soon as time passes. After the
listening connection is lost (a failover), every board is rebuilt once it is back:
notifications sent meanwhile are not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from shared.runtime.consumer import TRANSIENT_ERRORS
from shared.runtime.db import Connection, connect
from shared.runtime.logging import get_logger
from shared.runtime.retry import Backoff

from .board import Snapshot

log = get_logger(component="dispatch-console")

Build = Callable[[], Awaitable[Snapshot]]  # one board's next build
Builder = Callable[[str], Build]  # a board's unit -> its builds (``queries.LiveArea``)
Locate = Callable[[str], Awaitable[str | None]]  # a board's unit -> its district (None: any)


MAX_PAUSE_S = 0.5  # the longest pause after a board's build


def _set(event: asyncio.Event, _conn: Any) -> None:
    event.set()


class Channel:
    """One board (a unit's), its latest snapshot and the streams waiting for the next."""

    def __init__(self, unit: str, district: str | None, build: Build, min_interval_s: float):
        self.unit = unit
        self.district = district
        self.watchers = 0
        self.version = 0
        self.latest: Snapshot | None = None
        self._rendered: dict[bool, str] = {}  # the latest as JSON, with and without buildings
        self._build = build
        self._min_interval_s = min_interval_s
        self._dirty = asyncio.Event()
        self._dirty.set()
        self._changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    def mark(self) -> None:
        self._dirty.set()

    async def run(self, refresh_s: float) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(refresh_s):
                    await self._dirty.wait()
            self._dirty.clear()
            started = time.monotonic()
            try:
                data = await self._build()
            except TRANSIENT_ERRORS as exc:
                log.warning(
                    "board not built: the database is away", unit=self.unit, error=repr(exc)
                )
                self._dirty.set()
                await asyncio.sleep(1.0)
                continue
            self.latest = data
            self._rendered = {}
            self.version += 1
            async with self._changed:
                self._changed.notify_all()
            # as long as the build took (at most MAX_PAUSE_S): a board keeps at most about half
            # of the service's time; a build longer than that is a whole read of the area,
            # which lets the consumers run between its parts (``queries.LiveArea``), so the next
            # board need not wait as long again
            took = time.monotonic() - started
            await asyncio.sleep(max(self._min_interval_s, min(took, MAX_PAUSE_S)))

    async def after(self, seen: int) -> tuple[int, Snapshot]:
        """The first board after version ``seen`` (waits for it)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.version > seen)
            assert self.latest is not None
            return self.version, self.latest

    def board_json(self, version: int, snap: Snapshot, *, buildings: bool) -> str:
        """The board of ``version`` as JSON, serialised once for every stream sending it (while
        it is the latest)."""
        if version != self.version:
            return snap.board(buildings=buildings).model_dump_json()
        if (text := self._rendered.get(buildings)) is None:
            text = self._rendered[buildings] = snap.board(buildings=buildings).model_dump_json()
        return text


class BoardHub:
    def __init__(
        self,
        dsn: str,
        schema: str,
        builder: Builder,
        locate: Locate,
        *,
        min_interval_s: float = 0.25,
        refresh_s: float = 30.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.dsn = dsn
        self.channel_name = f"{schema}.cases"
        self.builder = builder
        self.locate = locate
        self.min_interval_s = min_interval_s
        self.refresh_s = refresh_s
        self.max_backoff_s = max_backoff_s
        self.channels: dict[str, Channel] = {}
        self.listening = asyncio.Event()
        self.notifications = 0

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        self.notifications += 1
        districts = set(str(payload).split(","))
        for ch in self.channels.values():
            if "*" in districts or ch.district is None or ch.district in districts:
                ch.mark()

    def _mark_all(self) -> None:
        for ch in self.channels.values():
            ch.mark()

    async def run(self) -> None:
        """The listening connection, kept open (a background task of the service)."""
        backoff = Backoff(cap=self.max_backoff_s)
        try:
            while True:
                lost = asyncio.Event()
                conn: Connection | None = None
                try:
                    conn = c = await connect(self.dsn)
                    c.add_termination_listener(partial(_set, lost))
                    await c.add_listener(self.channel_name, self._notified)
                    self.listening.set()
                    self._mark_all()  # what changed while nobody listened
                    backoff = Backoff(cap=self.max_backoff_s)
                    await lost.wait()
                    log.warning("board notifications lost: listening again")
                except TRANSIENT_ERRORS as exc:
                    delay = backoff.next()
                    log.warning("board notifications away", error=repr(exc), delay_s=delay)
                    await asyncio.sleep(delay)
                finally:
                    self.listening.clear()
                    if conn is not None and not conn.is_closed():
                        with contextlib.suppress(Exception):
                            await conn.close(timeout=2)
        finally:
            for ch in list(self.channels.values()):
                if ch.task is not None:
                    ch.task.cancel()

    @contextlib.asynccontextmanager
    async def watch(self, unit: str) -> AsyncIterator[Channel]:
        """The board of ``unit``, kept live while the caller watches it."""
        ch = self.channels.get(unit)
        if ch is None:
            ch = Channel(unit, await self.locate(unit), self.builder(unit), self.min_interval_s)
            ch = self.channels.setdefault(unit, ch)
        if ch.task is None or ch.task.done():
            ch.task = asyncio.create_task(ch.run(self.refresh_s), name=f"board:{unit}")
        ch.watchers += 1
        try:
            yield ch
        finally:
            ch.watchers -= 1
            if ch.watchers == 0 and self.channels.get(unit) is ch:
                del self.channels[unit]
                if ch.task is not None:
                    ch.task.cancel()
