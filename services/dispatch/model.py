"""Dispatch's data (pure): a ``Case`` as dispatch keeps it, the ``CaseChange`` that updates it, the
``Step`` its timeline records, and an early merge waiting for its case.

``store`` is the only place that turns rows into these and these into SQL; everything else reads
typed attributes (``case.tier``), which mypy checks.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from shared.events import Tier

from .assignment import Location
from .states import CaseView, State, Transition


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

    @property
    def location(self) -> Location:
        return Location(self.district, self.street, self.community, self.grid)

    @property
    def respond_within(self) -> timedelta | None:
        s = self.respond_within_s
        return None if s is None else timedelta(seconds=s)

    @property
    def view(self) -> CaseView:
        """What ``states.authorization_refusal`` looks at."""
        return CaseView(self.state, self.tier, self.unit, self.handler_id, self.community)

    def apply(self, change: CaseChange) -> Case:
        """The case as ``change`` leaves it."""
        return Case.of({**self.__dict__, **change.columns()})

    @classmethod
    def of(cls, values: dict[str, Any]) -> Case:
        """A case from the value of every column (``CASE_COLUMNS``), without the per-field
        assignments of a frozen dataclass's ``__init__`` (which checks no more: every row read
        and every change applied goes through here, ``store.case_of`` and ``apply``)."""
        case = object.__new__(cls)
        case.__dict__.update(values)
        return case


CASE_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Case))


class Keep(enum.Enum):
    """A column a ``CaseChange`` leaves as it is (None is a value it may set)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


class CaseChange:
    """The columns of ``cases`` one step sets, as typed keyword arguments; every other one is
    kept (``KEEP``). Immutable; it holds only the columns it sets (a change is made for every
    merge and every due case: no per-column attribute for the ones it leaves alone)."""

    __slots__ = ("_columns",)
    _columns: dict[str, Any]

    def __init__(
        self,
        *,
        state: State | Keep = KEEP,
        tier: Tier | Keep = KEEP,
        unit: str | Keep = KEEP,
        handler_id: str | Keep | None = KEEP,
        attempt: int | Keep = KEEP,
        tier_reasons: tuple[str, ...] | Keep = KEEP,
        respond_within_s: float | Keep | None = KEEP,
        dispatched_at: datetime | Keep = KEEP,
        respond_by: datetime | Keep | None = KEEP,
        resolve_by: datetime | Keep | None = KEEP,
        resolve_missed_at: datetime | Keep | None = KEEP,
        accepted_at: datetime | Keep | None = KEEP,
        resolved_at: datetime | Keep | None = KEEP,
        resolved_tier: Tier | Keep | None = KEEP,
        resolved_unit: str | Keep | None = KEEP,
        paused_at: datetime | Keep | None = KEEP,
        paused_until: datetime | Keep | None = KEEP,
        households: int | Keep | None = KEEP,
        supporters: int | Keep = KEEP,
        urgent: bool | Keep = KEEP,
        reopen_count: int | Keep = KEEP,
        supervised: bool | Keep = KEEP,
        supervisor_unit: str | Keep | None = KEEP,
        excluded_units: tuple[str, ...] | Keep = KEEP,
    ) -> None:
        given = locals()
        del given["self"]
        object.__setattr__(self, "_columns", {k: v for k, v in given.items() if v is not KEEP})

    def columns(self) -> Mapping[str, Any]:
        """The columns it sets, in the order of the parameters (changes of one kind share one
        statement)."""
        return self._columns

    def __or__(self, other: CaseChange) -> CaseChange:
        """This change, then ``other`` (what ``other`` sets wins), columns in the same order."""
        both = {**self._columns, **other._columns}
        change = object.__new__(CaseChange)
        object.__setattr__(change, "_columns", {k: both[k] for k in CHANGE_COLUMNS if k in both})
        return change

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CaseChange) and self._columns == other._columns

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "CaseChange(" + ", ".join(f"{k}={v!r}" for k, v in self._columns.items()) + ")"


CHANGE_COLUMNS: Final = tuple(inspect.signature(CaseChange).parameters)
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
