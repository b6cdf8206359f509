"""A case's lifecycle as feedback sees it (pure): ONE transition table, and what each step emits.

States (feedback's ``cases.state``; dispatch keeps its own, finer ones):

- ``open``: known (from ``cases.opened``, or a placeholder made by any case event), not resolved;
- ``resolved``: resolved by dispatch and awaiting its rating (待回访): a rating round is open until
  ``rating_window_ends``;
- ``reopened``: the round's deciding rating was unsatisfied or not resolved: back with dispatch
  (重办) until its next ``cases.resolved``;
- ``closed``: a satisfied rating decided the round, or its window ended unrated.

Inputs: ``reporter`` (a reporter learnt: ``cases.opened``, ``cases.merged``), ``resolution``
(``cases.verified``: a resolution confirmed on site, 核查结案; or ``cases.resolved`` where the
district does not verify, its event naming no verifier), a valid rating by its verdict
(``satisfied``, ``unsatisfied``, ``not_resolved``; its token was checked first, see
``handlers``) and ``window_ended`` (the unrated-closing sweep). ``cases.dispatched``,
``cases.accepted``, ``cases.escalated`` and ``cases.sent_back`` are only facts
(``projection``): they change no state.

A pair in ``TRANSITIONS`` does something: the case moves to that state (or stays) and the step's
``Action`` runs. Every other pair is in ``IGNORED`` with the reason nothing happens: the fact or
rating is still recorded, and a rating there decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from .formulas import SATISFIED

State = Literal["open", "resolved", "reopened", "closed"]
Verdict = Literal["satisfied", "unsatisfied", "not_resolved"]  # of a valid rating
Input = Literal["reporter", "resolution", Verdict, "window_ended"]
Action = Literal["start_round", "ask_new_reporters", "close_satisfied", "reopen", "close_unrated"]

STATES: tuple[State, ...] = get_args(State)
INPUTS: tuple[Input, ...] = get_args(Input)
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)


@dataclass(frozen=True)
class Step:
    state: State  # the case's state afterwards
    action: Action


# (state, input) -> step. The single source of truth of what feedback does with a case.
TRANSITIONS: dict[tuple[State, Input], Step] = {
    ("open", "resolution"): Step("resolved", "start_round"),
    ("resolved", "reporter"): Step("resolved", "ask_new_reporters"),
    ("resolved", "satisfied"): Step("closed", "close_satisfied"),
    ("resolved", "unsatisfied"): Step("reopened", "reopen"),
    ("resolved", "not_resolved"): Step("reopened", "reopen"),
    ("resolved", "window_ended"): Step("closed", "close_unrated"),
    ("reopened", "resolution"): Step("resolved", "start_round"),
    # a satisfied rating closed the case before the window ended: a reporter learnt late (their
    # cases.opened or cases.merged read after it, as after a network partition) still gets to rate
    ("closed", "reporter"): Step("closed", "ask_new_reporters"),
}

_NO_ROUND = "no round is open: the reporter is asked when the next round starts"
_NO_NEW_ROUND = "recorded for the metrics; the case awaits its rating or is closed: no new round"
_DECIDED = "the rating counts and decides nothing: an earlier rating decided the round"
_NO_TOKEN = "cannot happen: no rating token exists before the first round"
_NOT_DUE = "cannot happen: the sweep claims only cases awaiting a rating (resolved)"

# (state, input) -> why nothing happens. With TRANSITIONS: every pair, exactly once.
IGNORED: dict[tuple[State, Input], str] = {
    ("open", "reporter"): _NO_ROUND,
    **{("open", v): _NO_TOKEN for v in VERDICTS},
    ("open", "window_ended"): _NOT_DUE,
    ("resolved", "resolution"): _NO_NEW_ROUND,
    ("reopened", "reporter"): _NO_ROUND,
    **{("reopened", v): _DECIDED for v in VERDICTS},
    ("reopened", "window_ended"): _NOT_DUE,
    ("closed", "resolution"): _NO_NEW_ROUND,
    **{("closed", v): _DECIDED for v in VERDICTS},
    ("closed", "window_ended"): _NOT_DUE,
}

# What each action writes, and what it emits.
ACTIONS: dict[Action, tuple[str, str]] = {
    "start_round": (
        "round + 1; the rating window ends at now + `WANGGE_FEEDBACK_WINDOW` × `WANGGE_SLA_SCALE`",
        "`feedback.requested` to every reporter, a fresh token each",
    ),
    "ask_new_reporters": (
        "a request (token) for each reporter not yet asked in the round, while its window is open",
        "`feedback.requested` to each of them",
    ),
    "close_satisfied": ("closed_at, outcome `satisfied`", "`cases.closed` {outcome: satisfied}"),
    "reopen": (
        "reopen_count + 1, no rating window; a `reopens` fact",
        "`cases.reopened` {reason: the verdict, then the comment}",
    ),
    "close_unrated": ("closed_at, outcome `unrated`", "`cases.closed` {outcome: unrated}"),
}


def step(state: State, event: Input) -> Step | None:
    """What ``event`` does to a case in ``state``; None: nothing (``IGNORED`` says why)."""
    return TRANSITIONS.get((state, event))


def verdict(resolved: bool, satisfaction: str) -> Verdict:
    """The input a valid rating is: it decides the round by this, if it decides at all."""
    if resolved and satisfaction in SATISFIED:
        return "satisfied"
    return "unsatisfied" if resolved else "not_resolved"


def window_open(ends: datetime | None, now: datetime) -> bool:
    """Whether the round's rating window is still open (reporters may still be asked)."""
    return ends is not None and ends > now


def markdown_table() -> str:
    """The transition table, what each action does, and why the other pairs do nothing, as
    markdown (docs/feedback.md embeds it; a test keeps the two equal)."""
    lines = [
        "| state \\ input | " + " | ".join(INPUTS) + " |",
        "|---|" + "---|" * len(INPUTS),
    ]
    for state in STATES:
        cells = [_cell(TRANSITIONS.get((state, i))) for i in INPUTS]
        lines.append(f"| **{state}** | " + " | ".join(cells) + " |")
    lines += ["", "| action | writes | emits |", "|---|---|---|"]
    lines += [f"| `{a}` | {writes} | {emits} |" for a, (writes, emits) in ACTIONS.items()]
    lines += [
        "",
        "— is no step: the fact or rating is still recorded, nothing else happens:",
        "",
    ]
    for reason in dict.fromkeys(IGNORED.values()):
        pairs = [pair for pair, why in IGNORED.items() if why == reason]
        lines.append(f"- {_pairs(pairs)}: {reason}.")
    return "\n".join(lines)


def _cell(s: Step | None) -> str:
    return "—" if s is None else f"{s.state}: `{s.action}`"


def _pairs(pairs: Iterable[tuple[State, Input]]) -> str:
    by_state: dict[State, list[Input]] = {}
    for state, event in pairs:
        by_state.setdefault(state, []).append(event)
    return "; ".join(f"{s} × {', '.join(events)}" for s, events in by_state.items())
