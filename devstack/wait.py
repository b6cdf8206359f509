"""Waiting on a condition with a deadline: the only way the stack and the tests synchronise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


def wait_until(
    cond: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = cond()
        if result:
            return result
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what or cond}")
        time.sleep(interval)


async def eventually(
    cond: Callable[[], Awaitable[T]], *, timeout: float = 20, interval: float = 0.05, what: str = ""
) -> T:
    """Poll the async ``cond`` until it returns a truthy value, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = await cond()
            if result:
                return result
        except AssertionError as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            raise WaitTimeout(
                f"timed out after {timeout}s waiting for {what or cond}"
                + (f": {last_exc}" if last_exc else "")
            )
        await asyncio.sleep(interval)
