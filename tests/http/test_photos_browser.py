"""Photos on the handler's phone page in a real browser (Debian's headless Chromium driven by
Playwright, 390x844), against the three services as processes (tests/http/conftest.py).

A resident's report comes over Open311 with a photo taken by a phone (its GPS position in the
EXIF); the grid worker signs in, opens the case, sees the reported photo (dispatch redirects the
page to intake with a signed link, which the page's CSP allows), attaches a photo of their own to
the accept (file input), and sees it on the timeline; the photo served has no EXIF. A grid
worker of another grid cannot fetch either. No console errors; axe-core finds no WCAG 2 A/AA
violation. Screenshots in .run/test/screenshots/."""

from __future__ import annotations

import io
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from devstack.wait import eventually
from services.intake.open311 import store as open311_store
from services.intake.open311.apikeys import new_key
from tests.http.conftest import Stack
from tests.http.test_console_browser import CHROMIUM, SHOTS, axe_violations, link
from tests.http.test_console_browser import browser as browser  # the module's fixture, shared
from tests.http.test_handler_browser import on_phone
from tests.media.photos import jpeg_with_gps

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI does)"
)
GRID, BUILDING = "WC-YY-OJY-G01", "WC-YY-OJY-G01-B05"


async def reported_with_photo(stack: Stack, text: str) -> str:
    """A report over Open311 with a photo (the file ``media``), once dispatch holds its case."""
    conn = await asyncpg.connect(stack.bed.admin_dsn)
    try:
        key = new_key()
        await conn.execute("SET search_path TO intake")
        await open311_store.insert_key(conn, key.key_id, "photo-page", "open311", key.digest)
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(
                f"{stack.urls['intake']}/open311/v2/requests.json",
                data={
                    "api_key": key.key,
                    "service_code": "sanitation",
                    "address_id": BUILDING,
                    "description": text,
                },
                files={"media": ("IMG_0001.jpg", jpeg_with_gps(320, 240), "image/jpeg")},
            )
        assert resp.status_code == 200, resp.text
        case_id: str = resp.json()[0]["service_request_id"]
        await eventually(
            partial(
                conn.fetchval, "SELECT 1 FROM dispatch.case_photos WHERE case_id = $1", case_id
            ),
            timeout=60,
            what="the case and its photo on dispatch",
        )
    finally:
        await conn.close()
    return case_id


async def loaded(page: Any, selector: str) -> None:
    """The image has been fetched and decoded (its natural width known)."""
    await page.wait_for_function(
        "(sel) => { const i = document.querySelector(sel);"
        " return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
        timeout=10_000,
    )


async def test_photos_on_the_phone_page(stack: Stack, browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    case_id = await reported_with_photo(stack, "5栋门口垃圾桶满了，垃圾堆到路上")
    context, page, errors = await on_phone(browser, link(stack, "grid_worker", GRID, "h-0001"))
    try:
        item = f'[data-case-id="{case_id}"]'
        await page.wait_for_selector(item, timeout=10_000)
        await page.tap(f"{item} button")
        await page.wait_for_selector("#act-buttons button", timeout=10_000)
        # the resident's photo: through dispatch's check, then intake's signed link
        await page.wait_for_selector("#photos-section:not([hidden])", timeout=10_000)
        await loaded(page, "#report-photos img")
        assert await page.get_attribute("#report-photos img", "alt") == "群众上报照片 1"
        assert await page.text_content('label[for="photo"]') or ""

        mine = jpeg_with_gps(200, 150)
        await page.set_input_files(
            "#photo", files=[{"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": mine}]
        )
        await page.fill("#note", "已到现场，拍照留存")
        await page.tap('#act-buttons button[data-action="accept"]')
        await page.wait_for_selector('#act-result:has-text("已接单")', timeout=10_000)
        await loaded(page, '#timeline li[data-event="accept"] img')
        assert await page.input_value("#photo") == ""
        await page.screenshot(path=str(SHOTS / "handler-photos.png"), full_page=True)
        assert await axe_violations(page) == []
        assert errors.messages == []
    finally:
        await context.close()

    token = stack.token("grid_worker", GRID, "h-0001")
    async with httpx.AsyncClient(timeout=30) as client:
        auth = {"Authorization": f"Bearer {token}"}
        case = (await client.get(f"{stack.urls['dispatch']}/cases/{case_id}", headers=auth)).json()
        accept = next(s for s in case["timeline"] if s["event"] == "accept")
        assert (
            len(accept["detail"]["photos"]) == 1
            and accept["detail"]["note"] == "已到现场，拍照留存"
        )
        origins = sorted(p["origin"] for p in case["photos"])
        assert origins == ["report", "upload"]
        for p in case["photos"]:  # both served without their EXIF (the GPS position)
            resp = await client.get(
                f"{stack.urls['dispatch']}{p['url']}", headers=auth, follow_redirects=True
            )
            assert resp.status_code == 200, resp.text
            with Image.open(io.BytesIO(resp.content)) as im:
                assert not im.getexif()
        urls = [p["url"] for p in case["photos"]]

    # a grid worker of another grid: neither photo, from the page's own session
    context, page, errors = await on_phone(
        browser, link(stack, "grid_worker", "WC-YY-HPY-G01", "h-0004")
    )
    try:
        await page.wait_for_selector("body[data-list-at]", timeout=10_000)
        assert errors.messages == []
        for url in urls:
            status = await page.evaluate("async (u) => (await fetch(u)).status", url)
            assert status == 404
    finally:
        await context.close()
