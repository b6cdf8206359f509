"""W3C trace context through the services: a report without ``traceparent`` starts a trace; each
hop keeps the trace id with a new span id; a report with one continues it (and its tracestate)."""

from __future__ import annotations

import pytest

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.metrics import ServiceMetrics
from shared.runtime.tracing import child_headers, new_root, parse_traceparent
from tests.samples import report, sample_registry, wait_registry

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # v00 has 4 parts
    ],
)
def test_invalid_traceparent_starts_a_new_trace(value: str | None) -> None:
    assert parse_traceparent(value) is None
    hop = parse_traceparent(child_headers({"traceparent": value} if value else {})["traceparent"])
    assert hop is not None and hop.flags == "01"
    assert hop.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"


def test_child_keeps_trace_id_flags_and_state_with_a_new_span() -> None:
    out = child_headers({"traceparent": PARENT, "tracestate": "vendor=1", "ce_id": "x"})
    hop = parse_traceparent(out["traceparent"])
    assert hop is not None
    assert (hop.trace_id, hop.flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert hop.span_id != "00f067aa0ba902b7"
    assert out["tracestate"] == "vendor=1" and "ce_id" not in out
    unsampled = child_headers({"traceparent": PARENT[:-2] + "00"})["traceparent"]
    assert unsampled.endswith("-00")
    assert new_root()["traceparent"] != new_root()["traceparent"]


async def test_scrape_hooks_refresh_and_failures_are_counted() -> None:
    m = ServiceMetrics("t")
    g = m.gauge("wangge_test_open_cases", "test", ["tier"])

    @m.on_scrape
    async def fill() -> None:
        g.labels("grid").set(7)

    @m.on_scrape
    async def broken() -> None:
        raise RuntimeError("database away")

    await m.refresh()
    text = m.render().decode()
    assert 'wangge_test_open_cases{tier="grid"} 7.0' in text
    assert 'wangge_scrape_hook_failures_total{hook="broken"} 1.0' in text


def _trace(record) -> tuple[str, str]:
    parsed = parse_traceparent(record.headers.get("traceparent"))
    assert parsed is not None, record.headers
    return parsed.trace_id, parsed.span_id


async def test_one_report_is_one_trace_across_intake_and_dispatch(bed: Testbed) -> None:
    intake = await bed.start("intake")
    await bed.start("dispatch")
    s = bed.settings()
    await publish_registry(s, sample_registry())
    await wait_registry(bed)

    plain, traced = report(), report(description="5栋门口路灯坏了，晚上很黑")
    async with (
        Publisher(s, source="test/upstream") as pub,
        TopicReader(s, "cases.opened", "cases.dispatched") as reader,
    ):
        await pub.send("reports.submitted", plain, key=plain["report_id"])
        await pub.send(
            "reports.submitted",
            traced,
            key=traced["report_id"],
            headers={"traceparent": PARENT, "tracestate": "wg=1"},
        )
        await reader.wait_for(
            lambda r: len(r.of("cases.opened")) >= 2 and len(r.of("cases.dispatched")) >= 2,
            what="two cases opened and dispatched",
        )

    def by_report(rid: str) -> tuple:
        opened = next(r for r in reader.of("cases.opened") if rid in r.json()["report_ids"])
        case_id = opened.json()["case_id"]
        dispatched = next(r for r in reader.of("cases.dispatched") if r.key == case_id)
        return opened, dispatched

    opened, dispatched = by_report(plain["report_id"])
    (t1, s1), (t2, s2) = _trace(opened), _trace(dispatched)
    assert t1 == t2 and s1 != s2  # one trace, a new span per hop

    opened, dispatched = by_report(traced["report_id"])
    (t1, s1), (t2, s2) = _trace(opened), _trace(dispatched)
    assert t1 == t2 == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len({s1, s2, "00f067aa0ba902b7"}) == 3
    assert opened.headers["tracestate"] == dispatched.headers["tracestate"] == "wg=1"

    # The outbox relay counts what it published (after the broker's ack), per logical topic.
    async def scraped() -> str | None:
        await intake.metrics.refresh()
        text = intake.metrics.render().decode()
        done = 'wangge_messages_published_total{topic="cases.opened"} 2.0' in text
        return text if done and "wangge_outbox_backlog 0.0" in text else None

    text = await eventually(scraped, timeout=10, what="intake's metrics")
    assert text is not None
    assert 'wangge_messages_consumed_total{topic="reports.submitted"} 2.0' in text
    # the same two messages, counted in the polled batches they came in (one or two)
    assert 'wangge_consumed_batch_messages_sum{topic="reports.submitted"} 2.0' in text
