"""Work orders (派单/协办, 吹哨报到) and councils (议事会/联席会) counted per unit and period,
end to end on the real broker and database: dispatch with a controlled clock over its HTTP
API, feedback consuming cases.order_issued, cases.order_updated, cases.council_decided and the
order's red card (cases.overdue with its order_id), in ``GET /units/{code}/metrics``: each
unit's orders by the unit they were issued to (a street's and a district's departments rolled
up where they belong), the red card the ordered unit's and not among the case's own cards, the
councils by the case's place."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.dispatch.api_client import api
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch
from tests.feedback.helpers import http_get, sh

FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}
SZ, CGJ = "WC-YY-SZ", "WC-CGJ"


def orders(**counted: int) -> dict[str, int]:
    zero = dict.fromkeys(
        (
            "issued",
            "reported",
            "reported_on_time",
            "report_missed",
            "done",
            "done_on_time",
            "returned",
            "cancelled",
        ),
        0,
    )
    return {**zero, **counted}


async def test_each_units_orders_and_the_councils_in_the_period(bed: Testbed) -> None:
    clock = FakeClock(sh(12, 7, 9))  # Monday 7 December 2026, 09:00: report by 11:00
    svc = await start_dispatch(bed, clock, **FAST)
    feedback = await bed.start("feedback")
    await load_registry(bed)
    async with driving(bed, "test/intake") as d, api(bed, svc) as http:
        street = (await d.open(case_opened(households=100, opened_at=clock())))["case_id"]
        lead = http.auth("street_staff", "WC-YY", "h-0020")
        sz = http.auth("department_staff", SZ, "h-0022")
        cgj = http.auth("department_staff", CGJ, "h-0021")
        status, issued = await http.post(
            f"/cases/{street}/orders", lead, {"units": [SZ, CGJ], "note": "请到场"}
        )
        assert status == 200, issued
        ids = {o["unit"]: o["order_id"] for o in issued["orders"]}
        clock.advance(timedelta(hours=1))
        for body in ({"action": "report"}, {"action": "done", "note": "已修复"}):
            status, result = await http.post(f"/orders/{ids[SZ]}/actions", sz, body)
            assert status == 200, result
        clock.now = sh(12, 7, 11, 30)  # 城管 late: its red card
        await d.one("cases.overdue", street, order_id=ids[CGJ])
        status, result = await http.post(
            f"/orders/{ids[CGJ]}/actions", cgj, {"action": "return", "note": "非本单位职责"}
        )
        assert status == 200, result

        # a council on the community's case: one measure, to 杨园街道市政所
        community = (await d.open(case_opened(households=10, opened_at=clock())))["case_id"]
        staff = http.auth("community_staff", "WC-YY-OJY", "h-0010")
        for body in (
            {"action": "accept"},
            {"action": "deliberate", "decide_by": (clock() + timedelta(days=3)).isoformat()},
        ):
            status, result = await http.act(community, staff, body)
            assert status == 200, result
        status, decided = await http.post(
            f"/cases/{community}/council",
            staff,
            {
                "body": "欧景苑社区居民议事会",
                "meeting_date": "2026-12-07",
                "decision": "同意修复门前路灯",
                "votes": {"for": 9, "against": 0, "abstain": 2},
                "measures": [{"text": "修复门前路灯", "unit": SZ}],
            },
        )
        assert status == 200, decided
        await d.one("cases.council_decided", community)

    async def counted(code: str, key: str, period: str = "2026-12") -> Any:
        status, body = await http_get(feedback, f"/units/{code}/metrics?period={period}")
        assert status == 200, body
        return body["metrics"][key]

    sz_orders = orders(issued=2, reported=1, reported_on_time=1, done=1, done_on_time=1)

    async def all_counted() -> bool:
        return bool(await counted(SZ, "orders") == sz_orders) and bool(
            await counted("WC", "councils") == {"decisions": 1, "measures": 1}
        )

    await eventually(all_counted, timeout=30, what="feedback to count the orders")
    assert await counted(CGJ, "orders") == orders(issued=1, report_missed=1, returned=1)
    # the street counts its own department's orders; 城管 is the district's
    assert await counted("WC-YY", "orders") == sz_orders
    assert await counted("WC", "orders") == orders(
        issued=3,
        reported=1,
        reported_on_time=1,
        done=1,
        done_on_time=1,
        report_missed=1,
        returned=1,
    )
    assert await counted("WC-YY-OJY", "orders") == orders()  # the community ordered, was not
    assert await counted("WC-YY-OJY", "councils") == {"decisions": 1, "measures": 1}
    assert await counted("WC-YY-HPY", "councils") == {"decisions": 0, "measures": 0}
    # 城管's red card is the order's, not one of the street case's own cards
    assert (await counted("WC-YY", "warned"))["red"] == 0
    assert await counted(SZ, "orders", "2026-11") == orders()
