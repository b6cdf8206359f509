"""What handlers do in their apps (``handler.actions``): accept, progress, resolve, escalate (上报/
吹哨), return (退单), transfer (转办), deliberate (议事会), ask for an extension (缓办/延期),
decide one, suspend (挂起) and resume (``pauses.py``), and verify a resolution or send it back
(核查结案, ``verification.py``). The lead's resolve waits for every required assisting work
order (协办, ``orders.py``): refused (a conflict) while one is open.

Each action is checked (the case and the handler known, the handler allowed to act, the pair in
the transition table: ``states``), its transition decided once, then planned by the action's own
function (a refusal is a reason string) and written. **The server's time decides**: an action
takes effect at the time dispatch applies it (its clock), which judges on time and is the
``accepted_at``/``resolved_at`` published; the app's own ``at`` is kept beside it
(``reported_at``, the timeline's detail), and one further off than ``WANGGE_ACTION_SKEW_MAX_S`` is
logged and counted (``on_skew``). A refused action publishes
``handler.actions.rejected`` and changes nothing. Either way its outcome is recorded in
``action_outcomes`` (applied, or refused with the kind of refusal: ``Refusal``), which the HTTP
side answers from, a retried request included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, get_args

from shared.contract.events import ActionKind, FieldError, HandlerAction
from shared.runtime.clock import Clock
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import emit, orders, orders_store, pauses, photos, returns, store, verification
from .assignment import Route, transfer_refusal
from .model import Case, CaseChange, Refusal, Step
from .planning import (
    NO_EXTENSION_REQUEST,
    Plan,
    Policy,
    acted,
    least_busy,
    plan_redispatch,
    route_case,
    write_each,
)
from .states import (
    ALREADY_ACCEPTED,
    Actor,
    Transition,
    authorization_refusal,
    refusal,
    transition,
)
from .tiers import next_tier

log = get_logger(component="dispatch")

Planned = Plan | str  # what the action does, or why it is refused
DECIDE_BY_TOO_EARLY = "decide_by must be after the action's time"
MAX_DELIBERATION = timedelta(days=366)  # a council decides within a year (and dates stay dates)
DECIDE_BY_TOO_LATE = "decide_by must be within 366 days of the action's time"
DEFAULT_SKEW_MAX = timedelta(minutes=5)  # WANGGE_ACTION_SKEW_MAX_S


def authorization_refused(reason: str) -> Refusal:
    """A refusal of ``states.authorization_refusal``: the handler may not act, except a volunteer
    too late to take a case someone accepted (the case's state is the reason)."""
    return Refusal(reason, "conflict" if reason == ALREADY_ACCEPTED else "not_permitted")


def plan_refused(a: HandlerAction, reason: str) -> Refusal:
    """A refusal of an action's planning function: a transfer's target (``target_unit``) or a
    deliberation's ``decide_by`` is wrong for the case; anything else is the case's state or
    place (the top tier, no other unit, no community)."""
    if a.action == "transfer":
        return Refusal(reason, "invalid", "target_unit")
    if a.action == "deliberate" and reason in (DECIDE_BY_TOO_EARLY, DECIDE_BY_TOO_LATE):
        return Refusal(reason, "invalid", "decide_by")
    if a.action == "request_extension" and reason.startswith("extend_to"):
        return Refusal(reason, "invalid", "extend_to")
    if a.action == "suspend" and reason.startswith("resume_by"):
        return Refusal(reason, "invalid", "resume_by")
    return Refusal(reason)


def step(
    case: Case,
    a: HandlerAction,
    t: Transition,
    change: CaseChange,
    now: datetime,
    **detail: Any,
) -> Plan:
    """An action that keeps the case where it is (its tier and unit), applied at ``now``: the
    change and its step (the app's own time in its detail, ``reported_at``)."""
    change = CaseChange(state=t.to_state) | change
    after = case.apply(change)
    detail = {**acted(a), **detail}
    return Plan(case, change, after, (Step.of(t, after, now, detail, actor=a.handler_id),))


def accept(case: Case, a: HandlerAction, t: Transition, now: datetime) -> Planned:
    """The acceptor becomes the case's handler; on time when applied (``now``) not after
    ``respond_by``."""
    on_time = case.respond_by is None or now <= case.respond_by
    change = CaseChange(handler_id=a.handler_id, accepted_at=now)
    plan = step(case, a, t, change, now, on_time=on_time)
    return plan.publishing(emit.accepted(case, a, applied_at=now, on_time=on_time))


def progress(case: Case, a: HandlerAction, t: Transition, now: datetime) -> Planned:
    return step(case, a, t, CaseChange(), now)


def resolve(policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime) -> Planned:
    """On time when applied (``now``) not after ``resolve_by`` (as a pause that ends with it
    leaves it: ``pauses.running_again``; an approved extension's), and not missed at the top.
    The case then awaits its verification (核查结案: ``verification.awaited``), or the
    verification is waived at once."""
    paused = pauses.running_again(policy, case, now)
    resolve_by = case.apply(paused).resolve_by
    on_time = case.resolve_missed_at is None and (resolve_by is None or now <= resolve_by)
    change = (
        paused
        | NO_EXTENSION_REQUEST
        | CaseChange(
            handler_id=a.handler_id,
            resolved_at=now,
            resolved_tier=case.tier,
            resolved_unit=case.unit,
        )
    )
    check = verification.awaited(policy, case.apply(change), now)
    if isinstance(check, CaseChange):
        change = change | check
    plan = step(case, a, t, change, now, on_time=on_time)
    plan = plan.publishing(emit.resolved(plan.after, a, applied_at=now, on_time=on_time))
    return plan if isinstance(check, CaseChange) else verification.waived(plan, check, now)


def deliberate(
    policy: Policy, case: Case, a: HandlerAction, t: Transition, now: datetime
) -> Planned:
    """To the community's residents' council (议事会): the deadline pauses from ``now`` until
    decide_by (resolve_by, and its warning not yet given, move back by the length of the
    pause: its working time when the case's resolve limit is in working time)."""
    assert a.decide_by is not None
    if not case.community:
        return "the case has no community, so no residents' council"
    if a.decide_by <= now:
        return DECIDE_BY_TOO_EARLY
    if a.decide_by - now > MAX_DELIBERATION:
        return DECIDE_BY_TOO_LATE
    change = CaseChange(  # in working time when the resolve limit is (Policy.extend_paused)
        paused_at=now,
        paused_until=a.decide_by,
        resolve_by=policy.extend_paused(case, case.resolve_by, now, a.decide_by),
        resolve_warn_at=policy.extend_paused(case, case.resolve_warn_at, now, a.decide_by),
    )
    detail = {"council": case.community, "decide_by": a.decide_by.isoformat()}
    return step(case, a, t, change, now, **detail)


KeepingPlanner = Callable[[Policy, Case, HandlerAction, Transition, datetime], Planned]
# The actions that keep the case at its unit, planned in memory from the case as it is
KEEPING: dict[str, KeepingPlanner] = {
    "accept": lambda p, case, a, t, now: accept(case, a, t, now),
    "progress": lambda p, case, a, t, now: progress(case, a, t, now),
    "resolve": resolve,
    "deliberate": deliberate,
    "request_extension": pauses.request_extension,
    "approve_extension": pauses.decide_extension,
    "refuse_extension": pauses.decide_extension,
    "suspend": pauses.suspend,
    "resume": pauses.resume,
    "verify": lambda p, case, a, t, now: verification.verify(case, a, t, now),
    "send_back": verification.send_back,
    "return": lambda p, case, a, t, now: returns.plan_return(case, a, t, now),
}
MOVING = ("escalate", "transfer")  # ``Actions.plan``'s own: they read the registry
assert {*KEEPING, *MOVING} == set(get_args(ActionKind)), "every action kind is planned once"


def skew(a: HandlerAction, applied: datetime) -> timedelta:
    """How far the app's time (``at``) is from when dispatch applied the action."""
    return abs(applied - a.at)


class Actions:
    """``handler.actions`` and its invalid messages. ``on_skew(action)`` is called for every
    action whose ``at`` is further than ``skew_max`` from when it was applied (a metrics hook)."""

    def __init__(
        self, policy: Policy, clock: Clock, *, skew_max: timedelta = DEFAULT_SKEW_MAX
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.skew_max = skew_max
        self.on_skew: Callable[[str], None] = lambda action: None

    async def on_invalid(
        self, uow: UnitOfWork, obj: Any, errors: list[FieldError], meta: Meta
    ) -> None:
        action_id, case_id = obj.get("action_id"), obj.get("case_id")
        rejected = emit.action_rejected(
            action_id if isinstance(action_id, str) else None,
            case_id if isinstance(case_id, str) else None,
            "invalid: " + "; ".join(f"{e.field}: {e.message}" for e in errors),
        )
        uow.emit(rejected)

    def reject(self, uow: UnitOfWork, a: HandlerAction, why: Refusal) -> None:
        log.info("handler action rejected", action=a.action, reason=why.reason, kind=why.kind)
        uow.emit(emit.action_rejected(a.action_id, a.case_id, why.reason))

    def check_skew(self, a: HandlerAction, applied: datetime) -> None:
        off = skew(a, applied)
        if off > self.skew_max:
            log.warning(
                "handler action time skewed",
                action=a.action,
                case_id=a.case_id,
                skew_s=round(off.total_seconds(), 1),
                app_ahead=a.at > applied,
                skew_max_s=self.skew_max.total_seconds(),
            )
            self.on_skew(a.action)

    async def on_action(self, uow: UnitOfWork, a: HandlerAction, meta: Meta) -> None:
        """One action (``on_actions`` with a batch of one)."""
        await self.on_actions(uow.conn, [Claimed(a, meta, uow)])

    async def on_actions(self, conn: Connection, claimed: list[Claimed[HandlerAction]]) -> None:
        """A batch of actions, set-based: their cases read and locked at once (in case_id
        order), their handlers at once; each action then decided in order, on its case as the
        actions before it in the batch left it (``decide``); what they change written
        together (``planning.write_each``; before a moving action, what was planned before it,
        whose handler loads it reads), then the returns' queue entries and every outcome."""
        now = self.clock()  # the time the actions are applied: what decides
        actions = [c.event for c in claimed]
        cases = {c.case_id: c for c in await store.load_cases(conn, [a.case_id for a in actions])}
        actors = await store.actors(conn, [a.handler_id for a in actions])
        applied: list[tuple[UnitOfWork, Plan]] = []
        written = 0  # how many of ``applied`` are written
        queued = []
        outcomes: list[tuple[HandlerAction, Refusal | None]] = []
        for c in claimed:
            a = c.event
            self.check_skew(a, now)
            if a.action in MOVING and written < len(applied):
                # a moving action picks its handler by the units' loads in the database: what
                # the batch planned before it written first, as one at a time would have
                await write_each(conn, applied[written:])
                written = len(applied)
            decided = await self.decide(
                conn, cases.get(a.case_id), actors.get(a.handler_id), a, now
            )
            if isinstance(decided, Refusal):
                self.reject(c.uow, a, decided)
                outcomes.append((a, decided))
                continue
            cases[a.case_id] = decided.after
            applied.append((c.uow, decided))
            if a.action == "return":  # 退单: its entry in the queue, after its case row
                text = await store.case_text(conn, a.case_id)
                queued.append(returns.queue_entry(decided.case, a, text, now))
            outcomes.append((a, None))
        await write_each(conn, applied[written:])
        if queued:
            await store.add_triage_entries(conn, queued)
        await store.record_outcomes(conn, outcomes)

    async def decide(
        self,
        conn: Connection,
        case: Case | None,
        actor: Actor | None,
        a: HandlerAction,
        now: datetime,
    ) -> Plan | Refusal:
        """What the action does to ``case`` (as it is now), or why it is refused: the case and
        the handler known, the handler allowed to act, the pair in the transition table, a
        resolve's assisting orders done, its photos uploaded, then its plan."""
        if case is None:
            return Refusal("unknown case", "unknown_case")
        why = authorization_refusal(actor, case.view, a.action)
        if why is not None:
            return authorization_refused(why)
        t = transition(case.state, a.action)
        if t is None:
            return Refusal(refusal(case.state, a.action))
        if a.action == "resolve":  # 协办: every required assisting order done first
            waiting = orders.resolve_refusal(await orders_store.orders_of(conn, case.case_id))
            if waiting is not None:
                return Refusal(waiting)
        unattached = await photos.refusal(conn, a)
        if unattached is not None:
            return unattached
        planned = await self.plan(conn, case, a, t, now)
        if isinstance(planned, str):
            return plan_refused(a, planned)
        return photos.attach(planned, a)

    async def plan(
        self, conn: Connection, case: Case, a: HandlerAction, t: Transition, now: datetime
    ) -> Planned:
        match a.action:
            case "escalate":
                return await self.escalate(conn, case, a, t, now)
            case "transfer":
                return await self.transfer(conn, case, a, t, now)
        return KEEPING[a.action](self.policy, case, a, t, now)

    # --- the actions that move the case to another unit ------------------------------------------

    async def escalate(
        self, conn: Connection, case: Case, a: HandlerAction, t: Transition, now: datetime
    ) -> Planned:
        """One tier up, routed by the assignment rules."""
        up = next_tier(case.tier)
        if up is None:
            return f"already at the top tier ({case.tier})"
        to = await route_case(conn, case, up, case.excluded_units)
        if to is None:
            return f"no unit above {case.tier} covers the case"
        reason = f"handler: {a.note}"
        plan = await self._move(conn, case, a, t, to, reason, now)
        return plan.publishing(emit.escalated(plan.after, from_tier=case.tier, reason=reason))

    async def transfer(
        self, conn: Connection, case: Case, a: HandlerAction, t: Transition, now: datetime
    ) -> Planned:
        """转办: to another unit of the same tier (``assignment.transfer_refusal``)."""
        assert a.target_unit is not None
        target = await store.target_unit(conn, a.target_unit)
        why = transfer_refusal(case.tier, case.unit, target)
        if why is not None:
            return why
        reason = f"transferred from {case.unit}" + (f": {a.note}" if a.note else "")
        return await self._move(conn, case, a, t, Route(case.tier, a.target_unit), reason, now)

    async def _move(
        self,
        conn: Connection,
        case: Case,
        a: HandlerAction,
        t: Transition,
        to: Route,
        reason: str,
        now: datetime,
        also: CaseChange | None = None,
    ) -> Plan:
        handler = await least_busy(conn, to.unit)
        return plan_redispatch(
            self.policy, case, t, to, now, reason, handler, actor=a.handler_id, also=also
        )
