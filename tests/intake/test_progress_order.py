"""Intake's Open311 status subscriptions (one consumer and transaction per topic: dispatched,
accepted, resolved, ...) take their batch's progress locks first, in one order
(``open311.store.lock_progress`` through ``locked_first``, as ``app`` wires them): two batches of
the same cases in opposite orders, on the real database, the second waits for the first instead
of deadlocking with it over ``case_progress``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from devstack.testbed import Testbed
from services.intake.open311 import store
from shared.runtime.consumer import BatchHandler, Handler, locked_first
from shared.runtime.uow import UnitOfWork
from tests.batches import opposite_orders


def ordered(handler: Handler[Any]) -> BatchHandler[Any]:
    return locked_first(store.lock_progress, lambda e: e.case_id, handler)


async def test_status_batches_in_opposite_orders_wait_instead_of_deadlocking(
    bed: Testbed,
) -> None:
    svc = await bed.start("intake")
    a, b = sorted(f"c-{uuid.uuid4().hex[:10]}" for _ in range(2))

    async def touch(uow: UnitOfWork, case_id: str) -> None:
        await store.accepted(uow.conn, [(case_id, datetime.now(UTC))])  # as on_accepted does

    touched = await opposite_orders(svc.pool, ordered, a, b, touch)
    assert touched == {"first": [b, a], "second": [a, b]}
