"""Intake on the real broker and database: reports.submitted in; cases.opened, cases.merged,
reports.rejected and dead letters out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import structlog
import structlog.testing

from cli.client import Publisher, Record, TopicReader
from devstack.testbed import Testbed, pii_key_for_tests
from devstack.wait import eventually
from services.intake.classify import METHOD, trained_classifier
from services.intake.privacy import Pii
from shared.runtime.logging import configure_logging
from tests.intake.conftest import start_intake
from tests.samples import now_iso, report

PHONE = "13812345678"


def for_report(records: list[Record], report_id: str) -> list[Record]:
    out = []
    for r in records:
        body = r.json() or {}
        if body.get("report_id") == report_id or report_id in body.get("report_ids", []):
            out.append(r)
    return out


async def test_a_report_becomes_a_located_classified_case(bed: Testbed) -> None:
    await start_intake(bed)
    rep = report(
        location={"address": "武昌区杨园街道欧景苑社区"},
        title="楼道飞线充电",
        description="11栋二单元有人从三楼窗户拉电线下来给电动车充电，联系我13812345678",
        households_affected=24,
        urgent=True,
        photos=["https://img.example.cn/a.jpg"],
    )
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), "cases.opened") as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        opened = await reader.wait_for(lambda r: r.of("cases.opened"), what="cases.opened")
    case = opened[0].json()
    assert opened[0].key == case["case_id"] and opened[0].headers["ce_subject"] == case["case_id"]
    assert case["report_ids"] == [rep["report_id"]]
    assert case["source"] == "weixin_grid_group"
    assert case["location"] == {
        "district": "WC",
        "street": "WC-YY",
        "community": "WC-YY-OJY",
        "grid": "WC-YY-OJY-G02",
        "building": "WC-YY-OJY-G02-B11",
    }
    assert case["located_by"] == "address+description"
    assert (case["category"], case["category_name"]) == ("ebike_charging", "电动车充电")
    assert case["agency_mode"] == "proxy_petition" and case["default_tier"] == "grid"
    found = case["classification"]
    assert found["method"] == METHOD
    assert found["model"] == trained_classifier(None).version  # no model installed
    assert {"电动车", "充电", "飞线充电"} & set(found["terms"])
    assert 0 < found["confidence"] <= 1
    assert found["suggestions"][0]["category"] == "ebike_charging"
    assert len(found["suggestions"]) == 3
    assert found["suggestions"][0]["probability"] == found["confidence"]
    assert case["title"] == "楼道飞线充电"
    assert case["description"].endswith("联系我138****5678")
    assert (case["households_affected"], case["urgent"]) == (24, True)
    assert case["reporter_ref"].startswith("r-")
    assert case["reporter_phone_masked"] == "138****5678"
    assert PHONE.encode() not in (opened[0].value or b"")
    assert "王阿姨".encode() not in (opened[0].value or b"")


async def test_the_classifier_and_the_location_index_are_ready_before_any_report(
    bed: Testbed,
) -> None:
    """Intake chooses its classifier and builds its location index at start, and again after
    a registry change, without a report to wait for them (``Intake.keep_warm``)."""
    run = await start_intake(bed)  # starts, then the sample registry is published
    async with run.svc.pool.acquire() as conn:
        version: int = await conn.fetchval("SELECT version FROM registry_state")

    async def warm() -> bool:
        return run.intake.classifier is not None and run.intake.index_version >= version

    await eventually(warm, timeout=30, what="the classifier and the index of the registry")
    assert "WC-YY-OJY-G01-B03" in run.intake.index.units
    # then a registry change: the index of the new version, built without a report either
    async with run.svc.pool.acquire() as conn:
        await conn.execute("UPDATE registry_state SET version = version + 1")

    async def rebuilt() -> bool:
        return run.intake.index_version > version

    await eventually(rebuilt, timeout=30, what="the index built again")


async def test_a_given_category_is_kept(bed: Testbed) -> None:
    await start_intake(bed)
    rep = report(category="civility", location={"grid_code": "WC-YY-HPY-G01"})
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened") as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        case = (await reader.wait_for(lambda r: r.of("cases.opened")))[0].json()
    assert case["category"] == "civility"
    assert case["classification"] == {
        "method": "given",
        "terms": [],
        "confidence": 1.0,
        "model": None,
        "suggestions": [],
    }
    assert case["location"]["grid"] == "WC-YY-HPY-G01" and case["location"]["building"] is None


async def test_invalid_reports_are_rejected_with_their_errors(bed: Testbed) -> None:
    await start_intake(bed)
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "bad-phone": ({"reporter": {"phone": "12345"}}, "reporter.phone"),
        "too-long": ({"description": "垃圾" * 2501}, "description"),
        "no-location": ({"location": {}}, "location"),
        "zero-households": ({"households_affected": 0}, "households_affected"),
        "bad-time": ({"submitted_at": "2025-01-01T08:00:00"}, "submitted_at"),
        "bad-category": ({"category": "weather"}, "category"),
        "bad-building": ({"location": {"building_code": "WC-NOPE"}}, "location.building_code"),
        "grid-as-building": (
            {"location": {"building_code": "WC-YY-OJY-G01"}},
            "location.building_code",
        ),
        "bad-grid": ({"location": {"grid_code": "WC-YY-OJY"}}, "location.grid_code"),
    }
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "reports.rejected", "cases.opened") as reader,
    ):
        for rid, (over, _) in cases.items():
            await pub.send("reports.submitted", report(report_id=rid, **over), key=rid)
        bad_source = report(report_id="bad-source", source="fax")
        await pub.send("reports.submitted", bad_source, key="bad-source")
        rejected = await reader.wait_for(
            lambda r: len(r.of("reports.rejected")) == len(cases) + 1 and r.of("reports.rejected"),
            what="every rejection",
        )
        by_id = {r.json()["report_id"]: r.json() for r in rejected}
        for rid, (_, field) in cases.items():
            assert by_id[rid]["source"] == "weixin_grid_group"
            assert by_id[rid]["reason"] == "invalid"
            assert field in [e["field"] for e in by_id[rid]["errors"]], (rid, by_id[rid])
            assert all(e["message"] for e in by_id[rid]["errors"])
        assert by_id["bad-source"]["source"] == "fax"
        assert [e["field"] for e in by_id["bad-source"]["errors"]] == ["source"]
        assert PHONE not in str(by_id)
        assert reader.of("cases.opened") == []


async def test_an_unlocatable_report_is_rejected(bed: Testbed) -> None:
    await start_intake(bed)
    rep = report(location={"address": "火星第一基地"}, description="门口的井盖丢了")
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "reports.rejected") as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        rejected = (await reader.wait_for(lambda r: r.of("reports.rejected")))[0].json()
    assert rejected["reason"] == "unlocatable"
    assert rejected["report_id"] == rep["report_id"]
    assert rejected["errors"] == [{"field": "location", "message": "no unit matches this location"}]


async def test_bytes_that_are_not_a_json_object_are_dead_lettered(bed: Testbed) -> None:
    await start_intake(bed)
    good = report()
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "reports.submitted.dlq", "cases.opened") as reader,
    ):
        sent = [
            await pub.send("reports.submitted", b"{not json", key="k1"),
            await pub.send("reports.submitted", b'["a", "list"]', key="k1"),
        ]
        # the same key, so the same partition: the good report waits behind the bad ones
        await pub.send("reports.submitted", good, key="k1")
        await reader.wait_for(
            lambda r: for_report(r.of("cases.opened"), good["report_id"]), what="the good report"
        )
        dead = await reader.wait_for(
            lambda r: len(r.of("reports.submitted.dlq")) == 2 and r.of("reports.submitted.dlq")
        )
    assert [d.value for d in dead] == [b"{not json", b'["a", "list"]']
    assert [d.headers["dlq_error_class"] for d in dead] == ["NotJson", "NotJsonObject"]
    for d, meta in zip(dead, sent, strict=True):
        assert d.headers["dlq_original_topic"] == bed.settings().topic("reports.submitted")
        assert d.headers["dlq_original_partition"] == str(meta.partition)
        assert d.headers["dlq_original_offset"] == str(meta.offset)
        assert d.headers["dlq_service"] == "intake" and d.headers["dlq_error"]


async def test_the_same_report_twice_creates_nothing_new(bed: Testbed) -> None:
    run = await start_intake(bed)
    dup, marker = report(), report(category="noise", location={"grid_code": "WC-YY-HPY-G01"})
    invalid = report(reporter={"phone": "123"})
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened", "cases.merged", "reports.rejected") as reader,
    ):
        for body in (dup, dup, invalid, invalid, marker):
            await pub.send("reports.submitted", body, key="same-partition")
        # the batch's valid reports are handled before its invalid ones: wait for both kinds
        await reader.wait_for(
            lambda r: (
                for_report(r.of("cases.opened"), marker["report_id"])
                and for_report(r.of("reports.rejected"), invalid["report_id"])
            )
        )
        everything = await reader.read_to_end()
    assert len(for_report(everything, dup["report_id"])) == 1
    assert len(for_report(everything, invalid["report_id"])) == 1
    assert reader.of("cases.merged") == []
    assert await run.svc.pool.fetchval("SELECT count(*) FROM cases") == 2


async def test_duplicates_merge_and_a_closed_case_takes_no_more(bed: Testbed) -> None:
    run = await start_intake(bed)
    first = report(description="3栋门口垃圾桶满溢，臭气熏天")
    second = report(
        source="hotline_12345",
        reporter={"name": "李先生", "phone": "13900001111"},
        location={"address": "欧景苑三栋"},
        description="欧景苑三栋的垃圾好几天没人清运了",
    )
    third = report(description="三栋垃圾又堆满了，没人清运")
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened", "cases.merged") as reader,
    ):
        await pub.send("reports.submitted", first, key=first["report_id"])
        case_id = (await reader.wait_for(lambda r: r.of("cases.opened")))[0].json()["case_id"]
        await pub.send("reports.submitted", second, key=second["report_id"])
        merged = (await reader.wait_for(lambda r: r.of("cases.merged")))[0]
        assert merged.key == case_id
        assert merged.json()["case_id"] == case_id
        assert merged.json()["supporter_count"] == 2
        assert merged.json()["reporter_phone_masked"] == "139****1111"

        closed = {"case_id": case_id, "outcome": "satisfied", "closed_at": now_iso()}
        await pub.send("cases.closed", closed, key=case_id)
        await eventually(
            partial(
                run.svc.pool.fetchval,
                "SELECT status = 'closed' FROM cases WHERE case_id = $1",
                case_id,
            ),
            what="intake to learn the case is closed",
        )
        await pub.send("reports.submitted", third, key=third["report_id"])
        reopened = await reader.wait_for(lambda r: len(r.of("cases.opened")) == 2 and r)
    assert reopened.of("cases.opened")[1].json()["case_id"] != case_id
    assert len(reopened.of("cases.merged")) == 1


async def test_personal_data_is_encrypted_at_rest(bed: Testbed) -> None:
    run = await start_intake(bed)
    rep = report()
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened") as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        await reader.wait_for(lambda r: r.of("cases.opened"))
    row = await run.svc.pool.fetchrow(
        "SELECT * FROM reports WHERE report_id = $1", rep["report_id"]
    )
    assert row is not None
    assert row["reporter_phone_masked"] == "138****5678"
    for column in ("reporter_phone_enc", "reporter_name_enc"):
        assert PHONE.encode() not in row[column] and "王阿姨".encode() not in row[column]
    pii = Pii(pii_key_for_tests())
    assert pii.decrypt(row["reporter_phone_enc"]) == PHONE
    assert pii.decrypt(row["reporter_name_enc"]) == "王阿姨"
    dump = await run.svc.pool.fetchval(
        "SELECT (SELECT string_agg(t::text, ' ') FROM reports t) || ' ' || "
        "(SELECT string_agg(s::text, ' ') FROM case_supporters s)"
    )
    assert PHONE not in dump and "王阿姨" not in dump


@pytest.fixture
def captured_logs() -> Iterator[list[Any]]:
    """Every log event at every level, as the code emitted it (before the masking processor, so
    the test shows intake never hands a full phone number to a logger at all)."""
    with structlog.testing.capture_logs() as logs:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        yield logs
    configure_logging("tests", "WARNING")


async def test_no_log_line_contains_a_full_phone_number(
    bed: Testbed, captured_logs: list[Any]
) -> None:
    await start_intake(bed)
    opened = report(description=f"楼道垃圾没人清运，有事打我电话{PHONE}")
    merged = report(description="3栋楼道垃圾没人清运", reporter={"phone": "+86 139 0000 2222"})
    rejected = report(reporter={"phone": "1381234567"}, description=f"电话{PHONE}")
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened", "cases.merged", "reports.rejected") as reader,
    ):
        for body in (opened, merged, rejected):
            await pub.send("reports.submitted", body, key="one-partition")
        await reader.wait_for(lambda r: r.of("reports.rejected") and r.of("cases.merged"))
    events = {e["event"] for e in captured_logs}
    assert {"case opened", "report rejected", "reports handled"} <= events  # intake logged
    assert any(e.startswith("report merged") for e in events)
    text = str(captured_logs)
    for full in (PHONE, "13900002222", "1381234567"):
        assert full not in text
