"""The resident's way in, across the services: an upstream system posts a report over Open311
and gets the case's status link for its resident (intake makes it with the link key it shares
with feedback); feedback serves that link, without personal data; a link with another case's id
or a bent MAC is unknown."""

from __future__ import annotations

import httpx

from tests.http.conftest import Stack
from tests.http.test_access_matrix import open_a_case


async def test_the_status_link_of_an_open311_answer_opens_the_case(stack: Stack) -> None:
    case_id, answer = await open_a_case(stack, phone="13912345678")
    url = answer["status_url"]
    assert url.startswith("/s/") and case_id in url
    base = stack.urls["feedback"]
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(base + url, headers={"Accept": "application/json"})
        assert page.status_code == 200, page.text
        view = page.json()
        assert view["case_id"] == case_id and view["timeline"]
        assert "13912345678" not in page.text and "5678" not in page.text
        html = await client.get(base + url)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        token = url.removeprefix("/s/")
        other = token.replace(case_id, case_id[:-1] + ("0" if case_id[-1] != "0" else "1"))
        bent = token[:-1] + ("A" if token[-1] != "A" else "B")
        for wrong in (other, bent, case_id):
            assert (await client.get(f"{base}/s/{wrong}")).status_code == 404, wrong
