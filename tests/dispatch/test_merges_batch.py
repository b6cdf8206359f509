"""A batch of ``cases.merged`` applied set-based (``Merges.on_merged_batch``) on the real database
does what the same merges do one at a time (``Merges.on_merged``): facts and timeline, a merge
that raises the tier redispatching the case in the middle of the batch, early merges kept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from devstack.testbed import Testbed
from shared.contract.events import CaseMerged, CaseOpened
from shared.runtime.consumer import Claimed
from tests.dispatch.support import (
    DispatchService,
    apply_batch,
    case_opened,
    load_registry,
    start_dispatch,
)

Apply = Callable[[Any, list[Claimed[Any]]], Awaitable[None]]


def merged(case_id: str, n: int, **extra: Any) -> CaseMerged:
    return CaseMerged(
        case_id=case_id,
        report_id=f"r-{case_id}-{n}",
        source="app",
        merged_at=datetime.now(UTC),
        supporter_count=n,
        reporter_ref=f"ref-{n}",
        **extra,
    )


async def scenario(svc: DispatchService, tag: str, merge: Apply) -> dict[str, Any]:
    """Two dispatched cases and one dispatch has not seen; merges into all three, the fourth
    reaching the 5-supporter rule; what ``merge`` made of it, with case ids made comparable."""
    a, b = case_opened(f"a-{tag}"), case_opened(f"b-{tag}")

    async def opened(conn: Any, claimed: list[Claimed[CaseOpened]]) -> None:
        await svc.dispatch.on_opened(conn, claimed)

    await apply_batch(svc, opened, [a, b], "cases.opened")
    c = f"c-{tag}"
    batch = [
        merged(a.case_id, 2),
        merged(b.case_id, 3, households_affected=8),
        merged(b.case_id, 2),  # an older count arriving late: the case keeps 3
        merged(c, 3, urgent=True),
        merged(a.case_id, 5),  # the 5+ rule: to the community, redispatched
        merged(a.case_id, 6),  # after the redispatch, in the same batch
        merged(c, 4),
    ]
    published = await apply_batch(svc, merge, batch, "cases.merged")
    rows = await svc.pool.fetch(
        "SELECT case_id, tier, unit, state, attempt, supporters, households, urgent FROM cases "
        "WHERE case_id = ANY($1::text[]) ORDER BY case_id",
        [a.case_id, b.case_id],
    )
    timeline = await svc.pool.fetch(
        "SELECT case_id, event, tier, unit, detail FROM timeline "
        "WHERE case_id = ANY($1::text[]) ORDER BY id",
        [a.case_id, b.case_id],
    )
    early = await svc.pool.fetchrow(
        "SELECT supporters, households, urgent FROM early_merges WHERE case_id = $1", c
    )

    def plain(value: Any) -> Any:
        text = orjson.dumps(value, default=str).decode()
        return orjson.loads(text.replace(f"-{tag}", "-X"))

    return {
        "cases": plain([dict(r) for r in rows]),
        "timeline": plain([dict(r) for r in timeline]),
        "early": dict(early) if early else None,
        "published": plain(
            [
                (
                    t,
                    {
                        k: v
                        for k, v in p.items()
                        if k.endswith("_id") or k in ("tier", "attempt", "reason")
                    },
                )
                for t, p in published
            ]
        ),
    }


async def test_a_batch_of_merges_does_what_one_at_a_time_does(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    await load_registry(bed)

    async def batch(conn: Any, claimed: list[Claimed[CaseMerged]]) -> None:
        await svc.dispatch.on_merged_batch(conn, claimed)

    async def one_at_a_time(conn: Any, claimed: list[Claimed[CaseMerged]]) -> None:
        for c in claimed:
            await svc.dispatch.on_merged(c.uow, c.event, c.meta)

    got = await scenario(svc, "batch", batch)
    want = await scenario(svc, "single", one_at_a_time)
    assert got == want

    a, b = got["cases"]
    assert (a["tier"], a["attempt"], a["supporters"]) == ("community", 2, 6)
    assert (b["tier"], b["supporters"], b["households"]) == ("grid", 3, 8)
    assert got["early"] == {"supporters": 4, "households": None, "urgent": True}
    events = [(t["case_id"], t["event"]) for t in got["timeline"]]
    assert [e for cid, e in events if cid == "a-X"][1:] == [
        "merged",
        "merged",
        "rules_raised",
        "merged",
    ]
    assert [p["tier"] for t, p in got["published"] if t == "cases.dispatched"] == ["community"]
