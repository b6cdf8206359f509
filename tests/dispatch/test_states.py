"""The transition table and who may act (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.dispatch.states import (
    AWAITING,
    STATES,
    TRANSITIONS,
    Actor,
    CaseView,
    State,
    authorization_refusal,
    markdown_table,
    next_state,
    refusal,
)
from shared.contract.events import ActionKind

ACTIONS: tuple[ActionKind, ...] = (
    "accept",
    "progress",
    "resolve",
    "escalate",
    "return",
    "transfer",
    "deliberate",
)


def test_the_happy_path() -> None:
    assert next_state("dispatched", "accept") == "accepted"
    assert next_state("accepted", "progress") == "accepted"
    assert next_state("accepted", "resolve") == "verifying"
    assert next_state("verifying", "verify") == "resolved"


@pytest.mark.parametrize("state", AWAITING)
def test_awaiting_states_behave_alike(state: State) -> None:
    assert next_state(state, "accept") == "accepted"
    assert next_state(state, "escalate") == "escalated"
    assert next_state(state, "return") == "triage"  # 退单: to the command centre
    assert next_state(state, "transfer") == "transferred"
    assert next_state(state, "respond_timeout") == state
    assert next_state(state, "resolve_timeout") == "escalated"
    refused: tuple[ActionKind, ...] = ("progress", "resolve", "deliberate")
    for action in refused:
        assert next_state(state, action) is None


def test_resolve_needs_an_accepted_case() -> None:
    assert next_state("dispatched", "resolve") is None
    assert "resolve needs an accepted case" in refusal("dispatched", "resolve")


def test_deliberation_pauses_the_resolution_clock() -> None:
    assert next_state("accepted", "deliberate") == "deliberating"
    assert next_state("deliberating", "resolve_timeout") is None
    assert next_state("deliberating", "deliberation_ended") == "accepted"
    assert next_state("deliberating", "resolve") == "verifying"
    assert next_state("deliberating", "deliberate") is None
    assert next_state("deliberating", "respond_timeout") is None


def test_a_resolved_case_only_reopens() -> None:
    for action in ACTIONS:
        assert next_state("resolved", action) is None
        assert "the case is resolved" in refusal("resolved", action)
    assert next_state("resolved", "reopen") == "dispatched"
    assert next_state("accepted", "reopen") is None


def test_the_table_only_names_known_states() -> None:
    assert {s for pair in TRANSITIONS for s in (pair[0], TRANSITIONS[pair])} <= set(STATES)
    assert next_state("accepted", "accept") is None


CASE = CaseView(
    state="dispatched",
    tier="grid",
    unit="WC-YY-OJY-G01",
    handler_id="h-0001",
    community="WC-YY-OJY",
)
GRID_WORKER = Actor("h-0001", "WC-YY-OJY-G01", "grid_worker")
COLLEAGUE = Actor("h-0002", "WC-YY-OJY-G01", "building_head")
OTHER_GRID = Actor("h-0003", "WC-YY-OJY-G02", "grid_worker")
VOLUNTEER = Actor("h-0013", "WC-YY-OJY", "party_volunteer")
FAR_VOLUNTEER = Actor("h-0099", "WC-YY-HPY", "party_volunteer")


@pytest.mark.parametrize("action", ACTIONS)
def test_assigned_handler_and_unit_may_act(action: ActionKind) -> None:
    assert authorization_refusal(GRID_WORKER, CASE, action) is None
    assert authorization_refusal(COLLEAGUE, CASE, action) is None
    assert authorization_refusal(OTHER_GRID, CASE, action) is not None
    assert authorization_refusal(None, CASE, action) == "unknown handler"


def test_party_volunteers_take_unaccepted_cases_of_their_community() -> None:
    assert authorization_refusal(VOLUNTEER, CASE, "accept") is None
    assert authorization_refusal(VOLUNTEER, CASE, "resolve") is not None
    assert authorization_refusal(FAR_VOLUNTEER, CASE, "accept") is not None
    accepted = CaseView("accepted", "grid", "WC-YY-OJY-G01", "h-0001", "WC-YY-OJY")
    assert authorization_refusal(VOLUNTEER, accepted, "accept") == "the case is already accepted"
    street = CaseView("dispatched", "street", "WC-YY", None, "WC-YY-OJY")
    assert authorization_refusal(VOLUNTEER, street, "accept") is not None
    # once it is theirs, they finish it, but hand-overs stay with the staff
    theirs = CaseView("accepted", "grid", "WC-YY-OJY-G01", "h-0013", "WC-YY-OJY")
    assert authorization_refusal(VOLUNTEER, theirs, "resolve") is None
    assert authorization_refusal(VOLUNTEER, theirs, "progress") is None
    assert authorization_refusal(VOLUNTEER, theirs, "escalate") is not None


def test_the_docs_show_the_table_of_the_code() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "dispatch.md").read_text("utf-8")
    assert markdown_table() in docs
