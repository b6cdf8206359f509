"""Merging duplicate reports (附议) on the real database: intake's handler run as the pipeline runs
it. One intake per module; each test uses its own category so that tests do not merge together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.infra import Infra
from devstack.testbed import create_testbed, destroy_testbed
from services.intake.merging import merge_lock_key
from shared.contract.events import CaseClosed
from shared.runtime.uow import UnitOfWork
from tests.intake.conftest import Running, handle, handle_batch, meta, start_intake
from tests.samples import report

B03 = "WC-YY-OJY-G01-B03"
B05 = "WC-YY-OJY-G01-B05"


@pytest.fixture(scope="module")
async def run(infra: Infra) -> AsyncIterator[Running]:
    bed = await create_testbed(infra.bootstrap, infra.admin_dsn)
    try:
        yield await start_intake(bed)
    finally:
        await destroy_testbed(bed, infra.admin_dsn)


def resident(i: int) -> dict[str, Any]:
    return {"name": f"居民{i}", "phone": f"139{i:08d}"}


def only(events: list[tuple[str, dict[str, Any]]], topic: str) -> dict[str, Any]:
    assert [t for t, _ in events] == [topic], events
    return events[0][1]


async def test_same_building_and_category_is_merged(run: Running) -> None:
    first = only(await handle(run, report(category="noise")), "cases.opened")
    second = report(
        category="noise",
        source="hotline_12345",
        reporter=resident(1),
        description="3栋楼下的广场舞音响太吵了，晚上十点还不停",
        households_affected=30,
        urgent=True,
    )
    merged = only(await handle(run, second), "cases.merged")
    assert merged["case_id"] == first["case_id"]
    assert merged["report_id"] == second["report_id"]
    assert merged["source"] == "hotline_12345"
    assert merged["supporter_count"] == 2
    assert merged["reporter_phone_masked"] == "139****0001"
    assert merged["reporter_ref"] != first["reporter_ref"]
    assert (merged["households_affected"], merged["urgent"]) == (30, True)
    notify = await run.svc.pool.fetch(
        "SELECT reporter_ref FROM case_supporters WHERE case_id = $1", first["case_id"]
    )
    assert {r["reporter_ref"] for r in notify} == {first["reporter_ref"], merged["reporter_ref"]}
    row = await run.svc.pool.fetchrow(
        "SELECT outcome, case_id FROM reports WHERE source = $1 AND report_id = $2",
        "hotline_12345",
        second["report_id"],
    )
    assert row is not None
    assert dict(row) == {"outcome": "merged", "case_id": first["case_id"]}


async def test_other_category_or_building_opens_a_new_case(run: Running) -> None:
    first = only(await handle(run, report(category="greening")), "cases.opened")
    other_building = report(category="greening", location={"building_code": B05})
    assert only(await handle(run, other_building), "cases.opened")["case_id"] != first["case_id"]
    other_category = report(category="civility")
    assert only(await handle(run, other_category), "cases.opened")["case_id"] != first["case_id"]


async def test_a_report_without_building_merges_within_its_grid(run: Running) -> None:
    first = only(await handle(run, report(category="parking")), "cases.opened")
    grid_only = report(category="parking", location={"grid_code": "WC-YY-OJY-G01"})
    grid_only["description"] = "网格里僵尸车占着车位好几个月了"
    assert only(await handle(run, grid_only), "cases.merged")["case_id"] == first["case_id"]


async def test_community_level_cases_merge_at_the_community(run: Running) -> None:
    at_community = {"address": "和平苑社区"}
    first = only(
        await handle(run, report(category="welfare", location=at_community)), "cases.opened"
    )
    assert first["location"]["community"] == "WC-YY-HPY" and first["location"]["grid"] is None
    again = report(category="welfare", location=at_community, reporter=resident(2))
    assert only(await handle(run, again), "cases.merged")["case_id"] == first["case_id"]


async def test_a_case_older_than_the_window_is_not_merged_into(run: Running) -> None:
    first = only(await handle(run, report(category="market_order")), "cases.opened")
    await run.svc.pool.execute(
        "UPDATE cases SET opened_at = now() - interval '73 hours' WHERE case_id = $1",
        first["case_id"],
    )
    late = only(await handle(run, report(category="market_order")), "cases.opened")
    assert late["case_id"] != first["case_id"]
    await run.svc.pool.execute(
        "UPDATE cases SET opened_at = now() - interval '71 hours' WHERE case_id = $1",
        late["case_id"],
    )
    within = only(await handle(run, report(category="market_order")), "cases.merged")
    assert within["case_id"] == late["case_id"]


async def test_a_closed_case_is_not_merged_into(run: Running) -> None:
    first = only(await handle(run, report(category="demolition")), "cases.opened")
    closed = CaseClosed(case_id=first["case_id"], outcome="satisfied", closed_at=datetime.now(UTC))
    async with run.svc.pool.acquire() as conn, conn.transaction():
        await run.intake.on_case_closed(UnitOfWork(conn, source="test"), closed, meta())
    again = only(await handle(run, report(category="demolition")), "cases.opened")
    assert again["case_id"] != first["case_id"]


async def test_the_same_reporter_seconding_twice_counts_once(run: Running) -> None:
    first = only(await handle(run, report(category="consultation")), "cases.opened")
    again = only(await handle(run, report(category="consultation")), "cases.merged")
    assert again["case_id"] == first["case_id"]
    assert again["supporter_count"] == 1
    assert again["reporter_ref"] == first["reporter_ref"]


async def test_concurrent_duplicates_open_exactly_one_case(run: Running) -> None:
    bodies = [
        report(category="safety_hazard", reporter=resident(100 + i), report_id=f"c-{i}")
        for i in range(8)
    ]
    results = await asyncio.gather(*(handle(run, b) for b in bodies))
    topics = sorted(t for events in results for t, _ in events)
    assert topics == ["cases.merged"] * 7 + ["cases.opened"]
    counts = sorted(p["supporter_count"] for ev in results for t, p in ev if t == "cases.merged")
    assert counts == list(range(2, 9))
    rows = await run.svc.pool.fetch(
        "SELECT supporter_count FROM cases WHERE category = 'safety_hazard'"
    )
    assert [r["supporter_count"] for r in rows] == [8]


def test_merge_lock_key_is_per_category_and_grid() -> None:
    lineage = {"building": B03, "grid": "G1", "community": "C1"}
    assert merge_lock_key("noise", lineage, B03) == merge_lock_key("noise", {"grid": "G1"}, "G1")
    assert merge_lock_key("noise", lineage, B03) != merge_lock_key("parking", lineage, B03)
    assert merge_lock_key("noise", {"community": "C1"}, "C1").endswith(":C1")


async def test_one_batch_opens_once_and_merges_the_rest_in_order(run: Running) -> None:
    """Reports of one batch, handled set-based: the first of a building opens the case, the
    others merge into it with rising counts; the same reporter twice counts once; a report
    repeated inside the batch is handled once; a bad one in the middle is rejected alone."""
    first = report(category="elderly_care", reporter=resident(100))
    twice = report(category="elderly_care", reporter=resident(101))
    bad = report(category="elderly_care", location={"building_code": "NO-SUCH-BUILDING"})
    bodies = [
        first,
        twice,
        bad,
        report(category="elderly_care", reporter=resident(102)),
        report(category="elderly_care", reporter=resident(101)),  # 101 again, another report
        twice,  # the very same report again
        report(category="elderly_care", reporter=resident(103), location={"building_code": B05}),
    ]
    events = await handle_batch(run, bodies)
    topics = [t for t, _ in events]
    assert topics == [
        "cases.opened",
        "cases.merged",
        "reports.rejected",
        "cases.merged",
        "cases.merged",
        "cases.opened",
    ]
    opened = events[0][1]
    merged = [e for t, e in events if t == "cases.merged"]
    assert {m["case_id"] for m in merged} == {opened["case_id"]}
    assert [m["supporter_count"] for m in merged] == [2, 3, 3]
    assert opened["report_ids"] == [first["report_id"]]
    assert events[-1][1]["case_id"] != opened["case_id"]  # another building: its own case
    async with run.svc.pool.acquire() as conn:
        count = await conn.fetchval(
            "SELECT supporter_count FROM cases WHERE case_id = $1", opened["case_id"]
        )
        outcomes = await conn.fetch(
            "SELECT outcome, count(*) AS n FROM reports WHERE report_id = ANY($1::text[]) "
            "GROUP BY outcome ORDER BY outcome",
            [b["report_id"] for b in bodies],
        )
    assert count == 3
    assert {r["outcome"]: r["n"] for r in outcomes} == {"merged": 3, "opened": 2, "rejected": 1}
