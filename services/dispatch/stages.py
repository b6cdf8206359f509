"""The stages of a case and their warnings (pure): a yellow card (黄牌, ``cases.warned``) when a
share of a stage's limit has passed, a red card (红牌, ``cases.overdue``) at the limit.

- ``respond`` (accept): ``respond_by``, running while nobody has accepted (the awaiting states);
  its warning is due at ``respond_warn_at``;
- ``resolve``: ``resolve_by``, running until resolved, paused while deliberating;
  ``resolve_warn_at``;
- ``verify`` (not yet): a third stage adds its deadline, its ``*_warn_at`` column, its index and
  its sweep (``store.due_for_warning``), and its name to ``STAGES`` and ``events.Stage``.

A stage's **span** runs from the dispatch that set its deadline to that deadline (its limit as
the SLA computes it from that instant: natural time, or working time on the calendar, times
``WANGGE_SLA_SCALE``); its warning is due when ``fraction`` of the span has elapsed,
``start + span × fraction``, ``fraction`` per tier and stage from the rules file's ``warnings``
or ``WANGGE_WARN_FRACTION`` (0.8). Every dispatch sets a fresh warning time with its fresh
deadlines (a pause moves both back alike); the warning sweep clears it when it warns, so a stage
is warned at most once per dispatch attempt, whichever replica sweeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from shared.contract.events import Stage, Tier

from .model import Case, CaseChange
from .tiers import TierWarnings

STAGES: Final[tuple[Stage, ...]] = ("respond", "resolve")
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
    return case.respond_by if stage == "respond" else case.resolve_by


def warning_of(case: Case, stage: Stage) -> datetime | None:
    """When the stage's warning is due (None: given, or no deadline)."""
    return case.respond_warn_at if stage == "respond" else case.resolve_warn_at


def warn_at(start: datetime, deadline: datetime, fraction: float) -> datetime:
    """When a stage from ``start`` to ``deadline`` is warned: ``fraction`` of its span elapsed."""
    return start + (deadline - start) * fraction


def elapsed_share(deadline: datetime, warn: datetime, fraction: float, now: datetime) -> float:
    """The share of the stage's span elapsed at ``now`` (0.8: 80 %), to three places; the span
    is what ``warn_at`` left between the warning time and the deadline."""
    span = (deadline - warn) / (1 - fraction)
    if span <= timedelta(0):
        return 1.0
    return round(max(0.0, 1 - (deadline - now) / span), 3)


def warn_times(
    case: Case, start: datetime, policy: WarnPolicy, stages: tuple[Stage, ...] = STAGES
) -> CaseChange:
    """The warning times of ``stages`` for the case as a dispatch at ``start`` leaves it (with
    its fresh deadlines). A stage without a deadline has none."""
    times: dict[Stage, datetime | None] = {}
    for stage in stages:
        deadline = deadline_of(case, stage)
        frac = policy.fraction(case.tier, stage)
        times[stage] = None if deadline is None else warn_at(start, deadline, frac)
    change = CaseChange()
    if "respond" in times:
        change = change | CaseChange(respond_warn_at=times["respond"])
    if "resolve" in times:
        change = change | CaseChange(resolve_warn_at=times["resolve"])
    return change
