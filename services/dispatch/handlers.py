"""Dispatch's handlers: they orchestrate the pure rules (tiers, assignment, sla, states) around
the SQL of ``store`` and the events of the outbox. Time comes from ``clock`` (injectable)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shared.clock import Clock, utcnow
from shared.consumer import TRANSIENT_ERRORS, Meta, PermanentError
from shared.events import (
    CaseAccepted,
    CaseDispatched,
    CaseEscalated,
    CaseMerged,
    CaseOverdue,
    CaseReopened,
    CaseResolved,
    FieldError,
    HandlerAction,
    HandlerActionRejected,
    Tier,
)
from shared.logging import get_logger
from shared.taxonomy import SlaOverride, Taxonomy
from shared.uow import UnitOfWork

from . import store
from .assignment import Route, next_handler, pick_handler, route, transfer_refusal
from .sla import SlaPolicy, extend
from .states import (
    AWAITING,
    CaseEvent,
    CaseView,
    State,
    authorization_refusal,
    next_state,
    refusal,
)
from .sweeps import Loads, Step, Swept
from .tiers import CaseFacts, DispatchRules, decide_tier, higher, next_tier, tier_index

log = get_logger(component="dispatch")

SWEEP_BATCH = 500


class Dispatch:
    def __init__(
        self,
        taxonomy: Taxonomy,
        rules: DispatchRules,
        *,
        sla_scale: float = 1.0,
        clock: Clock = utcnow,
    ) -> None:
        self.taxonomy = taxonomy
        self.rules = rules
        self.sla = SlaPolicy(rules, sla_scale)
        self.clock = clock
        # Called as (deadline, tier) when a sweep finds a missed deadline (metrics hook).
        self.on_breach: Callable[[str, str], None] = lambda deadline, tier: None
        # sweeps whose set-based write failed and that went one case at a time
        self.sweep_fallbacks = 0
        self.on_sweep_fallback: Callable[[str], None] = lambda sweep: None

    # --- helpers ----------------------------------------------------------------------------

    def default_tier(self, category: str) -> Tier:
        cat = self.taxonomy.get(category)
        return cat.tier if cat else "grid"

    def category_sla(self, category: str, tier: Tier) -> SlaOverride | None:
        """A category's own SLA (taxonomy ``sla``) applies at its default tier."""
        cat = self.taxonomy.get(category)
        return cat.sla if cat is not None and cat.tier == tier else None

    @staticmethod
    def respond_within(case: asyncpg.Record) -> timedelta | None:
        s = case["respond_within_s"]
        return None if s is None else timedelta(seconds=s)

    async def route(
        self, conn: asyncpg.Connection, case: asyncpg.Record, tier: Tier, exclude: list[str]
    ) -> Route | None:
        loc = store.location(case)
        depts = await store.departments_of(conn, [loc.street, loc.district])
        return route(tier, loc, case["category"], depts, exclude)

    async def redispatch(
        self,
        uow: UnitOfWork,
        case: asyncpg.Record,
        *,
        event: CaseEvent,
        to: Route,
        now: datetime,
        reason: str,
        actor: str | None = None,
        **changes: Any,
    ) -> CaseDispatched:
        """Move the case to ``to`` (a unit, maybe of another tier): pick its handler, start fresh
        deadlines, record the step and publish a new ``cases.dispatched`` (attempt + 1)."""
        handler = pick_handler(await store.handler_loads(uow.conn, to.unit))
        plan = self.plan_redispatch(case, event, to, now, reason, handler, actor)
        await store.update_case(uow.conn, case["case_id"], **plan.changes, **changes)
        await store.add_timeline_steps(uow.conn, [plan.step])
        for topic, ev in plan.events:
            self.publish(uow, topic, ev)
        dispatched: CaseDispatched = plan.events[-1][1]
        return dispatched

    def plan_redispatch(
        self,
        case: asyncpg.Record,
        event: CaseEvent,
        to: Route,
        now: datetime,
        reason: str,
        handler: str | None,
        actor: str | None = None,
    ) -> Swept:
        """What moving the case to ``to`` with ``handler`` changes (pure): its columns, its
        timeline step and its ``cases.dispatched`` (attempt + 1), fresh deadlines included."""
        state = next_state(case["state"], event)
        if state is None:  # the callers check the table first; this guards the invariant
            raise PermanentError(refusal(case["state"], event))
        dl = self.sla.deadlines(
            to.tier,
            now,
            respond_within=self.respond_within(case),
            category_sla=self.category_sla(case["category"], to.tier),
        )
        reasons = [*case["tier_reasons"], reason, *to.notes]
        attempt = case["attempt"] + 1
        changes = {
            "tier": to.tier,
            "unit": to.unit,
            "handler_id": handler,
            "state": state,
            "attempt": attempt,
            "tier_reasons": reasons,
            "dispatched_at": now,
            "respond_by": dl.respond_by,
            "resolve_by": dl.resolve_by,
            "resolve_missed_at": None,
            "accepted_at": None,
            "paused_at": None,
            "paused_until": None,
        }
        step = Step(
            case["case_id"],
            now,
            event,
            from_state=case["state"],
            to_state=state,
            tier=to.tier,
            unit=to.unit,
            handler_id=handler,
            detail={
                "reason": reason,
                "from_tier": case["tier"],
                "from_unit": case["unit"],
                "by": actor,
                "attempt": attempt,
            },
        )
        dispatched = CaseDispatched(
            case_id=case["case_id"],
            tier=to.tier,
            unit=to.unit,
            handler_id=handler,
            respond_by=dl.respond_by,
            resolve_by=dl.resolve_by,
            tier_reasons=reasons,
            attempt=attempt,
            category=case["category"],
            dispatched_at=now,
        )
        return Swept(case["case_id"], changes, step, [("cases.dispatched", dispatched)])

    @staticmethod
    def publish(uow: UnitOfWork, topic: str, event: Any) -> None:
        uow.publish(topic, event, key=event.case_id, subject=event.case_id)

    def escalated(
        self, uow: UnitOfWork, from_tier: Tier, to: CaseDispatched, reason: str, unit: str
    ) -> None:
        self.publish(
            uow,
            "cases.escalated",
            CaseEscalated(
                case_id=to.case_id,
                from_tier=from_tier,
                to_tier=to.tier,
                unit=unit,
                reason=reason,
                escalated_at=to.dispatched_at,
            ),
        )

    # --- cases.opened -----------------------------------------------------------------------

    # --- cases.merged (附议): the "5 or more merged reports" rule ------------------------------

    def merged(
        self, case: Mapping[str, Any], ev: CaseMerged, now: datetime
    ) -> tuple[CaseFacts, dict[str, Any], Step]:
        """What a merge (附议) changes on a dispatched case: its facts, the columns to set and the
        timeline step to record."""
        facts = CaseFacts(
            category=case["category"],
            households_affected=max_known(case["households"], ev.households_affected),
            supporter_count=max(case["supporters"], ev.supporter_count),
            urgent=case["urgent"] or ev.urgent,
        )
        changes = {
            "households": facts.households_affected,
            "supporters": facts.supporter_count,
            "urgent": facts.urgent,
        }
        detail = {"report_id": ev.report_id, "supporter_count": facts.supporter_count}
        step = Step(ev.case_id, now, "merged", tier=case["tier"], unit=case["unit"], detail=detail)
        return facts, changes, step

    def merge_may_redispatch(self, case: Mapping[str, Any], facts: CaseFacts) -> bool:
        """Whether a merge with these facts can do more than update the case (``on_merged``): the
        rules raise its tier, or give it a shorter response time it does not have yet."""
        decision = decide_tier(case["tier"], facts, self.rules)
        return tier_index(decision.tier) > tier_index(case["tier"]) or (
            decision.respond_within is not None and case["respond_within_s"] is None
        )

    async def on_merged(self, uow: UnitOfWork, ev: CaseMerged, meta: Meta) -> None:
        conn = uow.conn
        case = await store.get_case(conn, ev.case_id, lock=True)
        if case is None:  # the merge overtook the case: kept until cases.opened arrives
            await store.add_early_merges(conn, [ev])
            return
        now = self.clock()
        facts, changes, step = self.merged(case, ev, now)
        await store.update_case(conn, ev.case_id, **changes)
        await store.add_timeline_steps(conn, [step])
        decision = decide_tier(case["tier"], facts, self.rules)
        new_reasons = [r for r in decision.reasons[1:] if r not in case["tier_reasons"]]
        if tier_index(decision.tier) > tier_index(case["tier"]):
            if next_state(case["state"], "rules_raised") is None:
                return  # resolved: the rules apply to the next dispatch, if any
            to = await self.route(conn, case, decision.tier, list(case["excluded_units"]))
            if to is None:
                return
            case = await self._with_respond_within(conn, case, decision.respond_within)
            reason = "; ".join(new_reasons) or f"tier rules: at least {decision.tier}"
            sent = await self.redispatch(
                uow, case, event="rules_raised", to=to, now=now, reason=reason
            )
            self.escalated(uow, case["tier"], sent, f"rules: {reason}", sent.unit)
            return
        if decision.respond_within is not None and case["respond_within_s"] is None:
            case = await self._with_respond_within(conn, case, decision.respond_within)
            if case["state"] in AWAITING:
                await self._tighten_response(uow, case, now, new_reasons)

    async def _with_respond_within(
        self, conn: asyncpg.Connection, case: asyncpg.Record, within: timedelta | None
    ) -> asyncpg.Record:
        if within is None or case["respond_within_s"] is not None:
            return case
        await store.update_case(conn, case["case_id"], respond_within_s=within.total_seconds())
        fresh = await store.get_case(conn, case["case_id"])
        assert fresh is not None
        return fresh

    async def _tighten_response(
        self, uow: UnitOfWork, case: asyncpg.Record, now: datetime, reasons: list[str]
    ) -> None:
        """A merge made the case urgent before anyone accepted it: shorten its response
        deadline (never lengthen it). This is no new dispatch, so no ``cases.dispatched`` (every
        dispatch counts in the response rate); ``cases.accepted.on_time`` tells the outcome."""
        within = self.respond_within(case)
        assert within is not None
        respond_by = min(case["respond_by"], case["dispatched_at"] + within * self.sla.scale)
        await store.update_case(
            uow.conn,
            case["case_id"],
            respond_by=respond_by,
            tier_reasons=[*case["tier_reasons"], *reasons],
        )
        await store.add_timeline(
            uow.conn,
            case["case_id"],
            now,
            "respond_deadline_shortened",
            tier=case["tier"],
            unit=case["unit"],
            handler_id=case["handler_id"],
            detail={"respond_by": respond_by.isoformat(), "reasons": reasons},
        )

    # --- cases.reopened ---------------------------------------------------------------------

    async def on_reopened(self, uow: UnitOfWork, ev: CaseReopened, meta: Meta) -> None:
        """Dispatch again one tier above the tier that resolved it; from the second reopen on,
        at least at the street, under supervision (督办) of the street office."""
        conn = uow.conn
        case = await store.get_case(conn, ev.case_id, lock=True)
        if case is None:
            raise PermanentError(f"reopened case {ev.case_id} is unknown to dispatch")
        if next_state(case["state"], "reopen") is None:
            raise PermanentError(f"case {ev.case_id} reopened in state {case['state']}")
        count = max(case["reopen_count"] + 1, ev.reopen_count)
        resolved_tier: Tier = case["resolved_tier"] or case["tier"]
        target = next_tier(resolved_tier) or resolved_tier
        supervise = count >= 2
        if supervise:
            target = higher(target, "street")
        to = await self.route(conn, case, target, list(case["excluded_units"]))
        if to is None:
            raise PermanentError(f"no unit to dispatch reopened case {ev.case_id} to")
        changes: dict[str, Any] = {"reopen_count": count, "resolved_at": None}
        newly_supervised = supervise and not case["supervised"]
        supervisor = case["street"] or (to.unit if to.tier == "street" else case["district"])
        if newly_supervised:
            changes |= {"supervised": True, "supervisor_unit": supervisor}
        sent = await self.redispatch(
            uow,
            case,
            event="reopen",
            to=to,
            now=self.clock(),
            reason=f"reopened ({count}): {ev.reason}",
            **changes,
        )
        if newly_supervised:
            self.escalated(uow, resolved_tier, sent, "supervision", supervisor)

    # --- handler.actions --------------------------------------------------------------------

    async def on_invalid_action(
        self, uow: UnitOfWork, obj: Any, errors: list[FieldError], meta: Meta
    ) -> None:
        action_id, case_id = obj.get("action_id"), obj.get("case_id")
        uow.publish(
            "handler.actions.rejected",
            HandlerActionRejected(
                action_id=action_id if isinstance(action_id, str) else None,
                case_id=case_id if isinstance(case_id, str) else None,
                reason="invalid: " + "; ".join(f"{e.field}: {e.message}" for e in errors),
            ),
            key=case_id if isinstance(case_id, str) else None,
        )

    def reject(self, uow: UnitOfWork, action: HandlerAction, reason: str) -> None:
        log.info("handler action rejected", action=action.action, reason=reason)
        uow.publish(
            "handler.actions.rejected",
            HandlerActionRejected(
                action_id=action.action_id, case_id=action.case_id, reason=reason
            ),
            key=action.case_id,
            subject=action.case_id,
        )

    async def on_action(self, uow: UnitOfWork, action: HandlerAction, meta: Meta) -> None:
        conn = uow.conn
        case = await store.get_case(conn, action.case_id, lock=True)
        if case is None:
            self.reject(uow, action, "unknown case")
            return
        actor = await store.actor(conn, action.handler_id)
        view = CaseView(
            state=case["state"],
            tier=case["tier"],
            unit=case["unit"],
            handler_id=case["handler_id"],
            community=case["community"],
        )
        why = authorization_refusal(actor, view, action.action)
        if why is not None:
            self.reject(uow, action, why)
            return
        if next_state(case["state"], action.action) is None:
            self.reject(uow, action, refusal(case["state"], action.action))
            return
        assert actor is not None
        apply = {
            "accept": self._accept,
            "progress": self._progress,
            "resolve": self._resolve,
            "escalate": self._escalate,
            "return": self._return,
            "transfer": self._transfer,
            "deliberate": self._deliberate,
        }[action.action]
        refused = await apply(uow, case, action)
        if refused:
            self.reject(uow, action, refused)

    async def _step(
        self,
        uow: UnitOfWork,
        case: asyncpg.Record,
        action: HandlerAction,
        detail: dict[str, Any] | None = None,
        **changes: Any,
    ) -> State:
        """A transition that keeps the case where it is: update the row, record the step."""
        to = next_state(case["state"], action.action)
        assert to is not None
        await store.update_case(uow.conn, case["case_id"], state=to, **changes)
        await store.add_timeline(
            uow.conn,
            case["case_id"],
            action.at,
            action.action,
            from_state=case["state"],
            to_state=to,
            tier=case["tier"],
            unit=case["unit"],
            handler_id=action.handler_id,
            detail={"action_id": action.action_id, "note": action.note, **(detail or {})},
        )
        return to

    async def _accept(self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction) -> str | None:
        on_time = case["respond_by"] is None or a.at <= case["respond_by"]
        await self._step(
            uow,
            case,
            a,
            {"on_time": on_time},
            handler_id=a.handler_id,
            accepted_at=a.at,
        )
        self.publish(
            uow,
            "cases.accepted",
            CaseAccepted(
                case_id=case["case_id"],
                tier=case["tier"],
                unit=case["unit"],
                handler_id=a.handler_id,
                accepted_at=a.at,
                on_time=on_time,
            ),
        )
        return None

    async def _progress(
        self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction
    ) -> str | None:
        await self._step(uow, case, a)
        return None

    async def _resolve(self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction) -> str | None:
        on_time = case["resolve_missed_at"] is None and (
            case["resolve_by"] is None or a.at <= case["resolve_by"]
        )
        await self._step(
            uow,
            case,
            a,
            {"on_time": on_time},
            handler_id=a.handler_id,
            resolved_at=a.at,
            resolved_tier=case["tier"],
            resolved_unit=case["unit"],
            paused_at=None,
            paused_until=None,
        )
        self.publish(
            uow,
            "cases.resolved",
            CaseResolved(
                case_id=case["case_id"],
                resolved_at=a.at,
                tier=case["tier"],
                unit=case["unit"],
                handler_id=a.handler_id,
                note=a.note or "",
                on_time=on_time,
            ),
        )
        return None

    async def _escalate(
        self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction
    ) -> str | None:
        up = next_tier(case["tier"])
        if up is None:
            return f"already at the top tier ({case['tier']})"
        to = await self.route(uow.conn, case, up, list(case["excluded_units"]))
        if to is None:
            return f"no unit above {case['tier']} covers the case"
        reason = f"handler: {a.note}"
        sent = await self.redispatch(
            uow, case, event="escalate", to=to, now=self.clock(), reason=reason, actor=a.handler_id
        )
        self.escalated(uow, case["tier"], sent, reason, sent.unit)
        return None

    async def _return(self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction) -> str | None:
        exclude = [*case["excluded_units"], case["unit"]]
        to = await self.route(uow.conn, case, case["tier"], exclude)
        if to is None:
            return "no other unit can take the case"
        sent = await self.redispatch(
            uow,
            case,
            event="return",
            to=to,
            now=self.clock(),
            reason=f"returned by {case['unit']}: {a.note}",
            actor=a.handler_id,
            excluded_units=exclude,
        )
        if tier_index(sent.tier) > tier_index(case["tier"]):
            self.escalated(uow, case["tier"], sent, "return", sent.unit)
        return None

    async def _transfer(
        self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction
    ) -> str | None:
        assert a.target_unit is not None
        target = await store.target_unit(uow.conn, a.target_unit)
        why = transfer_refusal(case["tier"], case["unit"], target)
        if why is not None:
            return why
        await self.redispatch(
            uow,
            case,
            event="transfer",
            to=Route(case["tier"], a.target_unit),
            now=self.clock(),
            reason=f"transferred from {case['unit']}" + (f": {a.note}" if a.note else ""),
            actor=a.handler_id,
        )
        return None

    async def _deliberate(
        self, uow: UnitOfWork, case: asyncpg.Record, a: HandlerAction
    ) -> str | None:
        """To the community's residents' council (议事会): the deadline pauses until decide_by
        (resolve_by moves back by the length of the pause)."""
        assert a.decide_by is not None
        if not case["community"]:
            return "the case has no community, so no residents' council"
        if a.decide_by <= a.at:
            return "decide_by must be after the action's time"
        pause = a.decide_by - a.at
        await self._step(
            uow,
            case,
            a,
            {"council": case["community"], "decide_by": a.decide_by.isoformat()},
            paused_at=a.at,
            paused_until=a.decide_by,
            resolve_by=extend(case["resolve_by"], pause),
        )
        return None

    # --- the sweepers (durable timers) ------------------------------------------------------
    # A sweep claims its due rows and works out in memory what happens to each of them (the
    # handler loads of every unit involved read with one query and kept current as cases change
    # hands, ``sweeps.Loads``), then writes the outcome set-based: the row changes and timeline
    # steps with executemany, the events with the outbox flush. One broken case fails that whole
    # write: its savepoint is rolled back and the same rows are handled one by one, each in its
    # own savepoint, so the broken case is logged and left for the next sweep without holding
    # back the others. Transient errors fail the whole sweep (the Sweeper retries it).

    async def sweep_response(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_response(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self._responses_missed, "response")

    async def sweep_resolution(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_resolution(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self._resolutions_missed, "resolution")

    async def sweep_deliberations(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.deliberations_due(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self._deliberations_ended, "deliberation")

    async def _sweep(
        self,
        uow: UnitOfWork,
        rows: list[asyncpg.Record],
        now: datetime,
        plan: Callable[
            [asyncpg.Connection, list[asyncpg.Record], datetime], Awaitable[list[Swept]]
        ],
        name: str,
    ) -> int:
        if not rows:
            return 0
        mark = len(uow.pending)
        try:
            async with uow.conn.transaction():
                swept = await plan(uow.conn, rows, now)
                await self._write(uow, swept)
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            del uow.pending[mark:]
            self.sweep_fallbacks += 1
            self.on_sweep_fallback(name)
            log.exception("set-based sweep failed: one case at a time", sweep=name)
            swept = await self._each(uow, rows, now, plan)
        for s in swept:
            if s.breach is not None:
                self.on_breach(*s.breach)
        return len(rows)

    async def _each(
        self,
        uow: UnitOfWork,
        rows: list[asyncpg.Record],
        now: datetime,
        plan: Callable[
            [asyncpg.Connection, list[asyncpg.Record], datetime], Awaitable[list[Swept]]
        ],
    ) -> list[Swept]:
        """Each row in its own savepoint (its unit's loads read again): a broken row is logged
        and left for the next sweep."""
        done: list[Swept] = []
        for case in rows:
            mark = len(uow.pending)
            try:
                async with uow.conn.transaction():
                    swept = await plan(uow.conn, [case], now)
                    await self._write(uow, swept)
            except TRANSIENT_ERRORS:
                raise
            except Exception:
                del uow.pending[mark:]
                log.exception(
                    "sweep of a case failed", case_id=case["case_id"], sweep=plan.__name__
                )
                continue
            done.extend(swept)
        return done

    async def _write(self, uow: UnitOfWork, swept: list[Swept]) -> None:
        await store.update_cases(uow.conn, [(s.case_id, s.changes) for s in swept])
        await store.add_timeline_steps(uow.conn, [s.step for s in swept])
        for s in swept:
            for topic, event in s.events:
                self.publish(uow, topic, event)

    async def _responses_missed(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record], now: datetime
    ) -> list[Swept]:
        """Response deadline missed: the next handler of the unit, a fresh response deadline,
        ``cases.overdue`` (respond) and a new ``cases.dispatched``."""
        loads = Loads(await store.handler_loads_many(conn, {c["unit"] for c in rows}))
        return [self._response_missed(case, now, loads) for case in rows]

    def _response_missed(self, case: asyncpg.Record, now: datetime, loads: Loads) -> Swept:
        state = next_state(case["state"], "respond_timeout")
        assert state is not None
        handler = next_handler(loads.of(case["unit"]), case["handler_id"])
        loads.move(case["handler_id"], handler)
        respond, _ = self.sla.durations(
            case["tier"],
            respond_within=self.respond_within(case),
            category_sla=self.category_sla(case["category"], case["tier"]),
        )
        respond_by = now + respond * self.sla.scale
        attempt = case["attempt"] + 1
        return Swept(
            case["case_id"],
            {"state": state, "handler_id": handler, "respond_by": respond_by, "attempt": attempt},
            Step(
                case["case_id"],
                now,
                "respond_timeout",
                from_state=case["state"],
                to_state=state,
                tier=case["tier"],
                unit=case["unit"],
                handler_id=handler,
                detail={
                    "missed": case["respond_by"].isoformat(),
                    "from_handler": case["handler_id"],
                    "attempt": attempt,
                },
            ),
            [
                (
                    "cases.overdue",
                    CaseOverdue(
                        case_id=case["case_id"],
                        deadline="respond",
                        unit=case["unit"],
                        handler_id=case["handler_id"],
                    ),
                ),
                (
                    "cases.dispatched",
                    CaseDispatched(
                        case_id=case["case_id"],
                        tier=case["tier"],
                        unit=case["unit"],
                        handler_id=handler,
                        respond_by=respond_by,
                        resolve_by=case["resolve_by"],
                        tier_reasons=[*case["tier_reasons"]],
                        attempt=attempt,
                        category=case["category"],
                        dispatched_at=now,
                    ),
                ),
            ],
            breach=("respond", case["tier"]),
        )

    async def _resolutions_missed(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record], now: datetime
    ) -> list[Swept]:
        """Resolution deadline missed: ``cases.overdue`` (resolve), then one tier up with reason
        ``timeout`` (``cases.escalated`` and a new ``cases.dispatched``). At the top tier there is
        nothing above: the miss is recorded (``resolve_missed_at``), so it fires once. The
        departments of every street and district involved are read with one query (``route``
        keeps to the case's own), then the loads of every unit escalated to."""
        ups = [next_tier(c["tier"]) for c in rows]
        parents = sorted(
            {p for c, up in zip(rows, ups, strict=True) if up for p in (c["street"], c["district"])}
            - {None}
        )
        depts = await store.departments_of(conn, parents) if parents else []
        routes = [
            route(up, store.location(c), c["category"], depts, list(c["excluded_units"]))
            if up
            else None
            for c, up in zip(rows, ups, strict=True)
        ]
        loads = Loads(await store.handler_loads_many(conn, {r.unit for r in routes if r}))
        return [
            self._resolution_missed(case, now, to, loads)
            for case, to in zip(rows, routes, strict=True)
        ]

    def _resolution_missed(
        self, case: asyncpg.Record, now: datetime, to: Route | None, loads: Loads
    ) -> Swept:
        overdue = (
            "cases.overdue",
            CaseOverdue(
                case_id=case["case_id"],
                deadline="resolve",
                unit=case["unit"],
                handler_id=case["handler_id"],
            ),
        )
        if to is None:
            return Swept(
                case["case_id"],
                {"resolve_missed_at": now},
                Step(
                    case["case_id"],
                    now,
                    "resolve_timeout",
                    from_state=case["state"],
                    to_state=case["state"],
                    tier=case["tier"],
                    unit=case["unit"],
                    handler_id=case["handler_id"],
                    detail={"missed": case["resolve_by"].isoformat(), "escalated": False},
                ),
                [overdue],
                breach=("resolve", case["tier"]),
            )
        reason = f"timeout: resolution deadline missed at {case['tier']}"
        handler = pick_handler(loads.of(to.unit))
        loads.move(case["handler_id"], handler)
        swept = self.plan_redispatch(case, "resolve_timeout", to, now, reason, handler)
        escalated = CaseEscalated(
            case_id=case["case_id"],
            from_tier=case["tier"],
            to_tier=to.tier,
            unit=to.unit,
            reason="timeout",
            escalated_at=now,
        )
        swept.events = [overdue, *swept.events, ("cases.escalated", escalated)]
        swept.breach = ("resolve", case["tier"])
        return swept

    async def _deliberations_ended(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record], now: datetime
    ) -> list[Swept]:
        """``decide_by`` reached: back to ``accepted``, its (extended) deadline running again."""
        out = []
        for case in rows:
            state = next_state(case["state"], "deliberation_ended")
            assert state is not None
            out.append(
                Swept(
                    case["case_id"],
                    {"state": state, "paused_at": None, "paused_until": None},
                    Step(
                        case["case_id"],
                        now,
                        "deliberation_ended",
                        from_state=case["state"],
                        to_state=state,
                        tier=case["tier"],
                        unit=case["unit"],
                        handler_id=case["handler_id"],
                        detail={"decide_by": case["paused_until"].isoformat()},
                    ),
                )
            )
        return out


def max_known(a: int | None, b: int | None) -> int | None:
    """The larger of two optional counts (None: unknown)."""
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None
