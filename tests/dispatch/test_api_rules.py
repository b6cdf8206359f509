"""The handler API's pure parts: due soon and overdue, the order of a list, the action id of a
request, what a request must and may carry, the command centre's reassignment (改派) in the state
machine, and how each refusal maps to its kind (and so its status code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.actions import (
    DECIDE_BY_TOO_EARLY,
    DECIDE_BY_TOO_LATE,
    authorization_refused,
    deliberate,
    plan_refused,
)
from services.dispatch.api import (
    REFUSAL_STATUS,
    ActionRequest,
    Views,
    acting_id,
    action_id_for,
    request_errors,
)
from services.dispatch.assignment import TargetUnit, transfer_refusal
from services.dispatch.due import due_status, limits, nearest_first, running_deadlines
from services.dispatch.planning import Policy
from services.dispatch.sla import SlaPolicy
from services.dispatch.states import (
    ALREADY_ACCEPTED,
    Actor,
    CaseView,
    allowed_actions,
    authorization_refusal,
    command_centre_actor,
    command_centre_unit,
    transition,
)
from services.dispatch.tiers import load_rules
from shared.contract.events import HandlerAction
from shared.contract.taxonomy import default_taxonomy
from shared.runtime.identity import Principal, Role
from tests.dispatch.support import T0, a_case

RULES = load_rules()
POLICY = Policy(default_taxonomy(), RULES, SlaPolicy(RULES))
H = timedelta(hours=1)
M = timedelta(minutes=1)


def status_at(case_over: dict[str, object], minutes: float) -> str | None:
    case = a_case(**case_over)
    deadlines = running_deadlines(case, *limits(POLICY, case))
    return due_status(case, deadlines, T0 + timedelta(minutes=minutes))


# --- due soon, overdue ---------------------------------------------------------------------------


def test_an_unaccepted_grid_case_is_due_soon_in_the_last_fifth_of_its_response_time() -> None:
    # grid tier: respond within 2 h (due soon in its last 24 minutes), resolve within 24 h
    assert limits(POLICY, a_case())[:2] == (2 * H, 24 * H)
    assert status_at({}, 0) == "on_track"
    assert status_at({}, 95) == "on_track"
    assert status_at({}, 96) == "due_soon"  # 24 minutes left: 20 % of 2 h
    assert status_at({}, 119) == "due_soon"
    assert status_at({}, 120) == "overdue"  # respond_by reached (the sweep's own test: <=)
    assert status_at({}, 121) == "overdue"


def test_an_accepted_case_is_held_to_its_resolution_deadline_only() -> None:
    accepted = {"state": "accepted", "accepted_at": T0}
    assert status_at(accepted, 121) == "on_track"  # respond_by passed: no longer running
    assert status_at(accepted, 19 * 60) == "on_track"  # 5 h left of 24
    assert status_at(accepted, 19 * 60 + 13) == "due_soon"  # 4 h 47 min left: under 4.8 h
    assert status_at(accepted, 24 * 60) == "overdue"
    case = a_case(state="accepted", accepted_at=T0)
    assert [d.kind for d in running_deadlines(case, 2 * H, 24 * H, 24 * H)] == ["resolve"]


def test_the_limit_is_the_tier_and_category_duration_scaled() -> None:
    street = a_case(tier="street")
    assert limits(POLICY, street)[:2] == (8 * H, 7 * 24 * H)
    urgent = a_case(respond_within_s=1800.0)  # a rule shortened the response to 30 minutes
    assert limits(POLICY, urgent)[0] == 30 * M
    fast = Policy(default_taxonomy(), RULES, SlaPolicy(RULES, scale=0.5))
    assert limits(fast, a_case())[:2] == (H, 12 * H)
    # a shorter limit means a shorter due-soon window: 6 minutes before a 30-minute deadline
    urgent_due = {"respond_within_s": 1800.0, "respond_by": T0 + 30 * M}
    assert status_at(urgent_due, 23) == "on_track"
    assert status_at(urgent_due, 24) == "due_soon"


def test_a_miss_at_the_top_tier_stays_overdue_and_a_resolved_case_has_no_status() -> None:
    missed = {"tier": "district", "state": "accepted", "resolve_missed_at": T0 + 24 * H}
    assert status_at(missed, 0) == "overdue"
    assert status_at({"state": "resolved"}, 0) is None
    case = a_case(state="resolved")
    assert running_deadlines(case, 2 * H, 24 * H, 24 * H) == ()


def test_a_paused_case_counts_its_pushed_back_deadline() -> None:
    paused = {
        "state": "deliberating",
        "paused_until": T0 + 48 * H,
        "resolve_by": T0 + 72 * H,  # 24 h pushed back by a two-day pause
    }
    assert status_at(paused, 60 * 24) == "on_track"
    assert status_at(paused, 68 * 60) == "due_soon"


def test_the_fraction_is_a_parameter() -> None:
    case = a_case()
    deadlines = running_deadlines(case, *limits(POLICY, case))
    assert due_status(case, deadlines, T0 + 60 * M) == "on_track"
    assert due_status(case, deadlines, T0 + 60 * M, fraction=0.5) == "due_soon"


def test_a_list_puts_the_nearest_deadline_first() -> None:
    cases = [
        a_case(case_id="c-later", state="accepted"),  # resolve in 24 h
        a_case(case_id="c-none", state="accepted", resolve_by=None),
        a_case(case_id="c-soon"),  # respond in 2 h
        a_case(case_id="c-missed", state="accepted", resolve_missed_at=T0 - H),
        a_case(case_id="c-sooner", respond_by=T0 + H),
    ]
    views = Views(POLICY, T0, "h-0001", 0.2)
    assert [c.case_id for c in views.listing(cases)] == [
        "c-missed",
        "c-sooner",
        "c-soon",
        "c-later",
        "c-none",
    ]
    mine = views.summary(cases[2])
    assert mine.assigned_to_me and mine.next_deadline is not None
    assert (mine.next_deadline.kind, mine.next_deadline.at) == ("respond", T0 + 2 * H)
    others = Views(POLICY, T0, "h-0002", 0.2).summary(cases[2])
    assert not others.assigned_to_me


def test_nearest_first_orders_ties_by_case_id() -> None:
    a, b = a_case(case_id="c-a"), a_case(case_id="c-b")
    da = running_deadlines(a, 2 * H, 24 * H, 24 * H)
    db = running_deadlines(b, 2 * H, 24 * H, 24 * H)
    assert nearest_first(a, da) < nearest_first(b, db)


# --- who acts, the action id -------------------------------------------------------------------


def test_the_acting_handler_comes_from_the_token() -> None:
    worker = Principal("h-0001", Role.GRID_WORKER, "WC-YY-OJY-G01", "h-0001")
    assert acting_id(worker) == "h-0001"
    centre = Principal("cc:wang", Role.COMMAND_CENTRE, "WC", None)
    assert acting_id(centre) == "command_centre.WC"
    assert command_centre_unit(command_centre_actor("WC")) == "WC"
    assert command_centre_unit("h-0001") is None
    assert command_centre_unit("command_centre.") is None


def test_an_idempotency_key_is_scoped_by_handler() -> None:
    assert action_id_for("h-0001", "k1") == "http:h-0001:k1"
    assert action_id_for("h-0001", "k1") != action_id_for("h-0002", "k1")
    long_key = "k" * 128
    hashed = action_id_for("h-0001", long_key)
    assert hashed.startswith("http:") and len(hashed) <= 128
    assert hashed == action_id_for("h-0001", long_key)  # the same retry, the same id
    assert hashed != action_id_for("h-0002", long_key)
    # the id fits HandlerAction for the longest handler id and key
    HandlerAction(
        action_id=action_id_for("h" * 64, "k" * 128),
        case_id="c-1",
        handler_id="h" * 64,
        action="accept",
        at=T0,
    )


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"action": "accept"}, []),
        ({"action": "resolve"}, [("note", "note is required for resolve")]),
        ({"action": "escalate", "note": "  "}, [("note", "note is required for escalate")]),
        ({"action": "return", "note": "不属于本网格"}, []),
        ({"action": "transfer"}, [("target_unit", "target_unit is required for transfer")]),
        (
            {"action": "accept", "target_unit": "WC-YY"},
            [("target_unit", "target_unit is only for transfer")],
        ),
        ({"action": "deliberate"}, [("decide_by", "decide_by is required for deliberate")]),
        (
            {"action": "progress", "decide_by": T0.isoformat()},
            [("decide_by", "decide_by is only for deliberate")],
        ),
    ],
)
def test_what_a_request_must_and_may_carry(body: dict[str, str], errors: list[object]) -> None:
    assert request_errors(ActionRequest.model_validate(body)) == errors


def test_a_request_cannot_name_who_or_when() -> None:
    for extra in ({"handler_id": "h-0002"}, {"at": T0.isoformat()}, {"action_id": "a-1"}):
        with pytest.raises(ValueError, match="Extra inputs are not permitted"):
            ActionRequest.model_validate({"action": "accept", **extra})


# --- the command centre reassigns (改派) ---------------------------------------------------------

CASE = CaseView(
    "accepted", "grid", "WC-YY-OJY-G01", "h-0001", "WC-YY-OJY", ("WC", "WC-YY", "WC-YY-OJY")
)
CENTRE = Actor("command_centre.WC", "WC", "command_centre")


def test_the_command_centre_only_transfers_cases_of_its_area() -> None:
    assert authorization_refusal(CENTRE, CASE, "transfer") is None
    for kind in ("accept", "progress", "resolve", "escalate", "return", "deliberate"):
        why = authorization_refusal(CENTRE, CASE, kind)
        assert why == f"the command centre may only transfer (改派) cases, not {kind}"
    elsewhere = Actor("command_centre.WC-ZHL", "WC-ZHL", "command_centre")
    assert authorization_refusal(elsewhere, CASE, "transfer") == (
        "the case is outside the command centre's area"
    )
    unplaced = CaseView("dispatched", "district", "WC-CGJ", None, None, ())
    assert authorization_refusal(CENTRE, unplaced, "transfer") is not None


def test_allowed_actions_follow_the_table_and_who_may_act() -> None:
    worker = Actor("h-0001", "WC-YY-OJY-G01", "grid_worker")
    assert allowed_actions(worker, CASE) == [
        "progress",
        "resolve",
        "escalate",
        "return",
        "transfer",
        "deliberate",
        "request_extension",
        "suspend",
    ]
    awaiting = CaseView("dispatched", "grid", "WC-YY-OJY-G01", "h-0001", "WC-YY-OJY", ())
    assert allowed_actions(worker, awaiting) == ["accept", "escalate", "return", "transfer"]
    assert allowed_actions(CENTRE, CASE) == ["transfer"]
    volunteer = Actor("h-0013", "WC-YY-OJY", "party_volunteer")
    assert allowed_actions(volunteer, awaiting) == ["accept"]
    assert allowed_actions(volunteer, CASE) == []
    assert allowed_actions(None, CASE) == []
    resolved = CaseView("resolved", "grid", "WC-YY-OJY-G01", "h-0001", "WC-YY-OJY", ())
    assert allowed_actions(worker, resolved) == []


# --- refusals, their kinds and status codes ---------------------------------------------------


def action(kind: str, **extra: object) -> HandlerAction:
    return HandlerAction.model_validate(
        {
            "action_id": "a-1",
            "case_id": "c-1",
            "handler_id": "h-0001",
            "action": kind,
            "at": T0,
            **extra,
        }
    )


def test_each_refusal_has_its_kind() -> None:
    assert (
        authorization_refused(
            "handler is neither the assigned handler nor of the assigned unit"
        ).kind
        == "not_permitted"
    )
    assert authorization_refused("unknown handler").kind == "not_permitted"
    assert authorization_refused(ALREADY_ACCEPTED).kind == "conflict"
    transfer = action("transfer", target_unit="WC-YY")
    for reason in (
        transfer_refusal("grid", "WC-YY-OJY-G01", None),
        transfer_refusal("grid", "WC-YY-OJY-G01", TargetUnit("WC-YY-OJY-G01", level="grid")),
        transfer_refusal("grid", "WC-YY-OJY-G01", TargetUnit("WC-YY", level="street")),
    ):
        assert reason is not None
        refused = plan_refused(transfer, reason)
        assert (refused.kind, refused.field) == ("invalid", "target_unit")
    council = action("deliberate", decide_by=T0)
    assert plan_refused(council, DECIDE_BY_TOO_EARLY).field == "decide_by"
    assert plan_refused(council, DECIDE_BY_TOO_LATE).field == "decide_by"
    no_council = plan_refused(council, "the case has no community, so no residents' council")
    assert (no_council.kind, no_council.field) == ("conflict", None)
    top = plan_refused(action("escalate", note="x"), "already at the top tier (district)")
    assert top.kind == "conflict"
    assert {
        REFUSAL_STATUS[k] for k in ("unknown_case", "not_permitted", "conflict", "invalid")
    } == {
        404,
        403,
        409,
        422,
    }


def test_a_deliberation_ends_within_a_year() -> None:
    case = a_case(state="accepted")
    t = transition(case.state, "deliberate")
    assert t is not None
    year = action("deliberate", decide_by=T0 + timedelta(days=366), note="议事")
    assert not isinstance(deliberate(POLICY, case, year, t, T0), str)
    far = action("deliberate", decide_by=T0 + timedelta(days=367), note="议事")
    assert deliberate(POLICY, case, far, t, T0) == DECIDE_BY_TOO_LATE
    end_of_time = action("deliberate", decide_by=datetime.max.replace(tzinfo=UTC), note="议事")
    assert deliberate(POLICY, case, end_of_time, t, T0) == DECIDE_BY_TOO_LATE  # no date overflow
