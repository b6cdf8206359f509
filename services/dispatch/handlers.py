"""Dispatch's handlers: tier decision, assignment, deadlines and handler actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.consumer import Meta
from shared.events import (
    CaseDispatched,
    CaseOpened,
    CaseResolved,
    FieldError,
    HandlerAction,
    HandlerActionRejected,
    Tier,
)
from shared.taxonomy import Taxonomy
from shared.uow import UnitOfWork

from . import store
from .sla import deadlines
from .tiers import decide_tier

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatch:
    def __init__(
        self, taxonomy: Taxonomy, *, sla_scale: float = 1.0, clock: Clock = utcnow
    ) -> None:
        self.taxonomy = taxonomy
        self.sla_scale = sla_scale
        self.clock = clock

    async def assign_unit(
        self,
        uow: UnitOfWork,
        tier: Tier,
        case: dict[str, str | None],
        category: str,
        exclude: list[str],
    ) -> str:
        if tier in ("grid", "community") and case.get(tier):
            return str(case[tier])
        parents = [p for p in (case.get("street"), case.get("district")) if p]
        if tier == "district":
            parents = [p for p in (case.get("district"),) if p]
        dept = await store.department_for(uow.conn, category, parents, exclude)
        if dept:
            return dept
        for level in (tier, "community", "street", "district"):
            if case.get(level):
                return str(case[level])
        raise ValueError("case has no location to dispatch to")

    async def on_opened(self, uow: UnitOfWork, ev: CaseOpened, meta: Meta) -> None:
        if await store.get_case(uow.conn, ev.case_id):
            return
        cat = self.taxonomy.get(ev.category)
        default: Tier = ev.default_tier or (cat.tier if cat else "grid")
        decision = decide_tier(
            default,
            households=ev.households_affected,
            supporters=1,
            urgent=ev.urgent,
            category=ev.category,
        )
        loc = ev.location.model_dump()
        unit = await self.assign_unit(uow, decision.tier, loc, ev.category, [])
        handler = await store.pick_handler(uow.conn, unit)
        now = self.clock()
        dl = deadlines(decision.tier, now, scale=self.sla_scale, urgent=decision.urgent_response)
        await store.insert_case(
            uow.conn,
            case_id=ev.case_id,
            category=ev.category,
            urgent=ev.urgent,
            households=ev.households_affected,
            start_tier=decision.tier,
            tier=decision.tier,
            tier_reasons=decision.reasons,
            unit=unit,
            handler_id=handler,
            state="dispatched",
            dispatched_at=now,
            respond_by=dl.respond_by,
            resolve_by=dl.resolve_by,
            opened_at=ev.opened_at,
            **{k: loc.get(k) for k in ("district", "street", "community", "grid", "building")},
        )
        await store.add_timeline(
            uow.conn,
            ev.case_id,
            now,
            "dispatched",
            to_state="dispatched",
            tier=decision.tier,
            unit=unit,
            handler_id=handler,
            detail={"tier_reasons": decision.reasons},
        )
        uow.publish(
            "cases.dispatched",
            CaseDispatched(
                case_id=ev.case_id,
                tier=decision.tier,
                unit=unit,
                handler_id=handler,
                respond_by=dl.respond_by,
                resolve_by=dl.resolve_by,
                tier_reasons=decision.reasons,
                attempt=1,
                category=ev.category,
                dispatched_at=now,
            ),
            key=ev.case_id,
            subject=ev.case_id,
        )

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
        uow.publish(
            "handler.actions.rejected",
            HandlerActionRejected(
                action_id=action.action_id,
                case_id=action.case_id,
                reason=reason,
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
        handler = await store.handler_row(conn, action.handler_id)
        if handler is None or handler["unit"] != case["unit"]:
            self.reject(uow, action, "handler is not of the assigned unit")
            return
        now = self.clock()
        if action.action == "accept" and case["state"] == "dispatched":
            await store.update_case(
                conn,
                action.case_id,
                state="accepted",
                accepted_at=action.at,
                handler_id=action.handler_id,
            )
            await store.add_timeline(
                conn,
                action.case_id,
                action.at,
                "accept",
                from_state="dispatched",
                to_state="accepted",
                tier=case["tier"],
                unit=case["unit"],
                handler_id=action.handler_id,
            )
        elif action.action == "resolve" and case["state"] == "accepted":
            on_time = case["resolve_by"] is None or action.at <= case["resolve_by"]
            await store.update_case(conn, action.case_id, state="resolved", resolved_at=action.at)
            await store.add_timeline(
                conn,
                action.case_id,
                action.at,
                "resolve",
                from_state="accepted",
                to_state="resolved",
                tier=case["tier"],
                unit=case["unit"],
                handler_id=action.handler_id,
                detail={"note": action.note},
            )
            uow.publish(
                "cases.resolved",
                CaseResolved(
                    case_id=action.case_id,
                    resolved_at=action.at,
                    tier=case["tier"],
                    unit=case["unit"],
                    handler_id=action.handler_id,
                    note=action.note or "",
                    on_time=on_time,
                ),
                key=action.case_id,
                subject=action.case_id,
                time=now,
            )
        else:
            self.reject(uow, action, f"{action.action} is not allowed in state {case['state']}")
