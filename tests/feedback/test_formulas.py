"""Each metric formula on small hand-computed inputs (pure, no broker or database)."""

from __future__ import annotations

import pytest

from services.feedback import formulas as f
from services.feedback.formulas import (
    AcceptRow,
    CaseFacts,
    DispatchRow,
    MetricInputs,
    RatingRow,
    ResolutionRow,
)
from tests.feedback.helpers import H, sh

T0 = sh(11, 2, 9)


def test_ratio_rate_and_empty_denominator() -> None:
    assert f.Ratio(2, 3).rate == 0.6667
    assert f.Ratio(0, 0).rate is None
    assert f.Ratio(1, 4).as_json() == {"rate": 0.25, "numerator": 1, "denominator": 4}


def test_received_counts_cases_opened() -> None:
    assert f.received([CaseFacts("a"), CaseFacts("b")]) == 2
    assert f.received([]) == 0


def test_response_rate_counts_each_case_once_by_its_first_dispatch() -> None:
    dispatches = [
        DispatchRow("a", T0 + 4 * H),  # re-dispatch after escalation (listed first on purpose)
        DispatchRow("a", T0),
        DispatchRow("b", T0),
        DispatchRow("c", T0),  # never accepted
        DispatchRow("d", T0),
        DispatchRow("d", T0 + 6 * H),  # dispatched again after a reopen
        DispatchRow("d", T0 + 9 * H),
    ]
    accepts = [
        AcceptRow("a", T0 + 3 * H, on_time=False),  # answers the first dispatch of a, late
        AcceptRow("a", T0 + 5 * H, on_time=True),  # answers the second: does not repair a
        AcceptRow("b", T0 + H, on_time=True),
        AcceptRow("b", T0 + 2 * H, on_time=False),  # a second accept of the same dispatch: ignored
        AcceptRow("d", T0 + H / 2, on_time=True),
        AcceptRow("x", T0, on_time=True),  # a case with no dispatch in the period
    ]
    # cases a b c d once each, however often dispatched; on time by the first: b, d
    assert f.response_rate(dispatches, accepts) == f.Ratio(2, 4)
    assert f.response_rate(dispatches[2:4], accepts) == f.Ratio(1, 2)


def test_accept_before_every_dispatch_goes_to_the_first() -> None:
    paired = f.pair_accepts([DispatchRow("a", T0)], [AcceptRow("a", T0 - H, True)])
    assert list(paired) == [0]


def _latest() -> dict[str, ResolutionRow]:
    return f.latest_resolutions(
        [
            ResolutionRow("a", T0, "grid", on_time=True),
            ResolutionRow("a", T0 + 24 * H, "community", on_time=False),  # after a reopen
            ResolutionRow("b", T0, "grid", on_time=True),
            ResolutionRow("c", T0, "street", on_time=True),
            ResolutionRow("d", T0, "community", on_time=False),
        ]
    )


FACTS = {
    "a": CaseFacts("a", opened_at=T0 - 2 * H, start_tier="grid", escalated=True, reopened=True),
    "b": CaseFacts("b", opened_at=T0 - 10 * H, start_tier="grid"),
    "c": CaseFacts("c", opened_at=T0 - 4 * H, start_tier="grid", escalated=True),
    "d": CaseFacts("d", start_tier="community"),  # opening not seen yet
}


def test_latest_resolution_of_each_case_counts() -> None:
    latest = _latest()
    assert set(latest) == {"a", "b", "c", "d"}
    assert latest["a"].tier == "community" and latest["a"].on_time is False


def test_on_time_resolution_rate() -> None:
    assert f.on_time_resolution_rate(_latest()) == f.Ratio(2, 4)


def test_resolution_and_satisfaction_rates() -> None:
    ratings = [
        RatingRow(True, "satisfied"),
        RatingRow(True, "basically_satisfied"),
        RatingRow(True, "unsatisfied"),
        RatingRow(False, "unsatisfied"),
        RatingRow(False, "basically_satisfied"),
    ]
    assert f.resolution_rate(ratings) == f.Ratio(3, 5)
    assert f.satisfaction_rate(ratings) == f.Ratio(3, 5)
    assert f.resolution_rate([]).rate is None


def test_reopen_rate() -> None:
    assert f.reopen_rate(_latest(), FACTS) == f.Ratio(1, 4)


def test_kept_in_grid_rate_counts_only_cases_started_at_grid() -> None:
    # started at grid: a (resolved at community), b (grid), c (street); d started at community
    assert f.kept_in_grid_rate(_latest(), FACTS) == f.Ratio(1, 3)


def test_kept_in_community_rate() -> None:
    # a community, b grid, d community: 3 of 4; c street
    assert f.kept_in_community_rate(_latest(), FACTS) == f.Ratio(3, 4)


def test_kept_in_community_rate_leaves_out_categories_above_the_community() -> None:
    # c resolved at street, but its category belongs to the street: out of both counts
    facts = {**FACTS, "c": CaseFacts("c", default_tier="street")}
    assert f.kept_in_community_rate(_latest(), facts) == f.Ratio(3, 3)
    # a (resolved at community) of a district-level category: out too
    facts["a"] = CaseFacts("a", default_tier="district")
    assert f.kept_in_community_rate(_latest(), facts) == f.Ratio(2, 2)


def test_escalation_rate() -> None:
    assert f.escalation_rate(_latest(), FACTS) == f.Ratio(2, 4)


def test_return_rate_counts_each_dispatch_returned_once() -> None:
    from services.feedback.formulas import ReturnRow

    dispatches = [
        DispatchRow("a", T0, 1),
        DispatchRow("a", T0 + H, 2),  # a's re-dispatch after its return
        DispatchRow("b", T0, 1),
        DispatchRow("c", T0, 1),
    ]
    returns = [
        ReturnRow("a", 1),
        ReturnRow("a", 1),  # the same return read twice counts once
        ReturnRow("c", 1),
        ReturnRow("z", 1),  # a dispatch of another period
    ]
    assert f.return_rate(dispatches, returns) == f.Ratio(2, 4)
    assert f.return_rate([], returns) == f.Ratio(0, 0)


def test_time_to_resolve_median_and_p90() -> None:
    hours = sorted(f.resolve_hours(_latest(), FACTS))
    # a: T0+24h - (T0-2h) = 26h; b: 10h; c: 4h; d: no opening known
    assert hours == [4.0, 10.0, 26.0]
    assert f.percentile(hours, 50) == 10.0
    assert f.percentile(hours, 90) == pytest.approx(10 + (26 - 10) * 0.8)
    assert f.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert f.percentile([], 50) is None


def test_hot_issues_top_n_with_change() -> None:
    current = {"sanitation": 5, "parking": 3, "noise": 3, "civility": 1}
    previous = {"sanitation": 2, "noise": 6}
    assert f.hot_issues(current, previous, top=3) == [
        {"category": "sanitation", "count": 5, "previous": 2, "change": 3, "change_rate": 1.5},
        {"category": "noise", "count": 3, "previous": 6, "change": -3, "change_rate": -0.5},
        {"category": "parking", "count": 3, "previous": 0, "change": 3, "change_rate": None},
    ]


def test_compute_assembles_every_metric() -> None:
    m = f.compute(
        MetricInputs(
            opened=[CaseFacts("a"), CaseFacts("b")],
            dispatches=[DispatchRow("a", T0)],
            accepts=[AcceptRow("a", T0 + H, True)],
            resolutions=[ResolutionRow("a", T0 + 6 * H, "grid", True)],
            ratings=[RatingRow(True, "satisfied")],
            facts={"a": CaseFacts("a", opened_at=T0, start_tier="grid")},
        )
    )
    assert m["received"] == 2 and m["resolved"] == 1 and m["ratings"] == 1
    assert m["response_rate"]["rate"] == 1.0
    assert m["kept_in_grid_rate"]["rate"] == 1.0
    assert m["time_to_resolve_hours"] == {"median": 6.0, "p90": 6.0, "cases": 1}


def test_score_weights_available_rates_and_inverts_reopen() -> None:
    m = {
        "satisfaction_rate": {"rate": 0.5},
        "on_time_resolution_rate": {"rate": 1.0},
        "response_rate": {"rate": None},
        "resolution_rate": {"rate": 1.0},
        "kept_in_community_rate": {"rate": 0.0},
        "reopen_rate": {"rate": 1.0},
    }
    # (0.3*0.5 + 0.2*1 + 0.15*1 + 0.1*0 + 0.1*(1-1)) / (1 - 0.15)
    assert f.score(m) == round(100 * 0.5 / 0.85, 2)
    assert f.score({}) is None


def test_rank_orders_ties_and_missing_values() -> None:
    rows: list[dict[str, object]] = [
        {"code": "b", "score": 80.0},
        {"code": "a", "score": 80.0},
        {"code": "c", "score": None},
        {"code": "d", "score": 90.0},
    ]
    ranked = [(r["code"], r["rank"]) for r in f.rank(rows)]
    assert ranked == [("d", 1), ("a", 2), ("b", 2), ("c", 4)]
    by_reopen = f.rank(
        [{"code": "x", "reopen_rate": 0.5}, {"code": "y", "reopen_rate": 0.1}], "reopen_rate"
    )
    assert [r["code"] for r in by_reopen] == ["y", "x"]


def test_warnings_count_every_card_by_stage() -> None:
    from services.feedback.formulas import CardRow, warned

    cards = [
        CardRow("c-1", "respond", "yellow"),
        CardRow("c-1", "respond", "red"),
        CardRow("c-1", "respond", "yellow"),  # the next dispatch attempt, warned again
        CardRow("c-2", "resolve", "yellow"),
    ]
    assert warned(cards) == {
        "yellow": 3,
        "red": 1,
        "cases": 2,
        "respond": {"yellow": 2, "red": 1},
        "resolve": {"yellow": 1, "red": 0},
        "verify": {"yellow": 0, "red": 0},
    }
    assert warned([])["cases"] == 0


def test_supervisions_count_cases_once_and_every_supervision() -> None:
    from services.feedback.formulas import MetricInputs, SupervisionRow, compute, supervised

    rows = [SupervisionRow("c-1", 1), SupervisionRow("c-1", 2), SupervisionRow("c-2", 1)]
    assert supervised(rows) == {"cases": 2, "supervisions": 3}
    assert supervised([]) == {"cases": 0, "supervisions": 0}
    assert compute(MetricInputs(supervisions=rows))["supervised"] == supervised(rows)
