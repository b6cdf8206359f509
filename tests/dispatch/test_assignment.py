"""Assignment rules (pure): the unit of a tier, the handler within it, and the handler loads a
batch keeps current."""

from __future__ import annotations

import random

import pytest

from services.dispatch.assignment import (
    Dept,
    HandlerLoad,
    Loads,
    Location,
    TargetUnit,
    next_handler,
    pick_handler,
    route,
    transfer_refusal,
)
from shared.contract.events import Tier

LOC = Location(district="WC", street="WC-YY", community="WC-YY-OJY", grid="WC-YY-OJY-G01")
DEPTS = [
    Dept("WC-CGJ", "WC", ("illegal_construction", "market_order")),
    Dept("WC-FWJ", "WC", ("demolition",)),
    Dept("WC-YY-SZ", "WC-YY", ("municipal_facility",)),
    Dept("WC-YY-SFS", "WC-YY", ("legal_petition",)),
    Dept("WC-ZHL-SZ", "WC-ZHL", ("municipal_facility",)),
    Dept("WC-YY-ZZ", "WC-YY", ("market_order",)),
]


@pytest.mark.parametrize(
    ("tier", "category", "unit"),
    [
        ("grid", "sanitation", "WC-YY-OJY-G01"),
        ("community", "parking", "WC-YY-OJY"),
        ("street", "municipal_facility", "WC-YY-SZ"),  # the street's own department
        ("street", "illegal_construction", "WC-CGJ"),  # a district department (城管)
        ("street", "market_order", "WC-YY-ZZ"),  # the street's before the district's
        ("street", "noise", "WC-YY"),  # nobody owns it: the street office
        ("district", "demolition", "WC-FWJ"),
        ("district", "municipal_facility", "WC"),  # street departments are not district ones
    ],
)
def test_unit_of_each_tier(tier: Tier, category: str, unit: str) -> None:
    r = route(tier, LOC, category, DEPTS)
    assert r is not None and (r.tier, r.unit, r.notes) == (tier, unit, [])


def test_excluded_units_are_skipped_then_the_case_goes_up() -> None:
    r = route("street", LOC, "market_order", DEPTS, exclude=["WC-YY-ZZ"])
    assert r is not None and r.unit == "WC-CGJ"
    r = route("street", LOC, "market_order", DEPTS, exclude=["WC-YY-ZZ", "WC-CGJ"])
    assert r is not None and r.unit == "WC-YY"
    r = route("grid", LOC, "sanitation", DEPTS, exclude=["WC-YY-OJY-G01"])
    assert r is not None and (r.tier, r.unit) == ("community", "WC-YY-OJY")
    assert r.notes == ["no grid unit left for the case: community"]
    assert route("district", LOC, "demolition", DEPTS, exclude=["WC-FWJ", "WC"]) is None


def test_a_case_located_only_to_its_community_starts_there() -> None:
    r = route("grid", Location("WC", "WC-YY", "WC-YY-OJY", None), "sanitation", DEPTS)
    assert r is not None and (r.tier, r.unit) == ("community", "WC-YY-OJY")


def h(
    id_: str, open_cases: int = 0, role: str = "grid_worker", on_duty: bool = True
) -> HandlerLoad:
    return HandlerLoad(id_, role, on_duty, open_cases)


def test_fewest_open_cases_ties_by_id_never_volunteers_or_off_duty() -> None:
    assert pick_handler([h("h-2", 1), h("h-1", 1), h("h-3", 0)]) == "h-3"
    assert pick_handler([h("h-2", 1), h("h-1", 1)]) == "h-1"
    assert pick_handler([h("h-1", 0, on_duty=False), h("h-2", 4)]) == "h-2"
    assert pick_handler([h("h-0", 0, role="party_volunteer"), h("h-2", 4)]) == "h-2"
    assert pick_handler([h("h-1", 0, on_duty=False)]) is None
    assert pick_handler([]) is None


def test_next_handler_after_a_missed_response() -> None:
    assert next_handler([h("h-1", 0), h("h-2", 5)], "h-1") == "h-2"
    assert next_handler([h("h-1", 0)], "h-1") == "h-1"  # nobody else: keep the one there is
    assert next_handler([h("h-1", 0, on_duty=False)], "h-1") is None
    assert next_handler([h("h-1", 0)], None) == "h-1"


@pytest.mark.parametrize(
    ("tier", "unit", "target", "ok"),
    [
        ("grid", "WC-YY-OJY-G01", TargetUnit("WC-YY-OJY-G02", level="grid"), True),
        ("grid", "WC-YY-OJY-G01", TargetUnit("WC-YY-OJY", level="community"), False),
        ("grid", "WC-YY-OJY-G01", TargetUnit("WC-YY-OJY-G01", level="grid"), False),
        ("community", "WC-YY-OJY", TargetUnit("WC-YY-HPY", level="community"), True),
        ("street", "WC-YY", TargetUnit("WC-YY-SZ", department_of="street"), True),
        ("street", "WC-YY-SZ", TargetUnit("WC-CGJ", department_of="district"), True),
        ("street", "WC-YY-SZ", TargetUnit("WC-ZHL", level="street"), True),
        ("district", "WC", TargetUnit("WC-FWJ", department_of="district"), True),
        ("district", "WC-FWJ", TargetUnit("WC-YY-SZ", department_of="street"), False),
        ("grid", "WC-YY-OJY-G01", TargetUnit("WC-YY-OJY-G01-B03", level="building"), False),
        ("grid", "WC-YY-OJY-G01", None, False),
    ],
)
def test_transfer_stays_within_the_tier(
    tier: Tier, unit: str, target: TargetUnit | None, ok: bool
) -> None:
    assert (transfer_refusal(tier, unit, target) is None) is ok


# --- the handler loads of a batch (opening, sweeps) ---------------------------------------------


def loads() -> Loads:
    return Loads(
        {
            "G1": [
                HandlerLoad("a", "grid_worker", True, 3),
                HandlerLoad("b", "grid_worker", True, 4),
            ],
            "C1": [
                HandlerLoad("v", "party_volunteer", True, 0),
                HandlerLoad("c", "staff", True, 0),
            ],
            "empty": [],
        }
    )


def test_moving_a_case_counts_it_for_its_new_handler_only() -> None:
    book = loads()
    assert pick_handler(book.of("G1")) == "a"
    book.move(None, "a")  # the unit's case goes to a: 4 and 4, ties by id
    book.move(None, "a")  # 5 and 4
    assert pick_handler(book.of("G1")) == "b"
    book.move("a", "b")  # 4 and 5
    assert [(h.id, h.open_cases) for h in book.of("G1")] == [("a", 4), ("b", 5)]
    book.move("b", "b")  # the same handler again: no change
    book.move("b", None)  # to the unit as a whole: b loses it
    book.move("x", "c")  # from a handler of a unit not read: only c counts it
    assert [(h.id, h.open_cases) for h in book.of("G1")] == [("a", 4), ("b", 4)]
    assert [(h.id, h.open_cases) for h in book.of("C1")] == [("v", 0), ("c", 1)]


def test_a_unit_not_read_or_without_handlers_has_nobody() -> None:
    book = loads()
    assert book.of("empty") == [] and book.of("elsewhere") == []
    assert next_handler(book.of("elsewhere"), "a") is None
    assert pick_handler(book.of("C1")) == "c"  # never the party volunteer


def test_loads_pick_is_pick_handler_of_the_current_counts() -> None:
    rng = random.Random(7)
    staff = {
        f"U{u}": [
            HandlerLoad(
                f"h{u}-{i}",
                rng.choice(["grid_worker", "party_volunteer", "community_staff"]),
                rng.random() > 0.2,
                rng.randrange(4),
            )
            for i in range(rng.randrange(0, 12))
        ]
        for u in range(6)
    }
    book = Loads(staff)
    everyone = [h.id for hs in staff.values() for h in hs] + [None, "elsewhere"]
    for _ in range(500):
        unit = rng.choice([*staff, "not-read"])
        assert book.pick(unit) == pick_handler(book.of(unit))
        book.move(rng.choice(everyone), book.pick(unit) or rng.choice(everyone))
