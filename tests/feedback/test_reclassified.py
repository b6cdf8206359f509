"""Feedback counts a case under the command centre's category (cases.reclassified, 人工分拨), on
the real broker and database: its hot issues follow the decision, an older decision or a late
cases.opened does not put the earlier category back."""

from __future__ import annotations

from datetime import timedelta

from cli.client import Publisher
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.feedback.helpers import http_get, new_case_id, opened, send, sh
from tests.samples import sample_registry, wait_registry

HOT = "/units/WC-YY-OJY/hot-issues?period=2026-10&top=5"


def reclassified(
    case_id: str, to: str, name: str, at: str, tier: str | None = None
) -> dict[str, object]:
    return {
        "to_default_tier": tier,
        "case_id": case_id,
        "from_category": "sanitation",
        "from_category_name": "环境卫生",
        "to_category": to,
        "to_category_name": name,
        "by": {"role": "command_centre", "unit": "WC"},
        "reclassified_at": at,
        "origin": "triage",
    }


async def test_the_figures_follow_the_command_centres_category(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    settings = bed.settings()
    await publish_registry(settings, sample_registry())
    await wait_registry(bed)
    decided, late = new_case_id(), new_case_id()
    decided_at = sh(10, 5, 10)
    async with Publisher(settings, source="test/upstream") as pub:
        await send(pub, "cases.opened", opened(decided, at=sh(10, 5, 9)))
        await send(pub, "cases.opened", opened(new_case_id(), at=sh(10, 6, 9)))
        await send(
            pub,
            "cases.reclassified",
            reclassified(decided, "parking", "停车管理", decided_at.isoformat(), "community"),
        )
        # a decision before cases.opened arrived (another topic): the opened one does not undo it
        await send(
            pub,
            "cases.reclassified",
            reclassified(late, "noise", "噪音扰民", decided_at.isoformat(), "grid"),
        )
        await send(pub, "cases.opened", opened(late, at=sh(10, 7, 9)))
        # an older decision, late: ignored
        older = (decided_at - timedelta(minutes=5)).isoformat()
        await send(
            pub,
            "cases.reclassified",
            reclassified(decided, "civility", "文明行为", older, "street"),
        )

        async def counts() -> dict[str, int] | None:
            status, body = await http_get(svc, HOT)
            assert status == 200, body
            got = {i["category"]: i["count"] for i in body["hot_issues"]}
            return got if sum(got.values()) == 3 else None

        got = await eventually(counts, timeout=30, what="three cases counted")

        async def all_three_decisions() -> bool:  # the older one too (the same partition)
            async with svc.pool.acquire() as conn:
                n = await conn.fetchval(
                    "SELECT count(*) FROM inbox WHERE consumer LIKE '%cases.reclassified%'"
                )
            return bool(n == 3)

        await eventually(all_three_decisions, timeout=30, what="the three decisions applied")
        got = await counts()
    assert got == {"sanitation": 1, "parking": 1, "noise": 1}
    _, body = await http_get(svc, HOT)
    names = {i["category"]: i["category_name"] for i in body["hot_issues"]}
    assert names["parking"] == "停车管理" and names["noise"] == "噪音扰民"
    # the default tier (大事不出社区率 reads it) follows the decision too, the late opened's
    # (none) and the older decision's (street) not
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT case_id, default_tier FROM cases WHERE case_id = ANY($1::text[])",
            [decided, late],
        )
    tiers = {r["case_id"]: r["default_tier"] for r in rows}
    assert tiers == {decided: "community", late: "grid"}
