"""Tier decision and assignment on the real broker and database: cases.opened and cases.merged in,
cases.dispatched (and cases.escalated) out."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.events import CaseMerged, Handler
from tests.dispatch.support import (
    FakeClock,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
)

QHJ_G01 = {
    "district": "WC",
    "street": "WC-ZHL",
    "community": "WC-ZHL-QHJ",
    "grid": "WC-ZHL-QHJ-G01",
}


def span(d: dict[str, object], field: str) -> timedelta:
    return datetime.fromisoformat(str(d[field])) - datetime.fromisoformat(str(d["dispatched_at"]))


async def test_tiers_units_and_handlers(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock)
    off_duty = Handler(
        id="h-0005", name="陈静", unit="WC-ZHL-QHJ-G01", role="grid_worker", on_duty=False
    )
    await load_registry(bed, off_duty)
    await eventually(
        lambda: svc.pool.fetchval("SELECT NOT on_duty FROM handlers WHERE id = 'h-0005'"),
        what="h-0005 off duty",
    )
    async with driving(bed, "test/intake") as d:
        # 小事不出网格: a grid matter stays in its grid, with the least busy on-duty handler
        first = await d.open(case_opened())
        assert (first["tier"], first["unit"], first["handler_id"]) == (
            "grid",
            "WC-YY-OJY-G01",
            "h-0001",
        )
        assert first["tier_reasons"] == ["category default: grid"]
        assert span(first, "respond_by") == timedelta(hours=2)
        assert span(first, "resolve_by") == timedelta(hours=24)
        second = await d.open(case_opened())
        assert second["handler_id"] == "h-0002"  # h-0001 has one open case now

        # households raise the tier; the reasons travel with the case
        many = await d.open(case_opened(households=12))
        assert (many["tier"], many["unit"], many["handler_id"]) == (
            "community",
            "WC-YY-OJY",
            "h-0010",
        )
        assert "households_affected >= 10: at least community" in many["tier_reasons"]
        assert span(many, "resolve_by") == timedelta(days=3)
        huge = await d.open(case_opened(households=150))
        # street tier, nobody owns sanitation: the street office itself
        assert (huge["tier"], huge["unit"], huge["handler_id"]) == ("street", "WC-YY", "h-0020")

        # a second community case: still h-0010, the party volunteer h-0013 is never auto-assigned
        parking = await d.open(case_opened(category="parking"))
        assert (parking["unit"], parking["handler_id"]) == ("WC-YY-OJY", "h-0010")

        # street tier goes to the owning department: the street's own, else the district's (城管)
        lamp = await d.open(case_opened(category="municipal_facility"))
        assert (lamp["tier"], lamp["unit"], lamp["handler_id"]) == ("street", "WC-YY-SZ", "h-0022")
        shed = await d.open(case_opened(category="illegal_construction"))
        assert (shed["tier"], shed["unit"], shed["handler_id"]) == ("street", "WC-CGJ", "h-0021")
        demolition = await d.open(case_opened(category="demolition"))
        assert (demolition["tier"], demolition["unit"]) == ("district", "WC-FWJ")
        assert span(demolition, "resolve_by") == timedelta(days=15)
        other_street = await d.open(case_opened(category="municipal_facility", location=QHJ_G01))
        assert other_street["unit"] == "WC-ZHL"  # 中华路 has no 市政所: its street office

        # nobody on duty: the unit as a whole
        alone = await d.open(case_opened(location=QHJ_G01))
        assert (alone["unit"], alone["handler_id"]) == ("WC-ZHL-QHJ-G01", None)

        # urgent or safety hazard: respond within 30 minutes, whatever the tier
        urgent = await d.open(case_opened(urgent=True))
        assert urgent["tier"] == "grid" and span(urgent, "respond_by") == timedelta(minutes=30)
        assert span(urgent, "resolve_by") == timedelta(hours=24)
        hazard = await d.open(case_opened(category="safety_hazard"))
        assert hazard["tier"] == "community" and span(hazard, "respond_by") == timedelta(minutes=30)

        # 5 merged reports (附议) raise a grid case to its community: a new dispatch, attempt 2
        cid = first["case_id"]
        for n in (2, 5):
            merged = CaseMerged(
                case_id=cid,
                report_id=f"r-{n}",
                source="app",
                merged_at=clock(),
                supporter_count=n,
                reporter_ref=f"ref-{n}",
            )
            await d.send("cases.merged", merged, cid)
        raised = await d.one("cases.dispatched", cid, attempt=2)
        assert (raised["tier"], raised["unit"], raised["handler_id"]) == (
            "community",
            "WC-YY-OJY",
            "h-0010",
        )
        assert "5 or more merged reports: at least community" in raised["tier_reasons"]
        esc = await d.one("cases.escalated", cid)
        assert (esc["from_tier"], esc["to_tier"], esc["unit"]) == ("grid", "community", "WC-YY-OJY")
        assert esc["reason"].startswith("rules: ")

        # a merge that overtakes its case is kept and applied when the case arrives
        early = case_opened()
        await d.send(
            "cases.merged",
            CaseMerged(
                case_id=early.case_id,
                report_id="r-early",
                source="app",
                merged_at=clock(),
                supporter_count=6,
                reporter_ref="ref-early",
            ),
            early.case_id,
        )
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT 1 FROM early_merges WHERE case_id = $1", early.case_id
            ),
            what="early merge stored",
        )
        late = await d.open(early)
        assert late["tier"] == "community" and late["attempt"] == 1

        # a merged report marked urgent shortens the response deadline of an unaccepted case
        calm = (await d.open(case_opened(location=QHJ_G01)))["case_id"]
        await d.send(
            "cases.merged",
            CaseMerged(
                case_id=calm,
                report_id="r-urgent",
                source="app",
                merged_at=clock(),
                supporter_count=2,
                reporter_ref="ref-urgent",
                urgent=True,
            ),
            calm,
        )
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT respond_by - dispatched_at = interval '30 minutes' FROM cases "
                "WHERE case_id = $1",
                calm,
            ),
            what="response deadline shortened",
        )

        await d.drain()
        assert len(d.of("cases.dispatched", cid)) == 2  # the merge of 2 changed nothing
        assert len(d.of("cases.dispatched", calm)) == 1  # a shorter deadline is no new dispatch


async def test_the_rules_file_can_be_replaced(bed: Testbed, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        """
rules:
  - when: {households_affected_at_least: 3}
    min_tier: district
    reason: "three households: district"
sla:
  grid: {respond: 1h, resolve: 10h}
  community: {respond: 2h, resolve: 1d}
  street: {respond: 3h, resolve: 2d}
  district: {respond: 4h, resolve: 3d}
""",
        encoding="utf-8",
    )
    await start_dispatch(bed, WANGGE_TIER_RULES_FILE=str(rules))
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        grid = await d.open(case_opened())
        assert span(grid, "respond_by") == timedelta(hours=1)
        assert span(grid, "resolve_by") == timedelta(hours=10)
        three = await d.open(case_opened(households=3))
        assert (three["tier"], three["unit"]) == ("district", "WC")
        assert three["tier_reasons"] == ["category default: grid", "three households: district"]
