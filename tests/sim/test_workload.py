"""The simulated workload: valid reports in a realistic mix, duplicates of recent reports,
invalid ones that intake must reject, valid handler actions and ratings; seeded."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from shared.contract.events import FeedbackSubmitted, HandlerAction, ReportSubmitted
from shared.contract.taxonomy import default_taxonomy
from sim.territory import TerritorySize, generate_territory
from sim.texts import labelled_examples
from sim.workload import CATEGORY_WEIGHTS, HandlerModel, Mix, ReportFactory, ResidentModel

TERRITORY = generate_territory(TerritorySize.small(), seed=3)
N = 4000


def _draw(seed: int, n: int = N, mix: Mix | None = None) -> tuple[ReportFactory, list]:
    f = ReportFactory(TERRITORY, seed=seed, mix=mix or Mix())
    return f, [f.next() for _ in range(n)]


def test_mix_of_new_duplicate_and_invalid_reports():
    f, drawn = _draw(11)
    mix = Mix()
    assert f.kinds["new"] + f.kinds["duplicate"] + f.kinds["invalid"] == N
    assert f.kinds["duplicate"] / N == pytest.approx(mix.duplicate, abs=0.02)
    assert f.kinds["invalid"] / N == pytest.approx(mix.invalid, abs=0.01)
    bodies = [b for _, b in drawn]
    urgent = sum(1 for b in bodies if b.get("urgent")) / N
    assert 0.03 < urgent < 0.2
    given = sum(1 for b in bodies if "category" in b) / N
    assert given == pytest.approx(mix.given_category, abs=0.04)
    places = Counter(next(iter(b["location"]), "none") for b in bodies)
    assert places["building_code"] > places["address"] > places["grid_code"] > 0
    assert places["lon"] > 0
    assert len({b["report_id"] for b in bodies}) == N


def test_every_category_appears_in_about_its_share():
    f, _ = _draw(12, 8000, Mix.clean())
    assert set(f.categories) == set(CATEGORY_WEIGHTS)
    assert set(CATEGORY_WEIGHTS) == {c.code for c in default_taxonomy().categories} - {"other"}
    total = sum(CATEGORY_WEIGHTS.values())
    for cat, w in CATEGORY_WEIGHTS.items():
        assert f.categories[cat] / 8000 == pytest.approx(w / total, abs=0.02), cat


def test_valid_reports_follow_the_contract_and_invalid_ones_do_not():
    f, drawn = _draw(13)
    buildings = {b.code for b in TERRITORY.buildings}
    communities = {u.code for u in TERRITORY.units if u.level == "community"}
    failed = 0
    for key, body in drawn:
        try:
            r = ReportSubmitted.model_validate(body)
        except ValidationError:
            failed += 1
            continue
        code = r.location.building_code
        if code is not None and code not in buildings:
            assert "NOWHERE" in code  # an invalid report intake must reject
            continue
        assert key in communities
        assert r.description.strip()
    assert failed == f.kinds["invalid"] - f.kinds["invalid:unknown_building"]
    assert failed > 0


def test_duplicates_repeat_a_recent_report_of_the_same_building():
    f = ReportFactory(TERRITORY, seed=14, mix=Mix(duplicate=0.3, invalid=0.0, by_grid_code=0.0))
    seen: dict[str, tuple[str, str | None]] = {}
    dups = 0
    for _ in range(1000):
        before = f.kinds["duplicate"]
        _, body = f.next()
        what = (body["description"], body.get("category"))
        if f.kinds["duplicate"] > before:
            dups += 1
            assert body["location"].get("building_code") is not None
            assert what in seen.values()
        seen[body["report_id"]] = what
    assert dups > 200


def test_texts_come_from_labelled_examples_and_templates():
    _, drawn = _draw(15, 2000, Mix.clean())
    examples = {e.text for exs in labelled_examples().values() for e in exs}
    texts = [b["description"] for _, b in drawn]
    from_examples = sum(1 for t in texts if any(t.endswith(e) for e in examples))
    assert 0.3 < from_examples / len(texts) < 0.8
    assert len(set(texts)) > 800  # varied


def test_same_seed_same_reports():
    def strip(drawn: list) -> list:
        return [(k, {**b, "submitted_at": None}) for k, b in drawn]

    assert strip(_draw(16, 300)[1]) == strip(_draw(16, 300)[1])
    assert strip(_draw(16, 300)[1]) != strip(_draw(17, 300)[1])


def _dispatched(tier: str, unit: str, attempt: int = 1) -> dict:
    return {"case_id": "C1", "tier": tier, "unit": unit, "handler_id": None, "attempt": attempt}


def test_handler_actions_are_valid_and_mostly_accept_then_resolve():
    model = HandlerModel(TERRITORY, seed=4)
    grid = TERRITORY.grids()[0].code
    actions: Counter[str] = Counter()
    for i in range(1000):
        plans = model.react({**_dispatched("grid", grid), "case_id": f"C{i}"})
        delays = [p.delay_s for p in plans]
        assert delays == sorted(delays)
        for p in plans:
            HandlerAction.model_validate({**p.body, "at": "2026-01-01T00:00:00+00:00"})
            assert p.topic == "handler.actions" and p.key == p.body["case_id"]
        actions.update(p.body["action"] for p in plans[:1])
    assert actions["accept"] > 800
    assert actions["return"] > 5 and actions["escalate"] > 5
    assert model.kinds["no_response"] > 20 and model.kinds["volunteer"] > 5
    assert not model.react(_dispatched("street", "NO-SUCH-UNIT"))  # nobody to act


def test_a_resolution_is_verified_by_the_verifier_units_staff_not_its_resolver():
    model = HandlerModel(TERRITORY, seed=5)
    grid = TERRITORY.grids()[0]
    community = grid.parent
    assert community is not None
    staff = [h.id for h in TERRITORY.handlers_by_unit[community] if h.role != "party_volunteer"]
    resolved = {"case_id": "C1", "resolved_at": "2026-01-01T00:00:00+00:00", "handler_id": staff[0]}
    (plan,) = model.verify({**resolved, "verifier_unit": community})
    HandlerAction.model_validate({**plan.body, "at": "2026-01-01T00:00:00+00:00"})
    assert plan.body["action"] == "verify" and plan.body["handler_id"] in staff[1:]
    assert plan.body["handler_id"] != staff[0] and plan.delay_s > 0
    assert model.verify(resolved) == []  # not verified by this district: nothing to do
    assert model.verify({**resolved, "verifier_unit": "NO-SUCH-UNIT"}) == []
    assert model.kinds["verify"] == 1 and model.kinds["no_verifier"] == 1


def test_ratings_have_a_realistic_satisfaction_mix_and_some_never_come():
    model = ResidentModel(seed=5)
    verdicts: Counter[str] = Counter()
    for i in range(2000):
        plans = model.react({"case_id": f"C{i}", "rating_token": f"t{i}"})
        for p in plans:
            r = FeedbackSubmitted.model_validate({**p.body, "at": "2026-01-01T00:00:00+00:00"})
            verdicts[r.satisfaction] += 1
            assert 0 < p.delay_s <= model.max_delay_s
        if not plans:
            verdicts["never"] += 1
    assert verdicts["never"] / 2000 == pytest.approx(0.12, abs=0.03)
    assert verdicts["satisfied"] > verdicts["basically_satisfied"] > verdicts["unsatisfied"] > 0
