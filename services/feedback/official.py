"""A unit's figures as served: live for a period still open, the frozen ones once its month has
closed (``freezing``), with the adjustments later events made; and the sweep that freezes every
unit's month when it is due."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork

from . import frozen_figures, store
from .formulas import compute
from .freezing import FreezePolicy, adjustments
from .periods import TZ, Period


async def live(conn: Connection, scope: store.Scope, period: Period) -> dict[str, Any]:
    """The figures as the events known now make them."""
    return compute(await store.metric_inputs(conn, scope, period))


async def figures(
    conn: Connection, scope: store.Scope, period: Period, now: datetime, policy: FreezePolicy
) -> dict[str, Any]:
    """``{"status", "metrics", "adjustments", "frozen_at" | "freezes_at"}``: frozen figures are
    frozen here if the sweep has not yet done it (the first to write them wins)."""
    current = await live(conn, scope, period)
    if policy.status(period, now) == "provisional":
        at = policy.freezes_at(period)
        return {
            "status": "provisional",
            "freezes_at": at.astimezone(TZ).isoformat() if at else None,
            "metrics": current,
            "adjustments": [],
        }
    frozen = await frozen_figures.freeze(conn, scope.code, period.label, current, now)
    return {
        "status": "frozen",
        "frozen_at": frozen.frozen_at.astimezone(TZ).isoformat(),
        "metrics": frozen.metrics,
        "adjustments": adjustments(frozen.metrics, current),
    }


async def served_apart(conn: Connection, scope: store.Scope, period: Period) -> dict[str, Any]:
    """插花地, beside a unit's official figures and never in them, always as the events known now
    make them (not frozen): ``served_elsewhere``, the figures of the cases administratively in
    the unit that a unit of another chain serves (and counts), with the communities serving
    them; ``served_for_others``, how many of the unit's own counted cases are administratively
    another unit's, with those communities. Each is None when the unit has no such case at any
    time (a department or a building: never)."""
    out: dict[str, Any] = {"served_elsewhere": None, "served_for_others": None}
    elsewhere = scope.seen_as("served_elsewhere")
    if elsewhere is not None and await store.any_case(conn, elsewhere):
        out["served_elsewhere"] = {
            "serving": await store.communities_of(conn, elsewhere, "community"),
            "metrics": await live(conn, elsewhere, period),
        }
    others = scope.seen_as("served_for_others")
    if others is not None and await store.any_case(conn, others):
        counted = await live(conn, others, period)
        out["served_for_others"] = {
            "administrative": await store.communities_of(conn, others, "admin_community"),
            **{k: counted[k] for k in ("received", "resolved", "ratings")},
        }
    return out


FREEZE_BATCH = 200


class FreezeSweep:
    """Freezes the due month's figures of every unit, ``batch`` units a transaction."""

    def __init__(self, policy: FreezePolicy, batch: int = FREEZE_BATCH) -> None:
        self.policy = policy
        self.batch = batch

    async def __call__(self, uow: UnitOfWork, now: datetime) -> int:
        month = self.policy.due(now)
        units = await frozen_figures.unfrozen_units(uow.conn, month.label, self.batch)
        for scope in units:
            metrics = await live(uow.conn, scope, month)
            await frozen_figures.freeze(uow.conn, scope.code, month.label, metrics, now)
        return len(units)
