"""The in-memory handler loads of a sweep (pure)."""

from services.dispatch.assignment import HandlerLoad, next_handler, pick_handler
from services.dispatch.sweeps import Loads


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
