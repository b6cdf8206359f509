"""``make demo``: the whole loop on a sample city, on real Kafka and PostgreSQL.

Starts the stack (as ``make up`` does, in its own run folder), loads the sample registry, replays
sample resident reports through intake -> dispatch -> feedback, plays the handlers (accept,
resolve) and the residents (ratings: most satisfied, some not, which reopens the case), prints
what happened, and stops everything.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from rich.console import Console
from rich.table import Table

from cli.client import Publisher, TopicReader
from cli.metrics import metric_rows
from cli.registry import publish_registry
from devstack import stack
from devstack.actors import Actors, stable_fraction, unit_handler
from devstack.paths import ROOT, RUN
from services.feedback.periods import period_of
from shared.contract.taxonomy import default_taxonomy
from shared.registry.file import load_registry_file
from shared.runtime.identity import issue_token
from shared.runtime.settings import Settings

SAMPLES = ROOT / "deploy" / "samples"
console = Console()
TOPICS = (
    "cases.opened",
    "cases.merged",
    "reports.rejected",
    "cases.dispatched",
    "cases.escalated",
    "cases.resolved",
    "feedback.requested",
    "cases.closed",
    "cases.reopened",
    "handler.actions.rejected",
)


def now() -> str:
    return datetime.now(UTC).isoformat()


async def wait_registry(admin_dsn: str, timeout: float = 60) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        deadline = time.monotonic() + timeout
        for schema in stack.SERVICES:
            while not await conn.fetchval(
                f"SELECT count(*) FROM {schema}.handlers WHERE id = 'h-0030'"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{schema} did not read the registry")
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


def demo_rating(case_id: str, round_: int) -> dict[str, Any] | None:
    """1 in 10 unsatisfied at first (the case is reopened), 1 in 10 never rated, the rest
    satisfied or basically satisfied."""
    f = stable_fraction(case_id, "demo")
    if round_ == 1 and f < 0.1:
        return {"resolved": False, "satisfaction": "unsatisfied", "comment": "问题没有解决"}
    if f < 0.2:
        return None
    return {"resolved": True, "satisfaction": "satisfied" if f < 0.85 else "basically_satisfied"}


def load_reports() -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate((SAMPLES / "reports.jsonl").read_text(encoding="utf-8").splitlines()):
        r = orjson.loads(line)
        r.update(
            report_id=f"demo-{i:03d}",
            submitted_at=now(),
            reporter={"name": "居民", "phone": f"1380000{i:04d}"},
        )
        out.append(r)
    out.append(
        {
            "report_id": "demo-bad",
            "source": "app",
            "submitted_at": now(),
            "location": {"building_code": "NOWHERE"},
            "description": "无效位置的测试报事",
        }
    )
    return out


async def play(settings: Settings, admin_dsn: str, feedback_url: str) -> int:
    records = load_registry_file(SAMPLES / "registry.yaml", default_taxonomy())
    await publish_registry(settings, records)
    await wait_registry(admin_dsn)
    reports = load_reports()
    console.print(
        f"[bold]registry loaded[/bold] ({len(records)} records); replaying {len(reports)} reports"
    )
    async with (
        Publisher(settings, source="demo/upstream") as pub,
        TopicReader(settings, *TOPICS) as reader,
    ):
        actors = Actors(pub, partial(unit_handler, admin_dsn), rating=demo_rating)
        for r in reports:
            await pub.send("reports.submitted", r, key=r["report_id"])
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            for rec in await reader.poll(200):
                await actors.react(rec)
            opened = {x.json()["case_id"] for x in reader.of("cases.opened")}
            closed = {x.json()["case_id"] for x in reader.of("cases.closed")}
            answered = (
                len(reader.of("cases.opened"))
                + len(reader.of("cases.merged"))
                + len(reader.of("reports.rejected"))
            )
            # done when every report is answered and every case closed (rated satisfied, or
            # unrated once the rating window, 20 s here, has passed)
            if answered >= len(reports) and opened and opened <= closed:
                break
        else:
            console.print("[yellow]not every case closed within 3 minutes[/yellow]")
        summary(reader, len(reports))
    show_metrics(feedback_url, issue_token(settings, role="command_centre", unit="WC"))
    return 0


def summary(reader: TopicReader, n_reports: int) -> None:
    def count(topic: str) -> int:
        return len(reader.of(topic))

    console.print()
    console.rule("[bold]what happened")
    for rec in reader.of("cases.opened")[:8]:
        ev = rec.json()
        console.print(
            f"  {ev['case_id']}  [cyan]{ev['category_name']}[/cyan]  "
            f"{ev['location']['grid'] or ev['location']['community']}  "
            f"{ev['description'][:28]}…"
        )
    table = Table(title="the loop 收集 → 处置 → 反馈 → 评价")
    table.add_column("step")
    table.add_column("count", justify="right")
    tiers = Counter(
        x.json()["tier"] for x in reader.of("cases.dispatched") if x.json()["attempt"] == 1
    )
    outcomes = Counter(x.json()["outcome"] for x in reader.of("cases.closed"))
    rows = [
        ("reports submitted", n_reports),
        ("rejected", count("reports.rejected")),
        ("cases opened", count("cases.opened")),
        ("merged into open cases (附议)", count("cases.merged")),
        *[(f"first dispatched at {t} tier", n) for t, n in sorted(tiers.items())],
        ("escalated", count("cases.escalated")),
        ("resolved (incl. after reopen)", count("cases.resolved")),
        ("follow-up requests (回访)", count("feedback.requested")),
        ("reopened (unsatisfied)", count("cases.reopened")),
        *[(f"closed: {o}", n) for o, n in sorted(outcomes.items())],
        ("handler actions rejected", count("handler.actions.rejected")),
    ]
    for step, n in rows:
        table.add_row(step, str(n))
    console.print(table)


def show_metrics(feedback_url: str, token: str) -> None:
    """The district's figures as the command centre reads them (its bearer token)."""
    import json
    import urllib.request

    period = period_of(datetime.now(UTC)).label  # Shanghai's month, as every period is
    request = urllib.request.Request(
        f"{feedback_url}/units/WC/metrics?period={period}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            data = json.load(r)
    except OSError as exc:
        console.print(f"(metrics not available: {exc})")
        return
    table = Table(title=f"{data['unit']['name']} (WC), {period}: what the district is judged by")
    for col in ("metric", "value", ""):
        table.add_column(col)
    for row in metric_rows(data["metrics"]):
        table.add_row(*row)
    console.print(table)


DEMO_PROJECT = "wangge-demo"


def main() -> int:
    run_dir = RUN / "demo"
    # Each demo starts from nothing: its own Kafka and PostgreSQL data are made anew (the sample
    # reports keep their ids, so a second run on old data would be ignored as duplicates).
    # On compose: a project of its own ("wangge-demo", never `make up`'s data), its volume dropped.
    stack.down(str(run_dir), project=DEMO_PROJECT, volumes=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    # A rating window of 20 s, so the demo also shows unrated closing; sweeps every second.
    os.environ.setdefault("WANGGE_FEEDBACK_WINDOW", "PT20S")
    os.environ.setdefault("WANGGE_SWEEP_INTERVAL_S", "1")
    try:
        stack.up(str(run_dir), project=DEMO_PROJECT)
        env = stack.read_env(Path(run_dir) / "env")
        settings = Settings(  # the residents open the follow-up requests with the notify key
            KAFKA_BOOTSTRAP_SERVERS=env["KAFKA_BOOTSTRAP_SERVERS"],
            WANGGE_NOTIFY_KEY=env["WANGGE_NOTIFY_KEY"],
            WANGGE_AUTH_JWT_SECRET=env["WANGGE_AUTH_JWT_SECRET"],  # the command centre's token
        )
        return asyncio.run(play(settings, env["DATABASE_URL"], env["FEEDBACK_URL"]))
    finally:
        stack.down(str(run_dir), project=DEMO_PROJECT, volumes=True)


if __name__ == "__main__":
    sys.exit(main())
