"""The HTTP side's errors, as a client sees them: problem+json (RFC 9457) for what it sent wrong,
a 503 with Retry-After when the database is away, a 500 without details for a bug."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import HTTPException, Query

from shared.runtime.http import PROBLEM_JSON, create_app


def app() -> httpx.AsyncClient:
    api = create_app("test", "0", None)

    @api.get("/away")
    async def away() -> None:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    @api.get("/bug")
    async def bug() -> None:
        raise RuntimeError("secret internals 13812345678")

    @api.get("/items/{n}")
    async def item(n: int, size: int = Query(1, ge=1, le=10)) -> dict[str, int]:
        if n == 0:
            raise HTTPException(404, "no item 0")
        return {"n": n, "size": size}

    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_invalid_input_is_a_422_problem_naming_each_field() -> None:
    async with app() as client:
        resp = await client.get("/items/abc?size=99")
    assert resp.status_code == 422 and resp.headers["content-type"] == PROBLEM_JSON
    body = resp.json()
    assert body["status"] == 422 and body["title"] == "Unprocessable Entity"
    assert {e["field"] for e in body["errors"]} == {"path.n", "query.size"}
    assert body["instance"] == "/items/abc"


async def test_a_refusal_is_a_problem_with_its_detail() -> None:
    async with app() as client:
        resp = await client.get("/items/0")
    assert resp.status_code == 404 and resp.json()["detail"] == "no item 0"
    assert resp.headers["content-type"] == PROBLEM_JSON


async def test_a_database_away_is_a_503_to_retry_and_a_bug_a_bare_500() -> None:
    async with app() as client:
        away = await client.get("/away")
        bug = await client.get("/bug")
    assert away.status_code == 503 and away.headers["retry-after"] == "5"
    assert away.json()["status"] == 503
    assert bug.status_code == 500 and bug.headers["content-type"] == PROBLEM_JSON
    assert "secret" not in bug.text and "138" not in bug.text
