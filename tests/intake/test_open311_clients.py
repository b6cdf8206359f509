"""Open311 clients that wangge did not write, unchanged, against intake served by uvicorn:
``georeport`` (PyPI, on requests: services, definitions, requests, in JSON and XML; the key as
the endpoint URL's credentials, HTTP Basic) and ``civicbot`` (PyPI, on urllib: services, a
validated form POST, errors); a raw HTTP/1.1 client sending the specification's example POST
byte for byte in its form; and ``wangge apikey`` creating, listing and revoking keys."""

from __future__ import annotations

import asyncio
import http.client
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from civicbot import Endpoint, HttpError, HttpTransport, Open311Client
from civicbot.http import RateLimiter
from georeport import GeoReport
from typer.testing import CliRunner

from cli.main import app as cli
from devstack.paths import free_port
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.intake.open311.apikeys import PREFIX
from shared.runtime.service import Service
from tests.intake.open311_support import PHONE, V2, client, issue_key, spec_form, start, xml_items


@asynccontextmanager
async def serving(svc: Service) -> AsyncIterator[int]:
    """The service's app on a real HTTP port (the service itself runs already)."""
    port = free_port()
    config = uvicorn.Config(
        svc.app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    try:
        await eventually(started, timeout=20, what="uvicorn")
        yield port
    finally:
        server.should_exit = True
        await task


async def test_georeport_reads_services_and_requests(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "hotline-12345")
    async with client(run.svc) as http:
        first = (await http.post(f"{V2}/requests.json", data=spec_form(key))).json()
        other = spec_form(key, service_code="parking", address_id="WC-YY-OJY-G02-B11")
        second = (await http.post(f"{V2}/requests.json", data=other)).json()
    ids = [first[0]["service_request_id"], second[0]["service_request_id"]]
    async with serving(run.svc) as port:
        # the api key as the endpoint's credentials: requests sends them as HTTP Basic
        root = f"http://hotline-12345:{key}@127.0.0.1:{port}{V2}"
        for fmt in ("json", "xml"):
            geo = GeoReport(root, jurisdiction="wangge", output_format=fmt)
            services = await asyncio.to_thread(geo.get_service_list)
            assert len(services) == 22
            assert {s["service_code"] for s in services} >= {"sanitation", "parking"}
            definition = await asyncio.to_thread(geo.get_service_definition, "sanitation")
            assert definition["service_code"] == "sanitation"
            requests = await asyncio.to_thread(geo.get_service_requests, status="open")
            assert {r["service_request_id"] for r in requests} == set(ids), fmt
            one = await asyncio.to_thread(geo.get_service_request, ids[1])
            assert one["service_code"] == "parking" and one["status"] == "open", fmt
            coded = await asyncio.to_thread(
                geo.get_service_requests, service_request_id=ids[0], service_code="sanitation"
            )
            found = coded if isinstance(coded, list) else [coded]  # xmltodict: one is a dict
            assert [r["service_request_id"] for r in found] == [ids[0]]
        anonymous = GeoReport(f"http://127.0.0.1:{port}{V2}", jurisdiction="wangge")
        assert len(await asyncio.to_thread(anonymous.get_service_list)) == 22
        with pytest.raises(Exception, match="403"):  # requests' HTTPError: no key, no requests
            await asyncio.to_thread(anonymous.get_service_requests)


async def test_civicbot_posts_a_validated_request(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "city-app", "app")
    async with serving(run.svc) as port:
        endpoint = Endpoint(
            id="wangge", name="wangge", base_url=f"http://127.0.0.1:{port}{V2}", write=True
        )
        bot = Open311Client(
            endpoint,
            transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0)),
            jurisdiction_id="wangge",
        )
        services = await asyncio.to_thread(bot.list_services)
        assert "sanitation" in {s["service_code"] for s in services}
        sent = await asyncio.to_thread(
            lambda: bot.create_request(
                "sanitation",
                dry_run=False,
                confirm="SEND",
                api_key=key,
                validate_remote=True,  # checks the form against our service definition
                address_id="WC-YY-OJY-G01-B03",
                description="3栋楼道垃圾堆了三天",
                first_name="芳",
                last_name="王",
                phone=PHONE,
                attributes={"urgent": "true", "households_affected": "6"},
            )
        )
        case_id = sent.response[0]["service_request_id"]
        assert sent.form["attribute[urgent]"] == "true"
        # by its point (inside the grid) and the building its text names: the same case (附议)
        again = await asyncio.to_thread(
            lambda: bot.create_request(
                "sanitation",
                dry_run=False,
                confirm="SEND",
                api_key=key,
                lat=30.5810,
                lng=114.3310,
                description="欧景苑3栋门口垃圾没人清运",
                phone="13900001111",
            )
        )
        assert again.response[0]["service_request_id"] == case_id
        assert "附议" in again.response[0]["service_notice"]
        with pytest.raises(HttpError) as bad:
            await asyncio.to_thread(
                lambda: bot.create_request(
                    "sanitation",
                    dry_run=False,
                    confirm="SEND",
                    api_key=key,
                    address_string="火星基地",
                    description="垃圾",
                )
            )
        assert bad.value.status == 400 and '"code":400' in bad.value.body
        # civicbot reads requests without a key: wangge requires one (docs/intake.md)
        with pytest.raises(HttpError) as refused:
            await asyncio.to_thread(bot.get_request, case_id)
        assert refused.value.status == 403 and "api_key" in refused.value.body


def raw_post(port: int, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body,
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def raw_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


async def test_the_specifications_example_as_a_raw_client_sends_it(bed: Testbed) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "hotline-12345")
    q = urllib.parse.quote_plus
    # the example of "POST Service Request", field for field, with this city's values (the
    # brackets of attribute[code] unencoded, as in the example)
    body = (
        f"api_key={key}&jurisdiction_id=wangge&service_code=sanitation&lat=30.5810"
        f"&long=114.3310&address_string={q('欧景苑3栋')}&email=smit333%40sfgov.edu"
        f"&device_id=tt222111&account_id=123456&first_name={q('芳')}&last_name={q('王')}"
        f"&phone={PHONE}&description={q('楼道垃圾堆了三天没人清运')}"
        f"&media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg"
        f"&attribute[urgent]=true&attribute[households_affected]=24"
    ).encode()
    async with serving(run.svc) as port:
        status, headers, answer = await asyncio.to_thread(
            raw_post, port, f"{V2}/requests.xml", body
        )
        assert status == 200 and headers["content-type"] == "text/xml; charset=utf-8"
        assert answer.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<service_requests>')
        (posted,) = xml_items(answer, "request")
        case_id = posted["service_request_id"]
        # the specification's three, and the status link for the resident (WANGGE_LINK_KEY)
        assert set(posted) == {"service_request_id", "service_notice", "account_id", "status_url"}
        assert posted["account_id"] == "123456"
        assert posted["status_url"].startswith(f"/s/{case_id}.")
        # the example of "GET Service Requests"
        status, _, listed = await asyncio.to_thread(
            raw_get,
            port,
            f"{V2}/requests.xml?start_date=2026-01-01T00:00:00Z&end_date=2030-01-01T00:00:00Z"
            f"&status=open&jurisdiction_id=wangge&api_key={key}",
        )
        assert status == 400  # that example spans more than 90 days: refused, as it says
        status, _, listed = await asyncio.to_thread(
            raw_get, port, f"{V2}/requests.xml?status=open&jurisdiction_id=wangge&api_key={key}"
        )
        (request,) = xml_items(listed, "request")
        assert request["service_request_id"] == case_id and request["status"] == "open"
        assert request["lat"] == "30.581" and request["address"] == "欧景苑3栋"
        assert request["media_url"].endswith("2212426634_5ed477a060.jpg")
        status, _, forbidden = await asyncio.to_thread(
            raw_post, port, f"{V2}/requests.xml", body.replace(key.encode(), b"xyz")
        )
        assert status == 403
        assert xml_items(forbidden, "error")[0]["code"] == "403"


async def test_wangge_apikey_creates_lists_and_revokes(bed: Testbed) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": bed.service_dsns["intake"]}

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(cli, ["apikey", *args], env=env)
        return result.exit_code, result.stdout, result.stderr

    code, _, err = await asyncio.to_thread(invoke, "list")
    assert code == 1 and "start intake once" in err  # not migrated yet
    run = await start(bed)
    code, out, _ = await asyncio.to_thread(invoke, "create", "hotline-12345")
    assert code == 0
    key = out.strip()
    assert key.startswith(PREFIX) and len(key) > 40
    code, _, err = await asyncio.to_thread(invoke, "create", "Not A Name")
    assert code == 2 and "system name" in err
    code, _, err = await asyncio.to_thread(invoke, "create", "x", "--channel", "fax")
    assert code == 2
    code, out, _ = await asyncio.to_thread(invoke, "list")
    assert code == 0 and "hotline-12345" in out and key not in out
    key_id = key.removeprefix(PREFIX).split("_")[0]
    assert key_id in out
    async with client(run.svc) as http:
        assert (await http.post(f"{V2}/requests.json", data=spec_form(key))).status_code == 200
    async with run.svc.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT secret_hash FROM api_keys WHERE key_id = $1", key_id)
        assert key.encode() not in bytes(stored)
    code, out, _ = await asyncio.to_thread(invoke, "create", "old-platform")
    old = out.strip()
    old_id = old.removeprefix(PREFIX).split("_")[0]
    code, out, _ = await asyncio.to_thread(invoke, "revoke", old_id)
    assert code == 0 and old_id in out
    code, _, err = await asyncio.to_thread(invoke, "revoke", old_id)
    assert code == 1 and "no active key" in err
    async with client(run.svc) as http:
        assert (await http.post(f"{V2}/requests.json", data=spec_form(old))).status_code == 403
