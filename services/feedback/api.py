"""Feedback's HTTP JSON API for staff: unit metrics, hot issues, rankings, a case's timeline.

``GET /units/{code}/metrics?period=P``, ``GET /units/{code}/hot-issues?period=P&top=N``,
``GET /units/{code}/ranking?period=P&by=score``, ``GET /units/{code}/trends?months=N&last=M``
(the command-centre board's charts: ``trends``), ``GET /cases/{case_id}``. Every route needs a
bearer token of a staff role (``shared.runtime.identity.STAFF_ROLES``) whose unit reaches the
unit or the case, or the pages' session cookie (``shared.runtime.signin``; the board's browser
calls these routes from dispatch's origin, allowed by ``WANGGE_CORS_ORIGINS``): a unit out of
reach is a 403, a case out of reach a 404 (as an unknown one). A bad period or parameter is a
422 with the field, an unknown unit a 404. docs/feedback.md shows example answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from shared.registry.store import lineage, reach_codes, unit_names
from shared.runtime.clock import Clock
from shared.runtime.db import Connection
from shared.runtime.http import invalid_input, problems
from shared.runtime.identity import STAFF_ROLES, Principal, in_scope, require
from shared.runtime.service import Service

from . import store
from .formulas import hot_issues, rank
from .freezing import FreezePolicy
from .official import figures, served_apart
from .periods import TZ, Period, parse_period, period_of
from .status import current_assignment, ordered, resident_state
from .trends import MAX_MONTHS, RATES, hot_trend, months_ending, ranking_row, rankings

RANK_BY = ("score", "received", *RATES)
MAX_TOP = 50


def _period(period: str) -> Period:
    try:
        return parse_period(period)
    except ValueError as exc:
        raise invalid_input("query", "period", str(exc)) from None


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


async def ranking_rows(
    conn: Connection, parent: store.Scope, period: Period, now: datetime, policy: FreezePolicy
) -> list[dict[str, Any]]:
    """The children's official figures: a frozen month ranks by its frozen figures."""
    rows = []
    for child in await store.children(conn, parent.code):
        m = (await figures(conn, child, period, now, policy))["metrics"]
        rows.append(ranking_row(_unit_json(child), m))
    return rows


PeriodQuery = Annotated[
    str,
    Query(
        description="2026-11 (month), 2026-W47 (ISO week) or 2026-11-23 (day), Asia/Shanghai",
        examples=["2026-11"],
        pattern=r"^\d{4}-(\d{2}|W\d{2}|\d{2}-\d{2})$",
    ),
]
Staff = Annotated[Principal, Depends(require(*STAFF_ROLES))]


class UnitRef(BaseModel):
    code: str
    name: str
    level: str


class PeriodRef(BaseModel):
    label: str
    kind: str
    start: str
    end: str
    time_zone: str


class Adjustment(BaseModel):
    figure: str = Field(description="The key in `metrics`")
    frozen: Any
    current: Any = Field(description="As the events known now make it")
    change: Any = Field(None, description="current - frozen (a count, or a rate's parts)")


class CommunityRef(BaseModel):
    code: str
    name: str | None


class ServedElsewhere(BaseModel):
    """插花地: figures of the cases administratively here that another community serves."""

    serving: list[CommunityRef] = Field(description="The communities that serve them")
    metrics: dict[str, Any] = Field(
        description="The same figures as `metrics`, over these cases only; always current "
        "(never frozen), and in no official figure, ranking or score of this unit"
    )


class ServedForOthers(BaseModel):
    """插花地: the cases this unit serves (and counts) for another administrative unit."""

    administrative: list[CommunityRef] = Field(description="Their administrative communities")
    received: int
    resolved: int
    ratings: int


class UnitMetrics(BaseModel):
    unit: UnitRef
    period: PeriodRef
    status: Literal["frozen", "provisional"] = Field(
        description="frozen: the official figures of a month that closed (plus the grace); "
        "provisional: they still change"
    )
    frozen_at: str | None = None
    freezes_at: str | None = Field(None, description="When a provisional month's figures freeze")
    metrics: dict[str, Any]
    adjustments: list[Adjustment] = Field(
        default_factory=list,
        description="Frozen figures later events would change: never applied to them",
    )
    served_elsewhere: ServedElsewhere | None = Field(
        None,
        description="插花地: the cases administratively in this unit that a community of "
        "another chain serves, counted in that chain's figures and shown here apart (never in "
        "`metrics`); null when the unit has none",
    )
    served_for_others: ServedForOthers | None = Field(
        None,
        description="插花地: how many of the cases counted in `metrics` are administratively "
        "another unit's; null when none are",
    )


class HotIssues(BaseModel):
    unit: UnitRef
    period: PeriodRef
    previous_period: str
    hot_issues: list[dict[str, Any]]


class Ranking(BaseModel):
    unit: UnitRef
    period: PeriodRef
    by: str
    ranking: list[dict[str, Any]]


class MonthFigures(BaseModel):
    period: str = Field(description="The month, 2026-10")
    status: Literal["frozen", "provisional"]
    frozen_at: str | None = None
    freezes_at: str | None = None
    metrics: dict[str, Any] = Field(
        description="As GET /units/{code}/metrics: every rate with its numerator and denominator"
    )


class UnitTrend(BaseModel):
    unit: UnitRef
    months: list[MonthFigures] = Field(description="One per month of `months`, oldest first")


class HotIssueTrend(BaseModel):
    category: str
    category_name: str
    counts: list[int] = Field(description="Cases opened in each month of `months`")
    total: int


class Trends(BaseModel):
    unit: UnitRef
    months: list[str] = Field(description="The months, oldest first")
    figures: UnitTrend = Field(description="The unit's own figures, month by month")
    children: list[UnitTrend] = Field(description="The units directly below it, the same way")
    ranking: dict[str, list[dict[str, Any]]] = Field(
        description="Per month, the units below ranked by composite score (as /ranking)"
    )
    hot_issues: list[HotIssueTrend] = Field(
        description="The categories most reported over the months, with each month's count"
    )


class TimelineEntry(BaseModel):
    at: str
    event: str
    tier: str | None
    unit_name: str | None
    detail: Any = None


class CaseView(BaseModel):
    case_id: str
    state: str
    category: str | None
    category_name: str | None
    tier: str | None
    unit: str | None
    unit_name: str | None
    reopen_count: int
    outcome: str | None
    timeline: list[TimelineEntry]


async def _scope_in_reach(conn: Connection, code: str, caller: Principal) -> store.Scope:
    scope = await store.scope_of(conn, code)
    if scope is None:
        raise HTTPException(404, "unknown unit")
    # the serving chain's, and (插花地, read-only here) the administrative chain's holders
    holders = await reach_codes(conn, code) | set((await lineage(conn, code)).values())
    if not in_scope(caller, holders):
        raise HTTPException(403, f"unit {code} is outside the caller's reach")
    return scope


async def case_reach(conn: Connection, case: Any) -> set[str]:
    """The units whose holders reach a case: its place (building, grid, community, street,
    district; for 插花地 also its administrative chain) and every unit it was dispatched to, with
    their ancestors."""
    codes = {case[c] for c in store.LEVEL_COLUMNS.values() if case[c]}
    # 插花地: the place's administrative chain reads the case too
    codes |= {case[f"admin_{lvl}"] for lvl in store.ADMIN_LEVELS if case[f"admin_{lvl}"]}
    for unit in await store.dispatched_units(conn, case["case_id"]):
        codes |= await reach_codes(conn, unit)
    return codes


def register_routes(svc: Service, policy: FreezePolicy, clock: Clock) -> None:
    svc.app.include_router(build_router(svc, policy, clock))


def build_router(svc: Service, policy: FreezePolicy, clock: Clock) -> APIRouter:
    router = APIRouter(tags=["figures"], responses=problems(401, 403, 404, 422))

    @router.get("/units/{code}/metrics", response_model=UnitMetrics)
    async def get_metrics(code: str, caller: Staff, period: PeriodQuery) -> Any:
        """A unit's rates for a period, each with its numerator and denominator: frozen for a
        month that closed (plus the grace window), with the adjustments later events made;
        provisional otherwise."""
        p = _period(period)
        async with svc.pool.acquire() as conn:
            scope = await _scope_in_reach(conn, code, caller)
            official = await figures(conn, scope, p, clock(), policy)
            apart = await served_apart(conn, scope, p)
        return {"unit": _unit_json(scope), "period": _period_json(p), **official, **apart}

    @router.get("/units/{code}/hot-issues", response_model=HotIssues)
    async def get_hot_issues(
        code: str,
        caller: Staff,
        period: PeriodQuery,
        top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 5,
    ) -> Any:
        """The categories most reported in a unit, with their change from the previous period."""
        p = _period(period)
        async with svc.pool.acquire() as conn:
            scope = await _scope_in_reach(conn, code, caller)
            current = await store.opened_categories(conn, scope, p)
            previous = await store.opened_categories(conn, scope, p.previous())
            issues = hot_issues(current, previous, top)
            names = await store.category_names(conn, [i["category"] for i in issues])
        return {
            "unit": _unit_json(scope),
            "period": _period_json(p),
            "previous_period": p.previous().label,
            "hot_issues": [
                {**i, "category_name": names.get(i["category"], i["category"])} for i in issues
            ],
        }

    @router.get("/units/{code}/ranking", response_model=Ranking)
    async def get_ranking(
        code: str,
        caller: Staff,
        period: PeriodQuery,
        by: Annotated[str, Query(description=f"one of {', '.join(RANK_BY)}")] = "score",
    ) -> Any:
        """The units directly below ``code``, ranked."""
        if by not in RANK_BY:
            raise invalid_input("query", "by", f"by must be one of {', '.join(RANK_BY)}")
        p = _period(period)
        async with svc.pool.acquire() as conn:
            scope = await _scope_in_reach(conn, code, caller)
            rows = await ranking_rows(conn, scope, p, clock(), policy)
        return {
            "unit": _unit_json(scope),
            "period": _period_json(p),
            "by": by,
            "ranking": rank(rows, by),
        }

    @router.get("/units/{code}/trends", response_model=Trends)
    async def get_trends(
        code: str,
        caller: Staff,
        months: Annotated[int, Query(ge=1, le=MAX_MONTHS)] = 6,
        last: Annotated[
            str | None,
            Query(
                description="The latest month (default: the current one), Asia/Shanghai",
                examples=["2026-10"],
                pattern=r"^\d{4}-\d{2}$",
            ),
        ] = None,
        top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 5,
    ) -> Any:
        """A unit's and its children's figures month by month (frozen or provisional, every rate
        with its numerator and denominator), the children's ranking in each month and the hot
        issues with their trend: what the command-centre board charts."""
        now = clock()
        end = _period(last) if last else period_of(now)
        try:
            periods = months_ending(end, months)
        except ValueError as exc:
            raise invalid_input("query", "last", str(exc)) from None
        labels = [p.label for p in periods]
        async with svc.pool.acquire() as conn:
            scope = await _scope_in_reach(conn, code, caller)
            kids = await store.children(conn, scope.code)

            async def trend(unit: store.Scope) -> dict[str, Any]:
                rows = []
                for p in periods:
                    rows.append({"period": p.label, **await figures(conn, unit, p, now, policy)})
                return {"unit": _unit_json(unit), "months": rows}

            own = await trend(scope)
            children = [await trend(k) for k in kids]
            counts = [await store.opened_categories(conn, scope, p) for p in periods]
            issues = hot_trend(counts, {}, top)
            names = await store.category_names(conn, [i["category"] for i in issues])
        return {
            "unit": _unit_json(scope),
            "months": labels,
            "figures": own,
            "children": children,
            "ranking": rankings(
                [c["unit"] for c in children],
                {c["unit"]["code"]: c["months"] for c in children},
                labels,
            ),
            "hot_issues": [
                {**i, "category_name": names.get(i["category"], i["category"])} for i in issues
            ],
        }

    @router.get("/cases/{case_id}", response_model=CaseView)
    async def get_case(case_id: str, caller: Staff) -> Any:
        """A case's state and timeline as the follow-up sees it."""
        async with svc.pool.acquire() as conn:
            case = await store.get_case(conn, case_id)
            if case is None or not in_scope(caller, await case_reach(conn, case)):
                raise HTTPException(404, "unknown case")
            timeline = ordered(await store.case_events(conn, case_id))
            tier, unit = current_assignment(timeline)
            codes = {e["unit"] for e in timeline if e.get("unit")}
            names = await unit_names(conn, sorted(codes))
        return {
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

    return router
