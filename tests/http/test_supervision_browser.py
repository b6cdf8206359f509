"""督办 in a real browser (Chromium through Playwright, the services as processes): the command
centre opens a case on the board, sends a supervision with a note and a report-back time; it is
on the case's timeline and published; the case's handler sees the badge on their phone list and
the note on the case. No console errors, axe-core clean; screenshots in .run/test/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Stack
from tests.http.test_console_browser import CHROMIUM, SHOTS, axe_violations, link, signed_in
from tests.http.test_console_browser import browser as browser  # the module's fixture, shared
from tests.http.test_handler_browser import case_as, dispatched_report, on_phone

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; CI does)"
)
GRID = "WC-YY-OJY-G01"


async def test_the_command_centre_supervises_a_case_and_its_handler_sees_it(
    stack: Stack, browser: Any
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    case_id = await dispatched_report(
        # a category no other browser test reports here (a duplicate would join its case, 附议)
        stack,
        "greening",
        f"{GRID}-B05",
        "5栋门前绿化带的树枝压到电线上了，刮风很危险",
    )
    handler = (await case_as(stack, case_id, "command_centre", "WC", "cc"))["handler_id"]
    assert handler, "dispatched to the grid's least busy handler"

    context, page, errors = await signed_in(browser, link(stack, "command_centre", "WC"))
    try:
        await page.wait_for_selector(f'#recent [data-case-id="{case_id}"]', timeout=15_000)
        await page.click(f'#recent [data-case-id="{case_id}"] button')
        await page.wait_for_selector("#supervise-form:not([hidden])", timeout=5_000)
        # a note is required: nothing is sent without one
        await page.click("#supervise-form button[type=submit]")
        await page.wait_for_selector('#supervise-result:has-text("请填写督办意见")')
        await page.fill("#supervise-note", "树枝压线有安全隐患，请今日内协调园林部门修剪并回复")
        await page.fill("#supervise-by", "2031-01-15T18:00")
        await page.click("#supervise-form button[type=submit]")
        await page.wait_for_selector('#supervise-result:has-text("第 1 次督办")', timeout=10_000)
        await page.wait_for_selector("#case-body td:has-text('督办')", timeout=5_000)
        await page.screenshot(path=str(SHOTS / "case-supervised.png"), full_page=True)
        assert await axe_violations(page) == []
        assert errors.messages == []
    finally:
        await context.close()

    case = await case_as(stack, case_id, "command_centre", "WC", "cc")
    step = case["timeline"][-1]
    assert step["event"] == "supervise" and step["unit"] == GRID
    assert step["detail"]["report_by"].startswith("2031-01-15T18:00:00+08:00")
    assert step["detail"]["by"]["unit"] == "WC"
    assert case["state"] == "dispatched"  # nothing else changed

    context, page, errors = await on_phone(browser, link(stack, "grid_worker", GRID, handler))
    try:
        item = f'[data-case-id="{case_id}"]'
        await page.wait_for_selector(f"{item} .badge-supervised", timeout=10_000)
        await page.screenshot(path=str(SHOTS / "handler-supervised-list.png"), full_page=True)
        await page.tap(f"{item} button")
        note = await page.wait_for_selector(".supervision", timeout=10_000)
        text = await note.text_content() or ""
        assert "请今日内协调园林部门修剪" in text and "01/15 18:00" in text, text
        await page.wait_for_selector('#timeline [data-event="supervise"]')
        await page.screenshot(path=str(SHOTS / "handler-supervised-case.png"), full_page=True)
        assert await axe_violations(page) == []
        assert errors.messages == []
    finally:
        await context.close()
