"""The stages of a case and their warnings (pure): a yellow card (黄牌, ``cases.warned``) when a
share of a stage's limit has passed, a red card (红牌, ``cases.overdue``) at the limit.

- ``respond`` (accept): ``respond_by``, running while nobody has accepted (the awaiting states);
  its warning is due at ``respond_warn_at``;
- ``resolve``: ``resolve_by``, running until resolved, paused while deliberating;
  ``resolve_warn_at``;
- ``verify`` (核查): ``verify_by``, running while a resolution awaits its verification
  (``verifying``), from the resolve; ``verify_warn_at``.

A stage is its deadline, its ``*_warn_at`` column, its partial index and its sweep
(``store.due_for_warning``), and its name in ``STAGES`` and ``events.Stage``.

A stage's **time** runs from the dispatch that set its deadline to that deadline (its limit as the
SLA computes it from that instant); its warning is due when ``fraction`` of it has elapsed,
``fraction`` per tier and stage from the rules file's ``warnings`` or ``WANGGE_WARN_FRACTION``
(0.8). A stage whose limit is natural time counts natural time; one whose limit is in working
time (工作时/工作日) counts working time on the calendar, so that its warning, like its deadline,
falls within working hours (with ``WANGGE_SLA_SCALE`` other than 1 the compressed span is counted
as natural time). Every dispatch sets a fresh warning time with its fresh deadlines (a pause moves
both back alike); the warning sweep clears it when it warns, so a stage is warned at most once per
dispatch attempt, whichever replica sweeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Protocol

from shared.contract.events import Stage, Tier

from .model import Case, CaseChange
from .tiers import TierWarnings
from .workcalendar import WorkCalendar

STAGES: Final[tuple[Stage, ...]] = ("respond", "resolve", "verify")
DEFAULT_WARN_FRACTION: Final = 0.8


@dataclass(frozen=True)
class WarnPolicy:
    """The warning threshold of each tier and stage: the rules file's ``warnings``, else
    ``default`` (``WANGGE_WARN_FRACTION``)."""

    default: float = DEFAULT_WARN_FRACTION
    per_tier: Mapping[Tier, TierWarnings] = field(default_factory=dict)

    def fraction(self, tier: Tier, stage: Stage) -> float:
        given = self.per_tier.get(tier)
        value = getattr(given, stage) if given is not None else None
        return self.default if value is None else float(value)


def deadline_of(case: Case, stage: Stage) -> datetime | None:
    match stage:
        case "respond":
            return case.respond_by
        case "resolve":
            return case.resolve_by
        case "verify":
            return case.verify_by


def warning_of(case: Case, stage: Stage) -> datetime | None:
    """When the stage's warning is due (None: given, or no deadline)."""
    match stage:
        case "respond":
            return case.respond_warn_at
        case "resolve":
            return case.resolve_warn_at
        case "verify":
            return case.verify_warn_at


def warned_change(stage: Stage, at: datetime | None) -> CaseChange:
    """The change that sets the stage's warning time (None: given, or none due)."""
    match stage:
        case "respond":
            return CaseChange(respond_warn_at=at)
        case "resolve":
            return CaseChange(resolve_warn_at=at)
        case "verify":
            return CaseChange(verify_warn_at=at)


class TimeCount(Protocol):
    """How a stage's time is counted: natural time, or working time on the calendar."""

    def between(self, t: datetime, u: datetime) -> timedelta: ...

    def add(self, t: datetime, d: timedelta) -> datetime: ...


class NaturalTime:
    def between(self, t: datetime, u: datetime) -> timedelta:
        return max(u - t, timedelta(0))

    def add(self, t: datetime, d: timedelta) -> datetime:
        return t + d


NATURAL: Final = NaturalTime()


@dataclass(frozen=True)
class WorkingTime:
    """Working time (工作时): only the calendar's working periods count."""

    calendar: WorkCalendar

    def between(self, t: datetime, u: datetime) -> timedelta:
        return self.calendar.between(t, u)

    def add(self, t: datetime, d: timedelta) -> datetime:
        return self.calendar.add_hours(t, d)


def warn_at(
    start: datetime, deadline: datetime, fraction: float, count: TimeCount = NATURAL
) -> datetime:
    """When a stage from ``start`` to ``deadline`` is warned: ``fraction`` of its time elapsed,
    counted by ``count`` (a working-time stage is warned within working time)."""
    return count.add(start, count.between(start, deadline) * fraction)


def elapsed_share(
    deadline: datetime,
    warn: datetime,
    fraction: float,
    now: datetime,
    count: TimeCount = NATURAL,
) -> float:
    """The share of the stage's time elapsed at ``now`` (0.8: 80 %), to three places; its whole
    time is what ``warn_at`` left between the warning time and the deadline, over 1 - fraction."""
    whole = count.between(warn, deadline) / (1 - fraction)
    if whole <= timedelta(0):
        return 1.0
    return round(max(0.0, 1 - count.between(now, deadline) / whole), 3)


def warn_times(
    case: Case,
    start: datetime,
    policy: WarnPolicy,
    stages: tuple[Stage, ...] = STAGES,
    count: Callable[[Stage], TimeCount] = lambda stage: NATURAL,
) -> CaseChange:
    """The warning times of ``stages`` for the case as a dispatch at ``start`` leaves it (with
    its fresh deadlines; ``count``: how each stage's time is counted). A stage without a
    deadline has none."""
    times: dict[Stage, datetime | None] = {}
    for stage in stages:
        deadline = deadline_of(case, stage)
        frac = policy.fraction(case.tier, stage)
        times[stage] = None if deadline is None else warn_at(start, deadline, frac, count(stage))
    change = CaseChange()
    for stage, at in times.items():
        change = change | warned_change(stage, at)
    return change
