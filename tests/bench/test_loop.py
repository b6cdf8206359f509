"""The pure parts of bench.loop: what the simulated handlers, verifiers and residents answer
(each event once, the verifier other than the resolver, the sealed request opened), the stage
latencies, doubled closures and the lag summary."""

from __future__ import annotations

import base64

from bench.loop import Reactions, doubled_closures, lag_summary, per_second, stage_latencies
from shared.contract.notify import NotifyKey, NotifyKeys, seal

KEY = base64.urlsafe_b64encode(b"n" * 32).decode()
STAFF = {"G1": ["h-1", "h-2"], "C1": ["h-10", "h-11"], "S1": []}


def reactions() -> Reactions:
    return Reactions(STAFF, NotifyKeys.parse(KEY))


def test_a_dispatched_case_is_accepted_and_resolved_once() -> None:
    r = reactions()
    ev = {"case_id": "C-1", "attempt": 1, "unit": "G1", "handler_id": "h-2"}
    sends = r.react("cases.dispatched", ev, "2026-12-02T10:00:00+00:00")
    assert [(s.topic, s.body["action"], s.body["handler_id"]) for s in sends] == [
        ("handler.actions", "accept", "h-2"),
        ("handler.actions", "resolve", "h-2"),
    ]
    assert [s.body["action_id"] for s in sends] == ["C-1:1:accept", "C-1:1:resolve"]
    assert all(s.key == "C-1" for s in sends)
    assert r.react("cases.dispatched", ev, "later") == []  # read twice: answered once
    # a second attempt is a new dispatch
    assert len(r.react("cases.dispatched", {**ev, "attempt": 2}, "later")) == 2


def test_a_case_for_a_unit_as_a_whole_goes_to_its_first_handler_or_is_stuck() -> None:
    r = reactions()
    sends = r.react("cases.dispatched", {"case_id": "C-2", "unit": "G1"}, "t")
    assert {s.body["handler_id"] for s in sends} == {"h-1"}
    assert r.react("cases.dispatched", {"case_id": "C-3", "unit": "S1"}, "t") == []
    assert r.stuck == {"C-3"}
    assert r.unanswered == {"no handler in S1": 1}


def test_the_verifier_is_not_the_resolver() -> None:
    r = reactions()
    ev = {"case_id": "C-1", "handler_id": "h-10", "verifier_unit": "C1", "resolved_at": "T1"}
    (send,) = r.react("cases.resolved", ev, "t")
    assert send.body["action"] == "verify"
    assert send.body["handler_id"] == "h-11"
    assert send.body["action_id"] == "C-1:T1:verify"
    assert r.react("cases.resolved", ev, "t") == []
    # no verifier named: nothing to verify
    assert r.react("cases.resolved", {"case_id": "C-4", "resolved_at": "T"}, "t") == []
    # a unit whose only handler resolved it: nobody may verify
    lone = Reactions({"C2": ["h-20"]}, NotifyKeys.parse(KEY))
    ev2 = {"case_id": "C-5", "handler_id": "h-20", "verifier_unit": "C2", "resolved_at": "T"}
    assert lone.react("cases.resolved", ev2, "t") == []
    assert lone.stuck == {"C-5"}


def test_a_sealed_request_is_opened_and_rated_satisfied_once() -> None:
    r = reactions()
    key = NotifyKey.parse(KEY)
    ref = "r-1"
    sealed = seal(
        key,
        {"rating_token": "tok-1", "status_token": "s"},
        case_id="C-1",
        round=1,
        reporter_ref=ref,
    )
    ev = {"case_id": "C-1", "reporter_ref": ref, "round": 1, "sealed_links": sealed}
    (send,) = r.react("feedback.requested", ev, "2026-12-02T10:00:00+00:00")
    assert send.topic == "feedback.submitted"
    assert send.body == {
        "case_id": "C-1",
        "rating_token": "tok-1",
        "at": "2026-12-02T10:00:00+00:00",
        "resolved": True,
        "satisfaction": "satisfied",
    }
    # the same token again (v1 beside v2): rated once
    assert (
        r.react("feedback.requested", {**ev, "sealed_links": None, "rating_token": "tok-1"}, "t")
        == []
    )
    # sealed for another reporter: does not open
    assert r.react("feedback.requested", {**ev, "reporter_ref": "r-2"}, "t") == []
    assert r.unanswered == {"request does not open": 1}


def test_stage_latencies_over_the_cases_with_both_points() -> None:
    points = {
        "opened": {"a": 1000.0, "b": 2000.0, "c": 3000.0},
        "dispatched": {"a": 1010.0, "b": 2030.0},
    }
    out = stage_latencies(points, [("opened->dispatched", "opened", "dispatched")])
    assert out["opened->dispatched"]["cases"] == 2
    assert out["opened->dispatched"]["p50"] in (10.0, 30.0)
    assert out["opened->dispatched"]["p99"] == 30.0
    empty = stage_latencies(points, [("x", "opened", "closed")])
    assert empty["x"] == {"cases": 0, "p50": None, "p95": None, "p99": None}


def test_doubled_closures_count_distinct_events() -> None:
    assert doubled_closures({"a": {"e1"}, "b": {"e2"}}) == 0
    assert doubled_closures({"a": {"e1", "e3"}, "b": {"e2"}}) == 1


def test_per_second_and_lag_summary() -> None:
    assert per_second([10.2, 10.9, 12.5], 10.0) == [2, 0, 1]
    assert per_second([], 0.0) == []
    samples = [
        {"t": 0.0, "lags": {"x": 5, "y": 0}},
        {"t": 2.0, "lags": {"x": 50, "y": 7}},
        {"t": 4.0, "lags": {"x": 1, "y": 9}},
    ]
    out = lag_summary(samples)
    assert out == {"x": {"max": 50, "at_s": 2.0}, "y": {"max": 9, "at_s": 4.0}}
    assert list(out) == ["x", "y"]  # largest first
