"""Two subscriptions' batches that share cases, in opposite orders, on the real database: each
batch locks its cases in case_id order before it touches any (``handlers.case_ordered``), so
the second waits for the first instead of deadlocking with it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from devstack.testbed import Testbed
from devstack.wait import eventually
from services.feedback import store
from services.feedback.handlers import case_ordered
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.uow import UnitOfWork
from tests.feedback.helpers import new_case_id


class CaseEvent(BaseModel):
    case_id: str


def batch(conn: Any, case_ids: list[str]) -> list[Claimed[CaseEvent]]:
    out = []
    for offset, case_id in enumerate(case_ids):
        meta = Meta("cases.test", 0, offset, case_id, {}, datetime.now(UTC))
        uow = UnitOfWork(conn, source="test")
        out.append(Claimed(CaseEvent(case_id=case_id), meta, uow, f"k-{offset}"))
    return out


async def test_batches_sharing_cases_in_opposite_orders_do_not_deadlock(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    a, b = sorted([new_case_id(), new_case_id()])
    touched: dict[str, list[str]] = {"first": [], "second": []}
    first_holds = asyncio.Event()
    first_may_go = asyncio.Event()

    def toucher(name: str) -> Any:
        async def touch(uow: UnitOfWork, ev: Any, meta: Meta) -> None:
            # what every handler of feedback does with its case: its row, locked
            assert await store.get_case(uow.conn, ev.case_id, lock=True) is not None
            touched[name].append(ev.case_id)
            if name == "first" and len(touched[name]) == 1:
                first_holds.set()
                await first_may_go.wait()

        return touch

    async def run(name: str, case_ids: list[str]) -> None:
        async with svc.pool.acquire() as conn, conn.transaction():
            await case_ordered(toucher(name))(conn, batch(conn, case_ids))

    first = asyncio.create_task(run("first", [b, a]))  # b first: the order a batch brings
    async with asyncio.timeout(10):
        await first_holds.wait()
    second = asyncio.create_task(run("second", [a, b]))

    # the second batch waits for the first's locks (its placeholder inserts, here: both cases
    # are new) before touching either
    async def second_waits() -> bool:
        async with svc.pool.acquire() as conn:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        return bool(waiting)

    await eventually(second_waits, timeout=10, what="the second batch waiting on a lock")
    assert touched["second"] == []
    first_may_go.set()
    async with asyncio.timeout(20):
        await asyncio.gather(first, second)  # a deadlock would raise here
    assert touched == {"first": [b, a], "second": [a, b]}
    # both cases exist as placeholders (the cases.opened of neither was applied)
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT case_id FROM cases WHERE case_id = ANY($1::text[]) ORDER BY 1", [a, b]
        )
    assert [r["case_id"] for r in rows] == [a, b]


async def test_a_rating_batch_creates_no_case(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    unknown = new_case_id()
    seen: list[Any] = []

    async def handler(uow: UnitOfWork, ev: Any, meta: Meta) -> None:
        seen.append(await store.get_case(uow.conn, ev.case_id))

    async with svc.pool.acquire() as conn, conn.transaction():
        await case_ordered(handler, create=False)(conn, batch(conn, [unknown]))
    assert seen == [None]
