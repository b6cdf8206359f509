"""A batch of ``cases.opened`` dispatched set-based (``opening.Opening``) on the real
database: loads kept current within the batch, a case already known skipped, early merges taken."""

from __future__ import annotations

from datetime import datetime

import orjson

from devstack.testbed import Testbed
from shared.contract.events import CaseOpened
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.uow import UnitOfWork
from tests.dispatch.support import case_opened, load_registry, start_dispatch


async def test_a_batch_spreads_over_handlers_and_skips_known_cases(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    await load_registry(bed)
    cases = [case_opened() for _ in range(5)]
    async with svc.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO early_merges (case_id, supporters, households, urgent) "
            "VALUES ($1, 5, NULL, false)",
            cases[4].case_id,
        )
    prefix = svc.settings.topic_prefix

    async def run(batch: list[CaseOpened]) -> list[dict[str, object]]:
        async with svc.pool.acquire() as conn, conn.transaction():
            claimed = [
                Claimed(
                    c,
                    Meta("cases.opened", 0, i, None, {}, datetime.now()),
                    UnitOfWork(conn, source="wangge/dispatch", topic_prefix=prefix),
                )
                for i, c in enumerate(batch)
            ]
            await svc.dispatch.on_opened(conn, claimed)
            return [orjson.loads(e.payload or b"") for c in claimed for e in c.uow.pending]

    first = await run([*cases[:4], cases[0]])  # the first case twice in one batch
    assert [e["case_id"] for e in first] == [c.case_id for c in cases[:4]]
    # h-0001 and h-0002 serve the grid: one batch alternates them, as one at a time would
    assert [e["handler_id"] for e in first] == ["h-0001", "h-0002", "h-0001", "h-0002"]

    second = await run([cases[1], cases[4]])  # cases[1] is known by now
    assert [e["case_id"] for e in second] == [cases[4].case_id]
    # five supporters merged before the case arrived raise it to the community (the 5+ rule)
    assert second[0]["tier"] == "community"
    async with svc.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM early_merges") == 0
        assert await conn.fetchval("SELECT count(*) FROM cases") == 5
        assert await conn.fetchval("SELECT count(*) FROM timeline") == 5
