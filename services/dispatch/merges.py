"""Merges (附议) into dispatched cases (``cases.merged``), one at a time or a batch at a time.

Dispatch keeps the highest supporter count, households and urgency, and re-applies the tier
rules (the "5 or more merged reports" rule): when they raise the tier of an open case, it is
re-dispatched up (``cases.escalated``, reason ``rules: ...``, and a new ``cases.dispatched``); when
a merge makes an unaccepted case urgent, its response deadline is shortened (no new dispatch).

A batch's cases are read and locked with one query. The usual merge only updates the case's facts
and records a timeline step: those are written for the whole batch with one ``executemany`` each.
A merge after which the rules may raise the case's tier or shorten its response time is applied
on its own (after the writes so far), as ``on_merged`` applies it; later merges of the same case
in the batch then see it as it left it. A merge whose case dispatch does not know yet is kept as
an early merge for ``cases.opened`` (``opening.py``).
"""

from __future__ import annotations

from datetime import datetime

from shared.contract.events import CaseMerged
from shared.runtime.clock import Clock
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork

from . import emit, store
from .model import Case, CaseChange, Step
from .planning import Plan, Policy, least_busy, plan_redispatch, route_case, write
from .states import AWAITING, transition
from .tiers import CaseFacts, decide_tier, max_known, tier_index


def merged(case: Case, ev: CaseMerged, now: datetime) -> tuple[CaseFacts, Plan]:
    """What a merge (附议) changes on a dispatched case (pure): its facts, and the plan that sets
    them and records the step."""
    facts = CaseFacts(
        category=case.category,
        households_affected=max_known(case.households, ev.households_affected),
        supporter_count=max(case.supporters, ev.supporter_count),
        urgent=case.urgent or ev.urgent,
    )
    change = CaseChange(
        households=facts.households_affected,
        supporters=facts.supporter_count,
        urgent=facts.urgent,
    )
    detail = {"report_id": ev.report_id, "supporter_count": facts.supporter_count}
    step = Step(ev.case_id, now, "merged", tier=case.tier, unit=case.unit, detail=detail)
    return facts, Plan(case, change, case.apply(change), (step,))


class Merges:
    """``cases.merged``: ``on_merged`` one at a time, ``on_merged_batch`` set-based."""

    def __init__(self, policy: Policy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock

    async def on_merged(self, uow: UnitOfWork, ev: CaseMerged, meta: Meta) -> None:
        case = await store.load_case(uow.conn, ev.case_id, lock=True)
        if case is None:  # the merge overtook the case: kept until cases.opened arrives
            await store.add_early_merges(uow.conn, [ev])
            return
        await self.merge(uow, case, ev)

    async def on_merged_batch(self, conn: Connection, claimed: list[Claimed[CaseMerged]]) -> None:
        known = await store.load_cases(conn, (c.event.case_id for c in claimed))
        cases = {case.case_id: case for case in known}
        early: list[CaseMerged] = []
        changed: dict[str, CaseChange] = {}
        steps: list[Step] = []

        async def flush() -> None:
            await store.add_early_merges(conn, early)
            await store.update_cases(conn, list(changed.items()))
            await store.add_timeline_steps(conn, steps)
            early.clear()
            changed.clear()
            steps.clear()

        for c in claimed:
            ev = c.event
            case = cases.get(ev.case_id)
            if case is None:
                early.append(ev)
                continue
            facts, plan = merged(case, ev, self.clock())
            if self.may_redispatch(case, facts):
                await flush()
                cases[ev.case_id] = await self.merge(c.uow, case, ev)
                continue
            cases[ev.case_id] = plan.after
            changed[ev.case_id] = plan.change  # every column a merge sets: the latest supersedes
            steps.extend(plan.steps)
        await flush()

    def may_redispatch(self, case: Case, facts: CaseFacts) -> bool:
        """Whether a merge with these facts can do more than update the case: the rules raise
        its tier, or give it a shorter response time it does not have yet."""
        decision = decide_tier(case.tier, facts, self.policy.rules)
        return tier_index(decision.tier) > tier_index(case.tier) or (
            decision.respond_within is not None and case.respond_within_s is None
        )

    async def merge(self, uow: UnitOfWork, case: Case, ev: CaseMerged) -> Case:
        """One merge into the (locked) case, and what the rules then do; the case as it leaves
        it."""
        now = self.clock()
        facts, plan = merged(case, ev, now)
        plan = await self.apply_rules(uow.conn, plan, facts, now)
        await write(uow, [plan])
        return plan.after

    async def apply_rules(
        self, conn: Connection, plan: Plan, facts: CaseFacts, now: datetime
    ) -> Plan:
        """``plan`` followed by what the tier rules make of the merged facts."""
        case = plan.after
        decision = decide_tier(case.tier, facts, self.policy.rules)
        new_reasons = tuple(r for r in decision.reasons[1:] if r not in case.tier_reasons)
        within = decision.respond_within
        with_within: Plan | None = None
        if within is not None and case.respond_within_s is None:
            change = CaseChange(respond_within_s=within.total_seconds())
            with_within = Plan(case, change, case.apply(change))
        if tier_index(decision.tier) > tier_index(case.tier):
            t = transition(case.state, "rules_raised")
            if t is None:
                return plan  # resolved: the rules apply to the next dispatch, if any
            to = await route_case(conn, case, decision.tier, case.excluded_units)
            if to is None:
                return plan
            if with_within is not None:
                plan = plan.then(with_within)
            reason = "; ".join(new_reasons) or f"tier rules: at least {decision.tier}"
            handler = await least_busy(conn, to.unit)
            moved = plan_redispatch(self.policy, plan.after, t, to, now, reason, handler)
            escalated = emit.escalated(moved.after, from_tier=case.tier, reason=f"rules: {reason}")
            return plan.then(moved.publishing(escalated))
        if with_within is None:
            return plan
        plan = plan.then(with_within)
        if plan.after.state in AWAITING:
            plan = plan.then(self.tighten_response(plan.after, now, new_reasons))
        return plan

    def tighten_response(self, case: Case, now: datetime, reasons: tuple[str, ...]) -> Plan:
        """A merge made the case urgent before anyone accepted it: shorten its response
        deadline (never lengthen it). This is no new dispatch, so no ``cases.dispatched`` (every
        dispatch counts in the response rate); ``cases.accepted.on_time`` tells the outcome."""
        within = case.respond_within
        assert within is not None and case.respond_by is not None
        respond_by = min(case.respond_by, case.dispatched_at + within * self.policy.sla.scale)
        step = Step(
            case.case_id,
            now,
            "respond_deadline_shortened",
            tier=case.tier,
            unit=case.unit,
            handler_id=case.handler_id,
            detail={"respond_by": respond_by.isoformat(), "reasons": list(reasons)},
        )
        change = CaseChange(respond_by=respond_by, tier_reasons=(*case.tier_reasons, *reasons))
        if case.respond_warn_at is not None:  # not warned yet in this attempt: warn earlier
            shortened = case.apply(change)
            change = change | self.policy.warn_times(shortened, case.dispatched_at, ("respond",))
        return Plan(case, change, case.apply(change), (step,))
