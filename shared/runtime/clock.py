"""Time, injectable: handlers and sweeps take a ``Clock`` so that tests need no waiting.

A demonstration may run the services on a ``DemoClock`` (``clock_of``: the ``WANGGE_DEMO_CLOCK_*``
settings): a week across a public holiday played in minutes, every process on the same time,
since each derives it from the same wall-clock anchor. Unset, the services run on the real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.runtime.logging import get_logger

if TYPE_CHECKING:
    from shared.runtime.settings import Settings

Clock = Callable[[], datetime]
log = get_logger(component="clock")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DemoClock:
    """``start`` until the wall-clock instant ``anchor`` (Unix seconds), then ``speed`` times as
    fast as the real time: the same in every process given the same three values."""

    start: datetime
    anchor: float
    speed: float = 1.0

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=max(0.0, time.time() - self.anchor) * self.speed)


def clock_of(settings: Settings) -> Clock:
    """The services' clock: the real time, or the demonstration's (``WANGGE_DEMO_CLOCK_START``;
    its anchor defaults to now, which only one process should rely on)."""
    if settings.demo_clock_start is None:
        return utcnow
    anchor = settings.demo_clock_anchor if settings.demo_clock_anchor is not None else time.time()
    clock = DemoClock(settings.demo_clock_start, anchor, settings.demo_clock_speed)
    log.warning(
        "running on a demonstration clock, not the real time",
        start=settings.demo_clock_start.isoformat(),
        speed=settings.demo_clock_speed,
        now=clock().isoformat(),
    )
    return clock
