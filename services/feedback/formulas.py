"""The governance metrics (pure): every formula a community is judged by, over plain rows.

``store.metric_inputs`` reads the rows of one unit and one period from feedback's read model;
everything here is arithmetic on them, with no SQL and no Kafka. docs/feedback.md repeats each
formula with its Chinese name.

Which rows belong to a period (``[start, end)`` in Asia/Shanghai time, see ``periods``):

- ``opened``: cases whose ``cases.opened.opened_at`` falls in the period (received, hot issues).
- ``dispatches``: every ``cases.dispatched`` whose ``dispatched_at`` falls in the period;
  ``accepts``: every ``cases.accepted`` of those cases (at any time), to pair with them.
- ``resolutions``: every ``cases.resolved`` whose ``resolved_at`` falls in the period. A case
  resolved twice in a period (resolved, reopened, resolved again) counts once, by its latest
  resolution in the period: the "cases resolved" every outcome rate divides by. A resolution its
  verifier sent back (核查不通过, a ``cases.sent_back`` naming its ``resolved_at``) is none.
- ``ratings``: every valid rating (any reporter's, decisive or not) whose ``at`` is in the period.
- ``cards``: every stage warning: a ``cases.warned`` (yellow, 黄牌) whose ``warned_at`` and a
  ``cases.overdue`` (red, 红牌) whose ``overdue_at`` (else ``ce_time``) falls in the period.
- ``supervisions``: every ``cases.supervised`` (督办) whose ``supervised_at`` falls in the period.
- ``orders``: 派单/协办 (吹哨报到), by the unit the order was issued to (the scope's units and their
  departments), each a step in the period: issued (``cases.order_issued``, ``issued_at``), its
  report, done, return or cancel (``cases.order_updated``, ``at``), its report missed (a
  ``cases.overdue`` naming the order, ``overdue_at``); those red cards are the order's unit's, not
  among the case's ``cards``.
- ``councils``: every ``cases.council_decided`` (议事会/联席会) on the scope's cases whose
  ``decided_at`` falls in the period, with its number of measures.
- ``facts``: per case, what is known of it at any time (start tier, escalated, reopened, opened_at).
- ``agency``: 三代 agency, each with its agency mode: an agent assigned (``cases.agent_assigned``,
  ``assigned_at``), a commission recorded (``cases.commissioned``, ``recorded_at``), a relay
  (``cases.relayed``, ``relayed_at``) in the period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SATISFIED = ("satisfied", "basically_satisfied")
ABOVE_COMMUNITY = ("street", "district")


@dataclass(frozen=True)
class CaseFacts:
    case_id: str
    category: str | None = None
    opened_at: datetime | None = None
    start_tier: str | None = None  # tier of the first dispatch (else intake's default tier)
    escalated: bool = False  # at least one cases.escalated, ever
    reopened: bool = False  # at least one cases.reopened, ever
    default_tier: str | None = None  # the category's default tier (as opened, or reclassified)


@dataclass(frozen=True)
class DispatchRow:
    case_id: str
    dispatched_at: datetime
    attempt: int = 1


@dataclass(frozen=True)
class ReturnRow:
    """A dispatch its unit returned as not theirs (退单, ``cases.returned``)."""

    case_id: str
    attempt: int


@dataclass(frozen=True)
class AcceptRow:
    case_id: str
    accepted_at: datetime
    on_time: bool  # dispatch's verdict: accepted before the response deadline (respond_by)


@dataclass(frozen=True)
class ResolutionRow:
    case_id: str
    resolved_at: datetime
    tier: str
    on_time: bool  # dispatch's verdict: resolved before the resolution deadline (resolve_by)
    # sent back by its verifier (核查不通过, ``cases.sent_back``): not a resolution after all
    withdrawn: bool = False


@dataclass(frozen=True)
class CardRow:
    """A stage warning: yellow (黄牌, ``cases.warned``) or red (红牌, ``cases.overdue``)."""

    case_id: str
    stage: str  # respond, resolve, verify
    card: str  # yellow, red


@dataclass(frozen=True)
class SupervisionRow:
    """A supervision (督办, ``cases.supervised``) the command centre sent on a case."""

    case_id: str
    supervision: int  # the case's n-th


@dataclass(frozen=True)
class OrderStepRow:
    """A step of a work order (派单/协办): ``issued``, ``reported``, ``done``, ``returned``,
    ``cancelled`` or ``report_missed`` (its report deadline missed, 红牌); ``on_time`` for a
    report and a done."""

    order_id: str
    step: str
    on_time: bool | None = None


@dataclass(frozen=True)
class CouncilRow:
    """A council's decision (议事会/联席会, ``cases.council_decided``) and its measures."""

    council_id: str
    measures: int


@dataclass(frozen=True)
class AgencyRow:
    """A step of 三代 agency: ``assigned`` (an agent), ``commissioned`` (委托), ``relayed``."""

    case_id: str
    agency_mode: str  # proxy_petition, voice_advocacy, errand_service
    step: str


@dataclass(frozen=True)
class RatingRow:
    resolved: bool
    satisfaction: str


@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        """``numerator / denominator``, rounded to 4 places; ``None`` when nothing to divide by."""
        if self.denominator == 0:
            return None
        return round(self.numerator / self.denominator, 4)

    def as_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "numerator": self.numerator, "denominator": self.denominator}


@dataclass(frozen=True)
class MetricInputs:
    opened: Sequence[CaseFacts] = ()
    dispatches: Sequence[DispatchRow] = ()
    accepts: Sequence[AcceptRow] = ()
    resolutions: Sequence[ResolutionRow] = ()
    ratings: Sequence[RatingRow] = ()
    facts: Mapping[str, CaseFacts] = field(default_factory=dict)
    cards: Sequence[CardRow] = ()
    supervisions: Sequence[SupervisionRow] = ()
    agency: Sequence[AgencyRow] = ()
    returns: Sequence[ReturnRow] = ()
    orders: Sequence[OrderStepRow] = ()
    councils: Sequence[CouncilRow] = ()


# --- one formula per function -------------------------------------------------------------------


def received(opened: Sequence[CaseFacts]) -> int:
    """Received (受理量): cases opened in the period."""
    return len(opened)


def pair_accepts(
    dispatches: Sequence[DispatchRow], accepts: Iterable[AcceptRow]
) -> dict[int, AcceptRow]:
    """Which dispatch each accept answers: the latest dispatch of the same case at or before the
    accept (the earliest one when clocks put the accept first). Returns ``{dispatch index: first
    accept}``; a dispatch nobody accepted is absent."""
    by_case: dict[str, list[int]] = {}
    for i, d in enumerate(dispatches):
        by_case.setdefault(d.case_id, []).append(i)
    paired: dict[int, AcceptRow] = {}
    for a in sorted(accepts, key=lambda a: a.accepted_at):
        idxs = sorted(by_case.get(a.case_id, []), key=lambda i: dispatches[i].dispatched_at)
        if not idxs:
            continue
        before = [i for i in idxs if dispatches[i].dispatched_at <= a.accepted_at]
        target = before[-1] if before else idxs[0]
        paired.setdefault(target, a)
    return paired


def response_rate(dispatches: Sequence[DispatchRow], accepts: Iterable[AcceptRow]) -> Ratio:
    """Response rate (响应率) = cases dispatched in the period whose first dispatch in the period
    was accepted before its response deadline / cases dispatched in the period.

    Each case counts once however often it was dispatched again (after an escalation, a
    reassignment or a reopen): the resident's matter was answered in time or not by the first
    unit it reached; a later dispatch neither adds to the denominator nor repairs a late
    response."""
    paired = pair_accepts(dispatches, accepts)
    first: dict[str, int] = {}
    for i in sorted(range(len(dispatches)), key=lambda i: dispatches[i].dispatched_at):
        first.setdefault(dispatches[i].case_id, i)
    on_time = sum(1 for i in first.values() if i in paired and paired[i].on_time)
    return Ratio(on_time, len(first))


def latest_resolutions(resolutions: Iterable[ResolutionRow]) -> dict[str, ResolutionRow]:
    """The cases resolved in the period, each with its latest resolution in the period that
    its verifier did not send back."""
    latest: dict[str, ResolutionRow] = {}
    for r in resolutions:
        if r.withdrawn:
            continue
        cur = latest.get(r.case_id)
        if cur is None or r.resolved_at >= cur.resolved_at:
            latest[r.case_id] = r
    return latest


def return_rate(dispatches: Sequence[DispatchRow], returns: Iterable[ReturnRow]) -> Ratio:
    """Return rate (退单率) = dispatches in the period that their unit returned as not theirs
    (a ``cases.returned`` of the same case and attempt, whenever) / dispatches in the period.
    Every dispatch counts, re-dispatches included: each is an order a unit could return."""
    dispatched = {(d.case_id, d.attempt) for d in dispatches}
    returned = {(r.case_id, r.attempt) for r in returns} & dispatched
    return Ratio(len(returned), len(dispatched))


def on_time_resolution_rate(latest: Mapping[str, ResolutionRow]) -> Ratio:
    """On-time resolution rate (按期办结率) = cases resolved before their resolution deadline /
    cases resolved."""
    return Ratio(sum(1 for r in latest.values() if r.on_time), len(latest))


def resolution_rate(ratings: Sequence[RatingRow]) -> Ratio:
    """Resolution rate (解决率) = ratings with resolved = true / ratings."""
    return Ratio(sum(1 for r in ratings if r.resolved), len(ratings))


def satisfaction_rate(ratings: Sequence[RatingRow]) -> Ratio:
    """Satisfaction rate (满意率) = (satisfied + basically_satisfied) / ratings."""
    return Ratio(sum(1 for r in ratings if r.satisfaction in SATISFIED), len(ratings))


def reopen_rate(latest: Mapping[str, ResolutionRow], facts: Mapping[str, CaseFacts]) -> Ratio:
    """Reopen rate (重办率) = cases resolved that were reopened at least once / cases resolved."""
    return Ratio(sum(1 for c in latest if _fact(facts, c).reopened), len(latest))


def kept_in_grid_rate(latest: Mapping[str, ResolutionRow], facts: Mapping[str, CaseFacts]) -> Ratio:
    """Kept in the grid (小事不出网格率) = cases resolved that started at grid tier and were
    resolved at grid tier / cases resolved that started at grid tier."""
    started = [c for c in latest if _fact(facts, c).start_tier == "grid"]
    return Ratio(sum(1 for c in started if latest[c].tier == "grid"), len(started))


def kept_in_community_rate(
    latest: Mapping[str, ResolutionRow], facts: Mapping[str, CaseFacts]
) -> Ratio:
    """Kept in the community (大事不出社区率) = cases resolved at grid or community tier /
    cases resolved, both leaving out the cases whose category's default tier is above the
    community (street or district: matters the rule never asked a community to keep, such as
    illegal construction or a petition)."""
    kept = [c for c in latest if _fact(facts, c).default_tier not in ABOVE_COMMUNITY]
    return Ratio(sum(1 for c in kept if latest[c].tier in ("grid", "community")), len(kept))


def escalation_rate(latest: Mapping[str, ResolutionRow], facts: Mapping[str, CaseFacts]) -> Ratio:
    """Escalation rate (上报率) = cases resolved that were escalated at least once (吹哨/上报) /
    cases resolved."""
    return Ratio(sum(1 for c in latest if _fact(facts, c).escalated), len(latest))


def resolve_hours(
    latest: Mapping[str, ResolutionRow], facts: Mapping[str, CaseFacts]
) -> list[float]:
    """Time to resolve of each case resolved: its (latest) resolved_at - opened_at, in hours.
    Cases whose opening feedback has not seen yet are left out."""
    out = []
    for c, r in latest.items():
        opened = _fact(facts, c).opened_at
        if opened is not None:
            out.append(max(0.0, (r.resolved_at - opened).total_seconds() / 3600))
    return out


STAGES = ("respond", "resolve", "verify")
CARDS = ("yellow", "red")


def warned(cards: Iterable[CardRow]) -> dict[str, Any]:
    """Warnings (黄牌/红牌): yellow cards (a stage's warning threshold crossed, ``cases.warned``)
    and red cards (its limit reached, ``cases.overdue``) given in the period, in all and per
    stage, and the cases that had any. Every card counts: a case warned at two dispatch attempts
    counts twice."""
    rows = list(cards)
    out: dict[str, Any] = {c: sum(1 for r in rows if r.card == c) for c in CARDS}
    out["cases"] = len({r.case_id for r in rows})
    for stage in STAGES:
        out[stage] = {c: sum(1 for r in rows if r.stage == stage and r.card == c) for c in CARDS}
    return out


AGENCY_MODES = ("proxy_petition", "voice_advocacy", "errand_service")
AGENCY_STEPS = {"assigned": "cases", "commissioned": "commissioned", "relayed": "relays"}


def agency(rows: Iterable[AgencyRow]) -> dict[str, Any]:
    """三代 agency in the period, in all and per agency mode (诉求代理, 意愿代言, 事务代办):
    ``cases`` given an agent, ``commissioned`` (the residents' commissions recorded, 委托) and
    ``relays`` (progress the agents relayed to the residents); counts."""

    def zero() -> dict[str, int]:
        return dict.fromkeys(AGENCY_STEPS.values(), 0)

    total, modes = zero(), {m: zero() for m in AGENCY_MODES}
    for r in rows:
        key = AGENCY_STEPS[r.step]
        total[key] += 1
        modes.setdefault(r.agency_mode, zero())[key] += 1
    return {**total, **modes}


def supervised(rows: Iterable[SupervisionRow]) -> dict[str, int]:
    """Supervised (督办): ``cases`` supervised in the period (distinct cases) and
    ``supervisions`` sent in the period (every one: a case supervised twice counts twice); counts,
    no rate."""
    seen = list(rows)
    return {"cases": len({r.case_id for r in seen}), "supervisions": len(seen)}


ORDER_STEPS = ("issued", "reported", "done", "returned", "cancelled", "report_missed")


def orders(rows: Iterable[OrderStepRow]) -> dict[str, int]:
    """Work orders (派单/协办, 吹哨报到) of the unit's in the period: ``issued`` to it,
    ``reported`` (报到) and ``reported_on_time`` (by ``report_by``), ``report_missed`` (red cards:
    unreported at ``report_by``), ``done`` and ``done_on_time`` (by ``resolve_by``), ``returned``
    (not theirs) and ``cancelled`` (withdrawn by the issuer); counts of steps, no rate."""
    seen = list(rows)
    out = {step: sum(1 for r in seen if r.step == step) for step in ORDER_STEPS}
    out["reported_on_time"] = sum(1 for r in seen if r.step == "reported" and r.on_time)
    out["done_on_time"] = sum(1 for r in seen if r.step == "done" and r.on_time)
    return out


def councils(rows: Iterable[CouncilRow]) -> dict[str, int]:
    """Councils (议事会/联席会): ``decisions`` recorded on the unit's cases in the period and
    their ``measures`` (each became a work order); counts."""
    seen = list(rows)
    return {"decisions": len(seen), "measures": sum(r.measures for r in seen)}


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile with linear interpolation between closest ranks (numpy's default):
    the median is ``percentile(v, 50)``. ``None`` for no values."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def hot_issues(
    current: Mapping[str, int], previous: Mapping[str, int], top: int = 5
) -> list[dict[str, Any]]:
    """Hot issues (高频问题): the ``top`` categories by cases opened in the period (ties by
    category code), each with its count, the previous period's count, the change
    (count - previous) and the relative change (change / previous; ``None`` when previous = 0)."""
    ranked = sorted(current.items(), key=lambda kv: (-kv[1], kv[0]))[: max(top, 0)]
    out = []
    for category, count in ranked:
        prev = previous.get(category, 0)
        out.append(
            {
                "category": category,
                "count": count,
                "previous": prev,
                "change": count - prev,
                "change_rate": round((count - prev) / prev, 4) if prev else None,
            }
        )
    return out


def category_counts(opened: Iterable[CaseFacts]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in opened:
        key = c.category or "unknown"
        counts[key] = counts.get(key, 0) + 1
    return counts


def compute(inputs: MetricInputs) -> dict[str, Any]:
    """Every metric of one unit and period, as the HTTP API returns them."""
    latest = latest_resolutions(inputs.resolutions)
    hours = resolve_hours(latest, inputs.facts)
    med, p90 = percentile(hours, 50), percentile(hours, 90)
    return {
        "received": received(inputs.opened),
        "resolved": len(latest),
        "ratings": len(inputs.ratings),
        "response_rate": response_rate(inputs.dispatches, inputs.accepts).as_json(),
        "on_time_resolution_rate": on_time_resolution_rate(latest).as_json(),
        "resolution_rate": resolution_rate(inputs.ratings).as_json(),
        "satisfaction_rate": satisfaction_rate(inputs.ratings).as_json(),
        "reopen_rate": reopen_rate(latest, inputs.facts).as_json(),
        "kept_in_grid_rate": kept_in_grid_rate(latest, inputs.facts).as_json(),
        "kept_in_community_rate": kept_in_community_rate(latest, inputs.facts).as_json(),
        "escalation_rate": escalation_rate(latest, inputs.facts).as_json(),
        "return_rate": return_rate(inputs.dispatches, inputs.returns).as_json(),
        "time_to_resolve_hours": {
            "median": None if med is None else round(med, 2),
            "p90": None if p90 is None else round(p90, 2),
            "cases": len(hours),
        },
        "warned": warned(inputs.cards),
        "supervised": supervised(inputs.supervisions),
        "agency": agency(inputs.agency),
        "orders": orders(inputs.orders),
        "councils": councils(inputs.councils),
    }


# --- ranking ------------------------------------------------------------------------------------

# Composite score (综合得分) of a unit, 0-100: the weighted mean of its rates, reopen inverted.
SCORE_WEIGHTS: dict[str, float] = {
    "satisfaction_rate": 0.30,
    "on_time_resolution_rate": 0.20,
    "response_rate": 0.15,
    "resolution_rate": 0.15,
    "kept_in_community_rate": 0.10,
    "reopen_rate": 0.10,  # counted as (1 - reopen rate)
}


def score(metrics: Mapping[str, Any]) -> float | None:
    """Composite score = 100 * sum(w_i * r_i) / sum(w_i) over the rates r_i that exist (a rate
    with a zero denominator is left out and its weight with it); reopen counts as 1 - rate.
    ``None`` when no rate exists (a unit with no activity in the period)."""
    total = weight = 0.0
    for name, w in SCORE_WEIGHTS.items():
        rate = (metrics.get(name) or {}).get("rate")
        if rate is None:
            continue
        total += w * (1 - rate if name == "reopen_rate" else rate)
        weight += w
    return round(100 * total / weight, 2) if weight else None


def rank(rows: Sequence[Mapping[str, Any]], by: str = "score") -> list[dict[str, Any]]:
    """Rank units (each row has ``code`` and ``by`` as a number or None): highest first, units
    without a value last, ties share a rank (1, 1, 3) and are listed by code; reopen rate ranks
    lowest first, since fewer reopens is better."""
    lower_is_better = by == "reopen_rate"

    def key(row: Mapping[str, Any]) -> tuple[int, float, str]:
        v = row.get(by)
        if v is None:
            return (1, 0.0, str(row["code"]))
        return (0, v if lower_is_better else -v, str(row["code"]))

    ordered = sorted(rows, key=key)
    out: list[dict[str, Any]] = []
    for i, row in enumerate(ordered):
        same = out and out[-1][by] == row.get(by) and row.get(by) is not None
        out.append({**row, "rank": out[-1]["rank"] if same else i + 1})
    return out


def _fact(facts: Mapping[str, CaseFacts], case_id: str) -> CaseFacts:
    return facts.get(case_id) or CaseFacts(case_id)
