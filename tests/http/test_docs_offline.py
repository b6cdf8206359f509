"""Each service documents itself without the internet: ``/openapi.json`` is an OpenAPI 3.1
document of that service, and ``/docs`` (Swagger UI) loads only assets the service serves."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.http.conftest import Stack


@pytest.mark.parametrize("service", ["intake", "dispatch", "feedback"])
async def test_the_docs_page_loads_nothing_from_elsewhere(stack: Stack, service: str) -> None:
    base = stack.urls[service]
    async with httpx.AsyncClient(timeout=30) as client:
        doc = (await client.get(f"{base}/openapi.json")).json()
        assert doc["openapi"].startswith("3.") and doc["info"]["title"] == f"wangge {service}"
        assert "Problem" in doc["components"]["schemas"]
        page = await client.get(f"{base}/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets, "the page names its assets"
        for url in assets:
            assert not re.match(r"^(https?:)?//", url), f"{url}: fetched from elsewhere"
            resp = await client.get(f"{base}{url}")
            assert resp.status_code == 200, url
        assert any(u.endswith("swagger-ui-bundle.js") for u in assets)
        assert "/openapi.json" in page.text
