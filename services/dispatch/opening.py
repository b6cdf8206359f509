"""Dispatching newly opened cases, a batch at a time (``cases.opened``): each case gets its tier
(``tiers.decide_tier``), its unit (``assignment.route``), the least-loaded handler of that unit
and its deadlines, and ``cases.dispatched`` (attempt 1) is published.

Set-based: the batch's known cases, early merges, departments and handler loads are each read
with one query, and the new rows written with one pipelined ``executemany`` each. Handler loads
are kept current in memory as the batch assigns cases, so cases of one batch spread over a unit's
handlers exactly as they would one at a time.
"""

from __future__ import annotations

from datetime import datetime

from shared.contract.events import CaseOpened
from shared.runtime.clock import Clock
from shared.runtime.consumer import Claimed, PermanentError
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger

from . import agency_store, emit, store
from .assignment import Loads, Location, Route, route
from .model import Case, EarlyMerge, Step, TriageEntry
from .planning import Policy, departments_near, opened_case
from .tiers import CaseFacts, TierDecision, decide_tier, max_known
from .triage import entered, entry_of, holder

log = get_logger(component="dispatch")


def location_of(ev: CaseOpened) -> Location:
    loc = ev.location
    return Location(loc.district, loc.street, loc.community, loc.grid)


def facts_of(ev: CaseOpened, early: EarlyMerge | None) -> CaseFacts:
    """The case's facts, with the merges that came before it."""
    return CaseFacts(
        category=ev.category,
        households_affected=max_known(ev.households_affected, early.households if early else None),
        supporter_count=early.supporters if early else 1,
        urgent=ev.urgent or bool(early and early.urgent),
    )


class Opening:
    """``cases.opened``, a batch at a time."""

    def __init__(self, policy: Policy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock

    async def on_opened(self, conn: Connection, claimed: list[Claimed[CaseOpened]]) -> None:
        known = await store.known_case_ids(conn, [c.event.case_id for c in claimed])
        fresh: list[Claimed[CaseOpened]] = []
        for c in claimed:
            if c.event.case_id in known:
                log.info("case already dispatched", case_id=c.event.case_id)
                continue
            known.add(c.event.case_id)
            fresh.append(c)
        if not fresh:
            return
        early = await store.take_early_merges(conn, [c.event.case_id for c in fresh])
        held = [c for c in fresh if c.event.needs_triage]
        if held:
            await self.hold(conn, held, early)
            fresh = [c for c in fresh if not c.event.needs_triage]
        places = [location_of(c.event) for c in fresh]
        depts = await departments_near(conn, places)
        planned: list[tuple[Claimed[CaseOpened], CaseFacts, TierDecision, Route]] = []
        for c, place in zip(fresh, places, strict=True):
            ev = c.event
            facts = facts_of(ev, early.get(ev.case_id))
            start = ev.default_tier or self.policy.default_tier(ev.category)
            decision = decide_tier(start, facts, self.policy.rules)
            where = route(decision.tier, place, ev.category, depts)
            if where is None:
                raise PermanentError(f"case {ev.case_id} has no location to dispatch to")
            planned.append((c, facts, decision, where))
        loads = Loads(await store.handler_loads_many(conn, {w.unit for *_, w in planned}))
        now = self.clock()
        cases: list[Case] = []
        steps: list[Step] = []
        for c, facts, decision, where in planned:
            handler = loads.pick(where.unit)
            loads.move(None, handler)
            case = self.new_case(c.event, facts, decision, where, handler, now)
            cases.append(case)
            steps.append(
                Step(
                    case.case_id,
                    now,
                    "dispatched",
                    to_state=case.state,
                    tier=case.tier,
                    unit=case.unit,
                    handler_id=handler,
                    detail={"tier_reasons": list(case.tier_reasons), "attempt": case.attempt},
                )
            )
            c.uow.emit(emit.dispatched(case, now))
        await store.insert_cases(conn, cases)
        await store.add_case_texts(conn, [entry_of(c.event, now) for c, *_ in planned])
        await store.add_timeline_steps(conn, steps)
        # 三代: an agent beside the handler, for a category that asks for one
        agents = await agency_store.assign_agents(conn, self.policy.taxonomy, cases, now)
        for (c, *_), agent in zip(planned, agents, strict=True):
            if agent is not None:
                c.uow.emit(agent)

    async def hold(
        self,
        conn: Connection,
        claimed: list[Claimed[CaseOpened]],
        early: dict[str, EarlyMerge],
    ) -> None:
        """Cases opened with ``needs_triage``: into the command centre's queue (``triage.py``),
        not dispatched; nothing is published until it decides."""
        now = self.clock()
        cases: list[Case] = []
        steps: list[Step] = []
        entries: list[TriageEntry] = []
        for c in claimed:
            ev = c.event
            unit = holder(ev)
            if unit is None:
                raise PermanentError(f"case {ev.case_id} has no location to hold it at")
            facts = facts_of(ev, early.get(ev.case_id))
            start = ev.default_tier or self.policy.default_tier(ev.category)
            case, step = entered(ev, facts, decide_tier(start, facts, self.policy.rules), unit, now)
            cases.append(case)
            steps.append(step)
            entries.append(entry_of(ev, now))
            log.info(
                "case held for triage (人工分拨)", case_id=ev.case_id, reasons=ev.triage_reasons
            )
        await store.insert_cases(conn, cases)
        await store.add_case_texts(conn, entries)
        await store.add_triage_entries(conn, entries)
        await store.add_timeline_steps(conn, steps)

    def new_case(
        self,
        ev: CaseOpened,
        facts: CaseFacts,
        decision: TierDecision,
        where: Route,
        handler: str | None,
        now: datetime,
    ) -> Case:
        """The case as its first dispatch leaves it (attempt 1)."""
        dl = self.policy.deadlines(ev.category, where.tier, now, decision.respond_within)
        case = opened_case(
            ev,
            facts,
            decision,
            tier=where.tier,
            unit=where.unit,
            handler_id=handler,
            state="dispatched",
            reasons=(*decision.reasons, *where.notes),
            now=now,
            respond_by=dl.respond_by,
            resolve_by=dl.resolve_by,
        )
        return case.apply(self.policy.warn_times(case, now))
