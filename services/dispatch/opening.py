"""Dispatching newly opened cases, a batch at a time (``cases.opened``): each case gets its tier
(``tiers.decide_tier``), its unit (``assignment.route``), the least-loaded handler of that unit
and its deadlines, and ``cases.dispatched`` (attempt 1) is published.

Set-based: the batch's known cases, early merges, departments and handler loads are each read
with one query, and the new rows written with one pipelined ``executemany`` each. Handler loads
are kept current in memory as the batch assigns cases, so cases of one batch spread over a unit's
handlers exactly as they would one at a time.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.consumer import Claimed, PermanentError
from shared.events import CaseDispatched, CaseOpened
from shared.logging import get_logger

from . import store
from .assignment import Location, Route, pick_handler, route
from .handlers import Dispatch, max_known
from .sweeps import Loads, Step
from .tiers import CaseFacts, TierDecision, decide_tier

log = get_logger(component="dispatch")


async def dispatch_opened(
    d: Dispatch, conn: asyncpg.Connection, claimed: list[Claimed[CaseOpened]]
) -> None:
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
    parents = [p for c in fresh for p in (c.event.location.street, c.event.location.district)]
    depts = await store.departments_of(conn, parents)
    planned: list[tuple[Claimed[CaseOpened], CaseFacts, TierDecision, Route]] = []
    for c in fresh:
        ev = c.event
        e = early.get(ev.case_id)
        facts = CaseFacts(
            category=ev.category,
            households_affected=max_known(ev.households_affected, e["households"] if e else None),
            supporter_count=e["supporters"] if e else 1,
            urgent=ev.urgent or bool(e and e["urgent"]),
        )
        decision = decide_tier(ev.default_tier or d.default_tier(ev.category), facts, d.rules)
        loc = ev.location
        where = route(
            decision.tier,
            Location(loc.district, loc.street, loc.community, loc.grid),
            ev.category,
            depts,
        )
        if where is None:
            raise PermanentError(f"case {ev.case_id} has no location to dispatch to")
        planned.append((c, facts, decision, where))
    loads = Loads(await store.handler_loads_many(conn, {w.unit for *_, w in planned}))
    now = d.clock()
    rows: list[dict[str, Any]] = []
    steps: list[Step] = []
    for c, facts, decision, where in planned:
        ev = c.event
        handler = pick_handler(loads.of(where.unit))
        loads.move(None, handler)
        reasons = decision.reasons + where.notes
        dl = d.sla.deadlines(
            where.tier,
            now,
            respond_within=decision.respond_within,
            category_sla=d.category_sla(ev.category, where.tier),
        )
        loc = ev.location
        rows.append(
            {
                "case_id": ev.case_id,
                "category": ev.category,
                "district": loc.district,
                "street": loc.street,
                "community": loc.community,
                "grid": loc.grid,
                "building": loc.building,
                "urgent": facts.urgent,
                "households": facts.households_affected,
                "supporters": facts.supporter_count,
                "start_tier": where.tier,
                "tier": where.tier,
                "tier_reasons": reasons,
                "respond_within_s": (
                    decision.respond_within.total_seconds() if decision.respond_within else None
                ),
                "unit": where.unit,
                "handler_id": handler,
                "state": "dispatched",
                "dispatched_at": now,
                "respond_by": dl.respond_by,
                "resolve_by": dl.resolve_by,
                "opened_at": ev.opened_at,
            }
        )
        steps.append(
            Step(
                ev.case_id,
                now,
                "dispatched",
                to_state="dispatched",
                tier=where.tier,
                unit=where.unit,
                handler_id=handler,
                detail={"tier_reasons": reasons, "attempt": 1},
            )
        )
        d.publish(
            c.uow,
            "cases.dispatched",
            CaseDispatched(
                case_id=ev.case_id,
                tier=where.tier,
                unit=where.unit,
                handler_id=handler,
                respond_by=dl.respond_by,
                resolve_by=dl.resolve_by,
                tier_reasons=reasons,
                attempt=1,
                category=ev.category,
                dispatched_at=now,
            ),
        )
    await store.insert_cases(conn, rows)
    await store.add_timeline_steps(conn, steps)
