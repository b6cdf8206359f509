"""Deadlines (pure): respond-by and resolve-by of a dispatch, scaled by ``WANGGE_SLA_SCALE``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.contract.events import Tier
from shared.contract.taxonomy import SlaOverride

from .tiers import DispatchRules


@dataclass(frozen=True)
class Deadlines:
    respond_by: datetime
    resolve_by: datetime


@dataclass(frozen=True)
class SlaPolicy:
    """Per-tier durations from the rules file, and the scale that multiplies every duration (so
    that tests and demos can run a day in seconds)."""

    rules: DispatchRules
    scale: float = 1.0

    def durations(
        self,
        tier: Tier,
        *,
        respond_within: timedelta | None = None,
        category_sla: SlaOverride | None = None,
    ) -> tuple[timedelta, timedelta]:
        """Unscaled (respond, resolve) for ``tier``: a category's own SLA (taxonomy ``sla``)
        replaces the tier's, and a rule's ``respond_within`` can only shorten the response."""
        base = self.rules.sla[tier]
        respond, resolve = base.respond, base.resolve
        if category_sla is not None:
            respond = category_sla.respond or respond
            resolve = category_sla.resolve or resolve
        if respond_within is not None:
            respond = min(respond, respond_within)
        return respond, resolve

    def deadlines(
        self,
        tier: Tier,
        start: datetime,
        *,
        respond_within: timedelta | None = None,
        category_sla: SlaOverride | None = None,
    ) -> Deadlines:
        respond, resolve = self.durations(
            tier, respond_within=respond_within, category_sla=category_sla
        )
        return Deadlines(start + respond * self.scale, start + resolve * self.scale)


def extend(deadline: datetime | None, pause: timedelta) -> datetime | None:
    """A deadline pushed back by a pause (deliberation at the residents' council)."""
    return None if deadline is None else deadline + max(pause, timedelta(0))
