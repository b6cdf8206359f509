"""A report travels the whole loop on the real broker and database:
reports.submitted -> cases.opened -> cases.dispatched -> (resolve) -> cases.resolved -> (verify) ->
cases.verified -> feedback.requested -> (rating) -> cases.closed."""

from __future__ import annotations

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from tests.feedback.helpers import token_of
from tests.samples import now_iso, report, sample_registry, wait_registry


async def test_report_to_closed_case(bed: Testbed) -> None:
    for name in ("intake", "dispatch", "feedback"):
        await bed.start(name)
    settings = bed.settings()
    await publish_registry(settings, sample_registry())
    await wait_registry(bed, "h-0030")

    rep = report()
    async with (
        Publisher(settings, source="test/upstream") as pub,
        TopicReader(
            settings,
            "cases.opened",
            "cases.dispatched",
            "cases.resolved",
            "cases.verified",
            "feedback.requested",
            "cases.closed",
        ) as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        opened = await reader.wait_for(lambda r: r.of("cases.opened"), what="cases.opened")
        case = opened[0].json()
        assert case["report_ids"] == [rep["report_id"]]
        assert case["location"]["grid"] == "WC-YY-OJY-G01"
        assert case["category"] == "sanitation"
        assert case["reporter_phone_masked"] == "138****5678"
        assert opened[0].headers["ce_subject"] == case["case_id"]
        assert opened[0].key == case["case_id"]

        dispatched = (await reader.wait_for(lambda r: r.of("cases.dispatched")))[0].json()
        assert dispatched["tier"] == "grid"
        assert dispatched["unit"] == "WC-YY-OJY-G01"
        assert dispatched["handler_id"] == "h-0001"

        cid = case["case_id"]
        # the grid worker accepts and resolves; the community verifies on site (核查结案)
        steps = (("h-0001", "accept"), ("h-0001", "resolve"), ("h-0010", "verify"))
        for i, (handler, action) in enumerate(steps):
            await pub.send(
                "handler.actions",
                {
                    "action_id": f"{cid}-{i}",
                    "case_id": cid,
                    "handler_id": handler,
                    "action": action,
                    "at": now_iso(),
                    "note": "已清运并消杀",
                },
                key=cid,
            )
        resolved = (await reader.wait_for(lambda r: r.of("cases.resolved")))[0].json()
        assert resolved["tier"] == "grid" and resolved["on_time"] is True
        assert resolved["verifier_unit"] == "WC-YY-OJY"
        verified = (await reader.wait_for(lambda r: r.of("cases.verified")))[0].json()
        assert verified["verifier_id"] == "h-0010" and verified["case_id"] == cid

        request = (await reader.wait_for(lambda r: r.of("feedback.requested")))[0].json()
        assert request["case_id"] == cid and request["channel"] == "weixin_grid_group"
        await pub.send(
            "feedback.submitted",
            {
                "case_id": cid,
                "rating_token": token_of(request),  # as the notifier opens it
                "resolved": True,
                "satisfaction": "satisfied",
                "at": now_iso(),
            },
            key=cid,
        )
        closed = (await reader.wait_for(lambda r: r.of("cases.closed")))[0].json()
        assert closed == {**closed, "case_id": cid, "outcome": "satisfied"}
