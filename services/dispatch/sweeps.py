"""What a deadline sweep does to its due cases, kept in memory (pure): the handler loads of the
units involved, updated as the sweep moves cases between handlers, and the outcome of each case
(its row changes, its timeline step, its events), written for the whole batch at once.

A sweep reads the loads of every unit it needs with one query; moving a case from one handler to
another then changes the two counts here exactly as the per-case ``UPDATE`` would have changed
the next per-case count, so the handler each case gets is the one a case-by-case sweep in the same
order would pick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .assignment import HandlerLoad


class Loads:
    """Every handler of some units with their open cases, kept current within one sweep."""

    def __init__(self, by_unit: Mapping[str, list[HandlerLoad]]) -> None:
        self._staff = {unit: list(handlers) for unit, handlers in by_unit.items()}
        self._open = {h.id: h.open_cases for hs in by_unit.values() for h in hs}

    def of(self, unit: str) -> list[HandlerLoad]:
        """The unit's handlers with their current counts (a unit not read: no handlers)."""
        return [
            HandlerLoad(h.id, h.role, h.on_duty, self._open[h.id])
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


@dataclass(frozen=True)
class Step:
    """One timeline row (the columns of ``store.add_timeline``)."""

    case_id: str
    at: datetime
    event: str
    from_state: str | None = None
    to_state: str | None = None
    tier: str | None = None
    unit: str | None = None
    handler_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Swept:
    """What a sweep does to one case: the columns it changes, the step it records, the events it
    publishes (topic, payload, in order) and the deadline it counts as missed (for metrics)."""

    case_id: str
    changes: dict[str, Any]
    step: Step
    events: list[tuple[str, Any]] = field(default_factory=list)
    breach: tuple[str, str] | None = None  # (deadline, tier)
