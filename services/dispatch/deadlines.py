"""The deadline sweeps (durable timers; ``shared.runtime.sweeper`` runs them): response deadlines
missed (the next handler of the unit), resolution deadlines missed (one tier up, or recorded at
the top), verification deadlines missed (核查: a red card for the verifier unit, once), pauses
ended (a council's decision date, a suspension's ``resume_by``, an extension
request's decision limit: back to ``accepted``, ``pauses.py``), and each stage's warning (黄牌,
``stages.py``: ``cases.warned``, the warning time cleared so that it fires once).

A sweep claims its due rows and plans in memory what happens to each of them (the handler loads
of every unit involved read with one query and kept current as cases change hands,
``assignment.Loads``), then writes the plans set-based (``planning.write``): the row changes and
timeline steps with executemany, the events with the outbox flush. One broken case fails that
whole write: its savepoint is rolled back and the same rows are handled one by one, each in its
own savepoint, so the broken case is logged and left for the next sweep without holding back the
others. Transient errors fail the whole sweep (the Sweeper retries it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from shared.contract.events import Stage, Tier
from shared.runtime.consumer import TRANSIENT_ERRORS
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import emit, orders, orders_store, pauses, store, verification
from .assignment import Loads, Route, next_handler, route
from .model import Case, CaseChange, Step
from .planning import Plan, Policy, departments_near, plan_redispatch, write
from .stages import deadline_of, elapsed_share, warned_change, warning_of
from .states import PAUSE_ENDS, transition
from .tiers import next_tier

log = get_logger(component="dispatch")

SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class Missed:
    """What a sweep does to one due case, and the deadline it counts as missed (for metrics)."""

    plan: Plan
    breach: tuple[Stage, Tier] | None = None
    warning: tuple[Stage, Tier] | None = None  # a warning (黄牌) given, for metrics


Planner = Callable[[Connection, list[Case], datetime], Awaitable[list[Missed]]]


class Deadlines:
    """The sweeps. ``on_breach(deadline, tier)`` is called for every missed deadline,
    ``on_warning(stage, tier)`` for every warning and ``on_sweep_fallback(sweep)`` for a
    set-based write that failed (metrics hooks)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.on_breach: Callable[[str, str], None] = lambda deadline, tier: None
        self.on_warning: Callable[[str, str], None] = lambda stage, tier: None
        # sweeps whose set-based write failed and that went one case at a time
        self.fallbacks = 0
        self.on_sweep_fallback: Callable[[str], None] = lambda sweep: None

    async def sweep_response(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_response(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.responses_missed, "response")

    async def sweep_resolution(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_resolution(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.resolutions_missed, "resolution")

    async def sweep_pauses(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.pauses_due(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.pauses_ended, "pause")

    async def sweep_verification(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_verification(uow.conn, now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.verifications_missed, "verification")

    async def sweep_respond_warnings(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_warning(uow.conn, "respond", now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.respond_warnings, "respond-warning")

    async def sweep_resolve_warnings(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_warning(uow.conn, "resolve", now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.resolve_warnings, "resolve-warning")

    async def sweep_order_reports(self, uow: UnitOfWork, now: datetime) -> int:
        """吹哨报到: assisting work orders unreported past ``report_by`` (``orders_store.
        claim_unreported``: claimed with ``SKIP LOCKED`` and marked missed in one statement, so
        each fires once): a ``cases.overdue`` {deadline respond, the order's unit and
        ``order_id``} and an ``order_report_timeout`` step each."""
        missed = await orders_store.claim_unreported(uow.conn, now, SWEEP_BATCH)
        if not missed:
            return 0
        read = await orders_store.cases_read(uow.conn, {o.case_id for o in missed})
        cases = {c.case_id: c for c in read}
        planned = [orders.report_missed(cases[o.case_id], o, now) for o in missed]
        await store.add_timeline_steps(uow.conn, [step for step, _ in planned])
        for o, (_, event) in zip(missed, planned, strict=True):
            uow.emit(event, time=now)
            self.on_breach("order_report", o.tier or "unknown")
        return len(missed)

    async def _sweep(
        self, uow: UnitOfWork, cases: list[Case], now: datetime, plan: Planner, name: str
    ) -> int:
        if not cases:
            return 0
        mark = len(uow.pending)
        try:
            async with uow.conn.transaction():
                missed = await plan(uow.conn, cases, now)
                await write(uow, [m.plan for m in missed])
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            del uow.pending[mark:]
            self.fallbacks += 1
            self.on_sweep_fallback(name)
            log.exception("set-based sweep failed: one case at a time", sweep=name)
            missed = await self._each(uow, cases, now, plan)
        for m in missed:
            if m.breach is not None:
                self.on_breach(*m.breach)
            if m.warning is not None:
                self.on_warning(*m.warning)
        return len(cases)

    async def _each(
        self, uow: UnitOfWork, cases: list[Case], now: datetime, plan: Planner
    ) -> list[Missed]:
        """Each case in its own savepoint (its unit's loads read again): a broken case is logged
        and left for the next sweep."""
        done: list[Missed] = []
        for case in cases:
            mark = len(uow.pending)
            try:
                async with uow.conn.transaction():
                    missed = await plan(uow.conn, [case], now)
                    await write(uow, [m.plan for m in missed])
            except TRANSIENT_ERRORS:
                raise
            except Exception:
                del uow.pending[mark:]
                log.exception("sweep of a case failed", case_id=case.case_id, sweep=plan.__name__)
                continue
            done.extend(missed)
        return done

    # --- what each sweep does to its cases (in memory, after one read of the loads) ------------

    async def responses_missed(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        """Response deadline missed: the next handler of the unit, a fresh response deadline,
        ``cases.overdue`` (respond) and a new ``cases.dispatched``."""
        loads = Loads(await store.handler_loads_many(conn, {c.unit for c in cases}))
        return [self.response_missed(case, now, loads) for case in cases]

    def response_missed(self, case: Case, now: datetime, loads: Loads) -> Missed:
        t = transition(case.state, "respond_timeout")
        assert t is not None and case.respond_by is not None  # what the due query selects
        handler = next_handler(loads.of(case.unit), case.handler_id)
        loads.move(case.handler_id, handler)
        attempt = case.attempt + 1
        change = CaseChange(
            state=t.to_state,
            handler_id=handler,
            respond_by=self.policy.respond_by(case, now),
            attempt=attempt,
        )
        change = change | self.policy.warn_times(case.apply(change), now, ("respond",))
        after = case.apply(change)
        detail = {
            "missed": case.respond_by.isoformat(),
            "from_handler": case.handler_id,
            "attempt": attempt,
        }
        events = (emit.overdue(case, "respond", now), emit.dispatched(after, now))
        plan = Plan(case, change, after, (Step.of(t, after, now, detail),), events)
        return Missed(plan, breach=("respond", case.tier))

    async def resolutions_missed(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        """Resolution deadline missed: ``cases.overdue`` (resolve), then one tier up with reason
        ``timeout`` (``cases.escalated`` and a new ``cases.dispatched``). At the top tier there is
        nothing above: the miss is recorded (``resolve_missed_at``), so it fires once. The
        departments of every street and district involved are read with one query (``route``
        keeps to the case's own), then the loads of every unit escalated to."""
        ups = [next_tier(c.tier) for c in cases]
        places = [c.location for c in cases]
        depts = await departments_near(
            conn, [loc for loc, up in zip(places, ups, strict=True) if up]
        )
        routes = [
            route(up, loc, c.category, depts, c.excluded_units) if up else None
            for c, loc, up in zip(cases, places, ups, strict=True)
        ]
        loads = Loads(await store.handler_loads_many(conn, {r.unit for r in routes if r}))
        return [
            self.resolution_missed(case, now, to, loads)
            for case, to in zip(cases, routes, strict=True)
        ]

    def resolution_missed(
        self, case: Case, now: datetime, to: Route | None, loads: Loads
    ) -> Missed:
        assert case.resolve_by is not None  # what the due query selects
        overdue = emit.overdue(case, "resolve", now)
        if to is None:
            step = Step(
                case.case_id,
                now,
                "resolve_timeout",
                from_state=case.state,
                to_state=case.state,
                tier=case.tier,
                unit=case.unit,
                handler_id=case.handler_id,
                detail={"missed": case.resolve_by.isoformat(), "escalated": False},
            )
            change = CaseChange(resolve_missed_at=now)
            plan = Plan(case, change, case.apply(change), (step,), (overdue,))
            return Missed(plan, breach=("resolve", case.tier))
        t = transition(case.state, "resolve_timeout")
        assert t is not None  # what the due query selects
        reason = f"timeout: resolution deadline missed at {case.tier}"
        handler = loads.pick(to.unit)
        loads.move(case.handler_id, handler)
        plan = plan_redispatch(self.policy, case, t, to, now, reason, handler)
        escalated = emit.escalated(plan.after, from_tier=case.tier, reason="timeout")
        return Missed(plan.publishing(escalated, first=[overdue]), breach=("resolve", case.tier))

    async def pauses_ended(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        """``paused_until`` reached: back to ``accepted``, the deadline running again
        (``pauses.pause_ended``)."""
        return [self.pause_ended(case, now) for case in cases]

    def pause_ended(self, case: Case, now: datetime) -> Missed:
        t = transition(case.state, PAUSE_ENDS[case.state])
        assert t is not None  # what the due query selects
        return Missed(pauses.pause_ended(self.policy, case, t, now))

    async def verifications_missed(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        """Verification deadline missed (核查): ``cases.overdue`` (verify), once
        (``verification.missed``)."""
        return [Missed(verification.missed(c, now), breach=("verify", c.tier)) for c in cases]

    # --- warnings (黄牌): a stage's threshold crossed, its deadline still ahead ------------------

    async def respond_warnings(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        return [self.warned(case, "respond", now) for case in cases]

    async def resolve_warnings(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        return [self.warned(case, "resolve", now) for case in cases]

    async def sweep_verify_warnings(self, uow: UnitOfWork, now: datetime) -> int:
        rows = await store.due_for_warning(uow.conn, "verify", now, SWEEP_BATCH)
        return await self._sweep(uow, rows, now, self.verify_warnings, "verify-warning")

    async def verify_warnings(
        self, conn: Connection, cases: list[Case], now: datetime
    ) -> list[Missed]:
        return [self.warned(case, "verify", now) for case in cases]

    def warned(self, case: Case, stage: Stage, now: datetime) -> Missed:
        """``cases.warned`` and a timeline step; the stage's warning time cleared (it fires once
        per dispatch attempt: the next dispatch sets a fresh one)."""
        deadline, due = deadline_of(case, stage), warning_of(case, stage)
        assert deadline is not None and due is not None  # what the due query selects
        fraction = self.policy.warnings.fraction(case.tier, stage)
        count = self.policy.time_count(case, stage)
        share = elapsed_share(deadline, due, fraction, now, count)
        change = warned_change(stage, None)
        step = Step(
            case.case_id,
            now,
            "warned",
            from_state=case.state,
            to_state=case.state,
            tier=case.tier,
            unit=case.unit,
            handler_id=case.handler_id,
            detail={
                "stage": stage,
                "due_at": deadline.isoformat(),
                "elapsed_share": share,
                "attempt": case.attempt,
            },
        )
        event = emit.warned(case, stage, deadline, now, share)
        plan = Plan(case, change, case.apply(change), (step,), (event,))
        return Missed(plan, warning=(stage, case.tier))
