"""Two subscriptions' batches that share cases, in opposite orders, on the real database: each
batch locks its cases in case_id order before it touches any (``handlers.case_ordered``), so
the second waits for the first instead of deadlocking with it."""

from __future__ import annotations

from typing import Any

from devstack.testbed import Testbed
from services.feedback import store
from services.feedback.handlers import case_ordered
from shared.runtime.consumer import Meta
from shared.runtime.uow import UnitOfWork
from tests.batches import claimed, opposite_orders
from tests.feedback.helpers import new_case_id


async def test_batches_sharing_cases_in_opposite_orders_do_not_deadlock(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    a, b = sorted([new_case_id(), new_case_id()])

    async def touch(uow: UnitOfWork, case_id: str) -> None:
        # what every handler of feedback does with its case: its row, locked
        assert await store.get_case(uow.conn, case_id, lock=True) is not None

    # the second batch waits for the first's locks (its placeholder inserts, here: both cases
    # are new) before touching either
    touched = await opposite_orders(svc.pool, case_ordered, a, b, touch)
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
        await case_ordered(handler, create=False)(conn, claimed(conn, [unknown]))
    assert seen == [None]
