"""Merging duplicate reports (附议, seconding): where a report may merge, and, for a batch of
reports, which open a case and which join one. Pure: no SQL, no Kafka.

A report merges into the newest open case of its category opened within the merge window at
the same building; without a building, in the same grid; without a grid, at the same place.
Reports that may merge with each other share a lock key (category and grid, or place), which the
store locks before looking for the case.

A report without such a case may still be the same matter as an open case nearby, told through
another channel (``similarity.py``): then it joins that case (``by="nearby"``). Reports with a
point also lock the cells around it (``nearby_lock_keys``), so two reports within the radius of
each other are serialised as well.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .coords import neighbourhood
from .similarity import NearbyCase, NearbyRule, Sketch


@dataclass(frozen=True)
class MergeTarget:
    """The set of open cases a report may merge into."""

    category: str
    kind: str  # building | grid | place
    value: str


def merge_target(category: str, lineage: dict[str, str], place: str) -> MergeTarget:
    if building := lineage.get("building"):
        return MergeTarget(category, "building", building)
    if grid := lineage.get("grid"):
        return MergeTarget(category, "grid", grid)
    return MergeTarget(category, "place", place)


def merge_lock_key(category: str, lineage: dict[str, str], place: str) -> str:
    """Reports that may merge share a key: same category and grid (or place, without a grid)."""
    return f"intake-merge:{category}:{lineage.get('grid') or place}"


def nearby_lock_keys(sketch: Sketch, rule: NearbyRule) -> list[str]:
    """The cells around a report's point (``coords.neighbourhood``): two reports within the
    radius share one of them."""
    cells = neighbourhood(sketch.lon, sketch.lat, rule.lock_cell_m())
    return [f"intake-near:{sketch.category}:{cx}:{cy}" for cx, cy in cells]


@dataclass(frozen=True)
class Placement:
    case_id: str
    opens: bool  # True: the report opens this case; False: it merges into it
    by: str = "place"  # what made it merge: place | nearby


def place_reports(
    targets: list[MergeTarget],
    open_cases: dict[MergeTarget, str],
    new_case_id: Callable[[], str],
    sketches: Sequence[Sketch | None] = (),
    nearby: Sequence[NearbyCase] = (),
    rule: NearbyRule | None = None,
) -> list[Placement]:
    """For reports in arrival order with their targets, given the open case found for each
    target (if any): the first report of a target without an open case opens one; every other
    report merges into its target's case, including a case opened earlier in the same batch.

    With a ``rule``, a report whose target has no case and that has a sketch (``sketches[i]``)
    first looks for the same matter among the ``nearby`` open cases and the cases opened
    earlier in the batch; when it finds one it merges there (and its target's later reports
    with it)."""
    cases = dict(open_cases)
    near = list(nearby)
    out = []
    for i, t in enumerate(targets):
        case_id = cases.get(t)
        if case_id is not None:
            out.append(Placement(case_id, opens=False))
            continue
        sketch = sketches[i] if i < len(sketches) else None
        match = rule.best(sketch, near) if rule is not None and sketch is not None else None
        if match is not None:
            cases[t] = match.case_id
            out.append(Placement(match.case_id, opens=False, by="nearby"))
            continue
        case_id = cases[t] = new_case_id()
        if sketch is not None:
            near.append(NearbyCase(case_id, sketch))
        out.append(Placement(case_id, opens=True))
    return out


def supporter_counts_after_batch(
    placements: list[Placement],
    new_supporter: list[bool],
    counts_before: dict[str, int],
) -> dict[str, int]:
    """Each case merged into by the batch, with its supporter count after the batch: its count
    before (``counts_before``; 1 for a case the batch opened) plus the merges that added a new
    distinct supporter."""
    after: dict[str, int] = {}
    for p, new in zip(placements, new_supporter, strict=True):
        if p.opens:
            continue
        count = after.get(p.case_id, counts_before.get(p.case_id, 1))
        after[p.case_id] = count + 1 if new else count
    return after


def supporter_counts_after_each(
    placements: list[Placement],
    new_supporter: list[bool],
    final_counts: dict[str, int],
) -> list[int]:
    """The case's supporter count just after each report joined it, given whether the report
    added a new distinct supporter and each case's count after the whole batch."""
    remaining = dict(final_counts)
    out = [0] * len(placements)
    for i in range(len(placements) - 1, -1, -1):
        case_id = placements[i].case_id
        out[i] = remaining.get(case_id, 1)
        if new_supporter[i] and case_id in remaining:
            remaining[case_id] -= 1
    return out
