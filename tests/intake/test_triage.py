"""Intake's side of the triage queue (人工分拨) on the real broker and database: a report classified
below WANGGE_TRIAGE_MIN_CONFIDENCE is opened with needs_triage (a given category never is); a
cases.reclassified from dispatch is kept as a labelled example (the text it was classified from,
encrypted) and moves intake's copy of the case, so that later reports merge by the new category."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import asyncpg

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed, pii_key_for_tests
from devstack.wait import eventually
from services.intake import store
from services.intake.classify import METHOD
from services.intake.privacy import Pii
from services.intake.triage import LOW_CONFIDENCE, MODERATION, triage_reasons
from shared.contract.events import CaseReclassified, Classification, DecidedBy
from shared.runtime.settings import Settings
from tests.dispatch.support import case_opened
from tests.intake.conftest import start_intake
from tests.samples import report

BUILDING = "WC-YY-OJY-G01-B03"


def test_the_rule() -> None:
    ev = case_opened()
    unsure = ev.model_copy(update={"classification": Classification(method="nb", confidence=0.4)})
    assert triage_reasons(unsure, 0.5) == [LOW_CONFIDENCE]
    assert triage_reasons(unsure, 0.4) == []  # at the threshold: dispatched
    given = ev.model_copy(update={"classification": Classification(method="given", confidence=0.0)})
    assert triage_reasons(given, 0.9) == []
    flagged = unsure.model_copy(update={"moderation": ["insult"]})
    assert triage_reasons(flagged, 0.5) == [LOW_CONFIDENCE, MODERATION]
    assert triage_reasons(flagged, 0.0) == [MODERATION]


def test_the_default_threshold_is_the_one_measured_for_the_shipped_classifier() -> None:
    """WANGGE_TRIAGE_MIN_CONFIDENCE by default: the bench's threshold for 95 % precision of
    automatic dispatch with the model intake ships (and its method is that model's)."""
    results = sorted((Path(__file__).parents[2] / "bench" / "results").glob("*classify-v*.json"))
    measured = json.loads(results[-1].read_text("utf-8"))
    assert measured["method"] == METHOD
    assert measured["triage"]["precision_target"] == 0.95
    assert Settings().triage_min_confidence == measured["triage"]["threshold"]


async def test_unsure_cases_are_held_and_corrections_are_learnt(bed: Testbed) -> None:
    await start_intake(bed, WANGGE_TRIAGE_MIN_CONFIDENCE="0.999")
    unsure = report(
        location={"building_code": BUILDING},
        title="门口的事",
        description="3栋门口最近总是乱糟糟的，麻烦来看看",
    )
    given = report(
        category="civility",
        location={"building_code": "WC-YY-OJY-G01-B05"},
        description="5栋有人遛狗不牵绳",
    )
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), "cases.opened", "cases.merged") as reader,
    ):
        for r in (unsure, given):
            await pub.send("reports.submitted", r, key=r["report_id"])
        opened = await reader.wait_for(
            lambda rd: rd.of("cases.opened") if len(rd.of("cases.opened")) == 2 else None,
            what="two cases opened",
        )
        by_report = {o.json()["report_ids"][0]: o.json() for o in opened}
        held, kept = by_report[unsure["report_id"]], by_report[given["report_id"]]
        assert held["classification"]["confidence"] < 0.999
        assert (held["needs_triage"], held["triage_reasons"]) == (True, [LOW_CONFIDENCE])
        assert (kept["needs_triage"], kept["triage_reasons"]) == (False, [])

        # the command centre decides (as dispatch publishes it)
        decided_at = datetime.now(UTC)
        decision = CaseReclassified(
            case_id=held["case_id"],
            from_category=held["category"],
            from_category_name=held["category_name"],
            to_category="parking",
            to_category_name="停车管理",
            by=DecidedBy(role="command_centre", unit="WC", subject="command_centre:WC"),
            reclassified_at=decided_at,
            origin="triage",
            note="门口乱停车",
        )
        await pub.send("cases.reclassified", decision, key=held["case_id"], subject=held["case_id"])
        conn = await asyncpg.connect(bed.admin_dsn, server_settings={"search_path": "intake"})
        try:
            await eventually(
                partial(conn.fetchval, "SELECT count(*) FROM reclassifications"),
                timeout=20,
                what="the correction recorded",
            )
            examples = await store.labelled_examples(conn)
            assert [(e.case_id, e.category) for e in examples] == [(held["case_id"], "parking")]
            pii = Pii(pii_key_for_tests())
            assert (
                pii.decrypt(examples[0].text_enc) == f"{unsure['title']}\n{unsure['description']}"
            )
            assert unsure["description"].encode() not in examples[0].text_enc
            assert (
                await conn.fetchval(
                    "SELECT category FROM cases WHERE case_id = $1", held["case_id"]
                )
                == "parking"
            )
            row = await conn.fetchrow("SELECT * FROM reclassifications")
            assert row is not None
            assert (row["origin"], row["from_category"], row["note"]) == (
                "triage",
                held["category"],
                "门口乱停车",
            )
            assert json.loads(row["decided_by"])["role"] == "command_centre"

            # an older decision arriving late is kept, but the case keeps the latest category
            older = decision.model_copy(
                update={
                    "to_category": "sanitation",
                    "reclassified_at": decided_at - timedelta(minutes=1),
                }
            )
            await pub.send("cases.reclassified", older, key=held["case_id"])

            async def both() -> bool:
                return bool(await conn.fetchval("SELECT count(*) FROM reclassifications") == 2)

            await eventually(both, timeout=20, what="the older decision recorded")
            assert (
                await conn.fetchval(
                    "SELECT category FROM cases WHERE case_id = $1", held["case_id"]
                )
                == "parking"
            )
            assert [e.category for e in await store.labelled_examples(conn)] == ["parking"]
        finally:
            await conn.close()

        # a later report of the decided category at that building joins the case (附议)
        second = report(
            category="parking", location={"building_code": BUILDING}, description="3栋门口乱停车"
        )
        await pub.send("reports.submitted", second, key=second["report_id"])
        merged = await reader.wait_for(
            lambda rd: [
                m for m in rd.of("cases.merged") if m.json()["report_id"] == second["report_id"]
            ],
            what="the report merged",
        )
        assert merged[0].json()["case_id"] == held["case_id"]
