"""``wangge report show``: what became of a report, read from intake's schema."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.report import describe
from devstack.testbed import Testbed
from tests.intake.conftest import handle, start_intake
from tests.samples import report


def test_describe_a_rejection() -> None:
    row = {
        "report_id": "r1",
        "source": "app",
        "outcome": "rejected",
        "reason": "unlocatable",
        "errors": [{"field": "location", "message": "no unit matches this location"}],
    }
    assert describe(row) == [
        "report r1 (app): [bold]rejected[/bold] (unlocatable)",
        "  error: location: no unit matches this location",
    ]


async def test_report_show_prints_opened_merged_and_rejected(
    bed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await start_intake(bed)
    first = report(category="noise")
    second = report(category="noise", source="app", reporter={"phone": "13700001111"})
    opened = (await handle(run, first))[0][1]
    await handle(run, second)
    lost = report(report_id="lost", location={"address": "火星"}, description="井盖丢了")
    await handle(run, lost)
    monkeypatch.setenv("DATABASE_URL", bed.service_dsns["intake"])
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def show(report_id: str, source: str) -> str:
        result = runner.invoke(app, ["report", "show", report_id, "--source", source])
        assert result.exit_code == 0, result.output
        return result.output

    out = await asyncio.to_thread(show, first["report_id"], "weixin_grid_group")
    assert f"opened case {opened['case_id']}" in out and "2 supporter(s)" in out
    out = await asyncio.to_thread(show, second["report_id"], "app")
    assert f"merged into case {opened['case_id']}" in out
    out = await asyncio.to_thread(show, "lost", "weixin_grid_group")
    assert "rejected (unlocatable)" in out and "location: no unit matches" in out
    missing = await asyncio.to_thread(
        runner.invoke, app, ["report", "show", "nope", "--source", "app"]
    )
    assert missing.exit_code == 1 and "no report" in missing.output
