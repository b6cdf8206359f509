"""A batch of handler actions applied set-based (``Actions.on_actions``) on the real database does
what the same actions do one batch each (``Actions.on_action``): each action decided on its case
as the actions before it in the batch left it (accept then resolve in one batch), a moving
action (escalate) among them, refusals (an unknown case, a second accept, a resolve before any
accept by a stranger) recorded and published; the same rows, timeline, outcomes and events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from devstack.testbed import Testbed
from shared.contract.events import ActionKind, CaseOpened, HandlerAction
from shared.runtime.consumer import Claimed
from tests.dispatch.support import (
    DispatchService,
    apply_batch,
    case_opened,
    load_registry,
    start_dispatch,
)


def act(case_id: str, handler_id: str, kind: ActionKind, n: int, **extra: Any) -> HandlerAction:
    return HandlerAction(
        action_id=f"act-{case_id}-{n}",
        case_id=case_id,
        handler_id=handler_id,
        action=kind,
        at=datetime.now(UTC),
        **extra,
    )


async def scenario(svc: DispatchService, tag: str, batched: bool) -> dict[str, Any]:
    a, b, c = (case_opened(f"{x}-{tag}") for x in "abc")

    async def opened(conn: Any, claimed: list[Claimed[CaseOpened]]) -> None:
        await svc.dispatch.on_opened(conn, claimed)

    await apply_batch(svc, opened, [a, b, c], "cases.opened")
    ids = [a.case_id, b.case_id, c.case_id]
    rows = await svc.pool.fetch(
        "SELECT case_id, handler_id FROM cases WHERE case_id = ANY($1::text[])", ids
    )
    handler = {r["case_id"]: r["handler_id"] for r in rows}
    assert all(handler.values())  # dispatched to a grid worker each
    ha, hb, hc = (handler[x] for x in ids)
    actions = [
        act(a.case_id, ha, "accept", 1),
        act(b.case_id, hb, "accept", 1),
        act(a.case_id, ha, "resolve", 2, note="已清理"),  # on a as the accept left it
        act(a.case_id, ha, "accept", 3),  # refused: resolved already
        act(b.case_id, hb, "escalate", 2, note="超出网格处置能力"),  # moving: to the community
        act(c.case_id, "h-nobody", "resolve", 1, note="已处理"),  # refused: an unknown handler
        act(f"none-{tag}", hc, "accept", 1),  # refused: an unknown case
        act(c.case_id, hc, "progress", 2),  # refused: not accepted yet
        act(c.case_id, hc, "accept", 3),
    ]
    published: list[Any] = []
    if batched:
        published += await apply_batch(svc, svc.dispatch.on_actions, actions, "handler.actions")
    else:
        for x in actions:
            published += await apply_batch(svc, svc.dispatch.on_actions, [x], "handler.actions")
    cases = await svc.pool.fetch(
        "SELECT case_id, state, tier, unit, attempt, handler_id IS NOT NULL AS handled, "
        "accepted_at IS NOT NULL AS accepted, resolved_at IS NOT NULL AS resolved "
        "FROM cases WHERE case_id = ANY($1::text[]) ORDER BY case_id",
        ids,
    )
    timeline = await svc.pool.fetch(
        "SELECT case_id, event, from_state, to_state, tier, unit FROM timeline "
        "WHERE case_id = ANY($1::text[]) ORDER BY id",
        ids,
    )
    outcomes = await svc.pool.fetch(
        "SELECT action_id, action, outcome, field, reason FROM action_outcomes "
        "WHERE case_id = ANY($1::text[]) ORDER BY action_id",
        [*ids, f"none-{tag}"],
    )

    def plain(value: Any) -> Any:
        text = orjson.dumps(value, default=str).decode()
        return orjson.loads(text.replace(f"-{tag}", "-X"))

    keep = ("case_id", "action_id", "tier", "attempt", "reason", "on_time", "state")
    return {
        "cases": plain([dict(r) for r in cases]),
        "timeline": plain([dict(r) for r in timeline]),
        "outcomes": plain([dict(r) for r in outcomes]),
        "published": plain(
            sorted(
                ((t, {k: v for k, v in p.items() if k in keep}) for t, p in published),
                key=repr,
            )
        ),
    }


async def test_a_batch_of_actions_does_what_one_at_a_time_does(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    await load_registry(bed)
    got = await scenario(svc, "batch", batched=True)
    want = await scenario(svc, "single", batched=False)
    assert got == want
    a, b, c = got["cases"]
    assert a["accepted"] and a["resolved"] and a["state"] not in ("dispatched", "accepted")
    assert (b["tier"], b["attempt"]) == ("community", 2)
    assert c["state"] == "accepted"
    refused = {o["action_id"]: o["outcome"] for o in got["outcomes"] if o["outcome"] != "applied"}
    assert set(refused) == {"act-a-X-3", "act-c-X-1", "act-c-X-2", "act-none-X-1"}
    assert refused["act-none-X-1"] == "unknown_case"
    rejected = [p["action_id"] for t, p in got["published"] if t == "handler.actions.rejected"]
    assert sorted(rejected) == sorted(refused)
    topics = [t for t, _ in got["published"]]
    assert topics.count("cases.accepted") == 3 and topics.count("cases.escalated") == 1
