"""Duplicates across channels and 未诉先办 hotspots on the real broker and database: reports on
reports.submitted, cases.opened / cases.merged out, GET /hotspots as the command centre calls it."""

from __future__ import annotations

from typing import Any

import httpx

from cli.client import Publisher, Record, TopicReader
from devstack.testbed import Testbed
from services.intake.coords import from_wgs84
from tests.intake.conftest import start_intake
from tests.samples import report

B11 = "WC-YY-OJY-G02-B11"  # 欧景苑11栋, (114.3330, 30.5810), in grid G02


def body_of(records: list[Record], report_id: str) -> list[dict[str, Any]]:
    out = []
    for r in records:
        body = r.json() or {}
        if body.get("report_id") == report_id or report_id in body.get("report_ids", []):
            out.append(body)
    return out


async def test_an_app_report_in_gcj02_joins_the_hotline_case_of_the_same_matter(
    bed: Testbed,
) -> None:
    await start_intake(bed)
    hotline = report(
        source="hotline_12345",
        category="ebike_charging",
        location={"building_code": B11},
        description="来电人反映：11栋三楼住户从窗户拉电线到楼下给电动车充电，电线悬在半空，"
        "雨天存在隐患，要求尽快处理。",
    )
    # a resident's phone 95 m west of 11栋, in the next grid (G01), as AMap reports it: GCJ-02
    lon, lat = from_wgs84(114.3320, 30.5810, "gcj02")
    app = report(
        source="app",
        category="ebike_charging",
        reporter={"name": "李先生", "phone": "13900001111"},
        location={"lon": lon, "lat": lat, "crs": "gcj02"},
        description="11栋三楼有人从窗户拉电线下来给电瓶车充电，线挂在半空中，下雨天很危险",
    )
    other = report(  # the same place and category, another matter
        source="app",
        category="ebike_charging",
        reporter={"name": "赵女士", "phone": "13900002222"},
        location={"lon": lon, "lat": lat, "crs": "gcj02"},
        description="小区一个充电桩都没有，电梯里天天挤满电瓶车，能不能装几个充电桩",
    )
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), "cases.opened", "cases.merged") as reader,
    ):
        await pub.send("reports.submitted", hotline, key=hotline["report_id"])
        await reader.wait_for(
            lambda rd: body_of(rd.records, hotline["report_id"]), what="the hotline case"
        )
        for r in (app, other):
            await pub.send("reports.submitted", r, key=r["report_id"])
        await reader.wait_for(
            lambda rd: (
                body_of(rd.records, app["report_id"]) and body_of(rd.records, other["report_id"])
            ),
            what="the app reports' outcomes",
        )
        records = reader.records
    (case,) = body_of(records, hotline["report_id"])
    (merged,) = body_of(records, app["report_id"])
    (opened,) = body_of(records, other["report_id"])
    # the resident's channel is told on cases.merged, by its report id (附议)
    assert merged["case_id"] == case["case_id"]
    assert merged["source"] == "app" and merged["merged_by"] == "nearby"
    assert merged["supporter_count"] == 2
    assert opened["case_id"] != case["case_id"] and opened["source"] == "app"
    # located by its converted point: grid G01 (unconverted it is ~500 m away, outside)
    assert opened["location"]["grid"] == "WC-YY-OJY-G01" and opened["located_by"] == "point"


async def test_a_burst_opens_one_proactive_case_listed_for_the_command_centre(
    bed: Testbed,
) -> None:
    run = await start_intake(bed, hotspot_min_reports=2)
    texts = {
        "WC-YY-OJY-G01-B03": "3栋楼前的老树歪了，刮风就响，怕倒下来砸人",
        "WC-YY-OJY-G01-B05": "5栋旁边的绿化带被人铲了种菜",
        B11: "11栋门口的草坪被车压秃了，黄土都露出来了",
    }
    first, second, third = (
        report(category="greening", location={"building_code": b}, description=t)
        for b, t in texts.items()
    )
    reports = [first, second]
    later = report(
        category="greening",
        location={"address": "欧景苑社区"},
        description="小区中心花园的灌木被人拔了一大片",
    )
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), "cases.opened", "cases.merged") as reader,
    ):
        for r in reports:
            await pub.send("reports.submitted", r, key=r["report_id"])
        records = await reader.wait_for(
            lambda rs: (
                any((x.json() or {}).get("source") == "proactive" for x in rs.records)
                and all(body_of(rs.records, r["report_id"]) for r in reports)
            ),
            what="the proactive case",
        )
        for r in (third, later):
            await pub.send("reports.submitted", r, key=r["report_id"])
        await reader.wait_for(
            lambda rs: (
                body_of(rs.records, third["report_id"]) and body_of(rs.records, later["report_id"])
            ),
            what="the later reports' cases",
        )
        records = reader.records
    tasks = [x.json() for x in records if (x.json() or {}).get("source") == "proactive"]
    assert len(tasks) == 1  # once per burst: the third case extends it
    task = tasks[0]
    assert task["category"] == "greening" and task["report_ids"] == []
    assert task["location"] == {
        "district": "WC",
        "street": "WC-YY",
        "community": "WC-YY-OJY",
        "grid": None,
        "building": None,
    }
    assert task["anonymous"] is True and task["title"].startswith("未诉先办")
    assert "2件" in task["description"]
    # a resident's report of the community joins the task (附议)
    (joined,) = body_of(records, later["report_id"])
    assert joined["case_id"] == task["case_id"] and joined["supporter_count"] == 2
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=run.svc.app), base_url="http://intake"
    ) as http:
        centre = {"Authorization": f"Bearer {bed.token('command_centre', 'WC')}"}
        got = await http.get("/hotspots", headers=centre, params={"active": "true"})
        assert got.status_code == 200, got.text
        (spot,) = got.json()["hotspots"]
        assert spot["case_id"] == task["case_id"] and spot["active"] is True
        assert spot["community"] == {"code": "WC-YY-OJY", "name": "欧景苑社区"}
        assert (spot["reports"], spot["peak"], spot["case_status"]) == (2, 3, "open")
        elsewhere = {"Authorization": f"Bearer {bed.token('command_centre', 'WC-ZHL')}"}
        assert (await http.get("/hotspots", headers=elsewhere)).json()["hotspots"] == []
        worker = {"Authorization": f"Bearer {bed.token('grid_worker', 'WC-YY-OJY-G01')}"}
        assert (await http.get("/hotspots", headers=worker)).status_code == 403
        assert (await http.get("/hotspots")).status_code == 401
        bad = await http.get("/hotspots", headers=centre, params={"days": "0"})
        assert bad.status_code == 422
        doc = (await http.get("/openapi.json")).json()
        assert "/hotspots" in doc["paths"]
