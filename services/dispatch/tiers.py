"""The tier decision (pure): 小事不出网格、大事不出社区 — start at the category's default tier and
raise it by the rules of a configuration file (``tier_rules.yaml``, or ``WANGGE_TIER_RULES_FILE``).

The same file holds the deadlines of each tier (see ``sla.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.contract.events import TIERS, Tier
from shared.contract.limits import Limit, parse_natural

from .workcalendar import WorkCalendar

DEFAULT_RULES_FILE = Path(__file__).parent / "tier_rules.yaml"

parse_duration = parse_natural  # a rule's respond_within: natural time only


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def tier_index(t: Tier) -> int:
    return TIERS.index(t)


def higher(a: Tier, b: Tier) -> Tier:
    return a if tier_index(a) >= tier_index(b) else b


def next_tier(t: Tier) -> Tier | None:
    i = tier_index(t)
    return TIERS[i + 1] if i + 1 < len(TIERS) else None


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    households_affected_at_least: int | None = Field(None, ge=1)
    supporter_count_at_least: int | None = Field(None, ge=1)
    urgent: bool | None = None
    category_in: list[str] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Conditions:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("a rule needs at least one condition")
        return self


class TierRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    when: Conditions
    min_tier: Tier | None = None
    respond_within: Duration | None = None
    reason: str | None = None

    @model_validator(mode="after")
    def _has_effect(self) -> TierRule:
        if self.min_tier is None and self.respond_within is None:
            raise ValueError("a rule needs min_tier or respond_within")
        return self

    def describe(self) -> str:
        if self.reason:
            return self.reason
        conds = ", ".join(f"{k}={v}" for k, v in self.when.model_dump(exclude_none=True).items())
        effects = []
        if self.min_tier:
            effects.append(f"at least {self.min_tier}")
        if self.respond_within:
            effects.append(f"respond within {self.respond_within}")
        return f"{conds}: {' and '.join(effects)}"


class TierSla(BaseModel):
    """A tier's limits, each in natural time, working hours or working days (``Limit``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    respond: Limit
    resolve: Limit
    # 核查结案: a resolution is verified within this (when the district verifies: ``verification``)
    verify: Limit = Field(default_factory=lambda: Limit.model_validate("1wd"))


class CalendarRules(BaseModel):
    """The working calendar of working-time limits (``workcalendar.py``): the working periods of
    a working day (Asia/Shanghai) and the days the district closes itself, on top of the
    official holidays and 调休."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    working_hours: list[str] = Field(default_factory=lambda: ["08:30-12:00", "13:30-17:30"])
    closures: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> CalendarRules:
        self.build()
        return self

    def build(self) -> WorkCalendar:
        return WorkCalendar.of(self.working_hours, self.closures)


class TierWarnings(BaseModel):
    """A tier's warning thresholds (黄牌): the share of each stage's limit at which dispatch warns
    (``stages.py``); a stage not given takes ``WANGGE_WARN_FRACTION``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    respond: float | None = Field(None, gt=0, lt=1)
    resolve: float | None = Field(None, gt=0, lt=1)
    verify: float | None = Field(None, gt=0, lt=1)


class TierExtensions(BaseModel):
    """A tier's rules of 缓办/延期 (extensions) and 挂起 (suspension), ``pauses.py``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # the resolution clock pauses while a request awaits its decision
    pause_while_pending: bool = False
    # the unit one tier up decides within this (scaled), else the request lapses
    decide_within: Limit = Field(default_factory=lambda: Limit.model_validate("1wd"))
    # one extension adds at most this after the deadline it extends
    max_extension: Limit = Field(default_factory=lambda: Limit.model_validate("15wd"))
    max_extensions: int = Field(2, ge=0)  # approved per case
    # a suspension lasts at most this (natural time, unscaled: resume_by is a date)
    max_suspension: Duration = timedelta(days=30)


class VerificationRules(BaseModel):
    """核查结案 (verification before closing), ``verification.py``: whether a resolved case waits
    for a verifier other than its resolving handler before the resident's follow-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    required: bool = True


class OrderRules(BaseModel):
    """吹哨报到 (assisting work orders, ``orders.py``) issued on a case at a tier: the ordered unit
    reports (报到, accepts) within ``report_within`` and finishes within ``resolve_within``, both
    from the issue (scaled by ``WANGGE_SLA_SCALE``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    report_within: Limit = Field(default_factory=lambda: Limit.model_validate("2wh"))
    resolve_within: Limit = Field(default_factory=lambda: Limit.model_validate("5wd"))


class DispatchRules(BaseModel):
    """The whole rules file: tier rules, per-tier deadlines and warning thresholds, extensions
    and suspensions, verification."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[TierRule] = Field(default_factory=list)
    sla: dict[Tier, TierSla]
    calendar: CalendarRules = Field(default_factory=CalendarRules)
    warnings: dict[Tier, TierWarnings] = Field(default_factory=dict)
    extensions: dict[Tier, TierExtensions] = Field(default_factory=dict)
    verification: VerificationRules = Field(default_factory=VerificationRules)
    # 吹哨报到: per tier of the case when the whistle is blown; a tier not listed: the defaults
    orders: dict[Tier, OrderRules] = Field(default_factory=dict)

    def orders_of(self, tier: Tier) -> OrderRules:
        """The work-order limits of a whistle blown on a case at ``tier``."""
        return self.orders.get(tier) or _DEFAULT_ORDERS

    def extensions_of(self, tier: Tier) -> TierExtensions:
        """A tier's extension rules (the defaults when the file does not list it)."""
        return self.extensions.get(tier) or _DEFAULT_EXTENSIONS

    @model_validator(mode="after")
    def _every_tier(self) -> DispatchRules:
        missing = [t for t in TIERS if t not in self.sla]
        if missing:
            raise ValueError(f"sla is missing tiers: {missing}")
        return self


_DEFAULT_EXTENSIONS = TierExtensions()
_DEFAULT_ORDERS = OrderRules()


def load_rules(path: str | Path | None = None) -> DispatchRules:
    """Read and validate the rules file (the default one when ``path`` is None); fails loudly,
    so that a service never starts with rules it did not understand."""
    with open(path or DEFAULT_RULES_FILE, encoding="utf-8") as f:
        return DispatchRules.model_validate(yaml.safe_load(f))


@dataclass(frozen=True)
class CaseFacts:
    """What the rules look at."""

    category: str
    households_affected: int | None = None
    supporter_count: int = 1
    urgent: bool = False


def max_known(a: int | None, b: int | None) -> int | None:
    """The larger of two optional counts (None: unknown)."""
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


@dataclass(frozen=True)
class TierDecision:
    tier: Tier
    reasons: list[str] = field(default_factory=list)
    respond_within: timedelta | None = None  # a shorter response deadline, when a rule says so


def _holds(c: Conditions, f: CaseFacts) -> bool:
    if c.households_affected_at_least is not None and (
        f.households_affected is None or f.households_affected < c.households_affected_at_least
    ):
        return False
    if c.supporter_count_at_least is not None and f.supporter_count < c.supporter_count_at_least:
        return False
    if c.urgent is not None and f.urgent != c.urgent:
        return False
    return c.category_in is None or f.category in c.category_in


def decide_tier(default: Tier, facts: CaseFacts, rules: DispatchRules) -> TierDecision:
    """The start tier: ``default`` raised by every rule that fires; the reasons say why."""
    tier = default
    reasons = [f"category default: {default}"]
    respond_within: timedelta | None = None
    for rule in rules.rules:
        if not _holds(rule.when, facts):
            continue
        raises = rule.min_tier is not None and tier_index(rule.min_tier) > tier_index(tier)
        shortens = rule.respond_within is not None and (
            respond_within is None or rule.respond_within < respond_within
        )
        if rule.min_tier is not None and raises:
            tier = rule.min_tier
        if shortens:
            respond_within = rule.respond_within
        if raises or shortens or rule.respond_within is not None:
            reasons.append(rule.describe())
    return TierDecision(tier, reasons, respond_within)
