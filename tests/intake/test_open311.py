"""Open311 GeoReport v2 on intake, against the real Kafka and PostgreSQL: services and
definitions, a POST down the reports.submitted path (opened, seconded, rejected), idempotent
retries, api keys, and GET requests with the specification's filters, in JSON and XML."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.intake.open311 import schemas, store
from tests.intake.conftest import Running
from tests.intake.open311_support import (
    PHONE,
    V2,
    client,
    errors_of,
    issue_key,
    spec_form,
    start,
    xml_items,
)


def case_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/xml"):
        return str(xml_items(response.content, "request")[0]["service_request_id"])
    body = response.json()
    schemas.PostedRequest.model_validate(body[0])
    return str(body[0]["service_request_id"])


async def test_services_and_their_definitions_in_json_and_xml(bed: Testbed) -> None:
    run = await start(bed)
    async with client(run.svc) as http:
        listed = await http.get(f"{V2}/services.json")
        assert listed.status_code == 200
        assert listed.headers["content-type"] == "application/json; charset=utf-8"
        services = [schemas.Service.model_validate(s) for s in listed.json()]
        assert len(services) == 22 and services[0].service_code == "sanitation"
        xml = await http.get(f"{V2}/services.xml", params={"jurisdiction_id": "wangge"})
        assert xml.headers["content-type"] == "text/xml; charset=utf-8"
        assert xml.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<services>')
        items = xml_items(xml.content, "service")
        assert [i["service_code"] for i in items] == [s.service_code for s in services]
        assert items[0]["metadata"] == "true" and items[0]["service_name"] == "环境卫生"

        definition = await http.get(f"{V2}/services/ebike_charging.json")
        body = schemas.ServiceDefinition.model_validate(definition.json())
        assert body.service_code == "ebike_charging"
        assert [a.code for a in body.attributes if a.variable] == [
            "title",
            "households_affected",
            "urgent",
            "anonymous",
            "crs",
        ]
        as_xml = await http.get(f"{V2}/services/ebike_charging.xml")
        attrs = [a["code"] for a in xml_items(as_xml.content, "attributes/attribute")]
        assert attrs == [a.code for a in body.attributes]

        for path, code in (
            (f"{V2}/services/no_such_service.json", 404),
            (f"{V2}/services/no_such_service.xml", 404),
            (f"{V2}/services.json?jurisdiction_id=sfgov.org", 404),
            (f"{V2}/services.html", 400),
            (f"{V2}/nothing.json", 404),
        ):
            answer = await http.get(path)
            assert answer.status_code == code, path
            assert [e["code"] for e in errors_of(answer)] == [code], path

        found = await http.get("/open311/discovery.json")
        schemas.Discovery.model_validate(found.json())
        endpoint = found.json()["endpoints"][0]
        assert endpoint["url"] == "http://intake/open311/v2"
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert xml_items((await http.get("/open311/discovery.xml")).content, "endpoints/endpoint")


async def test_a_form_post_opens_a_case_and_a_duplicate_seconds_it(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "hotline-12345", "hotline_12345")
    async with (
        client(run.svc) as http,
        TopicReader(bed.settings(), "cases.opened", "cases.merged") as reader,
    ):
        first = await http.post(f"{V2}/requests.json", data=spec_form(key))
        case_id = case_of(first)
        assert first.json()[0]["account_id"] == "123456"
        assert case_id in first.json()[0]["service_notice"]
        opened = await reader.wait_for(
            lambda r: [x for x in r.of("cases.opened") if x.key == case_id], what="cases.opened"
        )
        event = opened[0].json()
        assert event["source"] == "hotline_12345" and event["category"] == "sanitation"
        assert event["classification"]["method"] == "given"
        assert event["location"]["building"] == "WC-YY-OJY-G01-B03"
        assert event["located_by"] == "building_code"
        assert event["reporter_phone_masked"] == "138****5678"
        for secret in (PHONE, "王芳", "wang@example.cn", "tt222111"):
            assert secret.encode() not in (opened[0].value or b""), secret

        # another resident, the same building and category, within the merge window: 附议
        second = await http.post(
            f"{V2}/requests.xml",
            data=spec_form(key, phone="13900001111", account_id="777", first_name="伟"),
        )
        assert case_of(second) == case_id
        notice = xml_items(second.content, "request")[0]["service_notice"]
        assert "附议" in notice and "2" in notice
        merged = await reader.wait_for(
            lambda r: [x for x in r.of("cases.merged") if x.key == case_id], what="cases.merged"
        )
        assert merged[0].json()["supporter_count"] == 2
        assert merged[0].json()["source"] == "hotline_12345"

        # a JSON POST of a text the classifier would not need: the given code is kept
        third = await http.post(
            f"{V2}/requests.json",
            json={
                "api_key": key,
                "service_code": "parking",
                "lat": 30.5810,
                "long": 114.3330,
                "description": "小区门口僵尸车占了消防通道",
                "attribute": {"urgent": True, "households_affected": 40},
            },
        )
        assert case_of(third) != case_id

    async with run.svc.pool.acquire() as conn:
        stored = await conn.fetch(
            "SELECT reporter_name_enc, reporter_phone_enc FROM reports WHERE source = $1",
            "hotline_12345",
        )
        assert len(stored) == 3
        assert all(PHONE.encode() not in (r["reporter_phone_enc"] or b"") for r in stored)
        phones = {run.intake.pii.decrypt(r["reporter_phone_enc"]) for r in stored}
        assert phones == {PHONE, "13900001111", None}  # encrypted at rest, as on every channel


async def count(run: Running, sql: str, *args: Any) -> int:
    async with run.svc.pool.acquire() as conn:
        return int(await conn.fetchval(sql, *args))


async def test_a_retried_post_answers_the_same_request(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "wechat-grid-bot")
    other = await issue_key(run.svc, "city-app", "app")
    retry = {"Idempotency-Key": "ticket-2026-0042"}
    async with client(run.svc) as http:
        first = await http.post(f"{V2}/requests.json", data=spec_form(key), headers=retry)
        case_id = case_of(first)
        assert "idempotent-replayed" not in first.headers
        again = await http.post(f"{V2}/requests.xml", data=spec_form(key), headers=retry)
        assert case_of(again) == case_id and again.headers["idempotent-replayed"] == "true"
        as_json = await http.post(
            f"{V2}/requests.json",
            json={k: v for k, v in spec_form(key).items()},
            headers=retry,
        )
        assert case_of(as_json) == case_id
        # retries racing each other: one report, one answer
        racing = await asyncio.gather(
            *(
                http.post(
                    f"{V2}/requests.json",
                    data=spec_form(key, phone="13700002222"),
                    headers={"Idempotency-Key": "ticket-race"},
                )
                for _ in range(4)
            )
        )
        assert len({case_of(r) for r in racing}) == 1
        # the same key from another system is another report (keys are scoped by system)
        elsewhere = await http.post(f"{V2}/requests.json", data=spec_form(other), headers=retry)
        assert elsewhere.status_code == 200 and "idempotent-replayed" not in elsewhere.headers

    assert await count(run, "SELECT count(*) FROM cases") == 1
    assert (
        await count(
            run,
            "SELECT count(*) FROM reports WHERE report_id = $1",
            "wechat-grid-bot:ticket-2026-0042",
        )
        == 1
    )
    assert await count(run, "SELECT count(*) FROM reports") == 3  # first, the race, elsewhere
    assert await count(run, "SELECT count(*) FROM open311_requests") == 3


async def test_bad_posts_are_400s_in_the_open311_format(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "hotline-12345")
    async with (
        client(run.svc) as http,
        TopicReader(bed.settings(), "reports.rejected") as reader,
    ):
        no_place = {k: v for k, v in spec_form(key).items() if k != "address_id"}
        for fmt in ("json", "xml"):
            bad = await http.post(f"{V2}/requests.{fmt}", data={**no_place, "phone": "110"})
            assert bad.status_code == 400
            described = {e["description"].split(":")[0] for e in errors_of(bad)}
            assert described == {"phone", "location"}, errors_of(bad)
            assert all(e["code"] == 400 for e in errors_of(bad))
        cases = {
            "missing service_code": ({**spec_form(key), "service_code": ""}, 400),
            "unknown service_code": ({**spec_form(key), "service_code": "potholes"}, 404),
            "unknown address_id": ({**spec_form(key), "address_id": "WC-NOPE"}, 400),
            "unknown attribute": ({**spec_form(key), "attribute[colour]": "red"}, 400),
            "no description": ({**spec_form(key), "description": ""}, 400),
            "other jurisdiction": ({**spec_form(key), "jurisdiction_id": "sfgov.org"}, 404),
        }
        for what, (form, code) in cases.items():
            answer = await http.post(f"{V2}/requests.json", data=form)
            assert answer.status_code == code, (what, answer.text)
            assert errors_of(answer)[0]["code"] == code, what
        not_a_form = await http.post(
            f"{V2}/requests.xml", content=b"<x/>", headers={"content-type": "text/xml"}
        )
        assert not_a_form.status_code == 400 and errors_of(not_a_form)[0]["code"] == 400
        broken = await http.post(
            f"{V2}/requests.json", content=b"{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        bad_key = await http.post(
            f"{V2}/requests.json", data=spec_form(key), headers={"Idempotency-Key": "has a space"}
        )
        assert bad_key.status_code == 400
        assert errors_of(bad_key)[0]["description"].startswith("Idempotency-Key")

        # valid, but no unit of the registry matches: rejected by intake's handler, as a
        # Kafka report is (reports.rejected), and the same answer for a retry
        lost = {**no_place, "address_string": "火星基地", "description": "垃圾没人清运"}
        retry = {"Idempotency-Key": "lost-1"}
        answer = await http.post(f"{V2}/requests.json", data=lost, headers=retry)
        assert answer.status_code == 400
        assert errors_of(answer)[0]["description"].startswith("location: no unit")
        rejected = await reader.wait_for(
            lambda r: [
                x
                for x in r.of("reports.rejected")
                if x.json()["report_id"] == "hotline-12345:lost-1"
            ],
            what="reports.rejected",
        )
        assert rejected[0].json()["reason"] == "unlocatable"
        again = await http.post(f"{V2}/requests.json", data=lost, headers=retry)
        assert again.status_code == 400 and errors_of(again) == errors_of(answer)
    assert await count(run, "SELECT count(*) FROM cases") == 0


async def test_an_api_key_is_required(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "hotline-12345")
    revoked = await issue_key(run.svc, "old-platform")
    async with run.svc.pool.acquire() as conn:
        ids = {r["system"]: r["key_id"] for r in await store.list_keys(conn)}
        assert await store.revoke_key(conn, ids["old-platform"])
        assert not await store.revoke_key(conn, ids["old-platform"])
    form = {k: v for k, v in spec_form(key).items() if k != "api_key"}
    async with client(run.svc) as http:
        for given in ({}, {"api_key": "wg311_00000000_guess"}, {"api_key": revoked}):
            for fmt in ("json", "xml"):
                answer = await http.post(f"{V2}/requests.{fmt}", data={**form, **given})
                assert answer.status_code == 403, given
                assert errors_of(answer)[0]["code"] == 403
        # the key as the query parameter, or as HTTP Basic's password
        query = await http.post(f"{V2}/requests.json", data=form, params={"api_key": key})
        assert query.is_success
        basic = await http.post(f"{V2}/requests.json", data=form, auth=("hotline-12345", key))
        assert basic.is_success
        for auth in ({}, {"params": {"api_key": revoked}}):
            listed = await http.get(f"{V2}/requests.json", **auth)  # type: ignore[arg-type]
            assert listed.status_code == 403
        resident = bed.token("resident")
        as_resident = await http.get(
            f"{V2}/requests.json", headers={"Authorization": f"Bearer {resident}"}
        )
        assert as_resident.status_code == 403
        forged = await http.get(f"{V2}/requests.json", headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 403
        mine = await http.get(f"{V2}/requests.json", auth=("anyone", key))
        assert mine.status_code == 200 and len(mine.json()) == 1  # the two POSTs: one case


async def post(http: httpx.AsyncClient, key: str, **over: str) -> str:
    return case_of(await http.post(f"{V2}/requests.json", data=spec_form(key, **over)))


async def test_get_requests_with_the_specifications_filters(bed: Testbed) -> None:
    run = await start(bed)
    a = await issue_key(run.svc, "hotline-12345", "hotline_12345")
    b = await issue_key(run.svc, "wechat-grid-bot", "weixin_grid_group")
    async with client(run.svc) as http:
        a1 = await post(http, a)
        a2 = await post(http, a, service_code="parking", address_id="WC-YY-OJY-G02-B11")
        b1 = await post(http, b, service_code="civility", address_id="WC-YY-HPY-G01-B01")
        seconded = await post(http, b, phone="13600003333")  # b seconds a1
        assert seconded == a1

        async def ids(key: str | None = None, **params: Any) -> list[str]:
            headers = params.pop("headers", {})
            if key:
                params["api_key"] = key
            got = await http.get(f"{V2}/requests.json", params=params, headers=headers)
            assert got.status_code == 200, got.text
            for r in got.json():
                schemas.ServiceRequest.model_validate(r)
            return [r["service_request_id"] for r in got.json()]

        assert await ids(a) == [a2, a1]  # newest first
        assert sorted(await ids(b)) == sorted([b1, a1])  # its own, and the one it seconded

        # feedback closes a2 (published as feedback does)
        async with Publisher(bed.settings(), source="wangge/feedback") as pub:
            closed = {"case_id": a2, "outcome": "satisfied", "closed_at": datetime.now(UTC)}
            await pub.send("cases.closed", closed, key=a2, subject=a2)
        await eventually(partial(ids, a, status="closed"), timeout=30, what="cases.closed applied")
        assert await ids(a, status="closed") == [a2]
        assert await ids(a, status="open") == [a1]
        assert await ids(a, status="open,closed") == [a2, a1]
        assert await ids(a, service_code="parking") == [a2]
        assert await ids(a, service_code=["sanitation", "parking"]) == [a2, a1]
        assert await ids(a, service_request_id=f"{a1},{b1}") == [a1]  # b1 is not a's
        now = datetime.now(UTC)
        assert await ids(a, start_date=(now + timedelta(minutes=5)).isoformat()) == []
        assert await ids(a, end_date=(now - timedelta(days=1)).strftime("%Y-%m-%d")) == []
        window = {
            "start_date": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_date": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        assert await ids(a, **window) == [a2, a1]
        assert await ids(a, page_size="1", page="2") == [a1]

        # one request, in both formats; another system's is a 404, as an unknown one
        one = await http.get(f"{V2}/requests/{a2}.json", params={"api_key": a})
        (got,) = one.json()
        assert got["status"] == "closed" and got["status_notes"] == "已办结，居民评价满意"
        assert got["service_name"] == "停车管理" and got["address_id"] == "WC-YY-OJY-G02-B11"
        assert got["media_url"] == "https://img.example.cn/2212426634.jpg"
        assert "extended_attributes" not in got and PHONE not in one.text
        as_xml = await http.get(f"{V2}/requests/{a2}.xml", params={"api_key": a})
        assert xml_items(as_xml.content, "request")[0]["status"] == "closed"
        for path in (f"{V2}/requests/{b1}.json", f"{V2}/requests/C-unknown.xml"):
            missing = await http.get(path, params={"api_key": a})
            assert missing.status_code == 404 and errors_of(missing)[0]["code"] == 404
        listed_xml = await http.get(f"{V2}/requests.xml", params={"api_key": b})
        assert {r["service_request_id"] for r in xml_items(listed_xml.content, "request")} == {
            a1,
            b1,
        }

        # staff read the Open311 requests within their reach
        def bearer(role: str, unit: str) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {bed.token(role, unit)}"}}

        assert sorted(await ids(**bearer("command_centre", "WC"))) == sorted([a1, a2, b1])
        assert sorted(await ids(**bearer("community_staff", "WC-YY-OJY"))) == sorted([a1, a2])
        assert await ids(**bearer("grid_worker", "WC-YY-HPY-G01")) == [b1]

        for params in (
            {"start_date": "yesterday"},
            {"start_date": "2026-01-01", "end_date": "2026-06-01"},
            {"status": "pending"},
        ):
            bad = await http.get(f"{V2}/requests.xml", params={**params, "api_key": a})
            assert bad.status_code == 400 and errors_of(bad)[0]["code"] == 400, params
