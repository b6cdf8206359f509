"""What docs/integration.md promises an upstream system, on the real broker and database: a
report rejected for its content may be sent again corrected under the same ``report_id`` (a new
``ce_id``) and becomes a case; the same rejected version again is a duplicate (no second
rejection); an accepted report keeps its first outcome. An anonymous reporter's phone, even
masked, is published nowhere."""

from __future__ import annotations

from typing import Any

from cli.client import Publisher, Record, TopicReader
from devstack.testbed import Testbed
from tests.intake.conftest import start_intake
from tests.intake.test_intake_e2e import PHONE, for_report
from tests.samples import report

TOPICS = ("reports.rejected", "cases.opened", "cases.merged")


async def _send_in_order(
    bed: Testbed, bodies: list[dict[str, Any]], marker: dict[str, Any]
) -> list[Record]:
    """Send each body (one partition, so in order), then ``marker``; everything published for
    them once the marker is opened or merged."""
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        for body in [*bodies, marker]:
            await pub.send("reports.submitted", body, key="one-partition")
        await reader.wait_for(
            lambda r: for_report(r.of("cases.opened") + r.of("cases.merged"), marker["report_id"]),
            what="the marker",
        )
        return await reader.read_to_end()


async def test_a_report_rejected_for_its_content_comes_back_corrected(bed: Testbed) -> None:
    run = await start_intake(bed)
    rid = "12345-88017"
    unlocatable = report(
        report_id=rid, location={"address": "火星第一基地"}, description="井盖丢了"
    )
    corrected = report(
        report_id=rid, location={"grid_code": "WC-YY-OJY-G01"}, description="井盖丢了"
    )
    marker = report(category="noise", location={"grid_code": "WC-YY-HPY-G01"})
    first = await _send_in_order(bed, [unlocatable, unlocatable], marker)
    rejected = [r.json() for r in for_report(first, rid) if r.topic.endswith("reports.rejected")]
    assert [r["reason"] for r in rejected] == ["unlocatable"]  # the same version: once

    second = await _send_in_order(bed, [corrected, corrected], report(category="noise"))
    mine = for_report(second, rid)
    opened = [r.json() for r in mine if r.topic.endswith("cases.opened")]
    assert len(opened) == 1 and opened[0]["report_ids"] == [rid]  # once, not twice
    assert opened[0]["location"]["grid"] == "WC-YY-OJY-G01"
    assert len([r for r in mine if r.topic.endswith("reports.rejected")]) == 1  # the first only
    row = await run.svc.pool.fetchrow(
        "SELECT outcome, case_id, reason FROM reports WHERE source = $1 AND report_id = $2",
        corrected["source"],
        rid,
    )
    assert row is not None
    assert (row["outcome"], row["case_id"], row["reason"]) == (
        "opened",
        opened[0]["case_id"],
        None,
    )

    # an accepted report keeps its first outcome: another version is a duplicate
    third = await _send_in_order(
        bed, [{**corrected, "description": "井盖还是没有修"}], report(category="noise")
    )
    assert sorted(r.topic for r in for_report(third, rid)) == sorted(r.topic for r in mine)


async def test_an_invalid_report_comes_back_corrected(bed: Testbed) -> None:
    await start_intake(bed)
    rid = "12345-88018"
    invalid = report(report_id=rid, reporter={"phone": "12345"})
    fixed = report(report_id=rid)
    marker = report(category="noise", location={"grid_code": "WC-YY-HPY-G01"})
    records = await _send_in_order(bed, [invalid, invalid, fixed], marker)
    mine = for_report(records, rid)
    rejected = [r.json() for r in mine if r.topic.endswith("reports.rejected")]
    assert [r["reason"] for r in rejected] == ["invalid"]
    assert [e["field"] for e in rejected[0]["errors"]] == ["reporter.phone"]
    opened = [r.json() for r in mine if r.topic.endswith("cases.opened")]
    assert len(opened) == 1 and opened[0]["report_ids"] == [rid]


async def test_an_anonymous_reporter_s_phone_is_published_nowhere(bed: Testbed) -> None:
    await start_intake(bed)
    place = {"building_code": "WC-YY-OJY-G01-B05"}
    first = report(location=place, reporter={"phone": PHONE, "anonymous": True})
    second = report(location=place, reporter={"phone": "13900001111", "anonymous": True})
    named = report(location=place, reporter={"phone": "13700002222"})
    records = await _send_in_order(bed, [first, second, named], report(category="noise"))
    opened = [r.json() for r in for_report(records, first["report_id"])]
    merged = [r.json() for r in records if r.topic.endswith("cases.merged")]
    assert len(opened) == 1 and len(merged) == 2
    assert opened[0]["anonymous"] is True and opened[0].get("reporter_phone_masked") is None
    by_report = {m["report_id"]: m for m in merged}
    assert by_report[second["report_id"]]["anonymous"] is True
    assert by_report[second["report_id"]].get("reporter_phone_masked") is None
    assert by_report[named["report_id"]]["anonymous"] is False
    assert by_report[named["report_id"]]["reporter_phone_masked"] == "137****2222"
    for r in records:
        if r.json().get("case_id") == opened[0]["case_id"]:  # the anonymous reporters' case
            assert b"5678" not in (r.value or b"") and b"1111" not in (r.value or b"")
