"""The core every input of dispatch shares: the policy (taxonomy, tier rules, deadlines), routing
a case to a unit, planning a (re-)dispatch, and writing what was planned.

A step on a case is planned first (``Plan``: the change of its row, its timeline steps, its
events; pure, from a transition decided once) and then written by ``write``, the one way planned
changes reach the database and the outbox.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.contract.events import AdministrativeLocation, CaseOpened, HandlerAction, Stage, Tier
from shared.contract.taxonomy import SlaOverride, Taxonomy
from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork

from . import emit, store
from .assignment import Dept, Location, Route, pick_handler, route
from .emit import CaseEvent
from .model import Case, CaseChange, State, Step
from .sla import Deadlines, SlaPolicy
from .stages import NATURAL, STAGES, TimeCount, WarnPolicy, WorkingTime, warn_times
from .states import Transition
from .tiers import CaseFacts, DispatchRules, TierDecision


@dataclass(frozen=True)
class Policy:
    """The rules dispatch applies: the taxonomy's categories, the tier rules and the deadlines."""

    taxonomy: Taxonomy
    rules: DispatchRules
    sla: SlaPolicy
    warnings: WarnPolicy = field(default_factory=WarnPolicy)  # the stages' thresholds (黄牌)

    def default_tier(self, category: str) -> Tier:
        cat = self.taxonomy.get(category)
        return cat.tier if cat else "grid"

    def category_name(self, category: str) -> str:
        cat = self.taxonomy.get(category)
        return cat.name if cat else category

    def category_sla(self, category: str, tier: Tier) -> SlaOverride | None:
        """A category's own SLA (taxonomy ``sla``) applies at its default tier."""
        cat = self.taxonomy.get(category)
        return cat.sla if cat is not None and cat.tier == tier else None

    def deadlines(
        self, category: str, tier: Tier, start: datetime, respond_within: timedelta | None
    ) -> Deadlines:
        """Fresh deadlines of a dispatch at ``tier`` at ``start``."""
        return self.sla.deadlines(
            tier,
            start,
            respond_within=respond_within,
            category_sla=self.category_sla(category, tier),
        )

    def warn_times(
        self, case: Case, start: datetime, stages: tuple[Stage, ...] = STAGES
    ) -> CaseChange:
        """The warning times (黄牌) of ``stages`` for the case as a dispatch at ``start`` leaves
        it (``stages.warn_times``)."""
        return warn_times(case, start, self.warnings, stages, lambda s: self.time_count(case, s))

    def time_count(self, case: Case, stage: Stage) -> TimeCount:
        """How the stage's time is counted for its warning: working time when its limit is in
        working time (and unscaled, and not a rule's natural ``respond_within``), else natural."""
        respond, resolve = self.sla.limits(case.tier, self.category_sla(case.category, case.tier))
        verify = self.rules.sla[case.tier].verify
        limit = {"respond": respond, "resolve": resolve, "verify": verify}[stage]
        natural = stage == "respond" and case.respond_within is not None
        if limit.working and not natural and self.sla.scale == 1:
            return WorkingTime(self.sla.calendar)
        return NATURAL

    def respond_by(self, case: Case, start: datetime) -> datetime:
        """A fresh response deadline at the case's own tier (the resolution one unchanged)."""
        respond, _ = self.sla.durations(
            case.tier,
            start=start,
            respond_within=case.respond_within,
            category_sla=self.category_sla(case.category, case.tier),
        )
        return start + respond * self.sla.scale

    def extend_paused(
        self, case: Case, deadline: datetime | None, paused_from: datetime, paused_until: datetime
    ) -> datetime | None:
        """A deadline of the case's resolution (``resolve_by``, its warning) pushed back by a
        pause: by the working time paused when the case's resolve limit is in working time, by
        the natural time otherwise (``SlaPolicy.extend``)."""
        _, resolve = self.sla.limits(case.tier, self.category_sla(case.category, case.tier))
        return self.sla.extend(deadline, paused_from, paused_until, resolve)


def acted(a: HandlerAction) -> dict[str, object]:
    """What the timeline step of a handler action records of it: its id, its note and the app's
    own time (``reported_at``; the server's time is the step's)."""
    return {"action_id": a.action_id, "note": a.note, "reported_at": a.at.isoformat()}


# A move or a decision ends any extension request (缓办/延期) the case had
NO_EXTENSION_REQUEST = CaseChange(
    extension_to=None,
    extension_requested_at=None,
    extension_approver=None,
    extension_reason=None,
)


# A dispatch, or a verification's outcome, ends any verification the case awaited (核查)
NO_VERIFICATION = CaseChange(
    verifier_unit=None, verify_by=None, verify_warn_at=None, verify_missed_at=None
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What one input does to one case: the change of its row, the timeline steps it records and
    the events it publishes, in order."""

    case: Case  # as it was
    change: CaseChange
    after: Case  # as the change leaves it: case.apply(change), which the planner needs anyway
    steps: tuple[Step, ...] = ()
    events: tuple[CaseEvent, ...] = ()

    def then(self, other: Plan) -> Plan:
        """This plan followed by ``other`` (planned from ``self.after``), as one."""
        return Plan(
            self.case,
            self.change | other.change,
            other.after,
            self.steps + other.steps,
            self.events + other.events,
        )

    def publishing(self, *events: CaseEvent, first: Sequence[CaseEvent] = ()) -> Plan:
        """The plan with more events: ``first`` before its own, ``events`` after them."""
        return Plan(self.case, self.change, self.after, self.steps, (*first, *self.events, *events))


async def write(uow: UnitOfWork, plans: Sequence[Plan]) -> None:
    """Planned changes, their events all by ``uow`` (``write_each``)."""
    await write_each(uow.conn, [(uow, p) for p in plans])


async def write_each(conn: Connection, plans: Sequence[tuple[UnitOfWork, Plan]]) -> None:
    """Planned changes, set-based, each plan's events by its own unit of work: each case's
    changes in order as one (a later plan of a case was planned on what the earlier left), the
    rows with one executemany per set of columns, the timeline steps with one executemany,
    the events into the outbox."""
    changes: dict[str, CaseChange] = {}
    for _, p in plans:
        before = changes.get(p.case.case_id)
        changes[p.case.case_id] = p.change if before is None else before | p.change
    await store.update_cases(conn, list(changes.items()))
    await store.add_timeline_steps(conn, [s for _, p in plans for s in p.steps])
    for uow, p in plans:
        for out in p.events:
            uow.emit(out)


# --- routing -------------------------------------------------------------------------------------


async def departments_near(conn: Connection, places: Iterable[Location]) -> list[Dept]:
    """The departments of every street and district of ``places``, with one query (none when
    no place has either)."""
    parents = sorted({p for loc in places for p in (loc.street, loc.district) if p})
    return await store.departments_of(conn, list(parents)) if parents else []


async def route_case(
    conn: Connection, case: Case, tier: Tier, exclude: Collection[str]
) -> Route | None:
    """The unit of ``tier`` (or above) for the case, skipping ``exclude``."""
    depts = await departments_near(conn, [case.location])
    return route(tier, case.location, case.category, depts, exclude)


# --- (re-)dispatch -------------------------------------------------------------------------------


def fresh_dispatch(dl: Deadlines, now: datetime) -> CaseChange:
    """What every dispatch after the first resets: dispatched at ``now`` with the fresh
    deadlines ``dl``, not accepted, no miss at the top, no pause, no extension request, no
    verification awaited."""
    return (
        CaseChange(
            dispatched_at=now,
            respond_by=dl.respond_by,
            resolve_by=dl.resolve_by,
            resolve_missed_at=None,
            accepted_at=None,
            paused_at=None,
            paused_until=None,
        )
        | _NO_REQUEST_NOR_VERIFICATION
    )


_NO_REQUEST_NOR_VERIFICATION = NO_EXTENSION_REQUEST | NO_VERIFICATION


def plan_redispatch(
    policy: Policy,
    case: Case,
    t: Transition,
    to: Route,
    now: datetime,
    reason: str,
    handler: str | None,
    *,
    actor: str | None = None,
    also: CaseChange | None = None,
) -> Plan:
    """Moving the case to ``to`` with ``handler`` (pure): a new tier, unit and handler, fresh
    deadlines, attempt + 1, its timeline step and its ``cases.dispatched``; ``also``: the other
    columns the move sets."""
    dl = policy.deadlines(case.category, to.tier, now, case.respond_within)
    attempt = case.attempt + 1
    change = CaseChange(
        tier=to.tier,
        unit=to.unit,
        handler_id=handler,
        state=t.to_state,
        attempt=attempt,
        tier_reasons=(*case.tier_reasons, reason, *to.notes),
    ) | fresh_dispatch(dl, now)
    if also is not None:
        change = change | also
    change = change | policy.warn_times(case.apply(change), now)
    after = case.apply(change)
    detail = {
        "reason": reason,
        "from_tier": case.tier,
        "from_unit": case.unit,
        "by": actor,
        "attempt": attempt,
    }
    step = Step.of(t, after, now, detail)
    return Plan(case, change, after, (step,), (emit.dispatched(after, now),))


async def least_busy(conn: Connection, unit: str) -> str | None:
    """The handler of ``unit`` a case goes to now (``assignment.pick_handler``; None: the unit as
    a whole)."""
    return pick_handler(await store.handler_loads(conn, unit))


def opened_case(
    ev: CaseOpened,
    facts: CaseFacts,
    decision: TierDecision,
    *,
    tier: Tier,
    unit: str,
    handler_id: str | None,
    state: State,
    reasons: Sequence[str],
    now: datetime,
    respond_by: datetime | None = None,
    resolve_by: datetime | None = None,
) -> Case:
    """The case a ``cases.opened`` makes (pure): at ``tier`` and ``unit``, the place, the
    facts and the tier rules' decision; dispatched (with its deadlines) or held for triage.
    The place is the chain that serves it (插花地: the serving community's, as intake located
    it), so routing, escalation and reach follow that chain; the administrative one is kept
    beside it (``Case.administrative``)."""
    loc = ev.location
    admin = loc.administrative or AdministrativeLocation()
    return Case(
        case_id=ev.case_id,
        category=ev.category,
        district=loc.district,
        street=loc.street,
        community=loc.community,
        grid=loc.grid,
        building=loc.building,
        admin_district=admin.district,
        admin_street=admin.street,
        admin_community=admin.community,
        admin_grid=admin.grid,
        urgent=facts.urgent,
        households=facts.households_affected,
        supporters=facts.supporter_count,
        start_tier=tier,
        tier=tier,
        tier_reasons=tuple(reasons),
        respond_within_s=(
            decision.respond_within.total_seconds() if decision.respond_within else None
        ),
        unit=unit,
        handler_id=handler_id,
        state=state,
        dispatched_at=now,
        respond_by=respond_by,
        resolve_by=resolve_by,
        opened_at=ev.opened_at,
    )
