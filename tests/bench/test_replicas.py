"""The pure parts of bench.replicas: reading outcome records, finding doubled effects, the split
of a topic's messages over replicas, and the sizing arithmetic of docs/scaling.md."""

from __future__ import annotations

from typing import cast

import pytest

from bench.replicas import (
    Layout,
    Reader,
    Record,
    doubled_on_topics,
    nothing_doubled,
    record_of,
    size_for,
    split_of,
)
from shared.runtime.settings import Settings


def opened(ce: str, case: str, *reports: str) -> Record:
    return Record("cases.opened", ce, case, reports)


def dispatched(ce: str, case: str, attempt: int = 1) -> Record:
    return Record("cases.dispatched", ce, case, (), attempt)


CLEAN = [
    opened("e1", "C1", "r1"),
    Record("cases.merged", "e2", "C1", ("r2",)),
    Record("reports.rejected", "e3", None, ("r3",)),
    opened("e4", "C2"),  # a proactive case (未诉先办): no report
    dispatched("e5", "C1"),
    dispatched("e6", "C2"),
    dispatched("e7", "C1", attempt=2),  # a re-dispatch is another attempt, not a double
]


def test_layout_parse() -> None:
    assert Layout.parse("2x3@12") == Layout(2, 3, 12)
    assert Layout.parse("1x1") == Layout(1, 1, 6)
    assert Layout(2, 2, 6).label == "2x2@6"
    with pytest.raises(ValueError):
        Layout.parse("0x1@6")


def test_record_of_reads_ce_id_and_reports() -> None:
    r = record_of("cases.opened", {"case_id": "C1", "report_ids": ["a", "b"]}, [("ce_id", b"x")])
    assert r == Record("cases.opened", "x", "C1", ("a", "b"), 1)
    r = record_of("cases.dispatched", {"case_id": "C1", "attempt": 2}, [("ce_id", b"y")])
    assert (r.attempt, r.report_ids) == (2, ())
    r = record_of("reports.rejected", {"report_id": None}, [])
    assert (r.ce_id, r.report_ids) == ("", ())


def test_a_clean_run_has_nothing_doubled() -> None:
    c = doubled_on_topics(["r1", "r2", "r3"], CLEAN)
    assert c["reports_without_outcome"] == c["reports_with_two_outcomes"] == 0
    assert (c["cases_opened"], c["proactive_cases_opened"], c["cases_dispatched"]) == (2, 1, 2)
    assert c["cases_dispatched_twice_in_an_attempt"] == c["cases_opened_not_dispatched"] == 0
    tables = {"intake_cases": 2, "dispatch_cases": 2, "intake_report_rows_doubled": 0}
    assert nothing_doubled({**c, **tables})


def test_doubles_are_found() -> None:
    records = [
        *CLEAN,
        opened("e8", "C1", "r1"),  # C1 opened again by another event: r1 has two outcomes
        dispatched("e9", "C2"),  # C2's first attempt dispatched by a second event
        dispatched("e6", "C2"),  # the same event read again: not a doubled effect
    ]
    c = doubled_on_topics(["r1", "r2", "r3", "r4"], records)
    assert c["reports_with_two_outcomes"] == 1
    assert c["cases_opened_twice"] == 1
    assert c["cases_dispatched_twice_in_an_attempt"] == 1
    assert c["records_read_twice"] == 1
    assert c["reports_without_outcome"] == 1  # r4
    assert not nothing_doubled({**c, "intake_cases": 2, "dispatch_cases": 2})


def test_tables_disagreeing_with_the_topics_fail() -> None:
    c = doubled_on_topics(["r1", "r2", "r3"], CLEAN)
    assert not nothing_doubled({**c, "intake_cases": 2, "dispatch_cases": 3})
    assert not nothing_doubled(
        {**c, "intake_cases": 2, "dispatch_cases": 2, "cases_with_two_dispatch_entries": 1}
    )


def test_split_of() -> None:
    consumed = {
        "intake-0": {"reports.submitted": 40.0},
        "intake-1": {"reports.submitted": 60.0},
        "dispatch-2": {"cases.opened": 90.0},
        "dispatch-3": {"cases.opened": 0.0},
    }
    s = split_of(consumed, {"reports.submitted": 100, "cases.opened": 91})
    assert s["reports.submitted"]["by_replica"] == {"intake-0": 40, "intake-1": 60}
    assert s["reports.submitted"]["each_got_some"] and s["reports.submitted"]["sum_equals_messages"]
    assert not s["cases.opened"]["each_got_some"]
    assert not s["cases.opened"]["sum_equals_messages"]


def test_size_for_the_arithmetic() -> None:
    # 70 reports/s * 10 events = 700 events/s, read twice: 1,400 reads/s at 200 µs = 0.28 cores
    s = size_for(70, 200, {"intake": 400, "dispatch": 250})
    assert (s["events_per_s"], s["consumed_per_s"]) == (700, 1400)
    assert s["service_cores"] == pytest.approx(0.28)
    assert s["cores_per_service_at_most"] == pytest.approx(0.14)  # 700 reads/s each at most
    assert s["replicas_per_service"] == 2  # the minimum: availability, not load
    assert s["per_partition_messages_per_s"] == 2500  # 1e6 / 400 µs, the dearest hop
    assert s["busiest_topic_per_s"] == 210 and s["partitions_for_rate"] == 1
    assert s["partitions_per_topic"] == 6  # a multiple of 6
    # 7,000 reports/s: 70,000 events/s at 200 µs = 14 cores a service -> 28 replicas at half a
    # core; the busiest topic 21,000/s over 1,250/s a partition -> 17; 28 -> 30 partitions
    big = size_for(7000, 200, {"intake": 400, "dispatch": 250})
    assert big["replicas_per_service"] == 28
    assert big["partitions_for_rate"] == 17
    assert big["partitions_per_topic"] == 30


def test_reader_counts_a_report_done_when_its_case_is_dispatched() -> None:
    r = Reader(cast(Settings, None))
    r._add(dispatched("d1", "C1"), 2.0)  # read before its cases.opened (another partition)
    r._add(opened("o1", "C1", "r1"), 1.0)
    r._add(opened("o2", "C9"), 1.0)  # a proactive case: no report's
    r._add(dispatched("d2", "C9"), 3.0)
    r._add(opened("o3", "C2", "r2"), 4.0)  # opened, not yet dispatched: not done
    r._add(Record("cases.merged", "m1", "C1", ("r3",)), 5.0)
    assert r.done == {"r1": 1.0, "r3": 5.0}
    assert set(r.intake_done) == {"r1", "r2", "r3"}
    assert r.reports_done() == 2
