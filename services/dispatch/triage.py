"""The command centre's triage queue (人工分拨) and its reclassifications.

A case intake opened with ``needs_triage`` (its classifier was not sure, or words in it were
flagged for moderation) is not dispatched on intake's guess: ``enter`` keeps it in state
``triage``, held by the command centre of its district (its ``unit`` is the district), with no
handler and no deadline running, and its queue entry (``model.TriageEntry``: the reasons, the
classifier's best three categories, the masked text).

The command centre decides its category (``Triage.reclassify``, from the HTTP API): the case gets
that category and is dispatched as any new case of it would be (the category's default tier
raised by the tier rules, routed, the least-busy handler, fresh deadlines), and
``cases.reclassified`` and ``cases.dispatched`` are published in the same transaction. The same
decision on a case already dispatched (a correction: not yet resolved, not at the residents'
council) dispatches it again by its new category (attempt + 1). Planning is pure
(``plan_reclassify``); ``Triage`` reads what it needs, plans and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.contract.events import CaseOpened, DecidedBy, ReclassifiedFrom
from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork

from . import agency_store, emit, store
from .assignment import Route, route
from .model import Case, CaseChange, Step, Suggestion, TriageEntry
from .planning import (
    Plan,
    Policy,
    departments_near,
    fresh_dispatch,
    least_busy,
    opened_case,
    write,
)
from .states import Transition, refusal, transition
from .tiers import CaseFacts, TierDecision, decide_tier, higher

SUGGESTIONS = 3


def holder(ev: CaseOpened) -> str | None:
    """The unit that holds a case in triage: its district (whose command centre decides), else
    the widest unit it was located in."""
    loc = ev.location
    return loc.district or loc.street or loc.community or loc.grid or loc.building


def suggestions_of(ev: CaseOpened) -> tuple[Suggestion, ...]:
    """The classifier's best categories for the case, best first (at most ``SUGGESTIONS``):
    ``classification.suggestions`` when intake sends them, else its one guess."""
    found: list[Suggestion] = []
    for s in getattr(ev.classification, "suggestions", None) or ():
        category, probability = _suggestion_fields(s)
        if category:
            found.append(Suggestion(category, probability))
    if not found:
        found = [Suggestion(ev.category, ev.classification.confidence)]
    return tuple(found[:SUGGESTIONS])


def _suggestion_fields(s: Any) -> tuple[str | None, float]:
    if isinstance(s, dict):
        category, p = s.get("category"), s.get("probability", s.get("confidence"))
    else:
        category = getattr(s, "category", None)
        p = getattr(s, "probability", getattr(s, "confidence", None))
    return (category if isinstance(category, str) else None), float(p or 0.0)


def entry_of(ev: CaseOpened, now: datetime) -> TriageEntry:
    """The queue entry of a case opened with ``needs_triage``."""
    return TriageEntry(
        case_id=ev.case_id,
        since=now,
        reasons=tuple(ev.triage_reasons) or ("unspecified",),
        confidence=ev.classification.confidence,
        suggestions=suggestions_of(ev),
        moderation=tuple(ev.moderation),
        source=ev.source,
        title=ev.title,
        description=ev.description,
    )


def entered(
    ev: CaseOpened, facts: CaseFacts, decision: TierDecision, unit: str, now: datetime
) -> tuple[Case, Step]:
    """The case as it enters triage (pure): held by ``unit``, at the tier intake's guess would
    have had (``decision``), nobody's, no deadline; and its timeline step."""
    case = opened_case(
        ev,
        facts,
        decision,
        tier=decision.tier,
        unit=unit,
        handler_id=None,
        state="triage",
        reasons=decision.reasons,
        now=now,
    )
    step = Step(
        ev.case_id,
        now,
        "triage",
        to_state="triage",
        tier=case.tier,
        unit=unit,
        detail={
            "reasons": list(ev.triage_reasons),
            "category": ev.category,
            "confidence": ev.classification.confidence,
        },
    )
    return case, step


@dataclass(frozen=True, slots=True)
class Decision:
    """A person's reclassification of a case: the category, who, why, from where."""

    category: str
    by: DecidedBy
    actor: str  # who the timeline says acted (the command centre: command_centre.<unit>)
    origin: ReclassifiedFrom
    note: str | None = None


def redispatch_facts(case: Case, category: str) -> CaseFacts:
    return CaseFacts(
        category=category,
        households_affected=case.households,
        supporter_count=case.supporters,
        urgent=case.urgent,
    )


def plan_reclassify(
    policy: Policy,
    case: Case,
    t: Transition,
    decision: TierDecision,
    to: Route,
    handler: str | None,
    d: Decision,
    now: datetime,
    excluded: tuple[str, ...] = (),
) -> Plan:
    """The case in ``d.category``, dispatched to ``to`` and ``handler`` (pure): the tier the
    new category's rules give (``decision``), fresh deadlines, ``excluded`` the units it may not
    go to (those that returned it, while its category stays), attempt 1 out of triage when it
    was opened there (its first dispatch) and attempt + 1 otherwise (a correction, a decision
    on a returned case); its timeline step, then ``cases.reclassified`` and
    ``cases.dispatched``."""
    dl = policy.deadlines(d.category, to.tier, now, decision.respond_within)
    first = case.state == "triage" and d.origin != "return"
    change = CaseChange(
        category=d.category,
        tier=to.tier,
        unit=to.unit,
        handler_id=handler,
        state=t.to_state,
        attempt=case.attempt if first else case.attempt + 1,
        tier_reasons=(*decision.reasons, f"reclassified from {case.category}", *to.notes),
        respond_within_s=(
            decision.respond_within.total_seconds() if decision.respond_within else None
        ),
        excluded_units=excluded,
    ) | fresh_dispatch(dl, now)
    if first:
        change = change | CaseChange(start_tier=to.tier)
    change = change | policy.warn_times(case.apply(change), now)
    after = case.apply(change)
    detail = {
        "from_category": case.category,
        "to_category": d.category,
        "origin": d.origin,
        "note": d.note,
        "by": d.by.model_dump(),
        "from_tier": case.tier,
        "from_unit": case.unit,
        "attempt": after.attempt,
    }
    step = Step.of(t, after, now, detail, actor=d.actor)
    names = (policy.category_name(case.category), policy.category_name(d.category))
    reclassified = emit.reclassified(
        case,
        after,
        names,
        default_tier=policy.default_tier(d.category),
        by=d.by,
        at=now,
        origin=d.origin,
        note=d.note,
    )
    return Plan(case, change, after, (step,), (reclassified, emit.dispatched(after, now)))


class Refused(Exception):
    """A reclassification the case's state or place does not allow (the reason)."""


class Triage:
    """Entering the queue (``cases.opened``) and the command centre's decisions."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    async def reclassify(
        self, uow: UnitOfWork, case: Case, d: Decision, now: datetime, *, from_triage: bool
    ) -> Case:
        """Apply ``d`` to the (locked) case; the case as it leaves it. ``from_triage``: the
        decision is the queue's (the case must be in triage), else a correction (it must not
        be). Raises ``Refused``."""
        if from_triage and case.state != "triage":
            raise Refused(f"the case is not awaiting triage (it is {case.state})")
        if not from_triage and case.state == "triage":
            raise Refused("the case awaits triage: decide it at POST /triage/{case_id}")
        if not from_triage and d.category == case.category:
            raise Refused(f"the case is already in category {d.category}")
        t = transition(case.state, "reclassify")
        if t is None:
            raise Refused(refusal(case.state, "reclassify"))
        if from_triage:
            entry = await store.triage_entry(uow.conn, case.case_id)
            if entry is not None and entry.returned_by is not None:
                d = replace(d, origin="return")  # 退单: a labelled example of its kind
        plan = await self.plan(uow.conn, case, t, d, now)
        await write(uow, [plan])
        # 三代: an agent, when the new category asks for one and the case has none yet
        for agent in await agency_store.assign_agents(
            uow.conn, self.policy.taxonomy, [plan.after], now
        ):
            if agent is not None:
                uow.emit(agent)
        if from_triage:
            await store.remove_triage_entry(uow.conn, case.case_id)
        return plan.after

    async def plan(
        self, conn: Connection, case: Case, t: Transition, d: Decision, now: datetime
    ) -> Plan:
        facts = redispatch_facts(case, d.category)
        decision = decide_tier(self.policy.default_tier(d.category), facts, self.policy.rules)
        depts = await departments_near(conn, [case.location])
        # a returned case whose category stays keeps away from the units that returned it, at its
        # tier or above (it does not go back down to a unit that passed it up)
        same = d.origin == "return" and d.category == case.category
        excluded = case.excluded_units if same else ()
        tier = higher(decision.tier, case.tier) if same else decision.tier
        to = route(tier, case.location, d.category, depts, excluded)
        if to is None:
            raise Refused("no unit covers the case's location for this category")
        handler = await least_busy(conn, to.unit)
        return plan_reclassify(self.policy, case, t, decision, to, handler, d, now, excluded)
