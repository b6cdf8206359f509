"""Assignment rules (pure): which unit of a tier covers a case, and which of its handlers gets it.

- grid -> the case's grid; community -> its community;
- street or district -> the department whose categories include the case's category, looked for
  first among the departments of the case's street, then of its district (so a street-tier case
  may go to a district department such as 城管, urban management); if none owns it, the street
  office (street tier) or the district itself (district tier).

Units in ``exclude`` (returned, 退单) are skipped; when a tier has no unit left, the case goes one
tier up. Within the unit: the on-duty handler with the fewest open cases (ties by id), never a
party volunteer (党员志愿者 only take cases themselves, 接单); none on duty -> the unit as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from shared.contract.events import Tier

from .tiers import next_tier


@dataclass(frozen=True)
class Location:
    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None


@dataclass(frozen=True)
class Dept:
    code: str
    parent: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    tier: Tier
    unit: str
    notes: list[str] = field(default_factory=list)


def _owning(depts: Iterable[Dept], parent: str | None, category: str) -> list[str]:
    if not parent:
        return []
    return sorted(d.code for d in depts if d.parent == parent and category in d.categories)


def candidates(tier: Tier, loc: Location, category: str, depts: Collection[Dept]) -> list[str]:
    """The units of ``tier`` that may take the case, best first."""
    if tier == "grid":
        return [loc.grid] if loc.grid else []
    if tier == "community":
        return [loc.community] if loc.community else []
    if tier == "street":
        own = _owning(depts, loc.street, category) + _owning(depts, loc.district, category)
        return own + ([loc.street] if loc.street else [])
    own = _owning(depts, loc.district, category)
    return own + ([loc.district] if loc.district else [])


def route(
    tier: Tier,
    loc: Location,
    category: str,
    depts: Collection[Dept],
    exclude: Collection[str] = (),
) -> Route | None:
    """The unit for the case at ``tier`` or, when that tier has none left, the next tier up."""
    notes: list[str] = []
    current: Tier | None = tier
    while current is not None:
        for unit in candidates(current, loc, category, depts):
            if unit not in exclude:
                return Route(current, unit, notes)
        up = next_tier(current)
        if up is not None:
            notes.append(f"no {current} unit left for the case: {up}")
        current = up
    return None


@dataclass(frozen=True)
class HandlerLoad:
    id: str
    role: str
    on_duty: bool
    open_cases: int


class Loads:
    """Every handler of some units with their open cases, kept current within one batch.

    A batch (of opened cases, of due deadlines) reads the loads of every unit it needs with one
    query; moving a case from one handler to another then changes the two counts here exactly as
    the per-case ``UPDATE`` would have changed the next per-case count, so the handler each case
    gets is the one a case-by-case pass in the same order would pick."""

    def __init__(self, by_unit: Mapping[str, list[HandlerLoad]]) -> None:
        self._staff = {unit: list(handlers) for unit, handlers in by_unit.items()}
        self._open = {h.id: h.open_cases for hs in by_unit.values() for h in hs}
        self._assignable = {
            unit: [h for h in handlers if auto_assignable(h)] for unit, handlers in by_unit.items()
        }

    def pick(self, unit: str) -> str | None:
        """``pick_handler(self.of(unit))``, without copying the unit's handlers: a street's or
        a department's can be hundreds, and a batch picks for every case."""
        return _fewest(self._assignable.get(unit, ()), lambda h: self._open[h.id])

    def of(self, unit: str) -> list[HandlerLoad]:
        """The unit's handlers with their current counts (a unit not read: no handlers; a
        handler whose count has not changed is the one read, not a copy)."""
        return [
            h
            if (n := self._open[h.id]) == h.open_cases
            else HandlerLoad(h.id, h.role, h.on_duty, n)
            for h in self._staff.get(unit, ())
        ]

    def move(self, from_handler: str | None, to_handler: str | None) -> None:
        """An open case changed hands (None: the unit as a whole, counted for nobody)."""
        if from_handler == to_handler:
            return
        if from_handler in self._open:
            self._open[from_handler] -= 1
        if to_handler in self._open:
            self._open[to_handler] += 1


def auto_assignable(h: HandlerLoad) -> bool:
    return h.on_duty and h.role != "party_volunteer"


def pick_handler(handlers: Iterable[HandlerLoad], exclude: Collection[str] = ()) -> str | None:
    """The on-duty handler with the fewest open cases (ties by id); None: the unit as a whole."""
    return _fewest(
        (h for h in handlers if auto_assignable(h) and h.id not in exclude),
        lambda h: h.open_cases,
    )


def _fewest(eligible: Iterable[HandlerLoad], count: Callable[[HandlerLoad], int]) -> str | None:
    best = min(eligible, key=lambda h: (count(h), h.id), default=None)
    return best.id if best is not None else None


def next_handler(handlers: Iterable[HandlerLoad], current: str | None) -> str | None:
    """After a missed response deadline: the next handler of the unit (another one when there is
    one, by the same rule), else the current one if still on duty, else the unit as a whole."""
    pool = list(handlers)
    other = pick_handler(pool, exclude=[current] if current else [])
    if other is not None:
        return other
    return current if any(h.id == current and auto_assignable(h) for h in pool) else None


@dataclass(frozen=True)
class TargetUnit:
    """A transfer target as the registry knows it: a unit (with its level) or a department (with
    the level of the unit it belongs to)."""

    code: str
    level: str | None = None  # for a unit
    department_of: str | None = None  # for a department: the level of its parent unit


def unit_tier(t: TargetUnit) -> str | None:
    return t.department_of if t.department_of is not None else t.level


def transfer_refusal(case_tier: Tier, case_unit: str, target: TargetUnit | None) -> str | None:
    """Why ``target`` cannot take the case by transfer (None: it can). Transfers stay within the
    tier; a street-tier case may also go to a district department (as dispatch itself does)."""
    if target is None:
        return "unknown target_unit"
    if target.code == case_unit:
        return "target_unit is the assigned unit"
    tier = unit_tier(target)
    if tier == case_tier:
        return None
    if case_tier == "street" and target.department_of == "district":
        return None
    return f"target_unit is a {tier or 'unknown'}-level unit, the case is at {case_tier} tier"
