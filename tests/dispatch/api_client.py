"""The handler API as the tests call it: through the service's real ASGI app (routing,
validation, auth, problem+json), with testbed tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from devstack.testbed import Testbed
from shared.runtime.service import Service

# Tokens of the sample city's handlers (deploy/samples/registry.yaml)
G01 = "WC-YY-OJY-G01"
G02 = "WC-YY-OJY-G02"
OJY = "WC-YY-OJY"


class Api:
    def __init__(self, bed: Testbed, client: httpx.AsyncClient) -> None:
        self.bed = bed
        self.client = client

    def auth(self, role: str, unit: str | None = None, handler: str | None = None) -> str:
        return self.bed.token(role, unit, handler)

    def worker(self, handler: str = "h-0001", unit: str = G01) -> str:
        return self.auth("grid_worker", unit, handler)

    def centre(self, unit: str = "WC") -> str:
        return self.auth("command_centre", unit)

    async def get(self, path: str, token: str | None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.get(path, headers=headers)
        return resp.status_code, resp.json()

    async def post(self, path: str, token: str | None, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = await self.client.post(path, json=body, headers=headers)
        return resp.status_code, resp.json()

    async def act(
        self, case_id: str, token: str | None, body: Any, *, key: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        resp = await self.client.post(f"/cases/{case_id}/actions", json=body, headers=headers)
        return resp.status_code, resp.json()

    async def my_cases(self, token: str, **query: Any) -> dict[str, Any]:
        resp = await self.client.get(
            "/me/cases", params=query, headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    async def my_case_ids(self, token: str, **query: Any) -> list[str]:
        return [c["case_id"] for c in (await self.my_cases(token, **query))["items"]]


@asynccontextmanager
async def api(bed: Testbed, svc: Service) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dispatch") as client:
        yield Api(bed, client)
