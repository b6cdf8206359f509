"""The outbox relay stops when it is cancelled, even if a NOTIFY wakes it at the same moment.

On Python 3.11, ``asyncio.wait_for`` returns the inner result and drops a cancellation that arrives
in the same loop step as the inner future completes; the relay then kept running and a service's
shutdown (or a test's teardown) waited for it forever. Pure asyncio, no broker needed."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from shared.outbox import OutboxRelay
from shared.producer import Producer


async def test_a_cancel_that_coincides_with_a_wake_up_is_not_lost() -> None:
    relay = OutboxRelay(dsn="unused", schema="unused", producer=cast(Producer, None), poll_s=60)
    waiting = asyncio.create_task(relay._wait())
    for _ in range(3):  # a few loop steps: the relay runs until it blocks on the event
        await asyncio.sleep(0)
    assert relay._wake._waiters, "the relay should be waiting for a NOTIFY"
    relay._notified()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await waiting
