"""A live board kept in memory (pure): an area's open cases as the board's read model keeps
them (``board_due``), counted once when loaded and then changed case by case, so that a live
board costs what changed instead of a recount of the area (a district's 100,000 cases: a second
of PostgreSQL per build).

``LiveBoard.load`` takes every kept row of the area (``extend``: in parts, so that a caller
can let its event loop run between them); ``apply`` the rows kept since (of any
unit: a case may have left the area, or closed: ``open`` false); ``advance`` moves the cases
whose due status changed with time alone (each case's next due time in a heap). ``counted`` and
``listed`` then answer what ``board.count_cases`` and ``board.list_cases`` answer over the same
cases at that time (``tests/dispatch/test_live_board.py``); the overdue and due-soon cases are
kept in deadline order (``sortedcontainers``), so that a board's warnings cost their length.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sortedcontainers import SortedKeyList

from ..due import Due, DueTimes, due_at
from .board import (
    _NEVER,
    RECENT,
    WARNINGS,
    WIDTH,
    AreaUnit,
    BoardCase,
    Counted,
    Listed,
    add_case,
    places,
)


@dataclass(frozen=True, slots=True)
class Kept:
    """A row of the board's read model (``board_due``)."""

    case_id: str
    open: bool
    unit: str
    street: str | None
    community: str | None
    grid: str | None
    building: str | None
    tier: str
    category: str
    state: str
    urgent: bool
    supervised: bool
    changed_at: datetime
    deadline: datetime | None
    missed: bool
    soon_at: datetime | None
    late_at: datetime | None

    def due(self, now: datetime) -> Due:
        return due_at(DueTimes(self.missed, self.soon_at, self.late_at), now)

    def next_change(self, now: datetime) -> datetime | None:
        """When its due status changes next with time alone (None: never)."""
        if self.missed:
            return None
        for at in (self.soon_at, self.late_at):
            if at is not None and at > now:
                return at
        return None

    def case(self, now: datetime) -> BoardCase:
        return BoardCase(
            self.case_id,
            self.category,
            self.state,  # type: ignore[arg-type]
            self.tier,  # type: ignore[arg-type]
            self.unit,
            self.street,
            self.community,
            self.grid,
            self.building,
            self.due(now),
            self.deadline,
            self.changed_at,
            self.urgent,
            self.supervised,
        )


class LiveBoard:
    """The open cases of an area (its units' codes: a case is in it when its unit is), their
    counts per unit and in total, kept up to date by ``apply`` and ``advance``."""

    def __init__(self, area: Sequence[AreaUnit]) -> None:
        self.codes = frozenset(u.code for u in area)
        self.departments = frozenset(u.code for u in area if u.level == "department")
        self._reset()

    def _reset(self) -> None:
        self.now: datetime | None = None
        self._cases: dict[str, tuple[Kept, Due]] = {}  # case id -> (row, its due status)
        self._tally: dict[str, list[int]] = {}
        self._tuples: dict[str, tuple[int, ...]] = {}  # the tallies with open cases, as tuples
        self._dirty: set[str] = set()  # the units whose tally changed since ``counted``
        self._total = [0] * WIDTH
        # the overdue and the due-soon cases, in the warnings' order
        self._due: dict[str, SortedKeyList] = {
            due: SortedKeyList(key=_by_deadline) for due in ("overdue", "due_soon")
        }
        self._heap: list[tuple[datetime, int, str]] = []  # (next due change, seq, case id)
        self._seq = itertools.count()
        self._recent: list[Kept] | None = None  # the RECENT latest (None: to be found again)

    def __len__(self) -> int:
        return len(self._cases)

    def load(self, rows: Iterable[Kept], now: datetime) -> None:
        """Every kept row of the area (what was there before is forgotten)."""
        self._reset()
        self.extend(rows, now)

    def extend(self, rows: Iterable[Kept], now: datetime) -> None:
        """More of the area's kept rows, while loading it (after ``load`` of the first part)."""
        self.now = now
        for row in rows:
            self._add(row, now)

    def apply(self, rows: Iterable[Kept], now: datetime) -> None:
        """Rows kept since (of any unit), in the order they were kept; then ``advance``."""
        self.advance(now)
        rows = list(rows)
        changed = {r.case_id for r in rows}
        for row in rows:
            self._remove(row.case_id)
            self._add(row, now)
        if self._recent is not None:
            kept = [r for r in self._recent if r.case_id not in changed]
            if any(self._fell(r) for r in self._recent if r.case_id in changed):
                self._recent = None  # one of the latest closed, left or older: found again
            else:  # the latest so far, with the changed rows still held
                held = [self._cases[i][0] for i in changed if i in self._cases]
                self._recent = heapq.nlargest(RECENT, kept + held, key=_latest)

    def _fell(self, row: Kept) -> bool:
        """Whether a case of the latest is no longer held, or no longer as late."""
        held = self._cases.get(row.case_id)
        return held is None or _latest(held[0]) < _latest(row)

    def advance(self, now: datetime) -> None:
        """The cases whose due status changed with time between the last time and ``now``."""
        self.now = now
        while self._heap and self._heap[0][0] <= now:
            _, _, case_id = heapq.heappop(self._heap)
            held = self._cases.get(case_id)
            if held is None:
                continue  # closed or left since (its entry stays until it comes up)
            row, due = held
            if row.due(now) != due:
                self._remove(case_id)
                self._add(row, now)
            elif (at := row.next_change(now)) is not None:
                heapq.heappush(self._heap, (at, next(self._seq), case_id))

    def counted(self) -> Counted:
        """The counts per unit with any open case, and the totals (the units' tuples made again
        only for the units a change touched since)."""
        for code in self._dirty:
            t = self._tally[code]
            if t[0]:
                self._tuples[code] = tuple(t)
            else:
                self._tuples.pop(code, None)
        self._dirty.clear()
        return Counted(dict(self._tuples), tuple(self._total))

    def listed(self) -> Listed:
        """The overdue and due-soon cases (each at most ``WARNINGS``) and the ``RECENT`` latest,
        in ``board.list_cases``'s orders."""
        assert self.now is not None
        now = self.now

        def first(rows: SortedKeyList) -> list[BoardCase]:
            return [r.case(now) for r in rows.islice(0, WARNINGS)]

        if self._recent is None:  # a case of the latest left: all of them again
            self._recent = heapq.nlargest(RECENT, (r for r, _ in self._cases.values()), key=_latest)
        return Listed(
            first(self._due["overdue"]),
            first(self._due["due_soon"]),
            [r.case(now) for r in self._recent],
        )

    # --- the counts ---------------------------------------------------------------------------

    def _count(self, row: Kept, due: Due, by: int) -> None:
        codes = places(row, self.departments)
        self._dirty |= codes
        add_case(
            (self._total, *(self._tally.setdefault(c, [0] * WIDTH) for c in codes)),
            row.tier,
            due,
            by,
        )

    def _add(self, row: Kept, now: datetime) -> None:
        if not row.open or row.unit not in self.codes:
            return
        due = row.due(now)
        self._cases[row.case_id] = (row, due)
        self._count(row, due, 1)
        if due in self._due:
            self._due[due].add(row)
        if (at := row.next_change(now)) is not None:
            heapq.heappush(self._heap, (at, next(self._seq), row.case_id))

    def _remove(self, case_id: str) -> None:
        held = self._cases.pop(case_id, None)
        if held is None:
            return
        row, due = held
        self._count(row, due, -1)
        if due in self._due:
            self._due[due].discard(row)


def _by_deadline(row: Kept) -> tuple[datetime, str]:
    return (row.deadline or _NEVER, row.case_id)


def _latest(row: Kept) -> tuple[datetime, str]:
    return (row.changed_at, row.case_id)
