"""Dispatch's data (pure): a ``Case`` as dispatch keeps it, the ``CaseChange`` that updates it, the
``Step`` its timeline records, and an early merge waiting for its case.

``store`` is the only place that turns rows into these and these into SQL; everything else reads
typed attributes (``case.tier``), which mypy checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypedDict, Unpack

from shared.contract.events import Tier

from .assignment import Location
from .states import CaseView, State, Transition, approver_of


@dataclass(frozen=True, kw_only=True)
class Case:
    """One row of ``cases``: where the case is, who has it, its deadlines (columns in the
    table's order; defaults are the table's)."""

    case_id: str
    category: str
    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    building: str | None = None
    urgent: bool = False
    households: int | None = None
    supporters: int = 1
    start_tier: Tier
    tier: Tier
    tier_reasons: tuple[str, ...] = ()
    respond_within_s: float | None = None  # a rule's shorter response time (unscaled)
    unit: str
    handler_id: str | None = None
    state: State
    attempt: int = 1
    reopen_count: int = 0
    supervised: bool = False  # 督办
    supervisor_unit: str | None = None
    excluded_units: tuple[str, ...] = ()  # returned (退单) by these units
    dispatched_at: datetime
    respond_by: datetime | None = None
    resolve_by: datetime | None = None
    resolve_missed_at: datetime | None = None  # at the top tier: nothing to escalate to
    accepted_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_tier: Tier | None = None
    resolved_unit: str | None = None
    paused_at: datetime | None = None
    paused_until: datetime | None = None
    opened_at: datetime
    # when each stage's warning (黄牌) is due; None once warned (``stages.py``)
    respond_warn_at: datetime | None = None
    resolve_warn_at: datetime | None = None
    # an extension (缓办/延期) awaiting its decision: the deadline asked for, when, and the unit
    # that decides (``states.approver_of``), the handler's reason; ``extensions``: how many
    # were approved
    extension_to: datetime | None = None
    extension_requested_at: datetime | None = None
    extension_approver: str | None = None
    extension_reason: str | None = None
    extensions: int = 0
    # 核查结案: the unit that verifies the resolution (``states.verifier_of``), by when, its
    # warning (None once warned), and when the deadline was found missed (it fires once)
    verifier_unit: str | None = None
    verify_by: datetime | None = None
    verify_warn_at: datetime | None = None
    verify_missed_at: datetime | None = None
    # 插花地: the place's own (administrative) chain when another community serves it, which
    # reads the case but does not act on it; the location's codes are the serving chain. None:
    # its own
    admin_district: str | None = None
    admin_street: str | None = None
    admin_community: str | None = None
    admin_grid: str | None = None

    @property
    def location(self) -> Location:
        return Location(self.district, self.street, self.community, self.grid)

    @property
    def administrative(self) -> tuple[str, ...]:
        """插花地: the codes of the place's administrative chain (district to grid) when another
        community serves it; empty for every other place."""
        chain = (self.admin_district, self.admin_street, self.admin_community, self.admin_grid)
        return tuple(c for c in chain if c)

    @property
    def respond_within(self) -> timedelta | None:
        s = self.respond_within_s
        return None if s is None else timedelta(seconds=s)

    @property
    def view(self) -> CaseView:
        """What ``states.authorization_refusal`` looks at."""
        place = tuple(c for c in (self.district, self.street, self.community, self.grid) if c)
        approver = approver_of(self.tier, self.codes)
        return CaseView(
            self.state,
            self.tier,
            self.unit,
            self.handler_id,
            self.community,
            place,
            approver,
            self.verifier_unit,
        )

    @property
    def codes(self) -> dict[str, str | None]:
        """Its location's code per level."""
        return {
            "district": self.district,
            "street": self.street,
            "community": self.community,
            "grid": self.grid,
        }

    def apply(self, change: CaseChange) -> Case:
        """The case as ``change`` leaves it."""
        return Case.of({**self.__dict__, **change.columns()})

    @classmethod
    def of(cls, values: dict[str, Any]) -> Case:
        """A case from the value of every column (``CASE_COLUMNS``; ``store.case_of`` and
        ``apply`` have them all), without ``__init__``'s checks."""
        case = object.__new__(cls)
        case.__dict__.update(values)
        return case


CASE_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Case))
_CASE_DEFAULTS: Final = {
    f.name: f.default for f in dataclasses.fields(Case) if f.default is not dataclasses.MISSING
}
_CASE_KEYS: Final = frozenset(CASE_COLUMNS)


def _init_case(self: Case, **values: Any) -> None:
    """``Case.__init__``: the dataclass's keyword-only signature (what mypy checks every call
    against) and the same checks at run time, without a frozen dataclass's ``object.__setattr__``
    per field, five times slower for 34 fields (every row read, every change applied and every
    case opened builds a Case)."""
    fields = self.__dict__
    fields.update(_CASE_DEFAULTS)
    fields.update(values)
    if fields.keys() != _CASE_KEYS:
        missing = sorted(_CASE_KEYS - fields.keys())
        unknown = sorted(fields.keys() - _CASE_KEYS)
        raise TypeError(f"Case: missing {missing}, unknown {unknown}")


Case.__init__ = _init_case  # type: ignore[method-assign]


class CaseColumns(TypedDict, total=False):
    """The columns of ``cases`` a step may set, with their types (``CaseChange``'s arguments)."""

    category: str  # the command centre's reclassification (triage.py)
    start_tier: Tier  # the first dispatch after triage
    state: State
    tier: Tier
    unit: str
    handler_id: str | None
    attempt: int
    tier_reasons: tuple[str, ...]
    respond_within_s: float | None
    dispatched_at: datetime
    respond_by: datetime | None
    resolve_by: datetime | None
    resolve_missed_at: datetime | None
    accepted_at: datetime | None
    resolved_at: datetime | None
    resolved_tier: Tier | None
    resolved_unit: str | None
    paused_at: datetime | None
    paused_until: datetime | None
    respond_warn_at: datetime | None
    resolve_warn_at: datetime | None
    households: int | None
    supporters: int
    urgent: bool
    reopen_count: int
    supervised: bool
    supervisor_unit: str | None
    excluded_units: tuple[str, ...]
    extension_to: datetime | None
    extension_requested_at: datetime | None
    extension_approver: str | None
    extension_reason: str | None
    extensions: int
    verifier_unit: str | None
    verify_by: datetime | None
    verify_warn_at: datetime | None
    verify_missed_at: datetime | None


class CaseChange:
    """The columns of ``cases`` one step sets, as typed keyword arguments (``CaseColumns``: mypy
    checks each name and value); every other column is kept. Immutable."""

    __slots__ = ("_columns",)
    _columns: CaseColumns

    def __init__(self, **columns: Unpack[CaseColumns]) -> None:
        object.__setattr__(self, "_columns", columns)

    def columns(self) -> Mapping[str, Any]:
        """The columns it sets, in the order given (changes made at one place share one
        statement: ``store.update_cases``)."""
        return self._columns

    def __or__(self, other: CaseChange) -> CaseChange:
        """This change, then ``other`` (what ``other`` sets wins)."""
        both: CaseColumns = {**self._columns, **other._columns}
        return CaseChange(**both)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaseChange) and self._columns == other._columns

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "CaseChange(" + ", ".join(f"{k}={v!r}" for k, v in self._columns.items()) + ")"


CHANGE_COLUMNS: Final = tuple(CaseColumns.__annotations__)
assert set(CHANGE_COLUMNS) <= set(CASE_COLUMNS)


@dataclass(frozen=True, slots=True)
class Step:
    """One timeline row (the columns of ``store.add_timeline_steps``)."""

    case_id: str
    at: datetime
    event: str
    from_state: str | None = None
    to_state: str | None = None
    tier: str | None = None
    unit: str | None = None
    handler_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        t: Transition,
        after: Case,
        at: datetime,
        detail: dict[str, Any],
        *,
        actor: str | None = None,
    ) -> Step:
        """The row of transition ``t``, which left the case as ``after``: its tier, unit and
        handler (``actor``: the handler who acted instead)."""
        return cls(
            after.case_id,
            at,
            t.event,
            from_state=t.from_state,
            to_state=t.to_state,
            tier=after.tier,
            unit=after.unit,
            handler_id=actor if actor is not None else after.handler_id,
            detail=detail,
        )


@dataclass(frozen=True, slots=True)
class EarlyMerge:
    """Merges (附议) that came before their case's ``cases.opened``: the most supporters and
    households, and urgent if any was."""

    supporters: int
    households: int | None
    urgent: bool


# Why a handler action was refused, by kind: the case is unknown; the handler may not act on it;
# the case's state (or place) does not allow it; a field of the action is wrong for this case.
RefusalKind = Literal["unknown_case", "not_permitted", "conflict", "invalid"]


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # what handler.actions.rejected says
    kind: RefusalKind = "conflict"
    field: str | None = None  # for "invalid": the action's field at fault


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """A row of ``action_outcomes``: what became of one handler action (``refusal`` None:
    applied)."""

    action_id: str
    case_id: str
    handler_id: str
    action: str
    at: datetime
    refusal: Refusal | None


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One of the classifier's best categories for a case, with its probability."""

    category: str
    probability: float


@dataclass(frozen=True, slots=True)
class TriageEntry:
    """A row of ``triage``: what the command centre reads to decide a case's category (人工分拨);
    the text as intake published it (personal data masked)."""

    case_id: str
    since: datetime
    reasons: tuple[str, ...]
    confidence: float
    suggestions: tuple[Suggestion, ...]
    moderation: tuple[str, ...]
    source: str
    title: str | None
    description: str
    # 退单: the unit that returned the case to the queue, and why (None: opened needing triage)
    returned_by: str | None = None
    return_note: str | None = None
