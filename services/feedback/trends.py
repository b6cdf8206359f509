"""Figures over recent months (pure), as the command-centre board charts them: a unit's and its
children's rates month by month, the children's ranking in each month, and the hot issues
(高频问题) with their count in every month.

``api`` reads each unit's official figures per month (``official.figures``: frozen or
provisional) and the categories opened per month, and hands them here; nothing here reads the
database or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .formulas import rank, score
from .periods import Period

MAX_MONTHS = 12
# The rates a unit is judged by, each a {rate, numerator, denominator} of formulas.compute
RATES = (
    "response_rate",
    "on_time_resolution_rate",
    "resolution_rate",
    "satisfaction_rate",
    "reopen_rate",
    "kept_in_grid_rate",
    "kept_in_community_rate",
    "escalation_rate",
)


def months_ending(last: Period, count: int) -> list[Period]:
    """``count`` months ending with ``last`` (a month), oldest first."""
    if last.kind != "month":
        raise ValueError("the months end with a month (2026-10), not a week or a day")
    if not 1 <= count <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}")
    out = [last]
    while len(out) < count:
        out.append(out[-1].previous())
    return out[::-1]


def ranking_row(unit: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A unit's row of a ranking: its code, name, level, score, received and every rate."""
    return {
        **unit,
        "score": score(metrics),
        "received": metrics["received"],
        **{k: metrics[k]["rate"] for k in RATES},
    }


def rankings(
    children: Sequence[Mapping[str, Any]],
    figures: Mapping[str, Sequence[Mapping[str, Any]]],
    months: Sequence[str],
) -> dict[str, list[dict[str, Any]]]:
    """Per month label, the ``children`` (``{code, name, level}``) ranked by their composite
    score (``formulas.rank``); ``figures[code][i]`` is a child's figures of ``months[i]``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i, month in enumerate(months):
        rows = [ranking_row(c, figures[c["code"]][i]["metrics"]) for c in children]
        out[month] = rank(rows, "score")
    return out


def hot_trend(
    counts: Sequence[Mapping[str, int]],
    names: Mapping[str, str],
    top: int,
) -> list[dict[str, Any]]:
    """The ``top`` categories by cases opened over all the months (ties: more in the latest
    month, then by code), each with its count in every month (``counts[i]``: the categories
    opened in month i, oldest first) and its total."""
    totals: dict[str, int] = {}
    for month in counts:
        for category, n in month.items():
            totals[category] = totals.get(category, 0) + n
    latest = counts[-1] if counts else {}
    ranked = sorted(totals, key=lambda c: (-totals[c], -latest.get(c, 0), c))[: max(top, 0)]
    return [
        {
            "category": c,
            "category_name": names.get(c, c),
            "counts": [month.get(c, 0) for month in counts],
            "total": totals[c],
        }
        for c in ranked
    ]
