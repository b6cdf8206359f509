"""Feedback's HTTP JSON API: unit metrics, hot issues, rankings, and a case's public status.

``GET /units/{code}/metrics?period=P``, ``GET /units/{code}/hot-issues?period=P&top=N``,
``GET /units/{code}/ranking?period=P&by=score``, ``GET /cases/{case_id}``. A bad period or
parameter is a 400, an unknown unit or case a 404. docs/feedback.md shows example answers.
"""

from __future__ import annotations

from typing import Any

from shared.registry.store import unit_names
from shared.runtime.db import Connection
from shared.runtime.http import Request, Response
from shared.runtime.service import Service

from . import store
from .formulas import compute, hot_issues, rank, score
from .periods import TZ, Period, parse_period
from .status import current_assignment, ordered, resident_state

RATES = (
    "response_rate",
    "on_time_resolution_rate",
    "resolution_rate",
    "satisfaction_rate",
    "reopen_rate",
    "kept_in_grid_rate",
    "kept_in_community_rate",
    "escalation_rate",
)
RANK_BY = ("score", "received", *RATES)
MAX_TOP = 50


def _period(req: Request) -> Period:
    return parse_period(req.query.get("period", ""))


def _period_json(p: Period) -> dict[str, str]:
    return {
        "label": p.label,
        "kind": p.kind,
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "time_zone": "Asia/Shanghai",
    }


def _unit_json(s: store.Scope) -> dict[str, str]:
    return {"code": s.code, "name": s.name, "level": s.kind}


async def unit_metrics(conn: Connection, scope: store.Scope, period: Period) -> Any:
    return compute(await store.metric_inputs(conn, scope, period))


async def ranking_rows(
    conn: Connection, parent: store.Scope, period: Period
) -> list[dict[str, Any]]:
    rows = []
    for child in await store.children(conn, parent.code):
        m = await unit_metrics(conn, child, period)
        rows.append(
            {
                **_unit_json(child),
                "score": score(m),
                "received": m["received"],
                **{k: m[k]["rate"] for k in RATES},
            }
        )
    return rows


def register_routes(svc: Service) -> None:
    @svc.router.get("/units/{code}/metrics")
    async def get_metrics(req: Request) -> Response:
        period = _period(req)
        async with svc.pool.acquire() as conn:
            scope = await store.scope_of(conn, req.path_params["code"])
            if scope is None:
                return Response.error(404, "unknown unit")
            metrics = await unit_metrics(conn, scope, period)
        return Response.json(
            {"unit": _unit_json(scope), "period": _period_json(period), "metrics": metrics}
        )

    @svc.router.get("/units/{code}/hot-issues")
    async def get_hot_issues(req: Request) -> Response:
        period = _period(req)
        top = int(req.query.get("top", "5"))
        if not 1 <= top <= MAX_TOP:
            raise ValueError(f"top must be between 1 and {MAX_TOP}")
        async with svc.pool.acquire() as conn:
            scope = await store.scope_of(conn, req.path_params["code"])
            if scope is None:
                return Response.error(404, "unknown unit")
            current = await store.opened_categories(conn, scope, period)
            previous = await store.opened_categories(conn, scope, period.previous())
            issues = hot_issues(current, previous, top)
            names = await store.category_names(conn, [i["category"] for i in issues])
        return Response.json(
            {
                "unit": _unit_json(scope),
                "period": _period_json(period),
                "previous_period": period.previous().label,
                "hot_issues": [
                    {**i, "category_name": names.get(i["category"], i["category"])} for i in issues
                ],
            }
        )

    @svc.router.get("/units/{code}/ranking")
    async def get_ranking(req: Request) -> Response:
        period = _period(req)
        by = req.query.get("by", "score")
        if by not in RANK_BY:
            raise ValueError(f"by must be one of {', '.join(RANK_BY)}")
        async with svc.pool.acquire() as conn:
            scope = await store.scope_of(conn, req.path_params["code"])
            if scope is None:
                return Response.error(404, "unknown unit")
            rows = await ranking_rows(conn, scope, period)
        return Response.json(
            {
                "unit": _unit_json(scope),
                "period": _period_json(period),
                "by": by,
                "ranking": rank(rows, by),
            }
        )

    @svc.router.get("/cases/{case_id}")
    async def get_case(req: Request) -> Response:
        case_id = req.path_params["case_id"]
        async with svc.pool.acquire() as conn:
            case = await store.get_case(conn, case_id)
            if case is None:
                return Response.error(404, "unknown case")
            timeline = ordered(await store.case_events(conn, case_id))
            tier, unit = current_assignment(timeline)
            codes = {e["unit"] for e in timeline if e.get("unit")}
            names = await unit_names(conn, sorted(codes))
        return Response.json(
            {
                "case_id": case_id,
                "state": resident_state(timeline),
                "category": case["category"],
                "category_name": case["category_name"],
                "tier": tier,
                "unit": unit,
                "unit_name": names.get(unit or ""),
                "reopen_count": case["reopen_count"],
                "outcome": case["outcome"],
                "timeline": [
                    {
                        "at": e["at"].astimezone(TZ).isoformat(),
                        "event": e["event"],
                        "tier": e["tier"],
                        "unit_name": names.get(e["unit"]) if e["unit"] else None,
                        "detail": e["detail"],
                    }
                    for e in timeline
                ],
            }
        )
