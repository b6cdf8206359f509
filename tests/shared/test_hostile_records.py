"""Hostile records on every input topic of every service (property-based, hypothesis): header
names that are not UTF-8 or hold NUL, ``ce_*`` and trace values with NUL or bytes that are not
UTF-8 or missing, 100 KB header values, a thousand headers, a 1 MB key, bodies that are not JSON
up to the broker's size limit. Each is published in the middle of a burst of good records on the
same partition, while the service is stopped, so that they arrive in the same batches. Then:
every good record is applied exactly once (claimed once in the service's inbox, in the
transaction of its effects), every hostile one is dead-lettered exactly once with a reason and
its original bytes, the offsets are all committed, the service never restarted, and no full
phone number reached the logs."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import strategies as st

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.cloudevents import make_headers
from shared.registry.file import registry_key
from shared.runtime.record_bytes import is_utf8
from shared.runtime.service import Service
from tests.samples import VERIFIER_OF, now_iso, report, sample_registry, wait_registry
from tests.shared.raw_records import RawProducer
from tests.shared.test_consumer_invariant import committed_and_end
from tests.shared.test_hostile_input import draw, opened_case

PHONE = b"13812345678"
CE_NAMES = st.sampled_from(
    ["ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "traceparent"]
)


NOT_UTF8 = st.binary(min_size=1, max_size=12).filter(lambda b: not is_utf8(b))
WITH_NUL = st.binary(max_size=8).map(lambda b: b + b"\x00" + b)
BAD_NAME = st.one_of(NOT_UTF8, WITH_NUL.map(lambda b: b"ce_" + b))
BAD_VALUE = st.one_of(NOT_UTF8, WITH_NUL, st.none())
HOSTILE_HEADERS = st.one_of(
    st.tuples(BAD_NAME, st.binary(max_size=8)).map(lambda h: [h]),
    st.tuples(CE_NAMES, BAD_VALUE).map(lambda h: [h]),
    st.just([("x-big", b"v" * 100_000)]),
    st.just([(f"x-{i}", b"1") for i in range(1000)]),
)
NOT_JSON = st.one_of(
    st.binary(min_size=1, max_size=32).map(lambda b: b"\xff" + b + PHONE),
    st.just(b'{"phone": "' + PHONE + b'", '),
    st.just(b"[" + PHONE + b"]"),
    st.just(b"\x00" * 1_048_450),  # a body at the broker's size limit (1 MiB a record batch)
)


@dataclass
class Hostile:
    value: bytes | None
    key: bytes | None
    headers: Sequence[tuple[str | bytes, bytes | None]]


def hostile_records(good_body: bytes, n: int) -> list[Hostile]:
    """``n`` hostile records: contract-breaking headers on a good body, bodies that are not
    JSON (with ordinary headers, or hostile ones too), a 1 MB key."""
    ordinary = [("ce_id", b"h-"), ("ce_type", b"org.wangge.test.v1")]
    strategy = st.one_of(
        HOSTILE_HEADERS.map(lambda h: Hostile(good_body, b"burst", [*ordinary, *h])),
        NOT_JSON.map(lambda v: Hostile(v, b"burst", ordinary)),
        st.tuples(NOT_JSON, HOSTILE_HEADERS).map(lambda t: Hostile(t[0][:1000], None, t[1])),
        st.just(Hostile(good_body, b"k" * 1_000_000, ordinary)),
    )
    return draw(strategy, n)


@dataclass
class Burst:
    topic: str
    goods: Sequence[dict[str, Any] | None]  # payloads (None: a tombstone, registry only)
    keys: list[str] | None = None  # the goods' keys (default "burst")


async def inbox_counts(bed: Testbed, schema: str) -> dict[tuple[str, bool], int]:
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        rows = await conn.fetch(
            f"SELECT consumer, message_key LIKE 'dead:%' AS dead, count(*) AS n "
            f"FROM {schema}.inbox GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    return {(r["consumer"], r["dead"]): r["n"] for r in rows}


async def run_bursts(
    bed: Testbed,
    service: str,
    bursts: list[Burst],
    capsys: pytest.CaptureFixture[str],
    prepare: Callable[[], Awaitable[None]] | None = None,
) -> None:
    s = bed.settings()
    svc = await bed.start(service)
    await publish_registry(s, sample_registry())
    await wait_registry(bed)
    if prepare is not None:
        await prepare()
    await eventually(lambda: _drained(svc), what=f"{service} to apply what it was sent")
    before = await inbox_counts(bed, service)
    await bed.stop(svc)

    hostile: dict[str, list[int]] = {}
    async with RawProducer(s) as raw:
        for i, burst in enumerate(bursts):
            good_body = orjson.dumps(burst.goods[0]) if burst.goods[0] else b"{}"
            bad = hostile_records(good_body, 8)
            offsets = hostile.setdefault(burst.topic, [])
            keys = burst.keys or ["burst"] * len(burst.goods)
            for j, (good, key) in enumerate(zip(burst.goods, keys, strict=True)):
                headers = make_headers(source="test/hostile", topic=burst.topic)
                body = orjson.dumps(good) if good is not None else None
                await raw.send(
                    burst.topic,
                    body,
                    key=key.encode(),
                    headers=[(k, v.encode()) for k, v in headers.items()],
                    partition=0,
                )
                if j % 2 == 1 and bad:
                    h = bad.pop()
                    md = await raw.send(
                        burst.topic,
                        h.value,
                        key=h.key,
                        headers=[(n, _distinct(v, i, j)) for n, v in h.headers],
                        partition=0,
                    )
                    offsets.append(md.offset)
            assert not bad, f"{burst.topic}: too few goods to mix 8 hostile records into"

    topics = [b.topic for b in bursts]
    async with TopicReader(s, *(f"{t}.dlq" for t in topics)) as dlq:
        svc = await bed.start(service)
        for burst in bursts:
            group = f"wangge-{service}.{burst.topic}"
            n_bad = len(hostile[burst.topic])

            async def settled(burst: Burst = burst, group: str = group, n_bad: int = n_bad) -> bool:
                done, end = await committed_and_end(s, group, burst.topic)
                return done == end and len(dlq.of(f"{burst.topic}.dlq")) >= n_bad

            async def poll_and_check(check: Callable[[], Awaitable[bool]] = settled) -> bool:
                await dlq.poll(50)
                return await check()

            await eventually(poll_and_check, timeout=90, what=f"{burst.topic} to be settled")
        await dlq.read_to_end()
        after = await inbox_counts(bed, service)
        assert svc in bed.running and svc._started, "the service stopped"
        readiness = await svc.readiness()
        assert all(readiness.values()), readiness

    for burst in bursts:
        group = f"wangge-{service}.{burst.topic}"
        letters = dlq.of(f"{burst.topic}.dlq")
        assert sorted(int(d.headers["dlq_original_offset"]) for d in letters) == sorted(
            hostile[burst.topic]
        ), burst.topic
        for d in letters:
            assert d.headers["dlq_error_class"] and d.headers["dlq_error"], d.headers
        applied = after.get((group, False), 0) - before.get((group, False), 0)
        assert applied == len(burst.goods), (burst.topic, applied, len(burst.goods))
        dead = after.get((group, True), 0) - before.get((group, True), 0)
        assert dead == len(hostile[burst.topic]), (burst.topic, dead)

    logs = capsys.readouterr().err
    assert "dead-lettered" in logs
    assert PHONE.decode() not in logs


def _distinct(value: bytes | None, i: int, j: int) -> bytes | None:
    """An ordinary ``ce_id`` of a hostile record made unique; every other value as it is."""
    return b"h-%d-%d" % (i, j) if value == b"h-" else value


async def _drained(svc: Service) -> bool:
    return bool(await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0)


def _registry_goods() -> Burst:
    records = sample_registry()[:40]
    return Burst(
        "registry.units",
        [orjson.loads(r.model_dump_json()) for r in records],
        [registry_key(r) for r in records],
    )


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(n)]


def _feedback_events(case_id: str) -> dict[str, dict[str, Any]]:
    now = datetime.now(UTC)
    unit, tier = "WC-YY-OJY-G01", "grid"
    return {
        "cases.dispatched": {
            "case_id": case_id,
            "tier": tier,
            "unit": unit,
            "handler_id": "h-0001",
            "respond_by": (now + timedelta(hours=1)).isoformat(),
            "resolve_by": (now + timedelta(days=1)).isoformat(),
        },
        "cases.accepted": {
            "case_id": case_id,
            "tier": tier,
            "unit": unit,
            "handler_id": "h-0001",
            "accepted_at": now_iso(),
            "on_time": True,
        },
        "cases.escalated": {
            "case_id": case_id,
            "from_tier": tier,
            "to_tier": "community",
            "unit": "WC-YY-OJY",
            "reason": "超出网格能力",
        },
        "cases.resolved": {
            "case_id": case_id,
            "resolved_at": now_iso(),
            "tier": tier,
            "unit": unit,
            "handler_id": "h-0001",
            "note": "已处理",
            "on_time": True,
        },
        "cases.merged": {
            "case_id": case_id,
            "report_id": f"r-{case_id}",
            "source": "app",
            "merged_at": now_iso(),
            "supporter_count": 2,
            "reporter_ref": f"ref-{case_id}",
        },
    }


async def test_hostile_records_on_intake(bed: Testbed, capsys: pytest.CaptureFixture[str]) -> None:
    reports = [report(report_id=rid) for rid in _ids("good", 16)]
    closed = [
        {"case_id": cid, "outcome": "satisfied", "closed_at": now_iso()} for cid in _ids("C", 16)
    ]
    bursts = [
        Burst("reports.submitted", list(reports)),
        Burst("cases.closed", list(closed)),
        _registry_goods(),
    ]
    await run_bursts(bed, "intake", bursts, capsys)


async def test_hostile_records_on_dispatch(
    bed: Testbed, capsys: pytest.CaptureFixture[str]
) -> None:
    s = bed.settings()
    resolved = _ids("R", 16)

    async def resolve_cases() -> None:
        """Cases resolved before the burst, so that their reopening is a good record."""
        async with (
            Publisher(s) as pub,
            TopicReader(s, "cases.dispatched", "cases.resolved", "cases.verified") as r,
        ):
            for cid in resolved:
                await pub.send("cases.opened", opened_case(cid), key=cid)
            n = len(resolved)
            got = await r.wait_for(
                lambda r: len(r.of("cases.dispatched")) >= n and r.of("cases.dispatched"),
                timeout=60,
            )
            for rec in got:
                d = rec.json()
                for step in ("accept", "resolve"):
                    await pub.send(
                        "handler.actions",
                        {
                            "action_id": f"{step}-{d['case_id']}",
                            "case_id": d["case_id"],
                            "handler_id": d["handler_id"],
                            "action": step,
                            "at": now_iso(),
                            "note": "已处理",
                        },
                        key=d["case_id"],
                    )
            done = await r.wait_for(
                lambda r: len(r.of("cases.resolved")) >= n and r.of("cases.resolved"), timeout=60
            )
            for rec in done:  # verified (核查), so that they await their rating
                e = rec.json()
                await pub.send(
                    "handler.actions",
                    {
                        "action_id": f"verify-{e['case_id']}",
                        "case_id": e["case_id"],
                        "handler_id": VERIFIER_OF[e["verifier_unit"]],
                        "action": "verify",
                        "at": now_iso(),
                    },
                    key=e["case_id"],
                )
            await r.wait_for(lambda r: len(r.of("cases.verified")) >= n, timeout=60)

    opened = [opened_case(cid) for cid in _ids("C", 16)]
    bursts = [
        Burst("cases.opened", opened),
        Burst("cases.merged", [_feedback_events(c["case_id"])["cases.merged"] for c in opened]),
        Burst(
            "cases.reopened",
            [{"case_id": cid, "reason": "不满意", "reopen_count": 1} for cid in resolved],
        ),
        Burst(
            "handler.actions",
            [
                {
                    "action_id": f"a-{i}",
                    "case_id": c["case_id"],
                    "handler_id": "h-0001",
                    "action": "progress",
                    "at": now_iso(),
                    "note": "在处理",
                }
                for i, c in enumerate(opened)
            ],
        ),
        _registry_goods(),
    ]
    await run_bursts(bed, "dispatch", bursts, capsys, prepare=resolve_cases)


async def test_hostile_records_on_feedback(
    bed: Testbed, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _ids("F", 16)
    events = [_feedback_events(cid) for cid in cases]
    bursts = [Burst("cases.opened", [opened_case(cid) for cid in cases])]
    for topic in ("cases.merged", "cases.dispatched", "cases.accepted", "cases.escalated"):
        bursts.append(Burst(topic, [e[topic] for e in events]))
    bursts.append(Burst("cases.resolved", [e["cases.resolved"] for e in events]))
    bursts.append(
        Burst(
            "feedback.submitted",
            [
                {
                    "case_id": cid,
                    "rating_token": "not-a-token-" + cid,
                    "resolved": True,
                    "satisfaction": "satisfied",
                    "at": now_iso(),
                }
                for cid in cases
            ],
        )
    )
    bursts.append(_registry_goods())
    await run_bursts(bed, "feedback", bursts, capsys)
