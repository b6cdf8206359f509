"""``InProcessQueue``: the group commit of HTTP submissions (pure: a fake subscription whose
transactions the test holds open and releases)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.runtime.consumer import Applied, InProcessQueue, Meta, _Submitted


class HeldSubscription:
    """Records each transaction's batch and keeps it open until the test releases it."""

    topic = "reports.submitted"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.open: list[asyncio.Event] = []
        self.fail_on: set[str] = set()

    async def apply_submitted(self, batch: list[_Submitted]) -> list[Applied]:
        keys = [s.key for s in batch]
        self.batches.append(keys)
        gate = asyncio.Event()
        self.open.append(gate)
        await gate.wait()
        if self.fail_on & set(keys):
            raise ValueError("a faulty message")
        return [Applied(duplicate=False, events=[s.key]) for s in batch]


def item(key: str) -> _Submitted:
    meta = Meta("reports.submitted", -1, -1, key, {}, datetime.now(UTC))
    return _Submitted(event=None, meta=meta, key=key)


async def until(cond: Any, timeout: float = 2.0) -> None:
    """Let the loop run until ``cond()`` holds (the queue's tasks advance on each turn)."""
    async with asyncio.timeout(timeout):
        while not cond():  # noqa: ASYNC110 - the state polled is the queue's, not an event
            await asyncio.sleep(0)


async def test_two_transactions_in_flight_and_the_rest_batched_behind_them() -> None:
    sub = HeldSubscription()
    queue = InProcessQueue(sub, in_flight=2)  # type: ignore[arg-type]
    first = asyncio.create_task(queue.submit(item("a")))
    await until(lambda: len(sub.batches) == 1)
    second = asyncio.create_task(queue.submit(item("b")))
    await until(lambda: len(sub.batches) == 2)
    assert sub.batches == [["a"], ["b"]]  # b did not wait for a's transaction
    later = [asyncio.create_task(queue.submit(item(k))) for k in "cde"]
    await until(lambda: len(queue.waiting) == 3)
    assert len(sub.batches) == 2  # no third transaction while two are open
    sub.open[0].set()
    await until(lambda: len(sub.batches) == 3)
    assert sub.batches[2] == ["c", "d", "e"]  # what waited, together
    assert (await first).events == ["a"]
    for gate in sub.open[1:]:
        gate.set()
    assert [(await t).events for t in (second, *later)] == [["b"], ["c"], ["d"], ["e"]]


async def test_nothing_is_left_waiting_after_the_drains_finish() -> None:
    sub = HeldSubscription()
    queue = InProcessQueue(sub, in_flight=2)  # type: ignore[arg-type]
    for round_ in range(3):  # submissions after every drain has returned start a new one
        task = asyncio.create_task(queue.submit(item(f"k{round_}")))
        await until(lambda n=round_ + 1: len(sub.open) == n)
        sub.open[round_].set()
        assert (await task).events == [f"k{round_}"]
    assert not queue.waiting


async def test_a_faulty_message_fails_alone() -> None:
    sub = HeldSubscription()
    sub.fail_on = {"bad"}
    queue = InProcessQueue(sub, in_flight=1)  # type: ignore[arg-type]
    head = asyncio.create_task(queue.submit(item("head")))
    await until(lambda: len(sub.batches) == 1)
    rest = {k: asyncio.create_task(queue.submit(item(k))) for k in ("ok1", "bad", "ok2")}
    await until(lambda: len(queue.waiting) == 3)
    sub.open[0].set()
    await head

    def released() -> bool:
        for gate in sub.open:
            gate.set()
        return all(t.done() for t in rest.values())

    await until(released)
    assert sub.batches[1] == ["ok1", "bad", "ok2"]  # together first, then one by one
    assert sub.batches[2:] == [["ok1"], ["bad"], ["ok2"]]
    assert (await rest["ok1"]).events == ["ok1"]
    assert (await rest["ok2"]).events == ["ok2"]
    with pytest.raises(ValueError, match="faulty"):
        await rest["bad"]
