"""The handler's phone page in a real browser: Debian's headless Chromium driven by Playwright, on
a phone-sized viewport (390x844), against the three services as processes (tests/http/conftest.py).

A grid worker signs in with a single-use link and lands on /console/handler/, sees the case
dispatched to their grid in their list with its deadline, opens it, accepts it and resolves it
with notes; the case's state changes (checked through the handler API with a bearer token) and
its timeline shows the notes. A grid worker of another grid sees none of it. A party volunteer of
the community sees a new grid case among the open orders (党员接单), takes it, and then may
report progress and resolve it, but not return or escalate it. No console errors; axe-core finds
no WCAG 2 A/AA violation. Screenshots in .run/test/screenshots/ (git-ignored)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from devstack.wait import eventually
from services.intake.open311 import store as open311_store
from services.intake.open311.apikeys import new_key
from tests.http.conftest import Stack
from tests.http.test_console_browser import CHROMIUM, SHOTS, Errors, axe_violations, link
from tests.http.test_console_browser import browser as browser  # the module's fixture, shared

PHONE = {"width": 390, "height": 844}
HANDLER_PAGE = "/console/handler/"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI does)"
)


async def dispatched_report(stack: Stack, service_code: str, building: str, text: str) -> str:
    """A report over Open311, once dispatch holds its case: the case id."""
    conn = await asyncpg.connect(stack.bed.admin_dsn)
    try:
        key = new_key()
        await conn.execute("SET search_path TO intake")
        await open311_store.insert_key(conn, key.key_id, "handler-page", "open311", key.digest)
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(
                f"{stack.urls['intake']}/open311/v2/requests.json",
                data={
                    "api_key": key.key,
                    "service_code": service_code,
                    "address_id": building,
                    "description": text,
                },
            )
        assert resp.status_code == 200, resp.text
        case_id: str = resp.json()[0]["service_request_id"]
        await eventually(
            partial(conn.fetchval, "SELECT 1 FROM dispatch.cases WHERE case_id = $1", case_id),
            timeout=60,
            what="the case dispatched",
        )
    finally:
        await conn.close()
    return case_id


async def case_as(stack: Stack, case_id: str, role: str, unit: str, handler: str) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.get(
            f"{stack.urls['dispatch']}/cases/{case_id}",
            headers={"Authorization": f"Bearer {stack.token(role, unit, handler)}"},
        )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def on_phone(browser: Any, url: str) -> tuple[Any, Any, Errors]:
    # bypass_csp: only so that axe-core can be injected (the page itself runs under its CSP)
    context = await browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
        locale="zh-CN", bypass_csp=True,
    )  # fmt: skip
    page = await context.new_page()
    errors = Errors(page)
    await page.goto(url)
    return context, page, errors


async def take(page: Any, action: str, note: str, done: str, state: str) -> None:
    """Tap an action with a note; wait for the page's answer and the case's new state."""
    await page.fill("#note", note)
    await page.tap(f'#act-buttons button[data-action="{action}"]')
    await page.wait_for_selector(f'#act-result:has-text("{done}")', timeout=10_000)
    await page.wait_for_selector(f'body[data-case-state="{state}"]', timeout=10_000)


async def offered(page: Any) -> list[str]:
    buttons = await page.query_selector_all("#act-buttons button")
    return [await b.get_attribute("data-action") for b in buttons]


async def test_a_grid_worker_accepts_and_resolves_a_case_on_the_phone(
    stack: Stack, browser: Any
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    grid, building = "WC-YY-OJY-G01", "WC-YY-OJY-G01-B05"
    case_id = await dispatched_report(
        stack, "property_repair", building, "5栋二单元楼道灯坏了一个星期，晚上看不见路"
    )
    assert (await case_as(stack, case_id, "grid_worker", grid, "h-0001"))["state"] == "dispatched"

    context, page, errors = await on_phone(browser, link(stack, "grid_worker", grid, "h-0001"))
    try:
        assert page.url == f"{stack.urls['dispatch']}{HANDLER_PAGE}", "not landed on the page"
        item = f'[data-case-id="{case_id}"]'
        await page.wait_for_selector(item, timeout=10_000)
        text = await page.text_content(item) or ""
        assert "物业维修" in text and "接单期限" in text, text
        await page.screenshot(path=str(SHOTS / "handler-list.png"), full_page=True)
        assert await axe_violations(page) == []

        await page.tap(f"{item} button")
        await page.wait_for_selector("#act-buttons button", timeout=10_000)
        assert "accept" in await offered(page)
        await take(page, "accept", "收到，马上到现场", "已接单", "accepted")
        assert "resolve" in await offered(page) and "accept" not in await offered(page)
        after_accept = await case_as(stack, case_id, "grid_worker", grid, "h-0001")
        assert after_accept["state"] == "accepted"
        assert after_accept["handler_id"] == "h-0001"

        # a resolve without a note is stopped on the page, nothing sent
        await page.fill("#note", "")
        await page.tap('#act-buttons button[data-action="resolve"]')
        await page.wait_for_selector('#act-result:has-text("请先填写说明")', timeout=5_000)
        assert (await case_as(stack, case_id, "grid_worker", grid, "h-0001"))["state"] == (
            "accepted"
        )

        await take(page, "resolve", "已更换灯泡，楼道照明恢复", "已办结", "verifying")
        resolved = await case_as(stack, case_id, "grid_worker", grid, "h-0001")
        assert resolved["state"] == "verifying"  # the community verifies it (核查结案)
        notes = [s["detail"].get("note") for s in resolved["timeline"]]
        assert "收到，马上到现场" in notes and "已更换灯泡，楼道照明恢复" in notes
        await page.wait_for_selector('#timeline li:has-text("已更换灯泡")', timeout=5_000)
        assert await page.query_selector("#act-buttons button") is None  # nothing left to do
        await page.screenshot(path=str(SHOTS / "handler-case.png"), full_page=True)
        assert await axe_violations(page) == []

        await page.tap("#back")
        await page.wait_for_selector("#list-view:not([hidden])", timeout=5_000)
        await page.wait_for_selector(f'{item}:has-text("待核查")', timeout=5_000)
        assert errors.messages == []
    finally:
        await context.close()

    # the community's staff verify it on site from their phone: then it is resolved
    community = link(stack, "community_staff", "WC-YY-OJY", "h-0010")
    context, page, errors = await on_phone(browser, community)
    try:
        item = f'[data-case-id="{case_id}"]'
        await page.wait_for_selector(f'{item}:has-text("核查期限")', timeout=10_000)
        await page.tap(f"{item} button")
        await page.wait_for_selector("#act-buttons button", timeout=10_000)
        assert await offered(page) == ["verify", "send_back"]
        assert "核查单位" in (await page.text_content("#case-body") or "")
        await take(page, "verify", "现场查看，楼道灯已亮", "已核查通过", "resolved")
        verified = await case_as(stack, case_id, "community_staff", "WC-YY-OJY", "h-0010")
        assert verified["state"] == "resolved"
        assert [s["event"] for s in verified["timeline"]][-2:] == ["resolve", "verify"]
        await page.screenshot(path=str(SHOTS / "handler-verify.png"), full_page=True)
        assert await axe_violations(page) == []
        assert errors.messages == []
    finally:
        await context.close()

    # a grid worker of another grid sees none of it
    other = link(stack, "grid_worker", "WC-YY-HPY-G01", "h-0004")
    context, page, errors = await on_phone(browser, other)
    try:
        await page.wait_for_selector("body[data-list-at]", timeout=10_000)
        assert await page.query_selector(f'[data-case-id="{case_id}"]') is None
        assert "和平苑第一网格" in (await page.text_content("#who") or "")
        await page.screenshot(path=str(SHOTS / "handler-other-grid.png"), full_page=True)
        assert await axe_violations(page) == []
        assert errors.messages == []
        # its session reaches no case of the other grid (the browser logs this 404 itself)
        status = await page.evaluate("async (id) => (await fetch('/cases/' + id)).status", case_id)
        assert status == 404
    finally:
        await context.close()


async def test_a_party_volunteer_takes_an_open_order_of_their_community(
    stack: Stack, browser: Any
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    community = "WC-YY-OJY"
    case_id = await dispatched_report(
        stack, "greening", "WC-YY-OJY-G01-B03", "3栋旁边绿化带的树枝被风刮断了，挡住人行道"
    )
    url = link(stack, "party_volunteer", community, "h-0013")
    context, page, errors = await on_phone(browser, url)
    try:
        order = f'#orders [data-case-id="{case_id}"]'
        await page.wait_for_selector(order, timeout=10_000)
        assert await page.query_selector(f'#rest [data-case-id="{case_id}"]') is None
        await page.screenshot(path=str(SHOTS / "handler-orders.png"), full_page=True)
        assert await axe_violations(page) == []

        await page.tap(f"{order} button")
        await page.wait_for_selector("#act-buttons button", timeout=10_000)
        assert await offered(page) == ["accept"]
        await take(page, "accept", "我住附近，这就去清理", "已接单", "accepted")
        assert await offered(page) == ["progress", "resolve"]
        taken = await case_as(stack, case_id, "party_volunteer", community, "h-0013")
        assert (taken["state"], taken["handler_id"]) == ("accepted", "h-0013")

        await page.tap("#back")
        await page.wait_for_selector(
            f'#list-view:not([hidden]) [data-case-id="{case_id}"]:not(#orders *)', timeout=5_000
        )
        assert await page.query_selector(order) is None
        assert errors.messages == []
    finally:
        await context.close()


async def test_a_grid_worker_asks_for_an_extension_and_the_community_approves_it(
    stack: Stack, browser: Any
) -> None:
    """缓办/延期 on the phone: the grid worker asks with a reason and a date (the handler's wall
    clock, Shanghai time); the community's staff sees the request in their list, with the date
    and the reason, and approves it; the case's deadline becomes that date."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    grid, building, community = "WC-YY-OJY-G01", "WC-YY-OJY-G01-B03", "WC-YY-OJY"
    case_id = await dispatched_report(stack, "property_repair", building, "3栋电梯按钮失灵")
    shanghai = ZoneInfo("Asia/Shanghai")
    wanted = (datetime.now(shanghai) + timedelta(days=3)).replace(
        hour=17, minute=30, second=0, microsecond=0
    )

    context, page, errors = await on_phone(browser, link(stack, "grid_worker", grid, "h-0001"))
    try:
        item = f'[data-case-id="{case_id}"]'
        await page.wait_for_selector(item, timeout=10_000)
        await page.tap(f"{item} button")
        await page.wait_for_selector("#act-buttons button", timeout=10_000)
        await take(page, "accept", "收到", "已接单", "accepted")
        assert {"request_extension", "suspend"} <= set(await offered(page))
        # a request without a date is stopped on the page
        await page.fill("#note", "电梯配件需厂家寄送")
        await page.tap('#act-buttons button[data-action="request_extension"]')
        await page.wait_for_selector('#act-result:has-text("请先选择日期")', timeout=5_000)
        await page.fill("#when", wanted.strftime("%Y-%m-%dT%H:%M"))
        await take(
            page, "request_extension", "电梯配件需厂家寄送", "已申请延期", "extension_requested"
        )
        assert "approve_extension" not in await offered(page)
        assert errors.messages == []
    finally:
        await context.close()

    staff = link(stack, "community_staff", community, "h-0010")
    context, page, errors = await on_phone(browser, staff)
    try:
        item = f'[data-case-id="{case_id}"]'
        await page.wait_for_selector(item, timeout=10_000)
        await page.tap(f"{item} button")
        await page.wait_for_selector('#act-buttons button[data-action="approve_extension"]')
        body = await page.text_content("#case-body") or ""
        assert "电梯配件需厂家寄送" in body and "申请延期至" in body, body
        await page.screenshot(path=str(SHOTS / "handler-extension.png"), full_page=True)
        assert await axe_violations(page) == []
        await take(page, "approve_extension", "同意", "已批准延期", "accepted")
        assert errors.messages == []
    finally:
        await context.close()
    after = await case_as(stack, case_id, "grid_worker", grid, "h-0001")
    assert datetime.fromisoformat(after["resolve_by"]) == wanted
    assert after["extensions"] == 1
