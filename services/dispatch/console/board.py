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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

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
        description="Every unit of the area (zero counts included), parents before children"
    )
    warnings: Warnings
    recent: list[BoardItem] = Field(description=f"The {RECENT} latest dispatched or changed")
    categories: dict[str, str] = Field(description="Category code -> name")


# --- building it -------------------------------------------------------------------------------


_TIERS: Final = ("grid", "community", "street", "district")
_TIER_SLOT: Final = {t: 3 + i for i, t in enumerate(_TIERS)}
_DUE_SLOT: Final[dict[Due | None, int]] = {"due_soon": 1, "overdue": 2}
_WIDTH: Final = 3 + len(_TIERS)


def _counts(row: list[int]) -> dict[str, Any]:
    """The fields of ``Counts`` from a tally row."""
    return {
        "open": row[0],
        "due_soon": row[1],
        "overdue": row[2],
        "by_tier": {t: row[_TIER_SLOT[t]] for t in _TIERS},
    }


def places(case: BoardCase, departments: set[str]) -> set[str]:
    """The units a case counts at: its place, and the department that has it."""
    codes = {c for c in (case.street, case.community, case.grid, case.building) if c}
    if case.unit in departments:
        codes.add(case.unit)
    return codes


def build_board(
    top: AreaUnit,
    area: Sequence[AreaUnit],
    cases: Iterable[BoardCase],
    categories: dict[str, str],
    now: datetime,
) -> Board:
    index = {u.code: u for u in area}
    ordered = _parents_first(top.code, area)
    # counted as plain lists (open, due soon, overdue, then one per tier), the models made once
    # at the end: a case counts at four or five units, 100,000 cases in a district
    tally: dict[str, list[int]] = {u.code: [0] * _WIDTH for u in ordered}
    departments = {u.code for u in area if u.level == "department"}
    total = [0] * _WIDTH
    overdue: list[BoardCase] = []
    due_soon: list[BoardCase] = []
    every: list[BoardCase] = []
    for case in cases:
        due = _DUE_SLOT.get(case.due)
        tier = _TIER_SLOT[case.tier]
        every.append(case)
        for row in (total, *(tally[c] for c in places(case, departments) if c in tally)):
            row[0] += 1
            row[tier] += 1
            if due is not None:
                row[due] += 1
        if case.due == "overdue":
            overdue.append(case)
        elif case.due == "due_soon":
            due_soon.append(case)
    units = [
        {
            "code": u.code,
            "name": u.name,
            "level": u.level,
            "parent": u.parent,
            **_counts(tally[u.code]),
        }
        for u in ordered
        if u.code != top.code
    ]

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

    by_deadline = sorted(overdue, key=lambda c: (c.deadline or _NEVER, c.case_id))
    nearest = sorted(due_soon, key=lambda c: (c.deadline or _NEVER, c.case_id))
    latest = heapq.nlargest(RECENT, every, key=lambda c: (c.changed_at, c.case_id))
    # validated in one call (pydantic's core, not a model's __init__ per unit: a district has
    # 26,000 units)
    return Board.model_validate(
        {
            "unit": BoardUnit(code=top.code, name=top.name, level=top.level),
            "now": now,
            "totals": _counts(total),
            "units": units,
            "warnings": Warnings(
                overdue=[item(c) for c in by_deadline[:WARNINGS]],
                due_soon=[item(c) for c in nearest[:WARNINGS]],
            ),
            "recent": [item(c) for c in latest[:RECENT]],
            "categories": categories,
        }
    )


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
