"""插花地 on the real broker and database: a report at a building whose administrative district
differs from its serving community's travels the whole loop along the serving chain and is
counted there, and shown apart under its administrative chain.

The sample city's 钢都花园8栋 (QS-HWL-GDHY-G01-B08) belongs to 青山区 / 红卫路街道 / 钢都花园社区,
stands inside 武昌区's 和平苑第一网格 and is served by 和平苑社区 (``served_by: WC-YY-HPY``):

- intake's cases.opened places it under 武昌区 / 杨园街道 / 和平苑社区 / 和平苑第一网格, with the
  青山区 chain in ``location.administrative``;
- dispatch sends it to 和平苑第一网格's grid worker (h-0004), 和平苑社区 verifies it (h-0011); the
  青山区 chain reads the case over dispatch's and feedback's APIs, acts on nothing and has it in
  no work list;
- feedback counts it in 和平苑社区's, 杨园街道's and 武昌区's official figures (served_for_others
  says one of them is another's) and in none of 青山区's, which show it in served_elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.feedback.periods import period_of
from shared.contract.events import Handler, Unit
from shared.runtime.service import Service
from tests.feedback.helpers import token_of
from tests.samples import now_iso, report, sample_registry, wait_registry

B08 = "QS-HWL-GDHY-G01-B08"
SERVING = {"district": "WC", "street": "WC-YY", "community": "WC-YY-HPY", "grid": "WC-YY-HPY-G01"}
ADMINISTRATIVE = {
    "district": "QS",
    "street": "QS-HWL",
    "community": "QS-HWL-GDHY",
    "grid": "QS-HWL-GDHY-G01",
}


@asynccontextmanager
async def http(svc: Service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{svc.name}") as client:
        yield client


async def get(client: httpx.AsyncClient, path: str, token: str) -> tuple[int, Any]:
    resp = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    return resp.status_code, resp.json()


async def test_a_served_building_is_handled_and_counted_by_its_serving_community(
    bed: Testbed,
) -> None:
    await bed.start("intake")
    dispatch = await bed.start("dispatch")
    feedback = await bed.start("feedback")
    settings = bed.settings()
    await publish_registry(settings, sample_registry())
    await wait_registry(bed)

    rep = report(
        location={"building_code": B08},
        description="钢都花园8栋楼道垃圾堆了三天没人清运，异味很大",
        category="sanitation",
    )
    async with (
        Publisher(settings, source="test/upstream") as pub,
        TopicReader(
            settings, "cases.opened", "cases.dispatched", "feedback.requested", "cases.closed"
        ) as reader,
        http(dispatch) as dsp,
        http(feedback) as fbk,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        opened = (await reader.wait_for(lambda r: r.of("cases.opened"), what="opened"))[0].json()
        cid = opened["case_id"]
        assert opened["location"] == {
            **SERVING,
            "building": B08,
            "administrative": ADMINISTRATIVE,
        }
        assert opened["located_by"] == "building_code"

        # dispatched to the serving community's grid, its grid worker
        dispatched = (await reader.wait_for(lambda r: r.of("cases.dispatched")))[0].json()
        assert (dispatched["tier"], dispatched["unit"], dispatched["handler_id"]) == (
            "grid",
            "WC-YY-HPY-G01",
            "h-0004",
        )

        # the administrative chain reads it, acts on nothing and has it in no list
        admin_staff = bed.token("community_staff", "QS-HWL-GDHY", "h-9001")
        admin_centre = bed.token("command_centre", "QS")
        for token in (admin_staff, admin_centre):
            status, body = await get(dsp, f"/cases/{cid}", token)
            assert status == 200, body
            assert body["unit"] == "WC-YY-HPY-G01" and body["administrative"] == ADMINISTRATIVE
            assert body["actions"] == []
            status, _ = await get(dsp, "/me/cases", token)
            assert status == 200 and cid not in str(_)
            resp = await dsp.post(
                f"/cases/{cid}/actions",
                json={"action": "transfer", "target_unit": "QS-HWL-GDHY-G01", "note": "我们的楼"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 404, resp.text
        # another district's command centre, neither serving nor administrative: nothing
        status, _ = await get(dsp, f"/cases/{cid}", bed.token("command_centre", "HK"))
        assert status == 404
        # the serving chain works it: its grid worker's list, then the loop with 核查
        worker = bed.token("grid_worker", "WC-YY-HPY-G01", "h-0004")
        status, mine = await get(dsp, "/me/cases", worker)
        assert status == 200 and [c["case_id"] for c in mine["items"]] == [cid]
        status, body = await get(dsp, f"/cases/{cid}", worker)
        assert "accept" in body["actions"] and body["administrative"] == ADMINISTRATIVE

        for i, (handler, action) in enumerate(
            (("h-0004", "accept"), ("h-0004", "resolve"), ("h-0011", "verify"))
        ):
            await pub.send(
                "handler.actions",
                {
                    "action_id": f"{cid}-{i}",
                    "case_id": cid,
                    "handler_id": handler,
                    "action": action,
                    "at": now_iso(),
                    "note": "已清运并消杀",
                },
                key=cid,
            )
        request = (await reader.wait_for(lambda r: r.of("feedback.requested")))[0].json()
        await pub.send(
            "feedback.submitted",
            {
                "case_id": cid,
                "rating_token": token_of(request),
                "resolved": True,
                "satisfaction": "satisfied",
                "at": now_iso(),
            },
            key=cid,
        )
        closed = (await reader.wait_for(lambda r: r.of("cases.closed")))[0].json()
        assert closed["outcome"] == "satisfied"

        # the figures: counted along the serving chain, shown apart under the administrative one
        month = period_of(datetime.now(UTC)).label

        async def figures(unit: str, district: str) -> dict[str, Any]:
            token = bed.token("command_centre", district)
            status, body = await get(fbk, f"/units/{unit}/metrics?period={month}", token)
            assert status == 200, body
            return dict(body)

        async def rated() -> dict[str, Any] | None:
            body = await figures("WC-YY-HPY", "WC")
            return body if body["metrics"]["ratings"] == 1 else None

        hpy = await eventually(rated, timeout=30, what="the rating in 和平苑社区's figures")
        assert hpy is not None
        assert hpy["metrics"]["received"] == 1 and hpy["metrics"]["resolved"] == 1
        satisfied = hpy["metrics"]["satisfaction_rate"]
        assert satisfied == {"rate": 1.0, "numerator": 1, "denominator": 1}
        assert hpy["served_elsewhere"] is None
        assert hpy["served_for_others"] == {
            "administrative": [{"code": "QS-HWL-GDHY", "name": "钢都花园社区"}],
            "received": 1,
            "resolved": 1,
            "ratings": 1,
        }
        for unit in ("WC-YY-HPY-G01", "WC-YY", "WC"):
            body = await figures(unit, "WC")
            assert body["metrics"]["received"] == 1, unit
            assert body["served_for_others"]["received"] == 1, unit
        for unit in ("WC-YY-OJY", "WC-ZHL"):  # the serving chain's other units: none of it
            body = await figures(unit, "WC")
            assert body["metrics"]["received"] == 0 and body["served_for_others"] is None

        for unit in ("QS-HWL-GDHY", "QS-HWL", "QS", "QS-HWL-GDHY-G01"):
            body = await figures(unit, "QS")
            official = body["metrics"]
            assert (official["received"], official["resolved"], official["ratings"]) == (0, 0, 0)
            apart = body["served_elsewhere"]
            assert apart["serving"] == [{"code": "WC-YY-HPY", "name": "和平苑社区"}], unit
            shown = apart["metrics"]
            assert (shown["received"], shown["resolved"], shown["ratings"]) == (1, 1, 1), unit
            assert shown["satisfaction_rate"]["rate"] == 1.0
            assert shown["kept_in_grid_rate"] == {"rate": 1.0, "numerator": 1, "denominator": 1}
            assert body["served_for_others"] is None
        # the building itself: one unit, in both chains: its cases as they are
        building = await figures(B08, "QS")
        assert building["metrics"]["received"] == 1 and building["served_elsewhere"] is None

        # the rankings rank official figures only: 钢都花园社区 has none
        token = bed.token("command_centre", "QS")
        status, ranking = await get(fbk, f"/units/QS-HWL/ranking?period={month}", token)
        assert status == 200 and ranking["ranking"][0]["received"] == 0
        # the administrative chain reads the case's timeline in feedback too; another does not
        status, view = await get(fbk, f"/cases/{cid}", admin_staff)
        assert status == 200 and view["state"] == "closed"
        status, _ = await get(fbk, f"/cases/{cid}", bed.token("community_staff", "WC-YY-OJY"))
        assert status == 404


async def test_a_served_grid_is_reached_and_listed_by_its_serving_chain(bed: Testbed) -> None:
    """A grid of 钢都花园社区 served by 青和居社区 (中华路街道, 武昌区): its cases are at that grid,
    which the serving chain reaches and lists (its command centre's work, an escalation to the
    serving community) and the administrative chain only reads."""
    await bed.start("intake")
    dispatch = await bed.start("dispatch")
    settings = bed.settings()
    grid = "QS-HWL-GDHY-G02"
    extra: list[Any] = [
        Unit(
            code=grid,
            name="钢都花园第二网格",
            level="grid",
            parent="QS-HWL-GDHY",
            served_by="WC-ZHL-QHJ",
            area=[(114.3130, 30.5500), (114.3160, 30.5500), (114.3160, 30.5520)],
        ),
        Handler(id="h-9902", name="袁野", unit=grid, role="grid_worker"),
    ]
    await publish_registry(settings, [*sample_registry(), *extra])
    await wait_registry(bed, "h-9902")

    rep = report(location={"grid_code": grid}, description="路灯不亮了", category="sanitation")
    async with (
        Publisher(settings, source="test/upstream") as pub,
        TopicReader(settings, "cases.opened", "cases.dispatched") as reader,
        http(dispatch) as dsp,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        opened = (await reader.wait_for(lambda r: r.of("cases.opened"), what="opened"))[0].json()
        cid = opened["case_id"]
        assert opened["location"] == {
            "district": "WC",
            "street": "WC-ZHL",
            "community": "WC-ZHL-QHJ",
            "grid": grid,
            "building": None,
            "administrative": {**ADMINISTRATIVE, "grid": grid},
        }
        first = (await reader.wait_for(lambda r: r.of("cases.dispatched")))[0].json()
        assert (first["unit"], first["handler_id"]) == (grid, "h-9902")

        serving_centre = bed.token("command_centre", "WC")
        admin_centre = bed.token("command_centre", "QS")
        status, work = await get(dsp, "/me/cases", serving_centre)
        assert status == 200 and cid in [c["case_id"] for c in work["items"]]
        status, work = await get(dsp, "/me/cases", admin_centre)
        assert status == 200 and work["items"] == []
        status, body = await get(dsp, f"/cases/{cid}", admin_centre)
        assert status == 200 and body["actions"] == []
        status, body = await get(dsp, f"/cases/{cid}", serving_centre)
        assert status == 200 and "transfer" in body["actions"]

        # its grid worker escalates: to the serving community, which then has it
        worker = bed.token("grid_worker", grid, "h-9902")
        resp = await dsp.post(
            f"/cases/{cid}/actions",
            json={"action": "escalate", "note": "需社区协调"},
            headers={"Authorization": f"Bearer {worker}"},
        )
        assert resp.status_code == 200, resp.text
        again = await reader.wait_for(lambda r: r.of("cases.dispatched")[1:], what="escalated")
        assert (again[0].json()["tier"], again[0].json()["unit"]) == ("community", "WC-ZHL-QHJ")
        staff = bed.token("community_staff", "WC-ZHL-QHJ", "h-0012")
        status, mine = await get(dsp, "/me/cases", staff)
        assert status == 200 and [c["case_id"] for c in mine["items"]] == [cid]
        status, _ = await get(dsp, f"/cases/{cid}", bed.token("community_staff", "QS-HWL-GDHY"))
        assert status == 200  # the administrative community still reads it
