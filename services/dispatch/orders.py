"""Work orders (派单/协办) and 吹哨报到, pure: a case's assisting orders, their ONE transition
table, who may issue and act on them, and what each step publishes.

A case has one **lead** work order, the case's own dispatch (its unit, handler, deadlines and
state machine: ``states.py``), and any number of **assisting** orders, each to one unit (a
department; 物业 or a utility, which the registry holds as a department of the community or
district they serve; a grid, community or street) with its own handler (the unit's least busy:
``assignment.pick_handler``), deadlines and state:

- **issued** (派单): 吹哨报到, the community or street that has the case (its staff, or the
  command centre of its area) blows the whistle for the named units (``origin`` "whistle"), or a
  council's decision names the unit to carry a measure ("council", ``councils.py``). The unit
  must report (报到: accept) by ``report_by`` (the rules file's ``orders.<tier>.report_within``,
  from the issue, scaled; the request may give its own) and finish by ``resolve_by``
  (``resolve_within``).
- **reported** (报到): a handler of the unit took it (``on_time``: by ``report_by``); it reports
  progress meanwhile.
- **done** (办结): the unit finished its part (``on_time``: by ``resolve_by``), with a note.
- **returned** (退回): the unit says the order is not theirs, with the reason.
- **cancelled**: the unit that issued it withdrew it, with the reason.

An order left unreported past ``report_by`` is a red card for its unit once (``cases.overdue``
with its ``order_id``, deadline ``respond``: ``deadlines.py``'s order sweep); it stays issued.
The lead may not resolve the case while a **required** order is neither done nor cancelled or
returned (``blocking``): the case resolves only when the lead and every required order are done.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Literal, get_args

from shared.contract.events import (
    TIERS,
    CaseOverdue,
    OrderIssued,
    OrderOrigin,
    OrderState,
    OrderUpdated,
)

from .model import Case, Step
from .states import COMMAND_CENTRE, Actor

OrderAction = Literal["report", "progress", "done", "return", "cancel"]
OrderEvent = OrderAction | Literal["report_timeout"]
ORDER_STATES: tuple[OrderState, ...] = get_args(OrderState)
ORDER_ACTIONS: tuple[OrderAction, ...] = get_args(OrderAction)
OPEN_ORDER: tuple[OrderState, ...] = ("issued", "reported")
# Steps whose note is their reason (or what was done), so required
ORDER_NOTE_REQUIRED: tuple[OrderAction, ...] = ("done", "return", "cancel")
# The case states a whistle may be blown in: the lead has the case (not awaiting the command
# centre's triage, not resolved nor awaiting its verification)
NO_WHISTLE: Final = frozenset({"triage", "verifying", "resolved"})
# The unit levels that blow the whistle (吹哨): a community or a street office
WHISTLE_LEVELS: Final = frozenset({"community", "street"})
MAX_UNITS: Final = 20
MAX_NOTE: Final = 2000

# (state, event) -> next state: the single source of truth of what may happen to an order
ORDER_TRANSITIONS: dict[tuple[OrderState, OrderEvent], OrderState] = {
    ("issued", "report"): "reported",
    ("issued", "return"): "returned",
    ("issued", "cancel"): "cancelled",
    ("issued", "report_timeout"): "issued",  # a red card, once; it still waits
    ("reported", "progress"): "reported",
    ("reported", "done"): "done",
    ("reported", "return"): "returned",
    ("reported", "cancel"): "cancelled",
}


def next_order_state(state: OrderState, event: OrderEvent) -> OrderState | None:
    return ORDER_TRANSITIONS.get((state, event))


class Refused(Exception):
    """A refusal: ``status`` 403 (who), 409 (the case's or order's state or place) or 422 (a
    field, ``field`` naming it)."""

    def __init__(self, reason: str, status: int, field: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field


@dataclass(frozen=True, slots=True)
class Order:
    """One row of ``work_orders``."""

    order_id: str
    case_id: str
    n: int  # the case's n-th order
    unit: str
    tier: str | None  # the ordered unit's level (a department's: its parent's)
    handler_id: str | None
    required: bool
    origin: OrderOrigin
    state: OrderState
    report_by: datetime
    resolve_by: datetime
    issued_by: str
    issued_by_unit: str | None
    note: str | None
    council_id: str | None
    issued_at: datetime
    reported_at: datetime | None = None
    done_at: datetime | None = None
    closed_at: datetime | None = None  # returned or cancelled
    report_missed_at: datetime | None = None
    last_note: str | None = None

    @property
    def open(self) -> bool:
        return self.state in OPEN_ORDER


# --- who may issue ---------------------------------------------------------------------------


def whistle_refusal(actor: Actor, case: Case, case_unit_level: str | None) -> Refused | None:
    """Why ``actor`` may not blow the whistle (吹哨) on ``case`` (None: they may): the staff of
    the case's unit when it is a community or a street office, or the command centre of the
    case's area; not a party volunteer. ``case_unit_level``: the registry's level of the case's
    unit (None: a department)."""
    if actor.role == COMMAND_CENTRE:
        if actor.unit not in case.view.place:
            return Refused("the case is outside the command centre's area", 403)
    elif actor.unit != case.unit:
        return Refused("only the unit that has the case blows the whistle (吹哨) on it", 403)
    elif actor.role == "party_volunteer":
        return Refused("party volunteers do not blow the whistle (吹哨)", 403)
    if case_unit_level not in WHISTLE_LEVELS:
        where = case_unit_level or "department"
        return Refused(
            f"the case is with a {where} ({case.unit}): a community or a street blows the "
            "whistle (吹哨报到)",
            409,
        )
    if case.state in NO_WHISTLE:
        return Refused(f"no whistle on a case in state {case.state}", 409)
    return None


def units_refusal(
    case: Case,
    units: Sequence[str],
    known: dict[str, str | None],
    open_orders: Iterable[Order],
) -> Refused | None:
    """Why the named ``units`` cannot be ordered (a 422 on ``units``; None: they can):
    ``known`` maps each unit the registry has to its level (None: a department); a building is
    no unit to order, nor the case's own unit, nor one named twice or already holding an open
    order of the case."""
    if not units:
        return Refused("name at least one unit", 422, "units")
    if len(units) > MAX_UNITS:
        return Refused(f"at most {MAX_UNITS} units at once", 422, "units")
    if len(set(units)) != len(units):
        return Refused("a unit is named twice", 422, "units")
    busy = {o.unit for o in open_orders if o.open}
    for u in units:
        if u not in known:
            return Refused(f"unknown unit {u}", 422, "units")
        if known[u] == "building":
            return Refused(f"{u} is a building, not a unit that handles orders", 422, "units")
        if u == case.unit:
            return Refused(f"{u} has the case already (the lead order)", 422, "units")
        if u in busy:
            return Refused(f"{u} already holds an open order of the case", 422, "units")
    return None


# --- what issuing does ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """What the issuer asks: for each unit, its handler (None: the unit as a whole) and level."""

    units: tuple[tuple[str, str | None, str | None], ...]  # (unit, handler_id, tier)
    required: bool
    note: str | None
    report_by: datetime
    resolve_by: datetime
    issued_by: str
    issued_by_unit: str | None
    origin: OrderOrigin = "whistle"
    council_id: str | None = None


@dataclass(frozen=True, slots=True)
class Issued:
    orders: tuple[Order, ...]
    steps: tuple[Step, ...]
    events: tuple[OrderIssued, ...]


def order_id_of(case_id: str, n: int) -> str:
    return f"{case_id}.o{n}"


def plan_issue(case: Case, ask: Issue, first_n: int, now: datetime) -> Issued:
    """The orders ``ask`` issues on ``case`` at ``now``, numbered from ``first_n``, each with a
    timeline step of the case (``order_issued``) and its event."""
    orders, steps, events = [], [], []
    for i, (unit, handler, tier) in enumerate(ask.units):
        n = first_n + i
        o = Order(
            order_id=order_id_of(case.case_id, n),
            case_id=case.case_id,
            n=n,
            unit=unit,
            tier=tier,
            handler_id=handler,
            required=ask.required,
            origin=ask.origin,
            state="issued",
            report_by=ask.report_by,
            resolve_by=ask.resolve_by,
            issued_by=ask.issued_by,
            issued_by_unit=ask.issued_by_unit,
            note=ask.note,
            council_id=ask.council_id,
            issued_at=now,
        )
        orders.append(o)
        steps.append(
            _case_step(
                case,
                o,
                "order_issued",
                now,
                ask.issued_by,
                required=o.required,
                origin=o.origin,
                note=o.note,
                report_by=o.report_by.isoformat(),
                resolve_by=o.resolve_by.isoformat(),
                order_handler_id=o.handler_id,
            )
        )
        events.append(
            OrderIssued(
                order_id=o.order_id,
                case_id=o.case_id,
                unit=o.unit,
                handler_id=o.handler_id,
                required=o.required,
                origin=o.origin,
                report_by=o.report_by,
                resolve_by=o.resolve_by,
                issued_by=o.issued_by,
                issued_by_unit=o.issued_by_unit,
                note=o.note,
                council_id=o.council_id,
                issued_at=now,
            )
        )
    return Issued(tuple(orders), tuple(steps), tuple(events))


def _case_step(
    case: Case, o: Order, event: str, at: datetime, actor: str | None, **detail: object
) -> Step:
    """A step of the case's timeline about one of its orders (the case's state unchanged)."""
    return Step(
        case.case_id,
        at,
        event,
        from_state=case.state,
        to_state=case.state,
        tier=case.tier,
        unit=o.unit,
        handler_id=actor,
        detail={"order_id": o.order_id, **detail},
    )


# --- acting on an order ------------------------------------------------------------------------


def action_refusal(actor: Actor, order: Order, action: OrderAction) -> Refused | None:
    """Why ``actor`` may not take ``action`` on ``order`` (None: they may): the ordered unit's
    staff report, report progress, finish and return it; the unit that issued it cancels it;
    never a party volunteer nor the command centre; then the order's transition table."""
    if actor.role in (COMMAND_CENTRE, "party_volunteer"):
        return Refused("work orders are handled by the staff of their unit", 403)
    if action == "cancel":
        if actor.unit != order.issued_by_unit:
            return Refused(f"only the unit that issued it ({order.issued_by_unit}) cancels it", 403)
    elif actor.unit != order.unit:
        return Refused(f"only the staff of {order.unit} act on this order", 403)
    if next_order_state(order.state, action) is None:
        hint = " (report it first: 报到)" if order.state == "issued" else ""
        return Refused(f"{action} is not allowed on an order in state {order.state}{hint}", 409)
    return None


@dataclass(frozen=True, slots=True)
class Acted:
    order: Order  # the order after the step
    step: Step
    event: OrderUpdated


def plan_action(
    case: Case, order: Order, actor: Actor, action: OrderAction, note: str | None, now: datetime
) -> Acted:
    """``action`` on ``order`` by ``actor`` at ``now`` (``action_refusal`` was None)."""
    to = next_order_state(order.state, action)
    assert to is not None
    on_time: bool | None = None
    after = replace(order, state=to, last_note=note)
    if action == "report":
        on_time = now <= order.report_by
        after = replace(after, reported_at=now, handler_id=actor.id)
    elif action == "done":
        on_time = now <= order.resolve_by
        after = replace(after, done_at=now)
    elif action in ("return", "cancel"):
        after = replace(after, closed_at=now)
    detail: dict[str, object] = {"state": to, "note": note}
    if on_time is not None:
        detail["on_time"] = on_time
    step = _case_step(case, order, f"order_{action}", now, actor.id, **detail)
    event = OrderUpdated(
        order_id=order.order_id,
        case_id=order.case_id,
        unit=order.unit,
        handler_id=actor.id,
        state=to,
        note=note,
        on_time=on_time,
        at=now,
    )
    return Acted(after, step, event)


def allowed_order_actions(actor: Actor | None, order: Order) -> list[OrderAction]:
    if actor is None:
        return []
    return [a for a in ORDER_ACTIONS if action_refusal(actor, order, a) is None]


# --- the report deadline missed (the order sweep) --------------------------------------------


def report_missed(case: Case, order: Order, now: datetime) -> tuple[Step, CaseOverdue]:
    """An issued order unreported at ``report_by``, found at ``now`` (``report_timeout``: a red
    card for the ordered unit, once; the order still waits): its step and ``cases.overdue``."""
    assert next_order_state(order.state, "report_timeout") == order.state
    step = _case_step(
        case,
        order,
        "order_report_timeout",
        now,
        order.handler_id,
        report_by=order.report_by.isoformat(),
    )
    tier = next((t for t in TIERS if t == order.tier), None)
    event = CaseOverdue(
        case_id=order.case_id,
        deadline="respond",
        unit=order.unit,
        handler_id=order.handler_id,
        tier=tier,
        due_at=order.report_by,
        overdue_at=now,
        order_id=order.order_id,
    )
    return step, event


# --- the lead's resolve ------------------------------------------------------------------------


def blocking(orders: Iterable[Order]) -> list[Order]:
    """The required orders that keep the lead from resolving the case: open ones (issued or
    reported; a returned or cancelled order no longer binds)."""
    return [o for o in orders if o.required and o.open]


def resolve_refusal(orders: Iterable[Order]) -> str | None:
    """Why the lead may not resolve the case yet (None: it may)."""
    waiting = blocking(orders)
    if not waiting:
        return None
    units = ", ".join(f"{o.unit} ({o.state})" for o in waiting)
    return f"the case resolves when every required work order is done; waiting for: {units}"


def markdown_table() -> str:
    """The order transition table as markdown (docs/dispatch.md embeds it; a test keeps the two
    equal)."""
    events: tuple[OrderEvent, ...] = (*ORDER_ACTIONS, "report_timeout")
    lines = [
        "| order state \\ event | " + " | ".join(events) + " |",
        "|---|" + "---|" * len(events),
    ]
    for state in ORDER_STATES:
        cells = [ORDER_TRANSITIONS.get((state, e), "—") for e in events]
        lines.append(f"| **{state}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)
