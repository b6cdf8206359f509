"""The board's figures over months: the pure assembly (``services.feedback.trends``), and the
staff API read from the board's browser: the pages' session cookie names the caller, the board's
origin may read the answer (CORS), another origin may not, and a command centre of another
district gets nothing of this one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cli.registry import publish_registry
from devstack.testbed import Testbed
from services.feedback.app import origins
from services.feedback.periods import parse_period
from services.feedback.trends import hot_trend, months_ending, rankings
from shared.runtime.identity import Principal, Role
from shared.runtime.signin import Sessions
from tests.samples import sample_registry, wait_registry

BOARD = "http://board.example:8082"


def test_months_end_with_the_month_given_oldest_first() -> None:
    months = months_ending(parse_period("2026-02"), 4)
    assert [m.label for m in months] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    with pytest.raises(ValueError):
        months_ending(parse_period("2026-W05"), 2)
    with pytest.raises(ValueError):
        months_ending(parse_period("2026-02"), 13)


def test_hot_issues_rank_by_the_months_total_then_the_latest_month() -> None:
    counts = [{"noise": 3, "parking": 1}, {"parking": 2, "sanitation": 3}, {"sanitation": 1}]
    out = hot_trend(counts, {"noise": "噪音扰民"}, top=3)
    assert [(h["category"], h["counts"], h["total"]) for h in out] == [
        ("sanitation", [0, 3, 1], 4),  # 4, one in the latest month
        ("noise", [3, 0, 0], 3),
        ("parking", [1, 2, 0], 3),  # ties with noise at 3 and 0 in the latest month: by code
    ]
    assert out[1]["category_name"] == "噪音扰民" and out[0]["category_name"] == "sanitation"
    assert hot_trend([], {}, 5) == []


def _metrics(satisfied: int, rated: int) -> dict[str, Any]:
    def r(n: int, d: int) -> dict[str, Any]:
        return {"rate": round(n / d, 4) if d else None, "numerator": n, "denominator": d}

    empty = r(0, 0)
    return {
        "received": rated,
        "response_rate": empty,
        "on_time_resolution_rate": empty,
        "resolution_rate": empty,
        "satisfaction_rate": r(satisfied, rated),
        "reopen_rate": empty,
        "kept_in_grid_rate": empty,
        "kept_in_community_rate": empty,
        "escalation_rate": empty,
    }


def test_each_month_ranks_the_children_by_their_own_figures() -> None:
    kids = [{"code": "A", "name": "甲"}, {"code": "B", "name": "乙"}]
    figures = {
        "A": [{"metrics": _metrics(1, 2)}, {"metrics": _metrics(2, 2)}],
        "B": [{"metrics": _metrics(2, 2)}, {"metrics": _metrics(0, 0)}],
    }
    out = rankings(kids, figures, ["2026-09", "2026-10"])
    assert [(r["code"], r["score"], r["rank"]) for r in out["2026-09"]] == [
        ("B", 100.0, 1),
        ("A", 50.0, 2),
    ]
    assert [(r["code"], r["score"]) for r in out["2026-10"]] == [("A", 100.0), ("B", None)]


def test_the_cors_setting_is_a_list_of_origins() -> None:
    assert origins("") == []
    assert origins(" https://a.example/ , http://127.0.0.1:8082") == [
        "https://a.example",
        "http://127.0.0.1:8082",
    ]


async def test_the_boards_browser_reads_the_trends_with_its_session(bed: Testbed) -> None:
    svc = await bed.start("feedback", wangge_cors_origins=BOARD)
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)
    sessions = Sessions(svc.settings)
    ours = sessions.issue(Principal("cc-wc", Role.COMMAND_CENTRE, "WC"))
    theirs = sessions.issue(Principal("cc-hk", Role.COMMAND_CENTRE, "HK"))
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://feedback") as client:

        async def get(cookie: str | None, origin: str = BOARD) -> httpx.Response:
            headers = {"Origin": origin}
            if cookie:
                headers["Cookie"] = f"{sessions.cookie_name}={cookie}"
            return await client.get("/units/WC/trends?months=3", headers=headers)

        resp = await get(ours)
        assert resp.status_code == 200, resp.text
        assert resp.headers["access-control-allow-origin"] == BOARD
        assert resp.headers["access-control-allow-credentials"] == "true"
        body = resp.json()
        assert body["unit"]["code"] == "WC" and len(body["months"]) == 3
        assert [c["unit"]["code"] for c in body["children"]] == ["WC-YY", "WC-ZHL"]
        assert all(m["status"] == "provisional" for m in body["figures"]["months"])

        # another district's command centre: nothing of this one
        other = await get(theirs)
        assert other.status_code == 403
        assert "WC" not in str(other.json().get("hot_issues", ""))
        # no session: 401; a forged cookie: 401
        assert (await get(None)).status_code == 401
        assert (await get(ours[:-4] + "AAAA")).status_code == 401
        # another origin gets the answer's data from no browser: no CORS header for it
        elsewhere = await get(ours, origin="https://evil.example")
        assert "access-control-allow-origin" not in elsewhere.headers
        # the preflight of a bearer call from the board
        pre = await client.options(
            "/units/WC/trends",
            headers={
                "Origin": BOARD,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == BOARD
        refused = await client.options(
            "/units/WC/trends",
            headers={"Origin": BOARD, "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400
