"""Work orders (派单/协办, 吹哨报到) and councils (议事会/联席会) over HTTP: ``orders.py`` and
``councils.py`` behind four routes.

- ``POST /cases/{case_id}/orders``: 吹哨报到, the community or street that has the case (its
  staff, or the command centre of its area) orders the named units to report: one order per
  unit, each to the unit's least busy handler, with the rules file's deadlines (or the request's
  ``report_within``); ``cases.order_issued`` each.
- ``POST /orders/{order_id}/actions``: the ordered unit's staff report (报到), report progress,
  finish (done) or return the order; the issuing unit cancels it; ``cases.order_updated``.
- ``GET /me/orders``: the open orders of the caller's unit (the command centre: of its area).
- ``POST /cases/{case_id}/council``: the council's decision on a case at deliberation; its
  measures become required orders; ``cases.council_decided``.

Who acts is the token's handler (the command centre as ``command_centre.<unit>``), when is the
server's clock: a body naming them is a 422. A case (or order) outside the caller's reach is a
404, as an unknown one; a caller who may not is a 403; a state that does not allow it a 409; a
bad field a 422 naming it. One transaction each, with the outbox; an ``Idempotency-Key`` makes a
retried whistle or council decision the same one (answered as the first time). A retried order
action is answered 409 (its state moved on): nothing happens twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contract.events import Code
from shared.contract.limits import Limit
from shared.runtime.db import Connection
from shared.runtime.http import invalid_input, problems
from shared.runtime.identity import Principal, Role
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import orders_store, store
from .api import (
    Caller,
    CaseId,
    IdempotencyKey,
    OrderView,
    _reaches,
    _reaches_an_order,
    acting_id,
    case_in_reach,
    order_view,
    replay_on,
)
from .councils import SHANGHAI, Decide, Measure, decision_refusal, plan_decision, recorder_refusal
from .model import Case
from .orders import (
    MAX_NOTE,
    MAX_UNITS,
    ORDER_NOTE_REQUIRED,
    Issue,
    Issued,
    OrderAction,
    Refused,
    action_refusal,
    plan_action,
    plan_issue,
    units_refusal,
    whistle_refusal,
)
from .planning import least_busy
from .states import Actor, refusal, transition

if TYPE_CHECKING:
    from .app import DispatchService

log = get_logger(component="dispatch-api")

OrderId = Annotated[
    str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="An order")
]
Note = Annotated[str, Field(max_length=MAX_NOTE)]


def _storable(text: str | None) -> str | None:
    """Text PostgreSQL can keep (no NUL, no lone surrogate)."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text without lone surrogates, please") from None
    if "\x00" in text:
        raise ValueError("text without NUL characters, please")
    return text


class OrderRequest(BaseModel):
    """吹哨报到: the units that must report, whether the lead's resolve waits for them, what is
    asked; who and when come from the token and the clock."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "units": ["WC-YY-SZ", "WC-CGJ"],
                    "required": True,
                    "note": "路面塌陷，请市政所和城管今日到场",
                    "report_within": "2wh",
                }
            ]
        },
    )

    units: Annotated[list[Code], Field(min_length=1, max_length=MAX_UNITS)]
    required: bool = Field(True, description="The lead's resolve waits for these orders")
    note: Note | None = None
    report_within: Annotated[str, Field(max_length=32)] | None = Field(
        None,
        description="Report (报到) within this (30m, 2h, 2wh, 1wd); default: the rules file's "
        "orders.<tier>.report_within",
    )

    _text = field_validator("note")(lambda cls, v: _storable(v))


class OrderActionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"action": "report"}, {"action": "done", "note": "管道已抢修完毕"}]
        },
    )

    action: OrderAction
    note: Note | None = Field(None, description="Required for done, return and cancel")

    _text = field_validator("note")(lambda cls, v: _storable(v))


class Votes(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    for_: Annotated[int, Field(ge=0, le=1_000_000, alias="for")]
    against: Annotated[int, Field(ge=0, le=1_000_000)]
    abstain: Annotated[int, Field(ge=0, le=1_000_000)]


class MeasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=MAX_NOTE)]
    unit: Code = Field(description="Who carries it: it becomes a required work order to them")

    _text = field_validator("text")(lambda cls, v: _storable(v))


class CouncilRequest(BaseModel):
    """A council's decision (议事会/联席会) on a case at deliberation."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "body": "欧景苑社区居民议事会",
                    "meeting_date": "2026-12-08",
                    "decision": "同意使用公共维修资金更换3栋楼道照明",
                    "votes": {"for": 11, "against": 2, "abstain": 1},
                    "measures": [{"text": "更换3栋楼道照明", "unit": "WC-YY-OJY-WY"}],
                }
            ]
        },
    )

    body: Annotated[str, Field(min_length=1, max_length=100)]
    meeting_date: date
    decision: Annotated[str, Field(min_length=1, max_length=4000)]
    votes: Votes
    measures: Annotated[list[MeasureRequest], Field(max_length=20)] = Field(default_factory=list)

    _text = field_validator("body", "decision")(lambda cls, v: _storable(v))


class IssuedView(BaseModel):
    case_id: str
    orders: list[OrderView]


class OrderList(BaseModel):
    items: list[OrderView]
    now: datetime


class CouncilView(BaseModel):
    council_id: str
    case_id: str
    body: str
    meeting_date: date
    decision: str
    votes: dict[str, int] = Field(description="for, against, abstain")
    measures: list[dict[str, str]] = Field(description="text, unit, order_id")
    decided_by: str
    decided_at: datetime
    orders: list[OrderView] = Field(description="The work orders its measures became")


def _raise(why: Refused) -> None:
    if why.field is not None:
        raise invalid_input("body", why.field, str(why))
    raise HTTPException(why.status, str(why))


def register_order_routes(svc: DispatchService) -> None:
    svc.app.include_router(build_router(svc))


def build_router(svc: DispatchService) -> APIRouter:
    router = APIRouter(tags=["work orders (派单/协办, 吹哨报到) and councils (议事会)"])
    _whistle_route(router, svc)
    _order_step_routes(router, svc)
    _council_routes(router, svc)
    return router


def _uow(svc: DispatchService, conn: Connection) -> UnitOfWork:
    return UnitOfWork(conn, source=f"wangge/{svc.name}", topic_prefix=svc.settings.topic_prefix)


async def _actor(conn: Connection, caller: Principal) -> Actor:
    me = acting_id(caller)
    found = await store.actor(conn, me) if me is not None else None
    if found is None:
        raise HTTPException(403, "unknown handler")
    return found


async def _issue(
    svc: DispatchService,
    conn: Connection,
    case: Case,
    units: list[tuple[str, str | None]],  # (unit, note)
    *,
    required: bool,
    report_within: Limit | None,
    actor: Actor,
    now: datetime,
    origin: Literal["whistle", "council"] = "whistle",
    council_id: str | None = None,
) -> list[Issued]:
    """The orders to ``units`` (each to its least busy handler) with the deadlines of the rules
    file's ``orders`` for the case's tier (``report_within`` instead, when given), scaled."""
    policy = svc.dispatch.policy

    def deadline(limit: Limit) -> datetime:
        return now + policy.sla.span(limit, now) * policy.sla.scale

    rules = policy.rules.orders_of(case.tier)
    report_by = deadline(report_within or rules.report_within)
    resolve_by = max(deadline(rules.resolve_within), report_by)
    tiers = await orders_store.tiers_of(conn, [u for u, _ in units])
    n = await orders_store.next_number(conn, case.case_id)
    out = []
    for i, (unit, note) in enumerate(units):
        ask = Issue(
            units=((unit, await least_busy(conn, unit), tiers.get(unit)),),
            required=required,
            note=note,
            report_by=report_by,
            resolve_by=resolve_by,
            issued_by=actor.id,
            issued_by_unit=actor.unit,
            origin=origin,
            council_id=council_id,
        )
        out.append(plan_issue(case, ask, n + i, now))
    return out


def _whistle_route(router: APIRouter, svc: DispatchService) -> None:
    @router.post(
        "/cases/{case_id}/orders",
        response_model=IssuedView,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def whistle(
        case_id: CaseId, body: OrderRequest, caller: Caller, key: IdempotencyKey = None
    ) -> Any:
        """吹哨报到: order the named units to report (accept) on the case, each one work order
        (协办). 200: issued (or a retry with the same Idempotency-Key); 403: not the staff of the
        case's community or street, nor its command centre; 404: no such case within reach;
        409: the case is not with a community or street, or not open; 422: a bad field."""
        within = None
        if body.report_within is not None:
            try:
                within = Limit.model_validate(body.report_within)
            except ValidationError:
                raise invalid_input(
                    "body", "report_within", "a limit such as 30m, 2h, 2wh or 1wd"
                ) from None
        request_key = f"{caller.subject}\n{key}" if key else None
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn, conn.transaction():
            await case_in_reach(conn, caller, case_id)
            actor = await _actor(conn, caller)
            if request_key is not None:
                earlier = await orders_store.by_request(conn, request_key)
                if earlier:
                    replay_on(earlier[0].case_id, case_id)
                    return {"case_id": case_id, "orders": [order_view(o, actor) for o in earlier]}
            case = await store.load_case(conn, case_id, lock=True)
            assert case is not None  # in reach a moment ago; cases are never deleted
            level = (await orders_store.unit_levels(conn, [case.unit])).get(case.unit)
            why = whistle_refusal(actor, case, level)
            if why is None:
                known = await orders_store.unit_levels(conn, body.units)
                why = units_refusal(
                    case, body.units, known, await orders_store.orders_of(conn, case_id)
                )
            if why is not None:
                _raise(why)
            planned = await _issue(
                svc,
                conn,
                case,
                [(u, body.note) for u in body.units],
                required=body.required,
                report_within=within,
                actor=actor,
                now=now,
            )
            made = [o for p in planned for o in p.orders]
            await orders_store.insert_orders(conn, made, request_key)
            await store.add_timeline_steps(conn, [s for p in planned for s in p.steps])
            uow = _uow(svc, conn)
            for p in planned:
                for ev in p.events:
                    uow.emit(ev, time=now)
            await uow.flush()
        log.info("whistle blown", case_id=case_id, units=body.units, by_unit=actor.unit)
        return {"case_id": case_id, "orders": [order_view(o, actor) for o in made]}


def _order_step_routes(router: APIRouter, svc: DispatchService) -> None:
    @router.post(
        "/orders/{order_id}/actions",
        response_model=OrderView,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def act_on_order(order_id: OrderId, body: OrderActionRequest, caller: Caller) -> Any:
        """A step of a work order: report (报到), progress, done, return (by its unit's staff),
        cancel (by the unit that issued it). 200: the order now; 403: the caller may not; 404:
        no such order within reach; 409: its state does not allow it; 422: a bad field."""
        if body.action in ORDER_NOTE_REQUIRED and not (body.note or "").strip():
            raise invalid_input("body", "note", f"note is required for {body.action}")
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn, conn.transaction():
            seen = await orders_store.load_order(conn, order_id)
            if seen is None:
                raise HTTPException(404, "unknown order")
            case = await store.load_case(conn, seen.case_id, lock=True)
            assert case is not None
            if not (  # who reads the case sees its orders (an ordered unit included)
                await _reaches(conn, caller, case)
                or await _reaches_an_order(conn, caller, case.case_id)
            ):
                raise HTTPException(404, "unknown order")
            order = await orders_store.load_order(conn, order_id, lock=True)
            assert order is not None
            actor = await _actor(conn, caller)
            why = action_refusal(actor, order, body.action)
            if why is not None:
                _raise(why)
            acted = plan_action(case, order, actor, body.action, body.note, now)
            await orders_store.update_order(conn, acted.order)
            await store.add_timeline_steps(conn, [acted.step])
            uow = _uow(svc, conn)
            uow.emit(acted.event, time=now)
            await uow.flush()
        log.info("work order step", order_id=order_id, action=body.action, unit=order.unit)
        return order_view(acted.order, actor)

    @router.get("/me/orders", response_model=OrderList, responses=problems(401, 403))
    async def my_orders(caller: Caller) -> Any:
        """The open work orders (issued or reported) of the caller's unit, the nearest report
        deadline first; the command centre: those of every unit of its area."""
        unit = caller.unit
        assert unit is not None
        async with svc.pool.acquire() as conn:
            me = acting_id(caller)
            actor = await store.actor(conn, me) if me is not None else None
            units = [unit]
            if caller.role == Role.COMMAND_CENTRE:
                units = await store.area_units(conn, unit)
            found = [o for u in units for o in await orders_store.open_orders_of_unit(conn, u)]
        found.sort(key=lambda o: (o.report_by, o.order_id))
        return {"items": [order_view(o, actor) for o in found], "now": svc.dispatch.clock()}


def _council_routes(router: APIRouter, svc: DispatchService) -> None:
    @router.post(
        "/cases/{case_id}/council",
        response_model=CouncilView,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def council(
        case_id: CaseId, body: CouncilRequest, caller: Caller, key: IdempotencyKey = None
    ) -> Any:
        """Record the council's decision (议事会/联席会) on a case at deliberation: the body, the
        meeting date, the decision, the votes and the measures, each a required work order to
        the unit that carries it; the deliberation ends. 200: recorded (or a retry with the
        same Idempotency-Key); 403: not the staff of the case's unit or community; 404: no such
        case within reach; 409: the case is not at deliberation; 422: a bad field."""
        request_key = f"{caller.subject}\n{key}" if key else None
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn, conn.transaction():
            await case_in_reach(conn, caller, case_id)
            actor = await _actor(conn, caller)
            if request_key is not None:
                earlier = await orders_store.council_by_request(conn, request_key)
                if earlier is not None:
                    replay_on(earlier["case_id"], case_id)
                    made = [
                        o
                        for o in await orders_store.orders_of(conn, case_id)
                        if o.council_id == earlier["council_id"]
                    ]
                    return _council_view(earlier, [order_view(o, actor) for o in made])
            case = await store.load_case(conn, case_id, lock=True)
            assert case is not None
            who = recorder_refusal(actor, case)
            if who is not None:
                _raise(who)
            t = transition(case.state, "council_decision")
            if t is None:
                raise HTTPException(409, refusal(case.state, "council_decision"))
            ask = Decide(
                body=body.body,
                meeting_date=body.meeting_date,
                decision=body.decision,
                votes_for=body.votes.for_,
                votes_against=body.votes.against,
                votes_abstain=body.votes.abstain,
                measures=tuple(Measure(m.text, m.unit) for m in body.measures),
            )
            why = decision_refusal(case, ask, now.astimezone(SHANGHAI).date())
            if why is None:
                known = await orders_store.unit_levels(conn, [m.unit for m in ask.measures])
                bad = [m.unit for m in ask.measures if known.get(m.unit, "building") == "building"]
                if bad:
                    why = Refused(f"not a unit that carries measures: {bad[0]}", 422, "measures")
            if why is not None:
                _raise(why)
            council_id = await orders_store.next_council(conn, case_id)
            planned = await _issue(
                svc,
                conn,
                case,
                [(m.unit, m.text) for m in ask.measures],
                required=True,
                report_within=None,
                actor=actor,
                now=now,
                origin="council",
                council_id=council_id,
            )
            made = [o for p in planned for o in p.orders]
            decided = plan_decision(
                case, t, ask, council_id, [o.order_id for o in made], actor, now
            )
            await store.update_cases(conn, [(case_id, decided.change)])
            await orders_store.insert_council(conn, decided.event, request_key)
            await orders_store.insert_orders(conn, made, None)
            steps = [decided.step, *(s for p in planned for s in p.steps)]
            await store.add_timeline_steps(conn, steps)
            uow = _uow(svc, conn)
            uow.emit(decided.event, time=now)
            for p in planned:
                for ev in p.events:
                    uow.emit(ev, time=now)
            await uow.flush()
            row = await orders_store.council_by_id(conn, council_id)
        log.info("council decided", case_id=case_id, council_id=council_id, measures=len(made))
        return _council_view(row, [order_view(o, actor) for o in made])


def _council_view(row: Any, orders: list[OrderView]) -> CouncilView:
    return CouncilView(
        council_id=row["council_id"],
        case_id=row["case_id"],
        body=row["body"],
        meeting_date=row["meeting_date"],
        decision=row["decision"],
        votes={
            "for": row["votes_for"],
            "against": row["votes_against"],
            "abstain": row["votes_abstain"],
        },
        measures=row["measures"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        orders=orders,
    )
