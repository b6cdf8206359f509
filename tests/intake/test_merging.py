"""Placing a batch of reports on cases (pure): who opens, who merges, the supporter counts."""

from __future__ import annotations

from itertools import count

from services.intake.merging import (
    MergeTarget,
    Placement,
    merge_target,
    place_reports,
    supporter_counts_after_batch,
    supporter_counts_after_each,
)

A = MergeTarget("noise", "building", "B1")
B = MergeTarget("noise", "building", "B2")


def ids() -> object:
    n = count(1)
    return lambda: f"new-{next(n)}"


def test_merge_target_is_the_finest_of_building_grid_place() -> None:
    assert merge_target("noise", {"building": "B1", "grid": "G1"}, "B1") == A
    assert merge_target("noise", {"grid": "G1"}, "G1") == MergeTarget("noise", "grid", "G1")
    assert merge_target("noise", {"community": "C1"}, "C1") == MergeTarget("noise", "place", "C1")


def test_first_report_of_a_target_without_a_case_opens_one_the_rest_merge() -> None:
    placed = place_reports([A, B, A, B, A], {B: "old"}, ids())  # type: ignore[arg-type]
    assert placed == [
        Placement("new-1", opens=True),
        Placement("old", opens=False),
        Placement("new-1", opens=False),
        Placement("old", opens=False),
        Placement("new-1", opens=False),
    ]


PLACED = [
    Placement("new", opens=True),
    Placement("old", opens=False),
    Placement("new", opens=False),
    Placement("old", opens=False),  # the same reporter again: no new supporter
    Placement("new", opens=False),
]


def test_supporter_counts_after_the_batch_start_from_the_counts_read() -> None:
    new = [True, True, True, False, True]
    # "old" had 4 and gained 1; "new" (opened by the batch) has its opener and 2 more
    assert supporter_counts_after_batch(PLACED, new, {"old": 4}) == {"old": 5, "new": 3}
    # a case only opened (no merge) is not written again; a merge adding no one keeps the count
    assert supporter_counts_after_batch(PLACED[:1], [True], {}) == {}
    assert supporter_counts_after_batch([Placement("old", opens=False)], [False], {"old": 7}) == {
        "old": 7
    }


def test_supporter_count_after_each_report() -> None:
    new = [True, True, True, False, True]
    # after the batch: "old" had 4 and gained 1; "new" has its opener and 2 more
    assert supporter_counts_after_each(PLACED, new, {"old": 5, "new": 3}) == [1, 5, 2, 5, 3]


def test_a_report_without_a_case_at_its_place_joins_the_same_matter_nearby():
    from services.intake.merging import nearby_lock_keys
    from services.intake.similarity import NearbyCase, NearbyRule, Sketch, matter_text

    rule = NearbyRule()
    text = matter_text("7栋3楼有人从窗户拉电线下来给电瓶车充电，线挂在半空中，很危险")
    near = Sketch("ebike_charging", 114.4, 30.5, text)
    t1 = MergeTarget("ebike_charging", "grid", "G1")
    t2 = MergeTarget("ebike_charging", "grid", "G2")
    t3 = MergeTarget("ebike_charging", "grid", "G3")
    ids = iter(["N1", "N2"])
    out = place_reports(
        [t1, t2, t1, t3],
        {},
        lambda: next(ids),
        sketches=[near, None, None, Sketch("ebike_charging", 114.4003, 30.5003, text)],
        nearby=[NearbyCase("OPEN", Sketch("ebike_charging", 114.4002, 30.5001, text))],
        rule=rule,
    )
    assert out[0] == Placement("OPEN", opens=False, by="nearby")
    assert out[1] == Placement("N1", opens=True)  # no point: the place rule only
    assert out[2] == Placement("OPEN", opens=False)  # its target follows the first report
    assert out[3].case_id == "OPEN" and out[3].by == "nearby"
    # without a rule, the place rule alone
    ids = iter(["A", "B"])
    alone = place_reports([t1, t3], {}, lambda: next(ids), sketches=[near, near])
    assert [p.opens for p in alone] == [True, True]
    # within a batch, a case opened by one report is found by the next one nearby
    ids = iter(["A", "B"])
    batch = place_reports([t1, t3], {}, lambda: next(ids), sketches=[near, near], rule=rule)
    assert batch == [Placement("A", opens=True), Placement("A", opens=False, by="nearby")]
    # two points within the radius share a lock key
    other = Sketch("ebike_charging", 114.4 + 100 / 96_000, 30.5, text)
    assert set(nearby_lock_keys(near, rule)) & set(nearby_lock_keys(other, rule))
