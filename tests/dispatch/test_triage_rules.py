"""The triage queue's pure parts (人工分拨): who holds a case, its suggestions, the state table's
pairs, and what a reclassification plans."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import pytest

from services.dispatch.assignment import Route
from services.dispatch.planning import Policy
from services.dispatch.sla import SlaPolicy
from services.dispatch.states import State, next_state, refusal, transition
from services.dispatch.tiers import decide_tier, load_rules
from services.dispatch.triage import (
    Decision,
    holder,
    plan_reclassify,
    redispatch_facts,
    suggestions_of,
)
from shared.contract.events import ActionKind, CaseLocation, Classification, DecidedBy
from shared.contract.taxonomy import default_taxonomy
from tests.dispatch.support import T0, a_case, case_opened

RULES = load_rules()
POLICY = Policy(default_taxonomy(), RULES, SlaPolicy(RULES, 1.0))
BY = DecidedBy(role="command_centre", unit="WC", subject="command_centre:WC")


def test_the_district_holds_a_case_in_triage() -> None:
    ev = case_opened()
    assert holder(ev) == "WC"
    no_district = ev.model_copy(
        update={"location": CaseLocation(street="WC-YY", grid="WC-YY-OJY-G01")}
    )
    assert holder(no_district) == "WC-YY"
    assert holder(ev.model_copy(update={"location": CaseLocation()})) is None


def test_suggestions_are_the_classifiers_best_three_or_its_guess() -> None:
    ev = case_opened(category="parking")
    guess = ev.model_copy(update={"classification": Classification(method="nb", confidence=0.4)})
    assert [(s.category, s.probability) for s in suggestions_of(guess)] == [("parking", 0.4)]


def test_only_the_command_centre_moves_a_case_out_of_triage() -> None:
    for action in get_args(ActionKind):
        assert next_state("triage", action) is None, action
    assert next_state("triage", "reclassify") == "dispatched"
    assert next_state("triage", "rules_raised") is None
    assert next_state("triage", "respond_timeout") is None
    assert "triage" in refusal("triage", "accept")
    assert next_state("accepted", "reclassify") == "dispatched"
    assert next_state("deliberating", "reclassify") is None
    assert next_state("resolved", "reclassify") is None


@pytest.mark.parametrize("state", ["triage", "accepted"])
def test_a_reclassification_dispatches_afresh_by_the_new_category(state: State) -> None:
    before = a_case(
        state=state,
        unit="WC" if state == "triage" else "WC-YY-OJY-G01",
        handler_id=None if state == "triage" else "h-0001",
        respond_by=None if state == "triage" else T0 + timedelta(hours=2),
        excluded_units=("WC-YY-OJY-G02",),
        accepted_at=T0 if state == "accepted" else None,
    )
    t = transition(before.state, "reclassify")
    assert t is not None
    facts = redispatch_facts(before, "parking")
    facts_decision = decide_tier(POLICY.default_tier("parking"), facts, RULES)
    now = T0 + timedelta(minutes=30)
    d = Decision("parking", BY, "command_centre.WC", "triage", "占用车位")
    plan = plan_reclassify(
        POLICY, before, t, facts_decision, Route("community", "WC-YY-OJY"), "h-0010", d, now
    )
    after = plan.after
    assert (after.category, after.tier, after.unit, after.handler_id, after.state) == (
        "parking",
        "community",
        "WC-YY-OJY",
        "h-0010",
        "dispatched",
    )
    assert after.respond_by == now + timedelta(hours=4)
    assert after.resolve_by == now + timedelta(days=3)
    assert (after.excluded_units, after.accepted_at) == ((), None)
    first = state == "triage"
    assert after.attempt == (1 if first else 2)
    assert after.start_tier == ("community" if first else before.start_tier)
    reclassified, dispatched = plan.events
    assert reclassified.model_dump(exclude={"by"}) == {
        "case_id": before.case_id,
        "from_category": "sanitation",
        "from_category_name": "环境卫生",
        "to_category": "parking",
        "to_category_name": "停车管理",
        "to_default_tier": "community",  # parking's, from the taxonomy
        "reclassified_at": now,
        "origin": "triage",
        "note": "占用车位",
    }
    assert dispatched.model_dump()["category"] == "parking"
    (step,) = plan.steps
    assert (step.event, step.from_state, step.handler_id) == (
        "reclassify",
        state,
        "command_centre.WC",
    )
