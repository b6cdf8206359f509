"""How near a case is to its deadlines (pure): what the handler API calls on track, due soon and
overdue, and the order of a handler's list.

A case's running deadlines: ``respond_by`` while nobody has accepted it (the awaiting states) and
``resolve_by`` until it is resolved (while deliberating, the one the pause pushed back; none
while its clock is stopped: suspended, or an extension request pausing it), unless the
resolution deadline was missed at the top tier (``resolve_missed_at``: nothing to escalate
to, so the case stays overdue until resolved); while a resolution awaits its verification
(核查, ``verifying``), only ``verify_by`` runs, and a verification deadline missed keeps the case
overdue until verified (``verify_missed_at``). A case is

- **overdue** when a running deadline has passed (the sweeps then reassign or escalate it, with
  fresh deadlines) or was missed at the top tier;
- **due soon** when a running deadline is at most ``fraction`` (``DUE_SOON_FRACTION``, 20 %) of
  its limit away: the limit is that deadline's duration at the case's tier, as the SLA sets it
  (grid tier: respond within 2 h, so due soon in its last 24 minutes; resolve within 24 h, due
  soon in its last 4.8 hours);
- **on track** otherwise. A resolved case has no deadline and no due status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from .model import Case
from .planning import Policy
from .states import AWAITING, OPEN_ENDED

Due = Literal["on_track", "due_soon", "overdue"]
DUES: tuple[Due, ...] = ("on_track", "due_soon", "overdue")
DeadlineKind = Literal["respond", "resolve", "verify"]
DUE_SOON_FRACTION = 0.2


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: DeadlineKind
    at: datetime
    limit: timedelta  # the deadline's whole duration at the case's tier


def limits(policy: Policy, case: Case) -> tuple[timedelta, timedelta, timedelta]:
    """The (respond, resolve, verify) durations of the case's tier, scaled: what the dispatch
    that set its deadlines used (``Policy.deadlines``), and the resolve its verification's."""
    respond, resolve = policy.sla.durations(
        case.tier,
        start=case.dispatched_at,  # a working-time limit's span depends on its start
        respond_within=case.respond_within,
        category_sla=policy.category_sla(case.category, case.tier),
    )
    resolved = case.resolved_at or case.dispatched_at
    verify = policy.sla.verify_by(case.tier, resolved) - resolved
    return respond * policy.sla.scale, resolve * policy.sla.scale, verify


def case_deadlines(policy: Policy, case: Case) -> tuple[Deadline, ...]:
    """``running_deadlines(case, *limits(policy, case))``, computing only the limits of the
    deadlines that can run: a verification's while it is verifying, the response's and the
    resolution's otherwise (each a span on the working calendar, the board's main cost per case)."""
    if case.state == "resolved":
        return ()
    if case.state == "verifying":
        resolved = case.resolved_at or case.dispatched_at
        verify = policy.sla.verify_by(case.tier, resolved) - resolved
        return running_deadlines(case, timedelta(0), timedelta(0), verify)
    respond, resolve = policy.sla.durations(
        case.tier,
        start=case.dispatched_at,
        respond_within=case.respond_within,
        category_sla=policy.category_sla(case.category, case.tier),
    )
    return running_deadlines(
        case, respond * policy.sla.scale, resolve * policy.sla.scale, timedelta(0)
    )


def running_deadlines(
    case: Case, respond_limit: timedelta, resolve_limit: timedelta, verify_limit: timedelta
) -> tuple[Deadline, ...]:
    """The deadlines the case is held to now, nearest first."""
    if case.state == "resolved":
        return ()
    if case.state == "verifying":
        if case.verify_by is None or case.verify_missed_at is not None:
            return ()
        return (Deadline("verify", case.verify_by, verify_limit),)
    out = []
    if case.state in AWAITING and case.respond_by is not None:
        out.append(Deadline("respond", case.respond_by, respond_limit))
    stopped = case.paused_at is not None and case.state in OPEN_ENDED
    if case.resolve_missed_at is None and case.resolve_by is not None and not stopped:
        out.append(Deadline("resolve", case.resolve_by, resolve_limit))
    return tuple(sorted(out, key=lambda d: d.at))


def due_status(
    case: Case,
    deadlines: tuple[Deadline, ...],
    now: datetime,
    fraction: float = DUE_SOON_FRACTION,
) -> Due | None:
    """On track, due soon or overdue at ``now`` (None for a resolved case)."""
    if case.state == "resolved":
        return None
    return due_of(missed(case), deadlines, now, fraction)


def missed(case: Case) -> bool:
    """Missed at the top tier, or its verification missed while verifying: overdue until done."""
    return case.resolve_missed_at is not None or (
        case.state == "verifying" and case.verify_missed_at is not None
    )


@dataclass(frozen=True, slots=True)
class DueTimes:
    """When an open case is due soon and overdue, whatever the time: what ``due_at`` decides
    from, and what the board keeps per case (``board_due``, migration 022) so that PostgreSQL
    decides the same at ``now`` (``console.queries.DUE_SQL``)."""

    missed: bool  # ``missed``: overdue whatever the time
    soon_at: datetime | None  # due soon from: the earliest running deadline less its fraction
    late_at: datetime | None  # overdue from: the earliest running deadline


def due_times(was_missed: bool, deadlines: tuple[Deadline, ...], fraction: float) -> DueTimes:
    """The due times of an open case that ``was_missed`` (``missed``) or not, with these running
    deadlines (a deadline is due soon once at most ``fraction`` of its limit is left)."""
    return DueTimes(
        was_missed,
        min((d.at - d.limit * fraction for d in deadlines), default=None),
        min((d.at for d in deadlines), default=None),
    )


def due_at(times: DueTimes, now: datetime) -> Due:
    """The due status at ``now``: the one rule (``console.queries.DUE_SQL`` is its SQL)."""
    if times.missed or (times.late_at is not None and times.late_at <= now):
        return "overdue"
    if times.soon_at is not None and times.soon_at <= now:
        return "due_soon"
    return "on_track"


def due_of(
    was_missed: bool, deadlines: tuple[Deadline, ...], now: datetime, fraction: float
) -> Due:
    """The due status of an open case that ``was_missed`` (``missed``) or not, with these
    running deadlines, at ``now``."""
    return due_at(due_times(was_missed, deadlines, fraction), now)


_NEVER = datetime.max.replace(tzinfo=UTC)


def nearest_first(case: Case, deadlines: tuple[Deadline, ...]) -> tuple[bool, datetime, str]:
    """A sort key: the nearest running deadline first (a case missed at the top tier by when it
    was missed; a case without any deadline last), then by case id."""
    at = deadlines[0].at if deadlines else case.resolve_missed_at or case.verify_missed_at
    return (at is None, at or _NEVER, case.case_id)
