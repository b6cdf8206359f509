"""Every metric on a hand-computed scenario through the real service, broker and database.

Period 2026-10 (Asia/Shanghai). Street 杨园街道 WC-YY has two communities, 欧景苑 WC-YY-OJY
(grids G01, G02) and 和平苑 WC-YY-HPY (grid G01). Times are local (Shanghai):

C1 OJY-G01 sanitation, opened 10-05 09:00, dispatched grid 09:05, accepted 09:30 on time,
   resolved at grid 15:00 on time (6 h). Two reporters (one merged): satisfied (decides: closed),
   then the supporter's unsatisfied-but-resolved rating (counts, decides nothing).
C2 OJY-G01 sanitation, opened 10-06 09:00, dispatched grid 09:00, accepted 12:00 late,
   escalated to community, re-dispatched 13:00, accepted 13:30 on time, resolved at community
   10-07 09:00 on time; rated not resolved + unsatisfied -> reopened; resolved again at
   community 10-08 09:00 late (48 h); rated resolved + basically satisfied -> closed.
C3 OJY-G02 parking, opened 10-10 08:00, dispatched community 08:10, never accepted.
C4 HPY-G01 sanitation, opened 10-12 10:00, dispatched grid 10:00, accepted 10:30 on time,
   escalated to street, re-dispatched to the department WC-YY-SZ 11:00, accepted 11:30 on time,
   resolved at street 10-14 10:00 on time (48 h); rated resolved + unsatisfied -> reopened.
C5 OJY-G01 sanitation, opened 09-20 (previous month). C6 OJY-G02 noise, opened 09-25.
C7 OJY-G01 sanitation, opened 2026-10-31T17:00Z = 11-01 01:00 local: November, not October.
C8 OJY-G02 noise, opened 2026-09-30T16:30Z = 10-01 00:30 local: October. Dispatched grid
   00:40, accepted 00:50 on time, resolved at grid 04:30 on time (4 h); satisfied -> closed.
C9 HPY-G01 illegal construction, a street-level category (default tier street), opened 10-15
   09:00, dispatched to the street 09:10, accepted 10:00 on time, resolved at street 10-16 09:00
   on time (24 h); not rated. Left out of 大事不出社区率 (kept in the community).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.identity import issue_token
from tests.feedback.helpers import (
    H,
    accepted,
    dispatched,
    escalated,
    http_get,
    iso,
    merged,
    new_case_id,
    opened,
    rating,
    resolved,
    send,
    sh,
    token_of,
    wait_n,
)
from tests.samples import sample_registry, wait_registry


def ratio(n: int, d: int, rate: float | None) -> dict[str, Any]:
    return {"rate": rate, "numerator": n, "denominator": d}


NO_CARDS = {
    "yellow": 0,
    "red": 0,
    "cases": 0,
    "respond": {"yellow": 0, "red": 0},
    "resolve": {"yellow": 0, "red": 0},
    "verify": {"yellow": 0, "red": 0},
}
NO_SUPERVISIONS = {"cases": 0, "supervisions": 0}
# 派单/协办 and councils: tests/feedback/test_orders_counted.py counts them
NO_ORDERS = {
    "issued": 0,
    "reported": 0,
    "reported_on_time": 0,
    "report_missed": 0,
    "done": 0,
    "done_on_time": 0,
    "returned": 0,
    "cancelled": 0,
}
NO_COUNCILS = {"decisions": 0, "measures": 0}
_NONE = {"cases": 0, "commissioned": 0, "relays": 0}
# 三代 agency: tests/dispatch/test_agency.py counts them
NO_AGENCY = {**_NONE, "proxy_petition": _NONE, "voice_advocacy": _NONE, "errand_service": _NONE}
EXPECTED_OJY = {
    "received": 4,  # C1 C2 C3 C8
    "resolved": 3,  # C1 C2 C8
    "ratings": 5,  # C1 x2, C2 x2, C8
    # cases dispatched C1 C2 C3 C8, each once; first dispatch on time C1 C8 (C2's was late)
    "response_rate": ratio(2, 4, 0.5),
    "on_time_resolution_rate": ratio(2, 3, 0.6667),  # C2's latest resolution was late
    "resolution_rate": ratio(4, 5, 0.8),  # C2's first rating said not resolved
    "satisfaction_rate": ratio(3, 5, 0.6),  # C1 satisfied, C2 basically, C8 satisfied
    "reopen_rate": ratio(1, 3, 0.3333),  # C2
    "kept_in_grid_rate": ratio(2, 3, 0.6667),  # all started at grid; C2 ended at community
    "kept_in_community_rate": ratio(3, 3, 1.0),
    "escalation_rate": ratio(1, 3, 0.3333),  # C2
    "return_rate": ratio(0, 5, 0.0),  # dispatches C1, C2 twice, C3, C8; none returned (退单)
    # hours [4, 6, 48]: median 6; p90 = 6 + (48 - 6) * 0.8
    "time_to_resolve_hours": {"median": 6.0, "p90": 39.6, "cases": 3},
    "warned": NO_CARDS,  # tests/feedback/test_warnings_counted.py counts them
    "supervised": NO_SUPERVISIONS,  # tests/feedback/test_supervisions_counted.py counts them
    "agency": NO_AGENCY,
    "orders": NO_ORDERS,
    "councils": NO_COUNCILS,
}
EXPECTED_STREET = {
    "received": 6,
    "resolved": 5,
    "ratings": 6,
    "response_rate": ratio(4, 6, 0.6667),  # and C4 C9, both on time
    "on_time_resolution_rate": ratio(4, 5, 0.8),
    "resolution_rate": ratio(5, 6, 0.8333),
    "satisfaction_rate": ratio(3, 6, 0.5),
    "reopen_rate": ratio(2, 5, 0.4),
    "kept_in_grid_rate": ratio(2, 4, 0.5),  # C9 started at street
    "kept_in_community_rate": ratio(3, 4, 0.75),  # C4 at street counts against; C9 is left out
    "escalation_rate": ratio(2, 5, 0.4),
    "return_rate": ratio(0, 8, 0.0),  # and C4 twice, C9
    # hours [4, 6, 24, 48, 48]: median 24; p90 = 48
    "time_to_resolve_hours": {"median": 24.0, "p90": 48.0, "cases": 5},
    "warned": NO_CARDS,
    "supervised": NO_SUPERVISIONS,
    "agency": NO_AGENCY,
    "orders": NO_ORDERS,
    "councils": NO_COUNCILS,
}


async def test_metrics_of_a_hand_computed_scenario(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    settings = bed.settings()
    await publish_registry(settings, sample_registry())
    await wait_registry(bed)
    c1, c2, c3, c4, c5, c6, c7, c8, c9 = (new_case_id() for _ in range(9))
    g01, g02, hpy = "WC-YY-OJY-G01", "WC-YY-OJY-G02", "WC-YY-HPY-G01"
    async with (
        Publisher(settings, source="test/upstream") as pub,
        TopicReader(settings, "feedback.requested", "cases.closed", "cases.reopened") as reader,
    ):
        opens = [
            opened(c1, at=sh(10, 5, 9)),
            opened(c2, at=sh(10, 6, 9)),
            opened(c3, grid=g02, category="parking", at=sh(10, 10, 8)),
            opened(c4, grid=hpy, at=sh(10, 12, 10)),
            opened(c5, at=sh(9, 20, 10)),
            opened(c6, grid=g02, category="noise", at=sh(9, 25, 10)),
            opened(c7, at=datetime(2026, 10, 31, 17, tzinfo=UTC)),
            opened(c8, grid=g02, category="noise", at=datetime(2026, 9, 30, 16, 30, tzinfo=UTC)),
            opened(
                c9,
                grid=hpy,
                category="illegal_construction",
                at=sh(10, 15, 9),
                default_tier="street",
            ),
        ]
        for body in opens:
            await send(pub, "cases.opened", body)
        await send(pub, "cases.merged", merged(c1, "ref-c1-supporter"))
        c8_at = sh(10, 1, 0, 40)
        for body in (
            dispatched(c1, "grid", g01, sh(10, 5, 9, 5)),
            dispatched(c2, "grid", g01, sh(10, 6, 9)),
            dispatched(c2, "community", "WC-YY-OJY", sh(10, 6, 13), attempt=2),
            dispatched(c3, "community", "WC-YY-OJY", sh(10, 10, 8, 10)),
            dispatched(c4, "grid", hpy, sh(10, 12, 10)),
            dispatched(c4, "street", "WC-YY-SZ", sh(10, 12, 11), attempt=2),
            dispatched(c5, "grid", g01, sh(9, 20, 10)),
            dispatched(c8, "grid", g02, c8_at),
            dispatched(c9, "street", "WC-YY", sh(10, 15, 9, 10)),
        ):
            await send(pub, "cases.dispatched", body)
        for body in (
            accepted(c1, "grid", g01, sh(10, 5, 9, 30), True),
            accepted(c2, "grid", g01, sh(10, 6, 12), False),
            accepted(c2, "community", "WC-YY-OJY", sh(10, 6, 13, 30), True),
            accepted(c4, "grid", hpy, sh(10, 12, 10, 30), True),
            accepted(c4, "street", "WC-YY-SZ", sh(10, 12, 11, 30), True),
            accepted(c8, "grid", g02, c8_at + H / 6, True),
            accepted(c9, "street", "WC-YY", sh(10, 15, 10), True),
        ):
            await send(pub, "cases.accepted", body)
        await send(
            pub,
            "cases.escalated",
            escalated(c2, "grid", "community", "WC-YY-OJY"),
            ce_time=iso(sh(10, 6, 12, 30)),
        )
        await send(
            pub,
            "cases.escalated",
            # the payload's escalated_at is the escalation's time, not a (here stale) ce_time
            escalated(c4, "grid", "street", "WC-YY-SZ", at=sh(10, 12, 10, 45)),
            ce_time=iso(sh(10, 12, 10, 15)),
        )
        for body in (
            resolved(c1, "grid", g01, sh(10, 5, 15), on_time=True),
            resolved(c2, "community", "WC-YY-OJY", sh(10, 7, 9), on_time=True),
            resolved(c4, "street", "WC-YY-SZ", sh(10, 14, 10), on_time=True),
            resolved(c8, "grid", g02, sh(10, 1, 4, 30), on_time=True),
            resolved(c9, "street", "WC-YY", sh(10, 16, 9), on_time=True),
        ):
            await send(pub, "cases.resolved", body)

        tokens = {}
        for c, n in ((c1, 2), (c2, 1), (c4, 1), (c8, 1)):
            for req in await wait_n(reader, "feedback.requested", c, n):
                tokens[req["reporter_ref"]] = token_of(req)
        for body in (
            rating(c1, tokens[f"ref-{c1}"], at=sh(10, 6, 10)),
            rating(c1, tokens["ref-c1-supporter"], satisfaction="unsatisfied", at=sh(10, 6, 11)),
            rating(c2, tokens[f"ref-{c2}"], ok=False, satisfaction="unsatisfied", at=sh(10, 7, 12)),
            rating(c4, tokens[f"ref-{c4}"], satisfaction="unsatisfied", at=sh(10, 14, 12)),
            rating(c8, tokens[f"ref-{c8}"], at=sh(10, 1, 8)),
        ):
            await send(pub, "feedback.submitted", body)
        assert (await wait_n(reader, "cases.reopened", c2, 1))[0]["reopen_count"] == 1
        await send(
            pub, "cases.resolved", resolved(c2, "community", "WC-YY-OJY", sh(10, 8, 9), False)
        )
        second = (await wait_n(reader, "feedback.requested", c2, 2))[1]
        assert token_of(second) != tokens[f"ref-{c2}"]
        await send(
            pub,
            "feedback.submitted",
            rating(c2, token_of(second), satisfaction="basically_satisfied", at=sh(10, 8, 12)),
        )
        for c in (c1, c2, c8):
            assert (await wait_n(reader, "cases.closed", c, 1))[0]["outcome"] == "satisfied"
        await wait_n(reader, "cases.reopened", c4, 1)

    async def metrics_of(code: str, expected: dict[str, Any]) -> bool:
        status, body = await http_get(svc, f"/units/{code}/metrics?period=2026-10")
        assert status == 200, body
        assert body["metrics"] == expected
        return True

    await eventually(lambda: metrics_of("WC-YY-OJY", EXPECTED_OJY), what="community metrics")
    await eventually(lambda: metrics_of("WC-YY", EXPECTED_STREET), what="street metrics")
    await metrics_of("WC", EXPECTED_STREET)  # the district has only this street's cases

    status, body = await http_get(svc, "/units/WC-YY-OJY/metrics?period=2026-10")
    assert body["unit"] == {"code": "WC-YY-OJY", "name": "欧景苑社区", "level": "community"}
    assert body["period"]["start"] == "2026-10-01T00:00:00+08:00"
    # November holds only C7, opened 01:00 local on 1 November
    _, nov = await http_get(svc, "/units/WC-YY-OJY-G01/metrics?period=2026-11")
    assert nov["metrics"]["received"] == 1
    # a week and a day: C1 and C2 are G01's cases opened in 2026-W41 (10-05..10-11)
    _, week = await http_get(svc, "/units/WC-YY-OJY-G01/metrics?period=2026-W41")
    assert week["metrics"]["received"] == 2
    _, day = await http_get(svc, "/units/WC-YY/metrics?period=2026-10-01")
    assert day["metrics"]["received"] == 1 and day["metrics"]["resolved"] == 1
    # the department answers for the cases dispatched to it
    _, dept = await http_get(svc, "/units/WC-YY-SZ/metrics?period=2026-10")
    assert dept["unit"]["level"] == "department"
    assert (dept["metrics"]["received"], dept["metrics"]["resolved"]) == (1, 1)

    status, hot = await http_get(svc, "/units/WC-YY-OJY/hot-issues?period=2026-10&top=5")
    assert status == 200 and hot["previous_period"] == "2026-09"
    assert hot["hot_issues"] == [
        {
            "category": "sanitation",
            "category_name": "环境卫生",
            "count": 2,
            "previous": 1,
            "change": 1,
            "change_rate": 1.0,
        },
        {
            "category": "noise",
            "category_name": "噪音扰民",
            "count": 1,
            "previous": 1,
            "change": 0,
            "change_rate": 0.0,
        },
        {
            "category": "parking",
            "category_name": "停车管理",
            "count": 1,
            "previous": 0,
            "change": 1,
            "change_rate": None,
        },
    ]

    status, ranking = await http_get(svc, "/units/WC-YY/ranking?period=2026-10")
    assert status == 200
    # OJY: 100 * (.3*.6 + .2*.6667 + .15*.5 + .15*.8 + .1*1 + .1*(1-.3333)) = 67.5
    # HPY (C4, C9): 100 * (.3*0 + .2*1 + .15*1 + .15*1 + .1*0 + .1*(1-.5)) = 55.0
    assert [(r["code"], r["name"], r["score"], r["rank"]) for r in ranking["ranking"]] == [
        ("WC-YY-OJY", "欧景苑社区", 67.5, 1),
        ("WC-YY-HPY", "和平苑社区", 55.0, 2),
    ]
    _, by_reopen = await http_get(svc, "/units/WC-YY/ranking?period=2026-10&by=reopen_rate")
    assert [r["code"] for r in by_reopen["ranking"]] == ["WC-YY-OJY", "WC-YY-HPY"]

    # the board's trends: the street and its communities, September and October, in one answer
    # (eventually: September's C5 and C6 may be applied after October's, on other partitions)
    async def trends_as_computed() -> bool:
        status, trends = await http_get(svc, "/units/WC-YY/trends?months=2&last=2026-10&top=3")
        assert status == 200, trends
        assert trends["months"] == ["2026-09", "2026-10"]
        own = trends["figures"]["months"]
        assert [m["period"] for m in own] == ["2026-09", "2026-10"]
        assert own[1]["metrics"] == EXPECTED_STREET
        assert own[1]["status"] == body["status"] == "provisional"  # the tests' grace: 100 years
        assert [c["unit"]["code"] for c in trends["children"]] == ["WC-YY-HPY", "WC-YY-OJY"]
        ojy = next(c for c in trends["children"] if c["unit"]["code"] == "WC-YY-OJY")
        assert ojy["months"][1]["metrics"] == EXPECTED_OJY
        assert ojy["months"][0]["metrics"]["received"] == 2  # C5 C6 (C8 is October's, local time)
        assert [(r["code"], r["score"], r["rank"]) for r in trends["ranking"]["2026-10"]] == [
            ("WC-YY-OJY", 67.5, 1),
            ("WC-YY-HPY", 55.0, 2),
        ]
        # September: C5 sanitation, C6 noise; October: C1 C2 C4 sanitation, C3 parking, C8 noise, C9
        assert [(h["category"], h["counts"], h["total"]) for h in trends["hot_issues"]] == [
            ("sanitation", [1, 3], 4),
            ("noise", [1, 1], 2),
            ("illegal_construction", [0, 1], 1),  # ties with parking: by code
        ]
        assert trends["hot_issues"][0]["category_name"] == "环境卫生"
        return True

    await eventually(trends_as_computed, what="the street's trends")
    assert (await http_get(svc, "/units/WC-YY/trends?months=13"))[0] == 422
    assert (await http_get(svc, "/units/WC-YY/trends?last=2026-W41"))[0] == 422

    status, case = await http_get(svc, f"/cases/{c4}")
    assert status == 200
    assert (case["state"], case["tier"], case["unit"], case["unit_name"]) == (
        "reopened",
        "street",
        "WC-YY-SZ",
        "杨园街道市政所",
    )
    assert [e["event"] for e in case["timeline"]] == [
        "opened",
        "dispatched",
        "accepted",
        "escalated",
        "dispatched",
        "accepted",
        "resolved",
        "reopened",
    ]
    assert case["timeline"][0]["at"] == "2026-10-12T10:00:00+08:00"
    assert case["timeline"][3]["at"] == "2026-10-12T10:45:00+08:00"  # escalated_at, not ce_time
    assert f"ref-{c4}" not in str(case) and "138" not in str(case)

    for bad in ("2026-13", "2026-W60", "yesterday", ""):
        status, err = await http_get(svc, f"/units/WC-YY/metrics?period={bad}")
        assert status == 422 and err["errors"][0]["field"] == "query.period", err
        assert "period" in err["detail"]
    assert (await http_get(svc, "/units/WC-YY/ranking?period=2026-10&by=luck"))[0] == 422
    assert (await http_get(svc, "/units/NOPE/metrics?period=2026-10"))[0] == 404
    assert (await http_get(svc, "/cases/no-such-case"))[0] == 404

    # Each caller within their reach: the community's staff see their grids, not the street
    staff = issue_token(svc.settings, role="community_staff", unit="WC-YY-OJY")
    assert (await http_get(svc, f"/units/{g01}/metrics?period=2026-10", staff))[0] == 200
    status, err = await http_get(svc, "/units/WC-YY/metrics?period=2026-10", staff)
    assert status == 403 and err["status"] == 403
    other_grid = issue_token(svc.settings, role="grid_worker", unit=hpy, handler_id="h-x")
    assert (await http_get(svc, f"/units/{g01}/metrics?period=2026-10", other_grid))[0] == 403
    assert (await http_get(svc, f"/cases/{c4}", other_grid))[0] == 200  # c4 is in their grid
    g01_worker = issue_token(svc.settings, role="grid_worker", unit=g01, handler_id="h-y")
    assert (await http_get(svc, f"/cases/{c4}", g01_worker))[0] == 404  # not "forbidden"
    resident = issue_token(svc.settings, role="resident", unit=None, subject="r-1")
    assert (await http_get(svc, f"/units/{g01}/metrics?period=2026-10", resident))[0] == 403
    assert (await http_get(svc, f"/cases/{c4}", "not-a-token"))[0] == 401
