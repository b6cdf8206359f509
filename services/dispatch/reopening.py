"""Reopened cases (``cases.reopened``: the resident was not satisfied): dispatched again one tier
above the tier that resolved it (at the district: the district again), keeping the units that
returned it excluded; from the second reopen on, at least at the street and under supervision
(督办) of the street office, announced once by ``cases.escalated`` (reason ``supervision``)."""

from __future__ import annotations

from shared.contract.events import CaseReopened, Tier
from shared.runtime.clock import Clock
from shared.runtime.consumer import Meta, PermanentError
from shared.runtime.uow import UnitOfWork

from . import emit, store
from .model import CaseChange
from .planning import Policy, least_busy, plan_redispatch, route_case, write
from .states import transition
from .tiers import higher, next_tier


class Reopening:
    def __init__(self, policy: Policy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock

    async def on_reopened(self, uow: UnitOfWork, ev: CaseReopened, meta: Meta) -> None:
        conn = uow.conn
        case = await store.load_case(conn, ev.case_id, lock=True)
        if case is None:
            raise PermanentError(f"reopened case {ev.case_id} is unknown to dispatch")
        t = transition(case.state, "reopen")
        if t is None:
            raise PermanentError(f"case {ev.case_id} reopened in state {case.state}")
        count = max(case.reopen_count + 1, ev.reopen_count)
        resolved_tier: Tier = case.resolved_tier or case.tier
        target = next_tier(resolved_tier) or resolved_tier
        supervise = count >= 2
        if supervise:
            target = higher(target, "street")
        to = await route_case(conn, case, target, case.excluded_units)
        if to is None:
            raise PermanentError(f"no unit to dispatch reopened case {ev.case_id} to")
        also = CaseChange(reopen_count=count, resolved_at=None)
        supervisor: str | None = None  # set when this reopen starts the supervision
        if supervise and not case.supervised:
            supervisor = case.street or (to.unit if to.tier == "street" else case.district)
            assert supervisor is not None  # routed at the street or above: it has one of them
            also = also | CaseChange(supervised=True, supervisor_unit=supervisor)
        reason = f"reopened ({count}): {ev.reason}"
        handler = await least_busy(conn, to.unit)
        plan = plan_redispatch(self.policy, case, t, to, self.clock(), reason, handler, also=also)
        if supervisor is not None:
            plan = plan.publishing(
                emit.escalated(
                    plan.after, from_tier=resolved_tier, reason="supervision", unit=supervisor
                )
            )
        await write(uow, [plan])
