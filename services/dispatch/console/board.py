"""The command-centre board (pure): an area's open cases counted by street, community, grid,
building and department and by tier, its deadline warnings and its latest cases.

A case counts at every unit of its place (street, community, grid, building: where it is, as
intake located it) and, when a department has it, at that department too (where it is handled);
the board's totals count each case once. Warnings: the overdue cases (most overdue first) and
the due-soon ones (nearest deadline first), each list cut at ``WARNINGS``; their counts are the
totals'. Due status as ``due.py`` defines it.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pydantic import BaseModel, Field

from shared.contract.events import Tier

from ..due import Due
from ..states import State

WARNINGS: Final = 50
RECENT: Final = 20
PLACE_LEVELS: Final = ("street", "community", "grid", "building")
_NEVER: Final = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AreaUnit:
    """A unit of the board's area: a registry unit, or a department (level ``department``)."""

    code: str
    name: str
    level: str
    parent: str | None


@dataclass(frozen=True, slots=True)
class BoardCase:
    """What the board needs of an open case."""

    case_id: str
    category: str
    state: State
    tier: Tier
    unit: str
    street: str | None
    community: str | None
    grid: str | None
    building: str | None
    due: Due | None
    deadline: datetime | None  # its nearest running deadline (or when it was missed at the top)
    changed_at: datetime  # its last dispatch or update
    urgent: bool
    supervised: bool


# --- the answer ------------------------------------------------------------------------------


class TierCounts(BaseModel):
    grid: int = 0
    community: int = 0
    street: int = 0
    district: int = 0


class Counts(BaseModel):
    open: int = 0
    due_soon: int = 0
    overdue: int = 0
    by_tier: TierCounts = Field(default_factory=TierCounts)


class UnitCounts(Counts):
    code: str
    name: str
    level: str = Field(description="street, community, grid, building or department")
    parent: str | None


class BoardUnit(BaseModel):
    code: str
    name: str
    level: str


class BoardItem(BaseModel):
    """A case on the board (dispatch holds no personal data: no reporter, no description)."""

    case_id: str
    category: str
    category_name: str
    state: State
    tier: Tier
    unit: str = Field(description="Who has it")
    unit_name: str
    street: str | None
    community: str | None
    community_name: str | None
    grid: str | None
    grid_name: str | None
    building: str | None
    due: Due | None
    deadline: datetime | None = Field(description="The nearest running deadline")
    changed_at: datetime
    urgent: bool
    supervised: bool = Field(description="督办")


class Warnings(BaseModel):
    overdue: list[BoardItem] = Field(description=f"Most overdue first, at most {WARNINGS}")
    due_soon: list[BoardItem] = Field(description=f"Nearest deadline first, at most {WARNINGS}")


class Board(BaseModel):
    unit: BoardUnit = Field(description="The board's area: the caller's unit")
    now: datetime = Field(description="The server's time the due status is computed at")
    totals: Counts = Field(description="Every open case of the area, once")
    units: list[UnitCounts] = Field(
        description="Every unit of the area (zero counts included), parents before children; "
        "without the buildings when asked (buildings=false)"
    )
    warnings: Warnings
    recent: list[BoardItem] = Field(description=f"The {RECENT} latest dispatched or changed")
    categories: dict[str, str] = Field(description="Category code -> name")


# --- building it -------------------------------------------------------------------------------


_TIERS: Final = ("grid", "community", "street", "district")
_TIER_SLOT: Final[dict[str, int]] = {t: 3 + i for i, t in enumerate(_TIERS)}
_DUE_SLOT: Final[dict[Due | None, int]] = {"due_soon": 1, "overdue": 2}
WIDTH: Final = 3 + len(_TIERS)
Tally = tuple[int, ...]  # open, due soon, overdue, then one per tier (grid .. district)
TALLY_FIELDS: Final = ("open", "due_soon", "overdue", *_TIERS)  # a tally's, in order
ZERO: Final[Tally] = (0,) * WIDTH


def tally_row(open_: int, due_soon: int, overdue: int, by_tier: dict[str, int]) -> Tally:
    """A tally from its counts (what the SQL of ``queries.count_open`` answers)."""
    return (open_, due_soon, overdue, *(by_tier.get(t, 0) for t in _TIERS))


def counts_fields(row: Sequence[int]) -> dict[str, Any]:
    """The fields of ``Counts`` from a tally row."""
    return {
        "open": row[0],
        "due_soon": row[1],
        "overdue": row[2],
        "by_tier": {t: row[_TIER_SLOT[t]] for t in _TIERS},
    }


class Placed(Protocol):
    """What a case's counting needs of it (a ``BoardCase``, a live board's ``Kept`` row)."""

    @property
    def unit(self) -> str: ...
    @property
    def street(self) -> str | None: ...
    @property
    def community(self) -> str | None: ...
    @property
    def grid(self) -> str | None: ...
    @property
    def building(self) -> str | None: ...


def places(case: Placed, departments: Collection[str]) -> set[str]:
    """The units a case counts at: its place, and the department that has it."""
    codes = {c for c in (case.street, case.community, case.grid, case.building) if c}
    if case.unit in departments:
        codes.add(case.unit)
    return codes


def add_case(rows: Iterable[list[int]], tier: str, due: Due | None, by: int = 1) -> None:
    """One case added to each of the tallies ``rows`` (``by`` -1: taken away): open, its tier,
    its due status."""
    tier_slot = _TIER_SLOT[tier]
    due_slot = _DUE_SLOT.get(due)
    for row in rows:
        row[0] += by
        row[tier_slot] += by
        if due_slot is not None:
            row[due_slot] += by


@dataclass(frozen=True, slots=True)
class Counted:
    """An area's open cases counted: a tally per unit code that has any, and the totals."""

    units: dict[str, Tally]
    total: Tally


def count_cases(area: Sequence[AreaUnit], cases: Iterable[BoardCase]) -> Counted:
    """The counts by unit in Python (the definition ``queries.count_open``'s SQL is tested
    against): a case counts once at each unit of ``places``, the totals once."""
    departments = {u.code for u in area if u.level == "department"}
    tally: dict[str, list[int]] = {}
    total = [0] * WIDTH
    for case in cases:
        codes = places(case, departments)
        add_case((total, *(tally.setdefault(c, [0] * WIDTH) for c in codes)), case.tier, case.due)
    return Counted({c: tuple(r) for c, r in tally.items()}, tuple(total))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A board as built once for every reader: the whole board (``board``), the board without
    the buildings, and the units whose counts changed since another snapshot (``changed``)."""

    top: AreaUnit
    units: list[AreaUnit]  # parents first, the top unit left out
    counts: dict[str, Tally]  # every unit of ``units``: zero counts included
    total: Tally
    warnings: Warnings
    recent: list[BoardItem]
    categories: dict[str, str]
    now: datetime

    def rows(self, units: Iterable[AreaUnit]) -> list[dict[str, Any]]:
        return [
            {
                "code": u.code,
                "name": u.name,
                "level": u.level,
                "parent": u.parent,
                **counts_fields(self.counts[u.code]),
            }
            for u in units
        ]

    def board(self, *, buildings: bool = True) -> Board:
        """The board; without the buildings' rows when not ``buildings`` (a district has 25,000:
        the map carries their counts, ``GET /console/api/map?counts=true``)."""
        units = self.units if buildings else [u for u in self.units if u.level != "building"]
        # validated in one call (pydantic's core, not a model's __init__ per unit: a district
        # has 26,000 units)
        return Board.model_validate(
            {
                "unit": BoardUnit(code=self.top.code, name=self.top.name, level=self.top.level),
                "now": self.now,
                "totals": counts_fields(self.total),
                "units": self.rows(units),
                "warnings": self.warnings,
                "recent": self.recent,
                "categories": self.categories,
            }
        )

    def changed(self, since: dict[str, Tally]) -> BoardDelta:
        """What changed since a board whose counts were ``since``: the totals, the lists, and
        the units (buildings included) whose counts differ."""
        moved = [u for u in self.units if since.get(u.code) != self.counts[u.code]]
        return BoardDelta.model_validate(
            {
                "now": self.now,
                "totals": counts_fields(self.total),
                "units": self.rows(moved),
                "warnings": self.warnings,
                "recent": self.recent,
            }
        )


class BoardDelta(BaseModel):
    """What changed on a board since the last one sent on the same stream (``event: delta`` of
    ``GET /console/api/events?deltas=true``): replaces the totals, the lists and the rows of the
    units it names (every other unit's counts are as they were)."""

    now: datetime
    totals: Counts
    units: list[UnitCounts] = Field(description="The units whose counts changed, buildings too")
    warnings: Warnings
    recent: list[BoardItem]


def snapshot(
    top: AreaUnit,
    area: Sequence[AreaUnit],
    counted: Counted,
    listed: Listed,
    categories: dict[str, str],
    now: datetime,
    ordered: Sequence[AreaUnit] | None = None,
) -> Snapshot:
    """The board of ``top`` from its area, its counts and its listed cases (``ordered``: the
    area's ``rows_in_order``, when the caller keeps them)."""
    index = {u.code: u for u in area}
    ordered = list(rows_in_order(top.code, area) if ordered is None else ordered)

    def item(c: BoardCase) -> BoardItem:
        def name(code: str | None) -> str | None:
            return index[code].name if code and code in index else code

        return BoardItem(
            case_id=c.case_id,
            category=c.category,
            category_name=categories.get(c.category, c.category),
            state=c.state,
            tier=c.tier,
            unit=c.unit,
            unit_name=name(c.unit) or c.unit,
            street=c.street,
            community=c.community,
            community_name=name(c.community),
            grid=c.grid,
            grid_name=name(c.grid),
            building=c.building,
            due=c.due,
            deadline=c.deadline,
            changed_at=c.changed_at,
            urgent=c.urgent,
            supervised=c.supervised,
        )

    return Snapshot(
        top=top,
        units=ordered,
        counts={u.code: counted.units.get(u.code, ZERO) for u in ordered},
        total=counted.total,
        warnings=Warnings(
            overdue=[item(c) for c in listed.overdue[:WARNINGS]],
            due_soon=[item(c) for c in listed.due_soon[:WARNINGS]],
        ),
        recent=[item(c) for c in listed.recent[:RECENT]],
        categories=categories,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class Listed:
    """The cases a board lists: the overdue (most overdue first), the due soon (nearest deadline
    first), each at most ``WARNINGS``, and the ``RECENT`` latest dispatched or changed."""

    overdue: list[BoardCase]
    due_soon: list[BoardCase]
    recent: list[BoardCase]


def list_cases(cases: Iterable[BoardCase]) -> Listed:
    """The listed cases in Python (the order ``queries.list_open``'s SQL is tested against)."""
    every = list(cases)
    overdue = [c for c in every if c.due == "overdue"]
    due_soon = [c for c in every if c.due == "due_soon"]
    by_deadline = sorted(overdue, key=lambda c: (c.deadline or _NEVER, c.case_id))
    nearest = sorted(due_soon, key=lambda c: (c.deadline or _NEVER, c.case_id))
    latest = heapq.nlargest(RECENT, every, key=lambda c: (c.changed_at, c.case_id))
    return Listed(by_deadline[:WARNINGS], nearest[:WARNINGS], latest)


def build_board(
    top: AreaUnit,
    area: Sequence[AreaUnit],
    cases: Iterable[BoardCase],
    categories: dict[str, str],
    now: datetime,
) -> Board:
    """The board of ``top`` counted in Python from its open cases (what the SQL is tested
    against)."""
    every = list(cases)
    counted = count_cases(area, every)
    return snapshot(top, area, counted, list_cases(every), categories, now).board()


def rows_in_order(top: str, area: Sequence[AreaUnit]) -> list[AreaUnit]:
    """The board's rows of the area of ``top``: its units parents first, the top left out (a
    district's 26,000 units: about 0.15 s, kept with the area by ``queries.Areas``)."""
    return [u for u in _parents_first(top, area) if u.code != top]


def _parents_first(top: str, area: Sequence[AreaUnit]) -> list[AreaUnit]:
    """The area's units, each after its parent (depth first from ``top``, siblings by code);
    departments after the places, and anything not below ``top`` last."""
    children: dict[str | None, list[AreaUnit]] = {}
    for u in area:
        children.setdefault(u.parent, []).append(u)
    out: list[AreaUnit] = []
    seen: set[str] = set()

    def walk(code: str) -> None:
        for u in sorted(children.get(code, ()), key=lambda u: (u.level == "department", u.code)):
            if u.code not in seen:
                seen.add(u.code)
                out.append(u)
                walk(u.code)

    for u in area:
        if u.code == top:
            seen.add(u.code)
            out.append(u)
    walk(top)
    out.extend(u for u in area if u.code not in seen)
    return out
