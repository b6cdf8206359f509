"""The residents' side on the real broker and database: the follow-up request on Kafka with its
token sealed (v1 only when opted in), the rating page (GET, one POST that closes or reopens the
case as a Kafka rating does, a second refused), the JSON twin, the status link, and feedback
refusing to start without its keys."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from cli.client import Publisher, Record, TopicReader
from devstack.paths import ROOT
from devstack.testbed import Testbed, link_key_for_tests
from services.feedback.pages import CSP
from shared.contract.keys import parse_key
from shared.contract.links import status_token
from shared.runtime.service import Service
from tests.feedback.helpers import (
    merged,
    new_case_id,
    of_case,
    opened,
    resolved,
    send,
    token_of,
    wait_n,
)

TOPICS = ("feedback.requested", "feedback.rejected", "cases.closed", "cases.reopened")
V1 = "org.wangge.feedback.requested.v1"
V2 = "org.wangge.feedback.requested.v2"
FORM = {"content-type": "application/x-www-form-urlencoded"}
LINK = parse_key(link_key_for_tests(), "WANGGE_LINK_KEY")


async def http(
    svc: Service,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """A request through the service's real ASGI app, as a resident's browser (no token)."""
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback") as client:
        return await client.request(method, path, headers=headers, **kwargs)


def nonce_of(page: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def resolved_case(pub: Publisher, reader: TopicReader, **opened_kw: Any) -> tuple[str, str]:
    """A case opened and resolved: its id and the rating token of its request."""
    cid = new_case_id()
    await send(pub, "cases.opened", opened(cid, **opened_kw))
    await send(pub, "cases.resolved", resolved(cid))
    [request] = await wait_n(reader, "feedback.requested", cid, 1)
    return cid, token_of(request)


def records_of(reader: TopicReader, topic: str, case_id: str) -> list[Record]:
    return [r for r in reader.of(topic) if (r.json() or {}).get("case_id") == case_id]


async def test_the_request_on_kafka_carries_the_token_sealed_only(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, token = await resolved_case(pub, reader)
        [rec] = records_of(reader, "feedback.requested", cid)
        assert rec.headers["ce_type"] == V2
        body = rec.json()
        assert "rating_token" not in body and body["sealed_links"].startswith("v1.")
        assert token.encode() not in (rec.value or b"") + (rec.raw_key or b"")
        assert status_token(LINK, cid).encode() not in (rec.value or b"")
        # the token the notifier opens is the one feedback stored the hash of
        found = await svc.pool.fetchval(
            "SELECT case_id FROM feedback_requests WHERE token_hash = $1",
            hashlib.sha256(token.encode()).hexdigest(),
        )
        assert found == cid
        assert body["rating_url"] == "/r/{rating_token}"  # no WANGGE_PUBLIC_FEEDBACK_URL here
        # no v1 unless opted in: a later request of the case (same key, same partition, after
        # any v1 of the first) is the second record of the case, and both are v2
        await send(pub, "cases.merged", merged(cid, "ref-supporter"))
        await wait_n(reader, "feedback.requested", cid, 2)
        assert [r.headers["ce_type"] for r in records_of(reader, "feedback.requested", cid)] == [
            V2,
            V2,
        ]


async def test_v1_beside_v2_when_the_operator_opts_in(bed: Testbed) -> None:
    await bed.start(
        "feedback",
        WANGGE_FEEDBACK_REQUESTED_V1=True,
        WANGGE_PUBLIC_FEEDBACK_URL="https://wangge.example.gov.cn/feedback",
    )
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid = new_case_id()
        await send(pub, "cases.opened", opened(cid))
        await send(pub, "cases.resolved", resolved(cid))
        await wait_n(reader, "feedback.requested", cid, 2)
        v2, v1 = records_of(reader, "feedback.requested", cid)
        assert (v2.headers["ce_type"], v1.headers["ce_type"]) == (V2, V1)
        assert v2.headers["ce_id"] != v1.headers["ce_id"] and v2.key == v1.key == cid
        assert v1.json()["rating_token"] == token_of(v2.json())
        assert v2.json()["rating_url"] == "https://wangge.example.gov.cn/feedback/r/{rating_token}"
        assert "sealed_links" not in v1.json()  # the v1 payload as before


async def test_the_rating_page_rates_once_down_the_kafka_path(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, token = await resolved_case(pub, reader)
        page = await http(svc, "GET", f"/r/{token}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["cache-control"] == "no-store"
        for text in ("问题是否已解决", "已解决", "未解决", "满意", "基本满意", "不满意", cid):
            assert text in page.text, text
        assert "138****5678" not in page.text and f"ref-{cid}" not in page.text
        nonce = nonce_of(page.text)
        form = {"nonce": nonce, "resolved": "yes", "satisfaction": "satisfied", "comment": "好"}

        done = await http(svc, "POST", f"/r/{token}", data=form, headers=FORM)
        assert done.status_code == 200, done.text
        assert "评价已提交" in done.text and "已结案" in done.text
        status_link = f"../s/{status_token(LINK, cid)}"
        assert status_link in done.text
        [closed] = await wait_n(reader, "cases.closed", cid, 1)
        assert closed["outcome"] == "satisfied"

        again = await http(svc, "POST", f"/r/{token}", data=form, headers=FORM)
        assert again.status_code == 409 and "已使用" in again.text
        [rejected] = await wait_n(reader, "feedback.rejected", cid, 1)
        assert rejected["reason"] == "token already used"  # the domain's refusal, on Kafka too
        gone = await http(svc, "GET", f"/r/{token}")
        assert gone.status_code == 410 and "text/html" in gone.headers["content-type"]
        assert len(of_case(reader, "cases.closed", cid)) == 1
        ratings = await svc.pool.fetch("SELECT comment FROM ratings WHERE case_id = $1", cid)
        assert [r["comment"] for r in ratings] == ["好"]


async def test_an_unsatisfied_rating_on_the_page_reopens_the_case(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, token = await resolved_case(pub, reader)
        nonce = nonce_of((await http(svc, "GET", f"/r/{token}")).text)
        form = {"nonce": nonce, "resolved": "no", "satisfaction": "unsatisfied", "comment": "没修"}
        done = await http(svc, "POST", f"/r/{token}", data=form, headers=FORM)
        assert done.status_code == 200 and "重新办理" in done.text
        [reopened] = await wait_n(reader, "cases.reopened", cid, 1)
        assert reopened["reason"] == "not_resolved: 没修" and reopened["reopen_count"] == 1


async def test_unknown_tokens_stale_pages_and_other_sites_are_not_applied(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, token = await resolved_case(pub, reader)
        good = {"resolved": "yes", "satisfaction": "satisfied"}
        guessed = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        answers = {
            "unknown": await http(svc, "GET", f"/r/{guessed}"),
            "long": await http(svc, "GET", "/r/" + "x" * 300),
            "unknown post": await http(
                svc, "POST", f"/r/{guessed}", data={**good, "nonce": "1.x"}, headers=FORM
            ),
        }
        for what, resp in answers.items():
            assert resp.status_code == 404, what
            assert "text/html" in resp.headers["content-type"] and "链接无效" in resp.text, what
        assert answers["unknown"].text == answers["long"].text  # the same for any wrong token

        no_nonce = await http(svc, "POST", f"/r/{token}", data=good, headers=FORM)
        assert no_nonce.status_code == 400 and "重新提交" in no_nonce.text
        assert nonce_of(no_nonce.text)  # the form again, with a fresh nonce
        nonce = nonce_of((await http(svc, "GET", f"/r/{token}")).text)
        other_token = await http(
            svc, "POST", f"/r/{token}", data={**good, "nonce": "1700000000.abc"}, headers=FORM
        )
        assert other_token.status_code == 400
        cross = await http(
            svc,
            "POST",
            f"/r/{token}",
            data={**good, "nonce": nonce},
            headers={**FORM, "sec-fetch-site": "cross-site"},
        )
        assert cross.status_code == 403
        incomplete = await http(
            svc, "POST", f"/r/{token}", data={"nonce": nonce, "resolved": "maybe"}, headers=FORM
        )
        assert incomplete.status_code == 400
        assert "请选择问题是否已解决" in incomplete.text and "满意程度" in incomplete.text
        as_json = await http(svc, "POST", f"/r/{token}", json={**good, "nonce": nonce})
        assert as_json.status_code == 415
        # nothing above was applied: the token still rates, and the case closes once
        ok = await http(svc, "POST", f"/r/{token}", data={**good, "nonce": nonce}, headers=FORM)
        assert ok.status_code == 200
        await wait_n(reader, "cases.closed", cid, 1)
        assert of_case(reader, "feedback.rejected", cid) == []


async def test_the_json_twin_for_mini_programs(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, token = await resolved_case(pub, reader)
        body = {"rating_token": token, "resolved": True, "satisfaction": "basically_satisfied"}
        first = await http(svc, "POST", "/ratings", json=body)
        assert first.status_code == 200, first.text
        assert first.json() == {
            "case_id": cid,
            "outcome": "closed",
            "status_url": f"/s/{status_token(LINK, cid)}",
        }
        second = await http(svc, "POST", "/ratings", json=body)
        assert second.status_code == 409
        assert second.headers["content-type"] == "application/problem+json"
        unknown = await http(svc, "POST", "/ratings", json={**body, "rating_token": "nope"})
        assert unknown.status_code == 404
        bad = await http(svc, "POST", "/ratings", json={**body, "satisfaction": "great"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.satisfaction"
        await wait_n(reader, "cases.closed", cid, 1)


async def test_an_expired_link_says_so(bed: Testbed) -> None:
    svc = await bed.start("feedback", WANGGE_FEEDBACK_WINDOW=1, WANGGE_SWEEP_INTERVAL_S=0.2)
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, token = await resolved_case(pub, reader)
        [closed] = await wait_n(reader, "cases.closed", cid, 1)
        assert closed["outcome"] == "unrated"
        page = await http(svc, "GET", f"/r/{token}")
        assert page.status_code == 410 and "已过期" in page.text
        json_rate = await http(
            svc,
            "POST",
            "/ratings",
            json={"rating_token": token, "resolved": True, "satisfaction": "satisfied"},
        )
        assert json_rate.status_code == 410


async def test_the_status_link_shows_the_case_without_personal_data(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        cid, _ = await resolved_case(pub, reader, reporter_ref="ref-secret-person")
        link = f"/s/{status_token(LINK, cid)}"
        page = await http(svc, "GET", link)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "已办结，待回访" in page.text and "诉求已受理" in page.text and cid in page.text
        as_json = await http(svc, "GET", link, headers={"accept": "application/json"})
        assert as_json.status_code == 200
        view = as_json.json()
        assert view["case_id"] == cid and view["state"] == "resolved"
        assert [s["event"] for s in view["timeline"]] == ["opened", "resolved"]
        assert view["timeline"][1]["tier"] == "grid"
        for shown in (page.text, as_json.text):
            for private in ("138", "5678", "ref-secret-person", "WC-YY-OJY-G01", "h-0001"):
                assert private not in shown, private

        mac = link.rsplit(".", 1)[1]
        for bad in (
            link[:-1] + ("A" if not link.endswith("A") else "B"),  # tampered
            f"/s/{new_case_id()}.{mac}",  # another case id with this MAC
            f"/s/{cid}",  # a bare case id
        ):
            html = await http(svc, "GET", bad)
            assert html.status_code == 404 and "链接无效" in html.text, bad
            problem = await http(svc, "GET", bad, headers={"accept": "application/json"})
            assert problem.status_code == 404
            assert problem.headers["content-type"] == "application/problem+json"

        # a case feedback has not read yet (intake answered with its link first): received
        fresh = await http(
            svc,
            "GET",
            f"/s/{status_token(LINK, 'C-not-yet')}",
            headers={"accept": "application/json"},
        )
        assert fresh.status_code == 200 and fresh.json()["state"] == "received"


def _run_feedback(env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "services.feedback"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("variable", "env"),
    [
        ("WANGGE_NOTIFY_KEY", {"WANGGE_NOTIFY_KEY": ""}),
        ("WANGGE_NOTIFY_KEY", {"WANGGE_NOTIFY_KEY": "hunter2"}),
        ("WANGGE_LINK_KEY", {"WANGGE_LINK_KEY": "c2hvcnQ="}),
    ],
)
async def test_feedback_without_its_keys_exits_2_with_one_json_line(
    bed: Testbed, variable: str, env: dict[str, str]
) -> None:
    code, out = await asyncio.to_thread(_run_feedback, bed.process_env("feedback", **env))
    assert code == 2, out
    assert "Traceback" not in out and "hunter2" not in out and "c2hvcnQ=" not in out
    lines = [orjson.loads(line) for line in out.splitlines() if line.startswith("{")]
    errors = [entry for entry in lines if entry.get("level") == "error"]
    assert len(errors) == 1, out
    (error,) = errors
    assert error["event"] == "cannot start: a setting is wrong" and error["service"] == "feedback"
    assert error["error"].startswith(variable) and "wangge pii new-key" in error["error"]
