"""The rating window on the real broker and database: nobody rates -> closed as ``unrated`` by
the durable timer (two replicas, each case closed once); the expired token is then refused."""

from __future__ import annotations

from datetime import datetime, timedelta

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.service import Service
from tests.feedback.helpers import (
    new_case_id,
    of_case,
    opened,
    rating,
    resolved,
    send,
    token_of,
    wait_n,
)


async def start_fast(bed: Testbed) -> Service:
    """WANGGE_FEEDBACK_WINDOW=4s scaled by WANGGE_SLA_SCALE=0.5: a 2-second rating window."""
    return await bed.start(
        "feedback",
        WANGGE_FEEDBACK_WINDOW=4,
        WANGGE_SLA_SCALE=0.5,
        WANGGE_SWEEP_INTERVAL_S=0.2,
    )


async def test_unrated_cases_close_once_and_expired_tokens_are_refused(bed: Testbed) -> None:
    first = await start_fast(bed)
    await start_fast(bed)
    cases = [new_case_id() for _ in range(3)]
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(
            bed.settings(), "feedback.requested", "feedback.rejected", "cases.closed"
        ) as reader,
    ):
        for c in cases:
            await send(pub, "cases.opened", opened(c))
            await send(pub, "cases.resolved", resolved(c))
        requests = {c: (await wait_n(reader, "feedback.requested", c, 1))[0] for c in cases}
        for req in requests.values():
            issued = await first.pool.fetchval(
                "SELECT requested_at FROM feedback_requests WHERE case_id = $1", req["case_id"]
            )
            window = datetime.fromisoformat(req["expires_at"]) - issued
            assert timedelta(seconds=1.5) < window <= timedelta(seconds=2)  # 4s * 0.5

        for c in cases:
            closed = await wait_n(reader, "cases.closed", c, 1, timeout=30)
            assert closed[0]["outcome"] == "unrated"

        late = cases[0]
        await send(pub, "feedback.submitted", rating(late, token_of(requests[late])))
        assert (await wait_n(reader, "feedback.rejected", late, 1))[0]["reason"] == (
            "token expired"
        )

        async def settled() -> bool:
            states = await first.pool.fetch(
                "SELECT state, outcome FROM cases WHERE case_id = ANY($1::text[])", cases
            )
            backlog = sum(
                [await s.pool.fetchval("SELECT count(*) FROM outbox") for s in bed.running]
            )
            return backlog == 0 and [tuple(r) for r in states] == [("closed", "unrated")] * 3

        await eventually(settled, what="every case closed and every outbox relayed")
        await reader.read_to_end()
        assert [len(of_case(reader, "cases.closed", c)) for c in cases] == [1, 1, 1]
        assert await first.pool.fetchval("SELECT count(*) FROM ratings") == 0
