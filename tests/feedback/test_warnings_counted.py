"""Warnings counted per unit and period (黄牌/红牌), end to end on the real broker and database:
dispatch (its clock moved by the test) warns and misses deadlines, feedback counts the yellow
cards (``cases.warned``) and red cards (``cases.overdue``) of each unit's cases in the period of
their time, in ``GET /units/{code}/metrics``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch
from tests.feedback.helpers import http_get, sh

HPY_G01 = {"district": "WC", "street": "WC-YY", "community": "WC-YY-HPY", "grid": "WC-YY-HPY-G01"}
FAST = {"WANGGE_SWEEP_INTERVAL_S": 0.1}


def cards(yellow: int, red: int, cases: int, respond: tuple[int, int]) -> dict[str, Any]:
    return {
        "yellow": yellow,
        "red": red,
        "cases": cases,
        "respond": {"yellow": respond[0], "red": respond[1]},
        "resolve": {"yellow": yellow - respond[0], "red": red - respond[1]},
        "verify": {"yellow": 0, "red": 0},
    }


async def test_each_units_cards_in_the_period(bed: Testbed) -> None:
    clock = FakeClock(sh(10, 5, 9))
    await start_dispatch(bed, clock, **FAST)
    feedback = await bed.start("feedback")
    await load_registry(bed)
    async with driving(bed, "test/intake") as d:
        opened = [
            await d.open(case_opened(opened_at=clock()))
            for _ in range(2)  # two cases of grid WC-YY-OJY-G01
        ]
        other = await d.open(case_opened(location=HPY_G01, opened_at=clock()))
        # 97 of 120 minutes: three yellow cards (the response stage)
        clock.advance(timedelta(minutes=97))
        for case in (*opened, other):
            await d.one("cases.warned", case["case_id"], stage="respond")
        # one is accepted in time; the other two miss their response deadline: two red cards
        first = opened[0]
        await d.act(first["case_id"], first["handler_id"], "accept", at=clock())
        await d.one("cases.accepted", first["case_id"])
        clock.advance(timedelta(minutes=24))
        for case in (opened[1], other):
            await d.one("cases.overdue", case["case_id"], deadline="respond")

    async def counted(path: str) -> Any:
        status, body = await http_get(feedback, path)
        assert status == 200, body
        return body["metrics"]["warned"]

    street = cards(3, 2, 3, (3, 2))
    await eventually(
        lambda: _equal(counted("/units/WC-YY/metrics?period=2026-10"), street),
        timeout=30,
        what="feedback to count the cards",
    )
    assert await counted("/units/WC-YY-OJY-G01/metrics?period=2026-10") == cards(2, 1, 2, (2, 1))
    assert await counted("/units/WC-YY-OJY/metrics?period=2026-10") == cards(2, 1, 2, (2, 1))
    assert await counted("/units/WC-YY-HPY/metrics?period=2026-10") == cards(1, 1, 1, (1, 1))
    assert await counted("/units/WC-YY/metrics?period=2026-10-05") == street  # the day
    assert await counted("/units/WC-YY/metrics?period=2026-09") == cards(0, 0, 0, (0, 0))


async def _equal(got: Any, want: dict[str, Any]) -> bool:
    return bool(await got == want)
