"""退单 on the real broker and database: a grid returns a case as not theirs; it waits in the
command centre's triage queue with who returned it, why and its text; the command centre puts it
in another category and it is dispatched again (attempt 2, a labelled example for intake); and
feedback counts the return (退单率) among the unit's dispatches."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.dispatch.api_client import G01, api
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch
from tests.feedback.helpers import http_get

SH = ZoneInfo("Asia/Shanghai")


async def test_a_returned_case_is_decided_by_the_command_centre_and_counted(
    bed: Testbed,
) -> None:
    # the 2nd of this month, 09:00 in Shanghai: both dispatches in the open period
    start = datetime.now(SH).replace(day=2, hour=9, minute=0, second=0, microsecond=0)
    clock = FakeClock(start)
    svc = await start_dispatch(bed, clock)
    feedback = await bed.start("feedback")
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        opened = case_opened(opened_at=start)
        await d.send("cases.opened", opened, opened.case_id)
        first = await d.one("cases.dispatched", opened.case_id, attempt=1)
        cid = first["case_id"]
        worker = http.worker()
        clock.advance(timedelta(minutes=20))
        status, body = await http.act(cid, worker, {"action": "return"})
        assert status == 422, body  # the reason is required
        status, body = await http.act(cid, worker, {"action": "return", "note": "不属于本网格"})
        assert status == 200, body
        returned = await d.one("cases.returned", cid)
        assert (returned["unit"], returned["handler_id"], returned["reason"]) == (
            G01,
            "h-0001",
            "不属于本网格",
        )
        # the grid no longer reaches it; the command centre has it in its queue
        status, _ = await http.get(f"/cases/{cid}", worker)
        assert status == 404
        status, queue = await http.get("/triage", http.centre())
        assert status == 200, queue
        (item,) = [i for i in queue["items"] if i["case_id"] == cid]
        assert item["reasons"] == ["returned"]
        assert (item["returned_by"], item["return_note"]) == (G01, "不属于本网格")
        assert item["description"] == "测试诉求" and item["excluded_units"] == [G01]

        clock.advance(timedelta(minutes=10))
        status, body = await http.post(f"/triage/{cid}", http.centre(), {"category": "parking"})
        assert status == 200, body
        again = await d.one("cases.dispatched", cid, attempt=2)
        assert again["category"] == "parking"
        decided = await d.one("cases.reclassified", cid)
        assert (decided["origin"], decided["from_category"], decided["to_category"]) == (
            "return",
            "sanitation",
            "parking",
        )
        status, queue = await http.get("/triage", http.centre())
        assert cid not in [i["case_id"] for i in queue["items"]]

    month = f"{start:%Y-%m}"

    async def counted() -> dict[str, Any]:
        status, body = await http_get(feedback, f"/units/{G01}/metrics?period={month}")
        assert status == 200, body
        rate = body["metrics"]["return_rate"]
        assert (rate["numerator"], rate["denominator"]) == (1, 2), rate
        return dict(rate)

    assert (await eventually(counted, what="the return counted"))["rate"] == 0.5
    status, view = await http_get(feedback, f"/cases/{cid}")
    assert [e["event"] for e in view["timeline"]][:4] == [
        "opened",
        "dispatched",
        "returned",
        "dispatched",
    ]
