"""The reopen loop into a real dispatch service and back: an unsatisfied rating reopens the case,
dispatch handles it again, and its new resolution starts a new follow-up round.

The assertions are on what feedback does; dispatch is only driven through its public topics
(the handler named by its latest ``cases.dispatched`` accepts and resolves)."""

from __future__ import annotations

import uuid
from typing import Any

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.feedback.helpers import http_get, new_case_id, opened, rating, send, token_of, wait_n
from tests.samples import now_iso, sample_registry, wait_registry

# Who verifies (核查) a resolution in grid WC-YY-OJY-G01, by the tier it was resolved at: the
# community's staff a grid's, the grid worker the community's
VERIFIER = {"grid": "h-0010", "community": "h-0001"}


async def handle(pub: Publisher, case_id: str, dispatch: dict[str, Any]) -> None:
    """The assigned handler accepts and resolves the case; its verifier verifies it."""
    handler = dispatch["handler_id"]
    assert handler, f"dispatch named no handler: {dispatch}"
    steps = ((handler, "accept"), (handler, "resolve"), (VERIFIER[dispatch["tier"]], "verify"))
    for who, action in steps:
        await send(
            pub,
            "handler.actions",
            {
                "action_id": f"a-{uuid.uuid4().hex[:10]}",
                "case_id": case_id,
                "handler_id": who,
                "action": action,
                "at": now_iso(),
                "note": "已清运",
            },
        )


async def test_reopen_goes_back_to_dispatch_and_a_new_round_follows(bed: Testbed) -> None:
    await bed.start("dispatch")
    feedback = await bed.start("feedback")
    settings = bed.settings()
    await publish_registry(settings, sample_registry())
    await wait_registry(bed)
    cid = new_case_id()
    async with (
        Publisher(settings, source="test/upstream") as pub,
        TopicReader(
            settings,
            "cases.dispatched",
            "cases.resolved",
            "feedback.requested",
            "feedback.rejected",
            "cases.reopened",
            "cases.closed",
            "handler.actions.rejected",
        ) as reader,
    ):
        body = opened(cid)
        body["location"]["building"] = "WC-YY-OJY-G01-B03"
        await send(pub, "cases.opened", body)
        first = (await wait_n(reader, "cases.dispatched", cid, 1))[0]
        await handle(pub, cid, first)
        await wait_n(reader, "cases.resolved", cid, 1)
        token1 = token_of((await wait_n(reader, "feedback.requested", cid, 1))[0])
        await send(
            pub,
            "feedback.submitted",
            rating(cid, token1, satisfaction="unsatisfied", comment="垃圾还在"),
        )
        reopened = (await wait_n(reader, "cases.reopened", cid, 1))[0]
        assert reopened["reopen_count"] == 1
        assert reopened["reason"].startswith("unsatisfied")

        # dispatch handles it again: a new dispatch, a new resolution
        again = (await wait_n(reader, "cases.dispatched", cid, 2, timeout=60))[-1]
        await handle(pub, cid, again)
        await wait_n(reader, "cases.resolved", cid, 2, timeout=60)
        token2 = token_of((await wait_n(reader, "feedback.requested", cid, 2))[1])
        assert token2 != token1

        await send(pub, "feedback.submitted", rating(cid, token1, satisfaction="satisfied"))
        assert (await wait_n(reader, "feedback.rejected", cid, 1))[0]["reason"] == (
            "token already used"
        )
        await send(pub, "feedback.submitted", rating(cid, token2, satisfaction="satisfied"))
        closed = (await wait_n(reader, "cases.closed", cid, 1))[0]
        assert closed["outcome"] == "satisfied"
        assert reader.of("handler.actions.rejected") == []

    async def closed_view() -> dict[str, Any]:
        status, view = await http_get(feedback, f"/cases/{cid}")
        assert status == 200 and view["state"] == "closed", view
        return dict(view)

    view = await eventually(closed_view, what="the case view to show closed")
    assert view["reopen_count"] == 1
    events = [e["event"] for e in view["timeline"]]
    assert events.count("resolved") == 2 and events.count("reopened") == 1
    assert events.count("verified") == 2
    assert events.index("reopened") < len(events) - 1 - events[::-1].index("resolved")
