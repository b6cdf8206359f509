"""Supervisions counted per unit and period (督办), end to end on the real broker and database:
the command centre supervises open cases over dispatch's HTTP API (its clock moved by the test),
dispatch publishes cases.supervised, feedback counts the supervised cases and the supervisions of
each unit's cases in the period of their time, in ``GET /units/{code}/metrics``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.dispatch.api_client import api
from tests.dispatch.support import FakeClock, case_opened, driving, load_registry, start_dispatch
from tests.feedback.helpers import http_get, sh

HPY_G01 = {"district": "WC", "street": "WC-YY", "community": "WC-YY-HPY", "grid": "WC-YY-HPY-G01"}
QUIET = {"WANGGE_SWEEP_INTERVAL_S": 3600.0}


def counts(cases: int, supervisions: int) -> dict[str, int]:
    return {"cases": cases, "supervisions": supervisions}


async def test_each_units_supervisions_in_the_period(bed: Testbed) -> None:
    clock = FakeClock(sh(10, 5, 9))
    svc = await start_dispatch(bed, clock, **QUIET)
    feedback = await bed.start("feedback")
    await load_registry(bed)
    async with driving(bed, "test/intake") as d, api(bed, svc) as http:
        opened = [await d.open(case_opened(opened_at=clock())) for _ in range(2)]  # OJY-G01
        other = await d.open(case_opened(location=HPY_G01, opened_at=clock()))
        centre = http.centre("WC")
        clock.advance(timedelta(minutes=30))
        # the first case twice, the second and the other grid's case once each
        for case in (opened[0], opened[0], opened[1], other):
            status, body = await http.post(
                f"/cases/{case['case_id']}/supervise", centre, {"note": "请今日内上门处置"}
            )
            assert status == 200, body
        for n in (1, 2):
            await d.one("cases.supervised", opened[0]["case_id"], supervision=n)
        await d.one("cases.supervised", opened[1]["case_id"])
        await d.one("cases.supervised", other["case_id"])

    async def counted(path: str) -> Any:
        status, body = await http_get(feedback, path)
        assert status == 200, body
        return body["metrics"]["supervised"]

    street = counts(3, 4)
    await eventually(
        lambda: _equal(counted("/units/WC-YY/metrics?period=2026-10"), street),
        timeout=30,
        what="feedback to count the supervisions",
    )
    assert await counted("/units/WC-YY-OJY-G01/metrics?period=2026-10") == counts(2, 3)
    assert await counted("/units/WC-YY-OJY/metrics?period=2026-10") == counts(2, 3)
    assert await counted("/units/WC-YY-HPY/metrics?period=2026-10") == counts(1, 1)
    assert await counted("/units/WC-YY/metrics?period=2026-10-05") == street  # the day
    assert await counted("/units/WC-YY/metrics?period=2026-09") == counts(0, 0)


async def _equal(got: Any, want: dict[str, int]) -> bool:
    return bool(await got == want)
