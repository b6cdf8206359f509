"""The handler API on the real broker and database: a handler's cases, a case with its timeline,
actions over HTTP going the way of handler.actions (the token's handler, the server's time, the
same checks and events), reach and roles, refusals and their status codes, retries."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from devstack.testbed import Testbed
from services.dispatch.actions import DECIDE_BY_TOO_EARLY, DECIDE_BY_TOO_LATE
from tests.dispatch.api_client import G01, G02, OJY, api
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch

QUIET = 3600.0  # seconds between sweeps: none after the first, the clock is the test's


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def item(listing: dict[str, Any], case_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in listing["items"] if c["case_id"] == case_id]
    assert len(found) == 1, listing
    return found[0]


async def test_a_grid_worker_accepts_and_resolves_a_case_over_http(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        sent = await d.open(case_opened())
        cid = sent["case_id"]
        assert sent["handler_id"] == "h-0001"
        me = http.worker("h-0001")

        mine = item(await http.my_cases(me), cid)
        assert mine == {
            **mine,
            "state": "dispatched",
            "tier": "grid",
            "unit": G01,
            "handler_id": "h-0001",
            "assigned_to_me": True,
            "category": "sanitation",
            "due": "on_track",
        }
        assert mine["next_deadline"] == {"kind": "respond", "at": mine["respond_by"]}
        assert at(mine["respond_by"]) == at(sent["respond_by"])

        # who and when are the token's and the server's: a body naming them is refused
        for extra in ({"handler_id": "h-0002"}, {"at": "2020-01-01T00:00:00+00:00"}):
            status, body = await http.act(cid, me, {"action": "accept", **extra})
            assert status == 422, body
            assert [e["field"] for e in body["errors"]] == [f"body.{next(iter(extra))}"]

        accepted_at = clock.advance(timedelta(minutes=10))
        status, body = await http.act(cid, me, {"action": "accept"})
        assert status == 200, body
        assert (body["action"], body["handler_id"], body["duplicate"]) == (
            "accept",
            "h-0001",
            False,
        )
        assert at(body["at"]) == accepted_at
        assert body["case"]["state"] == "accepted" and body["case"]["due"] == "on_track"
        event = await d.one("cases.accepted", cid)
        assert (event["handler_id"], event["on_time"]) == ("h-0001", True)
        assert at(event["accepted_at"]) == accepted_at

        status, body = await http.act(cid, me, {"action": "resolve"})
        assert status == 422 and body["errors"][0]["field"] == "body.note"

        resolved_at = clock.advance(timedelta(hours=1))
        status, body = await http.act(cid, me, {"action": "resolve", "note": "已清运"})
        assert status == 200, body
        # resolved: its verification (核查) by the community runs now
        assert body["case"]["state"] == "verifying" and body["case"]["due"] == "on_track"
        event = await d.one("cases.resolved", cid)
        assert (event["handler_id"], event["note"], event["on_time"]) == ("h-0001", "已清运", True)
        assert at(event["resolved_at"]) == resolved_at

        status, case = await http.get(f"/cases/{cid}", me)
        assert status == 200, case
        assert (case["state"], case["resolved_tier"], case["actions"]) == ("verifying", "grid", [])
        assert cid in await http.my_case_ids(me)  # awaiting verification: it may come back

        community = http.auth("community_staff", "WC-YY-OJY", "h-0010")
        status, body = await http.act(cid, community, {"action": "verify"})
        assert status == 200, body
        assert body["case"]["state"] == "resolved" and body["case"]["due"] is None
        status, case = await http.get(f"/cases/{cid}", me)
        steps = [(s["event"], s["to_state"], s["handler_id"]) for s in case["timeline"]]
        assert steps == [
            ("dispatched", "dispatched", "h-0001"),
            ("accept", "accepted", "h-0001"),
            ("resolve", "verifying", "h-0001"),
            ("verify", "resolved", "h-0010"),
        ]
        assert case["timeline"][1]["detail"]["action_id"].startswith("http:h-0001:")
        assert at(case["timeline"][2]["at"]) == resolved_at
        assert cid not in await http.my_case_ids(me)  # resolved: no longer open work


async def test_reach_roles_and_tokens(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        paths = (f"/cases/{cid}", "/me/cases")

        # another grid's worker: the case does not exist for them
        other = http.worker("h-0003", G02)
        unknown = await http.get("/cases/c-nope", other)
        assert unknown[0] == 404
        status, body = await http.get(f"/cases/{cid}", other)
        assert (status, body["detail"]) == (404, unknown[1]["detail"])
        status, body = await http.act(cid, other, {"action": "accept"})
        assert (status, body["detail"]) == (404, "unknown case")
        assert cid not in await http.my_case_ids(other)

        # no token, a bad one, a role that handles no case
        for path in paths:
            assert (await http.get(path, None))[0] == 401
            assert (await http.get(path, "not-a-jwt"))[0] == 401
            for role in ("resident", "ops"):
                status, body = await http.get(path, http.auth(role))
                assert status == 403, (path, role, body)
        assert (await http.act(cid, None, {"action": "accept"}))[0] == 401
        assert (await http.act(cid, http.auth("resident"), {"action": "accept"}))[0] == 403
        assert (await http.act(cid, http.auth("ops"), {"action": "accept"}))[0] == 403

        # the community's staff reach the case but are not of the unit it is assigned to
        staff = http.auth("community_staff", OJY, "h-0010")
        status, case = await http.get(f"/cases/{cid}", staff)
        assert status == 200 and case["actions"] == []
        status, body = await http.act(cid, staff, {"action": "accept"}, key="k-staff")
        assert status == 403, body
        assert body["detail"] == "handler is neither the assigned handler nor of the assigned unit"
        assert await d.rejected("http:h-0010:k-staff", cid) == body["detail"]

        # a colleague of the grid sees the case nobody accepted yet, and may take it
        colleague = http.worker("h-0002")
        listed = item(await http.my_cases(colleague), cid)
        assert listed["assigned_to_me"] is False
        status, case = await http.get(f"/cases/{cid}", colleague)
        assert case["actions"] == ["accept", "escalate", "return", "transfer"]

        # a token whose handler the registry does not know
        stranger = http.worker("h-9999")
        status, body = await http.act(cid, stranger, {"action": "accept"})
        assert (status, body["detail"]) == (403, "unknown handler")
        odd = http.auth("grid_worker", G01, "no such/handler")
        status, body = await http.act(cid, odd, {"action": "accept"})
        assert (status, body["detail"]) == (403, "unknown handler")


async def test_refusals_carry_the_state_machines_reason(bed: Testbed) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        me = http.worker("h-0001")

        status, body = await http.act(cid, me, {"action": "resolve", "note": "好了"}, key="k1")
        assert status == 409, body
        assert (
            body["detail"]
            == "resolve is not allowed in state dispatched (resolve needs an accepted case)"
        )
        assert body["type"] == "about:blank" and body["status"] == 409
        assert await d.rejected("http:h-0001:k1", cid) == body["detail"]

        assert (await http.act(cid, me, {"action": "accept"}))[0] == 200
        status, body = await http.act(cid, me, {"action": "accept"})
        assert status == 409 and "already accepted" in body["detail"]

        past = (clock() - timedelta(hours=1)).isoformat()
        status, body = await http.act(
            cid, me, {"action": "deliberate", "decide_by": past, "note": "议事"}
        )
        assert status == 422, body
        assert body["errors"] == [
            {"field": "body.decide_by", "message": DECIDE_BY_TOO_EARLY, "type": "value_error"}
        ]
        far = {"action": "deliberate", "decide_by": "9999-12-31T23:59:59+00:00", "note": "议事"}
        status, body = await http.act(cid, me, far)
        assert status == 422 and body["errors"][0]["message"] == DECIDE_BY_TOO_LATE
        for target, message in (
            ("WC-YY", "target_unit is a street-level unit, the case is at grid tier"),
            ("WC-NOPE", "unknown target_unit"),
        ):
            status, body = await http.act(cid, me, {"action": "transfer", "target_unit": target})
            assert status == 422, body
            assert body["errors"][0] == {
                "field": "body.target_unit",
                "message": message,
                "type": "value_error",
            }

        volunteer = http.auth("party_volunteer", OJY, "h-0013")
        status, body = await http.act(cid, volunteer, {"action": "escalate", "note": "太难"})
        assert status == 403 and body["detail"].startswith("party volunteers may only accept")

        # input that is not an action at all: field errors, never a 500
        bads: list[Any] = [
            {"action": "fly"},
            [],
            {},
            "accept",
            {"action": "accept", "note": "x" * 2001},
            {"action": "accept", "note": "a\u0000b"},  # no NUL in PostgreSQL's text
        ]
        for bad in bads:
            status, body = await http.act(cid, me, bad)
            assert status == 422 and body["errors"], (bad, body)
        for raw in (b"{not json", b'{"action": "accept", "note": "a\\ud800b"}'):  # a lone surrogate
            resp = await http.client.post(
                f"/cases/{cid}/actions",
                content=raw,
                headers={"Authorization": f"Bearer {me}", "Content-Type": "application/json"},
            )
            assert resp.status_code == 422, (raw, resp.text)
        for path in (
            "/me/cases?limit=0",
            "/me/cases?limit=201",
            "/me/cases?offset=-1",
            "/me/cases?state=resolved",
            "/cases/c%00x",
            "/cases/" + "c" * 129,
        ):
            status, body = await http.get(path, me)
            assert status == 422 and body["errors"], (path, body)
        status, body = await http.act(cid, me, {"action": "progress"}, key="has space")
        assert status == 422 and body["errors"][0]["field"] == "header.Idempotency-Key"


async def test_a_retried_action_is_applied_once_and_answered_the_same(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        me = http.worker("h-0001")
        first = await http.act(cid, me, {"action": "accept"}, key="retry-1")
        again = await http.act(cid, me, {"action": "accept"}, key="retry-1")
        assert first[0] == again[0] == 200, (first, again)
        assert (first[1]["duplicate"], again[1]["duplicate"]) == (False, True)
        assert again[1]["at"] == first[1]["at"]
        assert again[1]["action_id"] == first[1]["action_id"] == "http:h-0001:retry-1"
        assert again[1]["case"]["state"] == "accepted"

        # the same key from another handler is their own action, not a retry of this one
        colleague = http.worker("h-0002")
        status, body = await http.act(cid, colleague, {"action": "accept"}, key="retry-1")
        assert status == 409 and "already accepted" in body["detail"]
        # the same key for another action is a mistake of the client
        status, body = await http.act(cid, me, {"action": "progress"}, key="retry-1")
        assert status == 422 and body["errors"][0]["field"] == "header.Idempotency-Key"

        # a refused action, retried: refused again with the same answer, published once
        other = (await d.open(case_opened()))["case_id"]
        refused = await http.act(other, me, {"action": "resolve", "note": "好了"}, key="retry-2")
        retried = await http.act(other, me, {"action": "resolve", "note": "好了"}, key="retry-2")
        assert refused[0] == retried[0] == 409
        assert refused[1]["detail"] == retried[1]["detail"]

        # two copies racing (a client that timed out and retried at once): one applies
        third = (await d.open(case_opened()))["case_id"]
        racing = await asyncio.gather(
            *(http.act(third, me, {"action": "accept"}, key="retry-3") for _ in range(4))
        )
        assert [status for status, _ in racing] == [200] * 4
        assert sorted(body["duplicate"] for _, body in racing) == [False, True, True, True]

        await d.drain()
        assert len(d.of("cases.accepted", cid)) == 1
        assert len(d.of("cases.accepted", third)) == 1
        rejected = d.of("handler.actions.rejected", other, action_id="http:h-0001:retry-2")
        assert len(rejected) == 1
        status, case = await http.get(f"/cases/{cid}", me)
        assert [s["event"] for s in case["timeline"]] == ["dispatched", "accept"]


async def test_due_soon_and_overdue_follow_the_clock(bed: Testbed) -> None:
    clock = FakeClock()
    t0 = clock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        waiting = (await d.open(case_opened()))["case_id"]  # to h-0001: respond within 2 h
        taken = await d.open(case_opened())  # to h-0002, the least busy
        assert taken["handler_id"] == "h-0002"
        me = http.worker("h-0001")
        status, _ = await http.act(taken["case_id"], me, {"action": "accept"})  # a colleague's
        assert status == 200
        taken_id = taken["case_id"]  # now h-0001's, held to its 24 h resolution deadline

        async def dues() -> dict[str, str]:
            listing = await http.my_cases(me)
            return {c["case_id"]: c["due"] for c in listing["items"]}

        listing = await http.my_cases(me)
        assert [c["case_id"] for c in listing["items"]] == [waiting, taken_id]  # nearest first
        assert listing["counts"] == {"open": 2, "due_soon": 0, "overdue": 0}
        assert at(listing["now"]) == t0

        clock.now = t0 + timedelta(minutes=100)  # 20 minutes left to respond: due soon
        assert await dues() == {waiting: "due_soon", taken_id: "on_track"}
        assert await http.my_case_ids(me, state="due_soon") == [waiting]
        assert await http.my_case_ids(me, state="overdue") == []

        clock.now = t0 + timedelta(minutes=121)
        assert await dues() == {waiting: "overdue", taken_id: "on_track"}
        assert await http.my_case_ids(me, state="overdue") == [waiting]
        status, case = await http.get(f"/cases/{waiting}", me)
        assert case["due"] == "overdue" and case["next_deadline"]["kind"] == "respond"

        clock.now = t0 + timedelta(hours=20)  # 4 of 24 hours left to resolve
        assert (await dues())[taken_id] == "due_soon"
        clock.now = t0 + timedelta(hours=25)
        listing = await http.my_cases(me, state="overdue")
        assert [c["case_id"] for c in listing["items"]] == [waiting, taken_id]
        assert listing["counts"] == {"open": 2, "due_soon": 0, "overdue": 2}

        page = await http.my_cases(me, limit=1)
        assert ([c["case_id"] for c in page["items"]], page["total"]) == ([waiting], 2)
        page = await http.my_cases(me, limit=1, offset=1)
        assert [c["case_id"] for c in page["items"]] == [taken_id]
        assert (await http.my_cases(me, offset=5))["items"] == []


async def test_the_command_centre_reads_its_area_and_reassigns(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        centre = http.centre("WC")
        assert cid in await http.my_case_ids(centre)
        status, case = await http.get(f"/cases/{cid}", centre)
        assert status == 200 and case["actions"] == ["transfer"]
        status, body = await http.act(cid, centre, {"action": "accept"})
        assert status == 403 and "may only transfer" in body["detail"]
        elsewhere = http.centre("WC-ZHL")  # the command centre of another street's area
        assert (await http.get(f"/cases/{cid}", elsewhere))[0] == 404
        assert cid not in await http.my_case_ids(elsewhere)

        # 改派: to the second grid, whose worker gets it
        body_in = {"action": "transfer", "target_unit": G02, "note": "位置在第二网格"}
        status, body = await http.act(cid, centre, body_in)
        assert status == 200, body
        assert body["handler_id"] == "command_centre.WC"
        now = body["case"]
        assert (now["state"], now["unit"], now["handler_id"]) == ("transferred", G02, "h-0003")
        moved = await d.one("cases.dispatched", cid, attempt=2)
        assert (moved["unit"], moved["handler_id"]) == (G02, "h-0003")
        status, case = await http.get(f"/cases/{cid}", centre)
        last = case["timeline"][-1]
        assert (last["event"], last["handler_id"]) == ("transfer", "h-0003")
        assert last["detail"]["by"] == "command_centre.WC"

        # the first grid no longer reaches it; the second grid's worker has it
        assert (await http.get(f"/cases/{cid}", http.worker("h-0001")))[0] == 404
        g02 = http.worker("h-0003", G02)
        assert item(await http.my_cases(g02), cid)["assigned_to_me"] is True

        # the same reassignment over handler.actions, for a trusted command-centre app
        await d.act(cid, "command_centre.WC", "transfer", target_unit=G01, note="改回")
        back = await d.one("cases.dispatched", cid, attempt=3)
        assert back["unit"] == G01
        nowhere = await d.act(cid, "command_centre.NOPE", "transfer", target_unit=G02)
        assert await d.rejected(nowhere, cid) == "unknown handler"


async def test_a_party_volunteer_sees_what_they_may_take(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        street = await d.open(case_opened(households=150))  # street tier: not for volunteers
        assert street["tier"] == "street"
        elsewhere = (
            await d.open(
                case_opened(
                    location={
                        "district": "WC",
                        "street": "WC-YY",
                        "community": "WC-YY-HPY",
                        "grid": "WC-YY-HPY-G01",
                    }
                )
            )
        )["case_id"]
        volunteer = http.auth("party_volunteer", OJY, "h-0013")
        listing = await http.my_cases(volunteer)
        ids = [c["case_id"] for c in listing["items"]]
        assert cid in ids and street["case_id"] not in ids and elsewhere not in ids
        assert item(listing, cid)["assigned_to_me"] is False
        status, body = await http.act(cid, volunteer, {"action": "accept"})  # 接单
        assert status == 200 and body["case"]["handler_id"] == "h-0013"
        assert item(await http.my_cases(volunteer), cid)["assigned_to_me"] is True


async def test_the_openapi_document_describes_the_handler_api(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    async with api(bed, svc) as http:
        doc = (await http.client.get("/openapi.json")).json()
    post = doc["paths"]["/cases/{case_id}/actions"]["post"]
    assert set(post["responses"]) == {"200", "401", "403", "404", "409", "422"}
    assert doc["components"]["schemas"]["ActionRequest"]["additionalProperties"] is False
    assert {p["name"] for p in post["parameters"]} == {"case_id", "Idempotency-Key"}
    assert set(doc["paths"]["/me/cases"]["get"]["responses"]) == {"200", "401", "403", "422"}
    assert "timeline" in doc["components"]["schemas"]["CaseDetail"]["properties"]
