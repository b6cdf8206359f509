"""The command centre's triage queue (人工分拨) on the real broker and database: a case opened with
needs_triage is held, not dispatched; the command centre sees it in GET /triage and decides its
category over HTTP; dispatch then dispatches it by that category and publishes cases.reclassified
and cases.dispatched. A dispatched case's category may be corrected too (POST
/cases/{id}/reclassify), which dispatches it again. Roles, reach, bad input, the state's rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.events import CaseMerged, CaseOpened, Classification
from tests.dispatch.api_client import G01, OJY, Api, api
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch

QUIET = 3600.0  # seconds between sweeps: none after the first, the clock is the test's


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def held(category: str = "sanitation", **over: Any) -> CaseOpened:
    """A case intake was not sure of: below the threshold, with its best three."""
    ev = case_opened(category=category)
    classification = Classification(method="test", terms=["垃圾"], confidence=0.31)
    return ev.model_copy(
        update={
            "needs_triage": True,
            "triage_reasons": ["low_confidence"],
            "classification": classification,
            "title": "楼下的事",
            "description": "楼下一直有人堆东西，电话138****5678",
            **over,
        }
    )


async def queued(http: Api, token: str, case_id: str) -> dict[str, Any]:
    """The case's item in the caller's triage queue, once it is there."""

    async def find() -> dict[str, Any] | None:
        status, body = await http.get("/triage", token)
        assert status == 200, body
        found = [i for i in body["items"] if i["case_id"] == case_id]
        return found[0] if found else None

    item = await eventually(find, timeout=20, what=f"{case_id} in the triage queue")
    assert isinstance(item, dict)
    return item


async def test_a_held_case_waits_for_the_command_centre_and_goes_by_its_decision(
    bed: Testbed,
) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d, api(bed, svc) as http:
        centre = http.centre("WC")
        ev = held()
        entered_at = clock.now
        await d.send("cases.opened", ev, ev.case_id)
        item = await queued(http, centre, ev.case_id)
        assert item == {
            **item,
            "reasons": ["low_confidence"],
            "category": "sanitation",
            "category_name": "环境卫生",
            "confidence": 0.31,
            "suggestions": [
                {"category": "sanitation", "category_name": "环境卫生", "probability": 0.31}
            ],
            "moderation": [],
            "title": "楼下的事",
            "description": "楼下一直有人堆东西，电话138****5678",
            "grid": G01,
            "supporters": 1,
        }
        assert at(item["since"]) == entered_at

        # held by the district, nobody's, no clock running; the grid neither sees nor has it
        status, case = await http.get(f"/cases/{ev.case_id}", centre)
        assert status == 200, case
        assert (case["state"], case["unit"], case["handler_id"]) == ("triage", "WC", None)
        assert (case["respond_by"], case["resolve_by"], case["actions"]) == (None, None, [])
        assert (await http.get(f"/cases/{ev.case_id}", http.worker("h-0001")))[0] == 404
        assert ev.case_id not in await http.my_case_ids(http.worker("h-0001"))
        status, body = await http.act(
            ev.case_id, centre, {"action": "transfer", "target_unit": "WC-YY-OJY-G02"}
        )
        assert status == 409 and "triage" in body["detail"], body

        # who may decide, and what
        path = f"/triage/{ev.case_id}"
        status, body = await http.post(path, centre, {"category": "no-such-category"})
        assert status == 422 and [e["field"] for e in body["errors"]] == ["body.category"], body
        status, body = await http.post(path, centre, {"category": "parking", "by": "me"})
        assert status == 422 and [e["field"] for e in body["errors"]] == ["body.by"], body
        for token in (http.worker("h-0001"), http.auth("street_staff", "WC-YY", "h-0020")):
            assert (await http.post(path, token, {"category": "parking"}))[0] == 403
        assert (await http.post(path, http.auth("resident"), {"category": "parking"}))[0] == 403
        assert (await http.post(path, None, {"category": "parking"}))[0] == 401
        status, body = await http.post(path, http.centre("HK"), {"category": "parking"})
        assert (status, body["detail"]) == (404, "unknown case")
        assert (await http.get("/triage", http.centre("HK")))[1]["items"] == []

        decided_at = clock.advance(timedelta(minutes=30))
        status, body = await http.post(path, centre, {"category": "parking", "note": "占用车位"})
        assert status == 200, body
        assert (body["from_category"], body["to_category"]) == ("sanitation", "parking")
        assert at(body["at"]) == decided_at
        assert body["by"] == {
            "role": "command_centre",
            "unit": "WC",
            "handler_id": None,
            "subject": "command_centre:WC",
        }
        now = body["case"]
        # parking's default tier is community: its unit, and its deadlines from the decision
        assert (now["state"], now["tier"], now["unit"], now["category"]) == (
            "dispatched",
            "community",
            OJY,
            "parking",
        )
        assert at(now["respond_by"]) == decided_at + timedelta(hours=4)

        reclassified = await d.one("cases.reclassified", ev.case_id)
        assert reclassified == {
            **reclassified,
            "from_category": "sanitation",
            "from_category_name": "环境卫生",
            "to_category": "parking",
            "to_category_name": "停车管理",
            "origin": "triage",
            "note": "占用车位",
            "by": body["by"],
        }
        assert at(reclassified["reclassified_at"]) == decided_at
        dispatched = await d.one("cases.dispatched", ev.case_id)
        assert (dispatched["attempt"], dispatched["category"], dispatched["unit"]) == (
            1,
            "parking",
            OJY,
        )
        assert at(dispatched["dispatched_at"]) == decided_at
        # dispatched once, on the decision, never on the guess
        await d.drain()
        assert len(d.of("cases.dispatched", ev.case_id)) == 1

        assert ev.case_id not in [
            i["case_id"] for i in (await http.get("/triage", centre))[1]["items"]
        ]
        status, body = await http.post(path, centre, {"category": "parking"})
        assert status == 409 and "not awaiting triage" in body["detail"], body

        status, case = await http.get(f"/cases/{ev.case_id}", centre)
        steps = [(s["event"], s["from_state"], s["to_state"]) for s in case["timeline"]]
        assert steps == [("triage", None, "triage"), ("reclassify", "triage", "dispatched")]
        assert case["timeline"][1]["handler_id"] == "command_centre.WC"
        assert case["timeline"][1]["detail"]["from_category"] == "sanitation"
        assert case["start_tier"] == "community"
        async with svc.pool.acquire() as conn:  # the masked text is gone with the entry
            assert await conn.fetchval("SELECT count(*) FROM triage") == 0


async def test_the_queue_is_oldest_first_and_merges_wait_with_the_case(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d, api(bed, svc) as http:
        centre = http.centre("WC")
        first = held(moderation=["insult"], triage_reasons=["moderation"])
        await d.send("cases.opened", first, first.case_id)
        await queued(http, centre, first.case_id)
        clock.advance(timedelta(minutes=5))
        second = held()
        await d.send("cases.opened", second, second.case_id)
        await queued(http, centre, second.case_id)
        status, body = await http.get("/triage", centre)
        mine = [i["case_id"] for i in body["items"]]
        assert mine == [first.case_id, second.case_id] and body["total"] == 2
        assert body["items"][0]["moderation"] == ["insult"]
        assert body["items"][0]["waiting_s"] == 300.0
        status, page = await http.get("/triage?limit=1&offset=1", centre)
        assert [i["case_id"] for i in page["items"]] == [second.case_id] and page["total"] == 2

        # five reports on the held case: it stays held, and the decision's tier counts them
        merge = CaseMerged(
            case_id=second.case_id,
            report_id="r-5",
            source="app",
            merged_at=clock.now,
            supporter_count=5,
            reporter_ref="ref-5",
        )
        await d.send("cases.merged", merge, second.case_id)

        async def merged() -> bool:
            return bool((await queued(http, centre, second.case_id))["supporters"] == 5)

        await eventually(merged, timeout=20, what="the merge on the held case")
        status, case = await http.get(f"/cases/{second.case_id}", centre)
        assert case["state"] == "triage"
        status, body = await http.post(
            f"/triage/{second.case_id}", centre, {"category": "sanitation"}
        )
        assert status == 200, body  # the guess confirmed: still a decision, still published
        assert (body["case"]["tier"], body["case"]["unit"]) == ("community", OJY)
        event = await d.one("cases.reclassified", second.case_id)
        assert (event["from_category"], event["to_category"]) == ("sanitation", "sanitation")
        await d.drain()
        assert d.of("cases.dispatched", first.case_id) == []


async def test_the_command_centre_corrects_a_dispatched_case(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d, api(bed, svc) as http:
        centre = http.centre("WC")
        sent = await d.open(case_opened())
        cid = sent["case_id"]
        assert (sent["unit"], sent["attempt"]) == (G01, 1)
        worker = http.worker("h-0001")
        assert (await http.act(cid, worker, {"action": "accept"}))[0] == 200

        path = f"/cases/{cid}/reclassify"
        assert (await http.post(path, worker, {"category": "parking"}))[0] == 403
        assert (await http.post(path, http.centre("HK"), {"category": "parking"}))[0] == 404
        status, body = await http.post(path, centre, {"category": "sanitation"})
        assert status == 409 and "already in category sanitation" in body["detail"], body
        status, body = await http.post(f"/triage/{cid}", centre, {"category": "parking"})
        assert status == 409 and "not awaiting triage" in body["detail"], body

        corrected_at = clock.advance(timedelta(hours=1))
        status, body = await http.post(path, centre, {"category": "illegal_construction"})
        assert status == 200, body
        # 违法建设: street tier, the district's enforcement department (城管执法局) takes it
        assert (body["case"]["state"], body["case"]["tier"]) == ("dispatched", "street")
        event = await d.one("cases.reclassified", cid)
        assert (event["origin"], event["to_category"], event["to_category_name"]) == (
            "correction",
            "illegal_construction",
            "违法建设",
        )
        again = await d.one("cases.dispatched", cid, attempt=2)
        assert (again["category"], again["tier"], again["unit"]) == (
            "illegal_construction",
            "street",
            body["case"]["unit"],
        )
        assert at(again["dispatched_at"]) == corrected_at
        assert cid not in await http.my_case_ids(worker)  # no longer the grid's

        # a resolved case is not corrected
        unit_token = http.auth("department_staff", body["case"]["unit"], "h-0021")
        status, _ = await http.act(cid, unit_token, {"action": "accept"})
        assert status == 200
        status, _ = await http.act(cid, unit_token, {"action": "resolve", "note": "已拆除"})
        assert status == 200
        status, body = await http.post(path, centre, {"category": "parking"})
        assert status == 409 and "verifying" in body["detail"], body  # nor one being verified
        status, _ = await http.act(cid, worker, {"action": "verify"})  # the grid verifies
        assert status == 200
        status, body = await http.post(path, centre, {"category": "parking"})
        assert status == 409 and "resolved" in body["detail"], body
