"""``wangge classifier retrain`` and ``status`` against the real PostgreSQL and Kafka: the command
centre's corrections (cases.reclassified) become labelled examples, retrain compares a model
that learnt them with the current one on the same folds and installs it, a second retrain has
nothing new to learn, and intake then classifies with the installed model (its version on
cases.opened)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from cli.client import Publisher
from cli.main import app
from devstack.testbed import Testbed, pii_key_for_tests
from devstack.wait import eventually
from services.intake import classifier_store, store
from services.intake.classify import trained_classifier
from services.intake.evaluation import Comparison, Scores
from services.intake.handlers import Intake
from shared.contract.events import CaseReclassified, DecidedBy
from tests.intake.conftest import Running, handle, start_intake
from tests.samples import report

BUILDING = "WC-YY-OJY-G01-B03"
# A kind of report the shipped data has none of: a shared power-bank cabinet overcharging,
# which the command centre files under market order (市场秩序).
TEXTS = [
    f"{where}的共享充电宝柜子乱扣费，{what}"
    for where in ("东门", "3栋楼下", "超市门口", "菜场边", "北门")
    for what in ("扫码就扣了九十九", "归还了还在计费")
]


def test_not_worse_means_neither_accuracy_drops() -> None:
    a, b = Scores(0.8, 0.95, 0.8, 10), Scores(0.8, 0.94, 0.9, 10)
    assert Comparison(current=a, candidate=a).not_worse
    assert not Comparison(current=a, candidate=b).not_worse
    assert not Comparison(current=a, candidate=Scores(0.79, 0.99, 0.9, 10)).not_worse


async def test_retrain_learns_the_corrections_and_intake_uses_the_model(
    bed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await start_intake(bed)
    shipped = trained_classifier(None)
    opened = []
    conn = await asyncpg.connect(bed.admin_dsn, server_settings={"search_path": "intake"})
    try:
        for text in TEXTS:
            events = await handle(
                run, report(location={"building_code": BUILDING}, description=text)
            )
            cases = [e for topic, e in events if topic == "cases.opened"]
            # closed (as cases.closed closes them), so that the next report opens its own case
            for case in cases:  # (a burst of reports may also open a proactive case: 未诉先办)
                await store.close_case(conn, case["case_id"], datetime.now(UTC))
            opened += [c for c in cases if c["report_ids"]]
    finally:
        await conn.close()
    assert len(opened) == len(TEXTS)
    assert {o["classification"]["model"] for o in opened} == {shipped.version}
    assert not any(o["category"] == "market_order" for o in opened)  # the shipped model misses

    async with Publisher(bed.settings(), source="test/dispatch") as pub:
        for o in opened:
            decision = CaseReclassified(
                case_id=o["case_id"],
                from_category=o["category"],
                from_category_name=o["category_name"],
                to_category="market_order",
                to_category_name="市场秩序",
                by=DecidedBy(role="command_centre", unit="WC", subject="command_centre:WC"),
                reclassified_at=datetime.now(UTC),
                origin="triage",
            )
            await pub.send("cases.reclassified", decision, key=o["case_id"])
    conn = await asyncpg.connect(bed.admin_dsn, server_settings={"search_path": "intake"})
    try:

        async def all_recorded() -> bool:
            n = await conn.fetchval("SELECT count(DISTINCT case_id) FROM reclassifications")
            return bool(n == len(TEXTS))

        await eventually(all_recorded, timeout=30, what="every correction recorded")
    finally:
        await conn.close()

    monkeypatch.setenv("DATABASE_URL", bed.service_dsns["intake"])
    monkeypatch.setenv("WANGGE_PII_KEY", pii_key_for_tests())
    runner = CliRunner()

    async def invoke(args: list[str]) -> Result:
        return await asyncio.to_thread(runner.invoke, app, args)

    status = await invoke(["classifier", "status"])
    assert status.exit_code == 0, status.output
    assert (
        "no model installed" in status.output
        and f"cases reclassified: {len(TEXTS)}" in status.output
    )

    first = await invoke(["classifier", "retrain", "--folds", "5"])
    assert first.exit_code == 0, first.output
    assert f"corrections: {len(TEXTS)} ({len(TEXTS)} new to the current model)" in first.output
    assert f"current   {shipped.version}: top-1 " in first.output
    assert "candidate " in first.output and "(787 reports)" in first.output
    assert "installed " in first.output, first.output

    conn = await asyncpg.connect(bed.admin_dsn, server_settings={"search_path": "intake"})
    try:
        installed = await classifier_store.latest_model(conn)
        assert installed is not None and installed.version != shipped.version
        assert len(installed.corrections) == len(TEXTS)
        assert installed.metrics["replaced"]["version"] == shipped.version
        assert installed.metrics["candidate"]["top1"] >= installed.metrics["replaced"]["top1"]
    finally:
        await conn.close()

    again = await invoke(["classifier", "retrain"])
    assert again.exit_code == 0, again.output
    assert f"current model {installed.version} already learnt from all of them" in again.output
    status = await invoke(["classifier", "status"])
    assert f"installed {installed.version}" in status.output
    assert f"learnt from {len(TEXTS)} correction(s)" in status.output

    # an intake started now classifies with the installed model
    fresh = Running(run.svc, Intake.from_settings(run.svc.settings))
    events = await handle(
        fresh,
        report(
            location={"building_code": "WC-YY-OJY-G01-B05"},
            description="西门的共享充电宝柜子乱扣费，扫码就扣了九十九",
        ),
    )
    case = next(e for topic, e in events if topic == "cases.opened")
    assert case["classification"]["model"] == installed.version
    assert case["category"] == "market_order"


def test_retrain_without_intakes_schema_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("WANGGE_PII_KEY", pii_key_for_tests())
    result = CliRunner().invoke(app, ["classifier", "retrain"])
    assert result.exit_code == 1
