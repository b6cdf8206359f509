"""Supervision (督办) from the command centre, on the real broker and database: the command
centre of the case's area sends one over HTTP to the unit that has an open case, with a note and
when to report back; it is on the timeline, published as cases.supervised (numbered, who sent it
from the token), listed by GET /me/supervisions for the case's handler until the case is
dispatched elsewhere; a retry with the same Idempotency-Key is the same supervision. Only the
command centre of the area may send one (another role: 403; another area: 404); a resolved case
is a 409; the body's fields are checked (422), and it changes neither state nor deadlines."""

from __future__ import annotations

from datetime import datetime, timedelta

from devstack.testbed import Testbed
from services.dispatch.supervision import Supervise, plan, refusal
from shared.contract.events import DecidedBy
from tests.dispatch.api_client import G01, G02, api
from tests.dispatch.support import (
    FakeClock,
    a_case,
    case_opened,
    driving,
    load_registry,
    start_dispatch,
)

QUIET = 3600.0
BY = DecidedBy(role="command_centre", unit="WC", subject="command_centre:WC")


def test_only_an_open_case_with_a_note_and_a_later_report_by_is_supervised() -> None:
    now = datetime.fromisoformat("2026-11-23T10:00:00+08:00")
    case = a_case(state="accepted")
    ok = Supervise("请今日内处置", now + timedelta(hours=8), BY)
    assert refusal(case, ok, now) is None
    assert refusal(a_case(state="resolved"), ok, now) is not None
    assert refusal(a_case(state="triage"), ok, now) is not None
    late = refusal(case, Supervise("请处置", now, BY), now)
    assert late is not None and late.field == "report_by"
    blank = refusal(case, Supervise("  ", None, BY), now)
    assert blank is not None and blank.field == "note"
    sent = plan(case, ok, 2, now)
    assert (sent.step.event, sent.step.from_state, sent.step.to_state) == (
        "supervise",
        "accepted",
        "accepted",
    )
    assert sent.step.detail["note"] == "请今日内处置" and sent.step.detail["supervision"] == 2
    assert sent.event.supervision == 2 and sent.event.unit == case.unit
    assert sent.event.attempt == case.attempt and sent.event.by == BY


async def test_the_command_centre_supervises_a_case_and_its_handler_sees_it(
    bed: Testbed,
) -> None:
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/intake") as d, api(bed, svc) as http:
        ev = case_opened()
        first = await d.open(ev)
        cid = ev.case_id
        handler = first["handler_id"]
        assert first["unit"] == G01 and handler
        worker = http.worker(handler)
        centre = http.centre("WC")
        path = f"/cases/{cid}/supervise"
        before = (await http.get(f"/cases/{cid}", centre))[1]

        # who may send one: the command centre of the area, nobody else
        body = {"note": "居民多次反映，请今日内上门处置", "report_by": None}
        for token in (worker, http.auth("street_staff", "WC-YY", "h-0020")):
            assert (await http.post(path, token, body))[0] == 403
        assert (await http.post(path, None, body))[0] == 401
        status, refused = await http.post(path, http.centre("HK"), body)
        assert (status, refused["detail"]) == (404, "unknown case")
        # the body: who sent it is never a field; report_by must be later; a note is required
        status, bad = await http.post(path, centre, {**body, "by": "someone"})
        assert status == 422 and [e["field"] for e in bad["errors"]] == ["body.by"], bad
        status, bad = await http.post(
            path, centre, {"note": "x", "report_by": "2020-01-01T00:00:00Z"}
        )
        assert status == 422 and [e["field"] for e in bad["errors"]] == ["body.report_by"], bad
        assert (await http.post(path, centre, {"note": ""}))[0] == 422
        assert (await http.get("/me/supervisions", worker))[1]["items"] == []

        sent_at = clock.advance(timedelta(minutes=20))
        report_by = sent_at + timedelta(hours=4)
        resp = await http.client.post(
            path,
            json={"note": "居民多次反映，请今日内上门处置", "report_by": report_by.isoformat()},
            headers={"Authorization": f"Bearer {centre}", "Idempotency-Key": "sv-1"},
        )
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert (answer["supervision"], answer["unit"], answer["handler_id"]) == (1, G01, handler)
        assert answer["by"]["unit"] == "WC" and answer["by"]["role"] == "command_centre"
        published = await d.one("cases.supervised", cid)
        assert published == {
            **published,
            "supervision": 1,
            "tier": "grid",
            "unit": G01,
            "handler_id": handler,
            "attempt": 1,
            "note": "居民多次反映，请今日内上门处置",
            "by": {
                "role": "command_centre",
                "unit": "WC",
                "handler_id": None,
                "subject": "command_centre:WC",
            },
        }
        assert datetime.fromisoformat(published["supervised_at"]) == sent_at
        assert datetime.fromisoformat(published["report_by"]) == report_by

        # a retry with the same key is the same supervision, sent once
        again = await http.client.post(
            path,
            json={"note": "居民多次反映，请今日内上门处置"},
            headers={"Authorization": f"Bearer {centre}", "Idempotency-Key": "sv-1"},
        )
        assert again.status_code == 200 and again.json()["supervision"] == 1

        # on the timeline; the state and the deadlines are as they were
        status, case = await http.get(f"/cases/{cid}", worker)
        assert status == 200
        step = case["timeline"][-1]
        assert (step["event"], step["unit"], step["detail"]["note"]) == (
            "supervise",
            G01,
            "居民多次反映，请今日内上门处置",
        )
        assert datetime.fromisoformat(step["detail"]["report_by"]) == report_by
        for k in ("state", "respond_by", "resolve_by", "tier", "unit", "supervised"):
            assert case[k] == before[k], k

        # the handler's list of supervisions (the phone page's badge), the second one counted
        assert (await http.post(path, centre, {"note": "请加快"}))[1]["supervision"] == 2
        status, mine = await http.get("/me/supervisions", worker)
        assert status == 200
        assert [(s["case_id"], s["supervision"], s["count"], s["note"]) for s in mine["items"]] == [
            (cid, 2, 2, "请加快")
        ]
        other_grid = http.worker("h-0003", G02)
        assert (await http.get("/me/supervisions", other_grid))[1]["items"] == []
        assert (await d.one("cases.supervised", cid, supervision=2))["note"] == "请加快"
        assert len(d.of("cases.supervised", cid)) == 2  # the retry published nothing

        # moved to the next grid: the new unit has not been supervised
        status, _ = await http.act(cid, centre, {"action": "transfer", "target_unit": G02})
        assert status == 200
        await d.one("cases.dispatched", cid, attempt=2)
        assert (await http.get("/me/supervisions", worker))[1]["items"] == []

        # a resolved case is not supervised
        ev2 = case_opened()
        second = await d.open(ev2)
        w2 = http.worker(second["handler_id"])
        assert (await http.act(ev2.case_id, w2, {"action": "accept"}))[0] == 200
        assert (await http.act(ev2.case_id, w2, {"action": "resolve", "note": "已清理"}))[0] == 200
        status, refused = await http.post(f"/cases/{ev2.case_id}/supervise", centre, body)
        assert status == 409 and "resolved" in refused["detail"], refused
