"""Deadlines (pure): respond-by and resolve-by of a dispatch, scaled by ``WANGGE_SLA_SCALE``.

A limit is natural time (``2h``), working hours (``2wh``) or working days (``3wd``), see
``shared/contract/limits.py``; working time is counted on the rules file's calendar
(``workcalendar.py``). Every limit becomes a **span** from the dispatch: its natural length from
that instant (a working-time limit's span depends on when it starts: ``2wh`` from Friday 17:00 ends
on Monday at 10:00). The deadline is ``start + span × scale``: the scale compresses the whole
span, whichever its unit, so that tests and demos run a day in seconds and a Friday evening's
working-time deadline stays proportionally longer than a Monday morning's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from shared.contract.events import Tier
from shared.contract.limits import Limit
from shared.contract.taxonomy import SlaOverride

from .tiers import DispatchRules
from .workcalendar import WorkCalendar


@dataclass(frozen=True)
class Deadlines:
    respond_by: datetime
    resolve_by: datetime


@dataclass(frozen=True)
class SlaPolicy:
    """Per-tier limits from the rules file, its working calendar, and the scale that multiplies
    every span (so that tests and demos can run a day in seconds)."""

    rules: DispatchRules
    scale: float = 1.0

    @cached_property
    def calendar(self) -> WorkCalendar:
        return self.rules.calendar.build()

    def limits(self, tier: Tier, category_sla: SlaOverride | None = None) -> tuple[Limit, Limit]:
        """The (respond, resolve) limits for ``tier``: a category's own SLA (taxonomy ``sla``)
        replaces the tier's."""
        base = self.rules.sla[tier]
        respond, resolve = base.respond, base.resolve
        if category_sla is not None:
            respond = category_sla.respond or respond
            resolve = category_sla.resolve or resolve
        return respond, resolve

    def span(self, limit: Limit, start: datetime) -> timedelta:
        """The natural length of ``limit`` from ``start``, unscaled."""
        if limit.unit == "natural":
            return limit.span
        if limit.unit == "working_hours":
            return self.calendar.add_hours(start, limit.span) - start
        return self.calendar.add_days(start, limit.days) - start

    def durations(
        self,
        tier: Tier,
        *,
        start: datetime,
        respond_within: timedelta | None = None,
        category_sla: SlaOverride | None = None,
    ) -> tuple[timedelta, timedelta]:
        """Unscaled (respond, resolve) spans for ``tier`` from ``start``; a rule's
        ``respond_within`` (natural time) can only shorten the response."""
        respond, resolve = self.limits(tier, category_sla)
        respond_span = self.span(respond, start)
        if respond_within is not None:
            respond_span = min(respond_span, respond_within)
        return respond_span, self.span(resolve, start)

    def deadlines(
        self,
        tier: Tier,
        start: datetime,
        *,
        respond_within: timedelta | None = None,
        category_sla: SlaOverride | None = None,
    ) -> Deadlines:
        respond, resolve = self.durations(
            tier, start=start, respond_within=respond_within, category_sla=category_sla
        )
        return Deadlines(start + respond * self.scale, start + resolve * self.scale)

    def verify_by(self, tier: Tier, start: datetime) -> datetime:
        """The verification deadline (核查) of a case resolved at ``tier`` at ``start``."""
        return start + self.span(self.rules.sla[tier].verify, start) * self.scale

    def extend(
        self,
        deadline: datetime | None,
        paused_from: datetime,
        paused_until: datetime,
        limit: Limit,
    ) -> datetime | None:
        """A deadline pushed back by a pause (deliberation at the residents' council): by the
        natural time paused under a natural limit, by the working time paused (added as working
        time after the deadline) under a working-time one. The pause is real time: unscaled."""
        if deadline is None or paused_until <= paused_from:
            return deadline
        if not limit.working:
            return extend(deadline, paused_until - paused_from)
        paused = self.calendar.between(paused_from, paused_until)
        return self.calendar.add_hours(deadline, paused)


def extend(deadline: datetime | None, pause: timedelta) -> datetime | None:
    """A deadline pushed back by a natural pause."""
    return None if deadline is None else deadline + max(pause, timedelta(0))
