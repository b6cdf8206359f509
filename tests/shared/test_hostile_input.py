"""Hostile input on every input topic (property-based, hypothesis): wrong types, missing fields,
1 MB strings, deeply nested JSON, invalid UTF-8, SQL and shell fragments, huge numbers, timestamps
without offsets, unknown codes. Each message is rejected or dead-lettered with a reason, exactly
once; the services keep running; a good message sent right after is processed; nothing from the
bad ones reaches the database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from tests.feedback.helpers import token_of
from tests.samples import now_iso, report, sample_registry, wait_registry

SQL = "'; DROP TABLE cases; --"
SHELL = "$(rm -rf / --no-preserve-root)"
HOSTILE_CODES = st.sampled_from([SQL, SHELL, "NOPE-UNKNOWN", "../../etc/passwd", "", "x" * 200])
HUGE = st.sampled_from([10**40, -(10**40), 2**63, -1, 0, 1e308])
NAIVE_TIME = st.just("2026-11-23T10:00:00")
WRONG_TYPE = st.sampled_from([[], {}, 3.5, True, ["a"], {"$gt": ""}])
DEEP = st.integers(min_value=300, max_value=800).map(lambda n: "[" * n + "]" * n)


def draw(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` examples of ``strategy``, the same on every run (derandomized)."""
    out: list[Any] = []

    @settings(
        max_examples=n,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(x: Any) -> None:
        out.append(x)

    collect()
    return out[:n]


def mutations(template: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]) -> Any:
    """A valid ``template`` with one field made invalid, or removed when it is required."""

    def apply(choice: tuple[str, Any]) -> bytes:
        field, value = choice
        body = json.loads(json.dumps(template))
        target, _, sub = field.partition(".")
        if value is _MISSING:
            if sub:
                body[target].pop(sub, None)
            else:
                body.pop(target, None)
        elif sub:
            body[target][sub] = value
        else:
            body[target] = value
        return json.dumps(body, ensure_ascii=False).encode()

    pairs = st.one_of(*[st.tuples(st.just(f), s) for f, s in fields.items()])
    return pairs.map(apply)


_MISSING = object()
NOT_JSON_OBJECT = st.one_of(
    st.binary(min_size=1, max_size=64).filter(lambda b: not b.strip().startswith(b"{")),
    st.just(b'\xff\xfe{"a": 1}'),
    st.just(b'{"description": "\xed\xa0\x80"}'),  # a lone surrogate: invalid UTF-8
    DEEP.map(str.encode),
    st.just(b"null"),
    st.just(b"[1, 2, 3]"),
    st.just(b'"just a string"'),
)


async def run_hostile(
    bed: Testbed,
    topic: str,
    bad: list[bytes],
    good: dict[str, Any],
    answers: str,
    done: tuple[str, Callable[[dict[str, Any]], bool]],
    tables: list[str],
) -> None:
    """Publish the bad messages then the good one; each bad one gets exactly one answer (on
    ``answers`` or ``<topic>.dlq``), the good one is processed (a record on ``done[0]`` matching
    ``done[1]``), and the tables gain nothing but the good message's rows."""
    s = bed.settings()
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        before = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
        # (a rejected report keeps one row with its id and errors, so `wangge report show` can
        # answer; the tables checked here hold only accepted state)
        async with (
            Publisher(s, source="test/hostile") as pub,
            TopicReader(s, answers, f"{topic}.dlq", done[0]) as reader,
        ):
            for i, body in enumerate(bad):
                # Each bad message its own idempotency key: a repeated key is (rightly) ignored.
                await pub.send(topic, body.replace(b"__ID__", b"%d" % i), key="hostile")
            await pub.send(topic, good, key="good")
            await reader.wait_for(
                lambda r: any(done[1](x.json()) for x in r.of(done[0])),
                timeout=90,
                what=f"the good {topic} message",
            )
            n_answers = lambda r: len(r.of(answers)) + len(r.of(f"{topic}.dlq"))  # noqa: E731
            await reader.wait_for(
                lambda r: n_answers(r) >= len(bad), timeout=60, what="an answer to each"
            )
            assert n_answers(reader) == len(bad)
            for rec in reader.of(f"{topic}.dlq"):
                assert rec.headers["dlq_error_class"] and rec.headers["dlq_error"]
            for rec in reader.of(answers):
                body = rec.json()
                assert body.get("errors") or body.get("reason")
        after = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
    finally:
        await conn.close()
    # Nothing from the bad messages: at most the good one's row in each table.
    assert all(after[t] - before[t] <= 1 for t in tables), (before, after)


async def test_hostile_reports(bed: Testbed) -> None:
    await bed.start("intake")
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)
    template = report(report_id="hostile-__ID__")
    fields: dict[str, st.SearchStrategy[Any]] = {
        "report_id": st.one_of(WRONG_TYPE, st.just(""), st.just(_MISSING)),
        "source": st.one_of(HOSTILE_CODES, st.just(_MISSING)),
        "submitted_at": st.one_of(NAIVE_TIME, WRONG_TYPE, st.just(_MISSING)),
        "description": st.one_of(st.just("x" * 1_000_000), st.just(""), WRONG_TYPE),
        "title": st.just("标题" * 100),
        "households_affected": HUGE,
        "category": HOSTILE_CODES,
        "reporter.phone": st.sampled_from(["12345", SQL, "138123456789", "+1 555 0100"]),
        "location.building_code": HOSTILE_CODES,
        "location": st.one_of(WRONG_TYPE, st.just({})),
        "photos": st.sampled_from([["javascript:alert(1)"], "http://x", [SHELL]]),
    }
    bad = draw(st.one_of(mutations(template, fields), NOT_JSON_OBJECT), 40)
    good = report(report_id="good-1")
    await run_hostile(
        bed,
        "reports.submitted",
        bad,
        good,
        "reports.rejected",
        ("cases.opened", lambda c: c["report_ids"] == ["good-1"]),
        ["intake.cases", "intake.reports WHERE outcome <> 'rejected'"],
    )


async def test_hostile_handler_actions(bed: Testbed) -> None:
    await bed.start("dispatch")
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.dispatched") as reader,
    ):
        await pub.send("cases.opened", opened_case("C-good"), key="C-good")
        await reader.wait_for(lambda r: r.of("cases.dispatched"), what="the dispatch")
    template = {
        "action_id": "a-1",
        "case_id": "C-good",
        "handler_id": "h-0001",
        "action": "accept",
        "at": now_iso(),
        "note": "ok",
    }
    fields: dict[str, st.SearchStrategy[Any]] = {
        "action_id": st.one_of(WRONG_TYPE, st.just(""), st.just(_MISSING)),
        "case_id": st.one_of(WRONG_TYPE, st.just(_MISSING)),
        "handler_id": st.one_of(st.sampled_from([SQL, SHELL, ""]), WRONG_TYPE),
        "action": st.one_of(HOSTILE_CODES, WRONG_TYPE),
        "at": st.one_of(NAIVE_TIME, WRONG_TYPE, st.just("yesterday")),
        "note": st.just("x" * 1_000_000),
    }
    bad = draw(st.one_of(mutations(template, fields), NOT_JSON_OBJECT), 40)
    await run_hostile(
        bed,
        "handler.actions",
        bad,
        {**template, "action_id": "good-1"},
        "handler.actions.rejected",
        ("cases.accepted", lambda a: a["case_id"] == "C-good"),
        ["dispatch.cases", "dispatch.timeline"],
    )


async def test_hostile_ratings(bed: Testbed) -> None:
    await bed.start("feedback")
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "feedback.requested") as reader,
    ):
        await pub.send("cases.opened", opened_case("C-good"), key="C-good")
        await pub.send(
            "cases.resolved",
            {
                "case_id": "C-good",
                "resolved_at": now_iso(),
                "tier": "grid",
                "unit": "WC-YY-OJY-G01",
                "handler_id": "h-0001",
                "note": "已处理",
                "on_time": True,
            },
            key="C-good",
        )
        requested = await reader.wait_for(lambda r: r.of("feedback.requested"))
    token = token_of(requested[0].json())
    template = {
        "case_id": "C-good",
        "rating_token": token,
        "resolved": True,
        "satisfaction": "satisfied",
        "at": now_iso(),
    }
    fields: dict[str, st.SearchStrategy[Any]] = {
        "case_id": st.one_of(WRONG_TYPE, st.just(_MISSING), st.just("")),
        "rating_token": st.one_of(WRONG_TYPE, st.just(""), st.just("x" * 1000)),
        "resolved": st.sampled_from(["yes", 2, None]),
        "satisfaction": HOSTILE_CODES,
        "at": st.one_of(NAIVE_TIME, WRONG_TYPE),
        "comment": st.just("x" * 1_000_000),
    }
    bad = draw(st.one_of(mutations(template, fields), NOT_JSON_OBJECT), 40)
    await run_hostile(
        bed,
        "feedback.submitted",
        bad,
        template,
        "feedback.rejected",
        ("cases.closed", lambda c: c["case_id"] == "C-good"),
        ["feedback.ratings"],
    )


def opened_case(case_id: str) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "report_ids": ["r-1"],
        "source": "app",
        "opened_at": now_iso(),
        "category": "sanitation",
        "category_name": "环境卫生",
        "agency_mode": "proxy_petition",
        "classification": {"method": "given", "terms": [], "confidence": 1.0},
        "location": {
            "district": "WC",
            "street": "WC-YY",
            "community": "WC-YY-OJY",
            "grid": "WC-YY-OJY-G01",
            "building": "WC-YY-OJY-G01-B03",
        },
        "description": "楼道垃圾没人清运",
        "reporter_ref": "r-abc",
        "default_tier": "grid",
    }
