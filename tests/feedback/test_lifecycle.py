"""Feedback's transition table (pure): every state × input is a step or ignored, for a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.feedback.lifecycle import (
    ACTIONS,
    IGNORED,
    INPUTS,
    STATES,
    TRANSITIONS,
    VERDICTS,
    Input,
    State,
    Step,
    markdown_table,
    step,
    verdict,
    window_open,
)

PAIRS = [(s, i) for s in STATES for i in INPUTS]


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_every_pair_is_a_step_or_ignored_for_a_reason(state: State, event: Input) -> None:
    assert ((state, event) in TRANSITIONS) != ((state, event) in IGNORED)
    if (state, event) in IGNORED:
        assert step(state, event) is None
        assert IGNORED[(state, event)]
    else:
        assert step(state, event) == TRANSITIONS[(state, event)]


def test_the_tables_name_only_known_states_inputs_and_actions() -> None:
    assert set(TRANSITIONS) | set(IGNORED) == set(PAIRS)
    assert {s.state for s in TRANSITIONS.values()} <= set(STATES)
    assert {s.action for s in TRANSITIONS.values()} == set(ACTIONS)


def test_the_loop() -> None:
    assert step("open", "resolution") == Step("resolved", "start_round")
    assert step("resolved", "satisfied") == Step("closed", "close_satisfied")
    assert step("resolved", "unsatisfied") == Step("reopened", "reopen")
    assert step("resolved", "not_resolved") == Step("reopened", "reopen")
    assert step("reopened", "resolution") == Step("resolved", "start_round")
    assert step("resolved", "window_ended") == Step("closed", "close_unrated")


@pytest.mark.parametrize("rating", VERDICTS)
def test_only_the_first_rating_of_a_round_decides(rating: Input) -> None:
    assert step("resolved", rating) is not None
    for state in ("open", "reopened", "closed"):
        assert step(state, rating) is None  # recorded with decided = false


def test_a_resolution_starts_a_round_only_when_none_is_pending() -> None:
    assert step("resolved", "resolution") is None
    assert step("closed", "resolution") is None
    assert "no new round" in IGNORED[("closed", "resolution")]


def test_a_reporter_learnt_is_asked_while_the_round_can_still_be_rated() -> None:
    assert step("resolved", "reporter") == Step("resolved", "ask_new_reporters")
    assert step("closed", "reporter") == Step("closed", "ask_new_reporters")
    assert step("open", "reporter") is None
    assert step("reopened", "reporter") is None


def test_only_a_case_awaiting_its_rating_closes_unrated() -> None:
    assert [s for s in STATES if step(s, "window_ended") is not None] == ["resolved"]


@pytest.mark.parametrize(
    ("resolved", "satisfaction", "expected"),
    [
        (True, "satisfied", "satisfied"),
        (True, "basically_satisfied", "satisfied"),
        (True, "unsatisfied", "unsatisfied"),
        (False, "satisfied", "not_resolved"),
        (False, "unsatisfied", "not_resolved"),
    ],
)
def test_verdict(resolved: bool, satisfaction: str, expected: str) -> None:
    assert verdict(resolved, satisfaction) == expected


def test_window_open() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    assert window_open(now + timedelta(seconds=1), now)
    assert not window_open(now, now)
    assert not window_open(None, now)


def test_the_docs_show_the_table_of_the_code() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "feedback.md").read_text("utf-8")
    assert markdown_table() in docs
