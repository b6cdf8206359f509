"""Batches of claimed case events built by hand, for the tests of batch handlers on the real
database (``shared.runtime.consumer.Claimed``: each message with its own unit of work)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from devstack.wait import eventually
from shared.runtime.consumer import BatchHandler, Claimed, Handler, Meta
from shared.runtime.uow import UnitOfWork


class CaseEvent(BaseModel):
    case_id: str


def claimed(conn: Any, case_ids: list[str]) -> list[Claimed[CaseEvent]]:
    """A batch of one event per case id, in that order, on ``conn``'s transaction."""
    out = []
    for offset, case_id in enumerate(case_ids):
        meta = Meta("cases.test", 0, offset, case_id, {}, datetime.now(UTC))
        uow = UnitOfWork(conn, source="test")
        out.append(Claimed(CaseEvent(case_id=case_id), meta, uow, f"k-{offset}"))
    return out


async def lock_waiters(conn: Any) -> int:
    """How many other sessions of the database wait on a lock now."""
    n: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    return n


Touch = Callable[[UnitOfWork, str], Awaitable[None]]


async def opposite_orders(
    pool: Any, ordered: Callable[[Handler[Any]], BatchHandler[Any]], a: str, b: str, touch: Touch
) -> dict[str, list[str]]:
    """Two batches of the cases ``a`` and ``b`` in opposite orders, each its own connection and
    transaction through ``ordered(handler)``, ``touch`` doing to each case what the service's
    handlers do: the first ([b, a]) pauses after its first case, holding what it took; the
    second ([a, b]) must then wait on a lock before it touches either (asserted); then both
    finish (a deadlock would raise). Returns the order in which each touched its cases."""
    touched: dict[str, list[str]] = {"first": [], "second": []}
    first_holds = asyncio.Event()
    first_may_go = asyncio.Event()

    def toucher(name: str) -> Handler[Any]:
        async def handle(uow: UnitOfWork, ev: Any, meta: Meta) -> None:
            await touch(uow, ev.case_id)
            touched[name].append(ev.case_id)
            if name == "first" and len(touched[name]) == 1:
                first_holds.set()
                await first_may_go.wait()

        return handle

    async def run(name: str, case_ids: list[str]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await ordered(toucher(name))(conn, claimed(conn, case_ids))

    first = asyncio.create_task(run("first", [b, a]))
    async with asyncio.timeout(10):
        await first_holds.wait()
    second = asyncio.create_task(run("second", [a, b]))

    async def second_waits() -> bool:
        async with pool.acquire() as conn:
            return await lock_waiters(conn) > 0

    await eventually(second_waits, timeout=10, what="the second batch waiting on a lock")
    assert touched["second"] == []
    first_may_go.set()
    async with asyncio.timeout(20):
        await asyncio.gather(first, second)
    return touched
