"""A batch of fact events applied set-based (``Feedback.record``) on the real database does what
the same events do one batch each: the same fact rows, milestones, notices (each told once)
and follow-up requests, and the same events emitted; a redelivered milestone is told once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from devstack.testbed import Testbed
from services.feedback.handlers import Feedback, case_locked, case_ordered
from services.feedback.keys import FeedbackKeys
from services.feedback.projection import BY_MODEL
from services.feedback.requests import FollowUpRequests
from shared.contract.events import (
    CaseAccepted,
    CaseDispatched,
    CaseMerged,
    CaseOpened,
    CaseResolved,
    FeedbackSubmitted,
)
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.uow import UnitOfWork
from tests.feedback.helpers import (
    accepted,
    dispatched,
    merged,
    new_case_id,
    opened,
    rating,
    resolved,
    token_of,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
UNIT = "WC-YY-OJY-G01"


def steps(cases: list[str]) -> list[tuple[type[Any], list[dict[str, Any]]]]:
    """The batches of one run over ``cases``: opened and a supporter each, then one topic's
    batch after another (a dispatch redelivered, a second attempt; the third case resolved
    without being accepted)."""
    a, b, c = cases
    return [
        (CaseOpened, [opened(x, reporter_ref=f"ref-{i}", at=T0) for i, x in enumerate(cases)]),
        (
            CaseMerged,
            [{**merged(x, f"sup-{i}"), "report_id": f"m-{i}"} for i, x in enumerate(cases)],
        ),
        (
            CaseDispatched,
            [
                dispatched(a, "grid", UNIT, T0),
                dispatched(b, "grid", UNIT, T0),
                dispatched(a, "grid", UNIT, T0),  # redelivered: its milestone told once
                dispatched(c, "grid", UNIT, T0),
                dispatched(c, "community", "WC-YY-OJY", T0 + timedelta(hours=1), attempt=2),
            ],
        ),
        (
            CaseAccepted,
            [accepted(x, "grid", UNIT, T0 + timedelta(minutes=30), True) for x in (a, b)],
        ),
        (
            CaseResolved,
            [
                resolved(a, at=T0 + timedelta(hours=2)),
                resolved(c, tier="community", unit="WC-YY-OJY", at=T0 + timedelta(hours=3)),
                resolved(b, at=T0 + timedelta(hours=4)),
            ],
        ),
    ]


def normal(value: Any, names: dict[str, str]) -> Any:
    """``value`` with the case ids named by their place in the run, and the parts of the
    events that are random by design (rating tokens, ids) left out."""
    if isinstance(value, dict):
        return {
            k: normal(v, names) for k, v in value.items() if k not in ("sealed_links", "notice_id")
        }
    if isinstance(value, list):
        return [normal(v, names) for v in value]
    if isinstance(value, str):
        for case_id, name in names.items():
            value = value.replace(case_id, name)
    return value


def ratings(cases: list[str], tokens: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """The ratings batch: the first case rated satisfied by its reporter (it closes), then by
    its supporter (recorded, deciding nothing), then with the reporter's token again (used);
    the second rated unresolved (reopened); the third with a token of none; a case unknown."""
    a, b, c = cases
    at = T0 + timedelta(hours=5)
    return [
        rating(a, tokens[a, "ref-0"], at=at),
        rating(a, tokens[a, "sup-0"], at=at, satisfaction="unsatisfied"),
        rating(a, tokens[a, "ref-0"], at=at),
        rating(
            b, tokens[b, "ref-1"], ok=False, satisfaction="unsatisfied", at=at, comment="没修好"
        ),
        rating(c, "not-a-token", at=at),
        rating(f"{c}-none", tokens[c, "ref-2"], at=at),
    ]


async def run(svc: Any, fb: Feedback, cases: list[str], batched: bool) -> dict[str, Any]:
    names = {x: f"case{i}" for i, x in enumerate(cases)}
    emitted: list[list[Any]] = []
    tokens: dict[tuple[str, str], str] = {}
    batches: list[tuple[type[Any], list[dict[str, Any]] | None]] = [*steps(cases)]
    batches.append((FeedbackSubmitted, None))
    for model, given in batches:
        # the ratings last, with the tokens the follow-up requests carried
        bodies = ratings(cases, tokens) if given is None else given
        events = [model.model_validate(b) for b in bodies]
        if model in BY_MODEL:
            handler = case_locked(fb.record)
        elif model is FeedbackSubmitted:
            handler = case_locked(fb.on_submitted, create=False)
        else:
            handler = case_ordered(fb.on_opened if model is CaseOpened else fb.on_merged)
        groups = [events] if batched else [[e] for e in events]
        for group in groups:
            async with svc.pool.acquire() as conn, conn.transaction():
                claimed = [
                    Claimed(
                        e,
                        Meta("t", 0, i, e.case_id, {}, T0),
                        UnitOfWork(conn, source="test", topic_prefix=svc.settings.topic_prefix),
                    )
                    for i, e in enumerate(group)
                ]
                await handler(conn, claimed)
                for c in claimed:
                    for p in c.uow.pending:
                        topic = p.topic.removeprefix(svc.settings.topic_prefix)
                        body = orjson.loads(p.payload or b"null")
                        if topic == "feedback.requested":
                            tokens[body["case_id"], body["reporter_ref"]] = token_of(body)
                        emitted.append([topic, body])
    out: dict[str, Any] = {"emitted": sorted(normal(emitted, names), key=repr)}
    async with svc.pool.acquire() as conn:
        tables = ("dispatches", "accepts", "resolutions", "milestones", "notices", "cases")
        for table in (*tables, "ratings", "reopens"):
            rows = await conn.fetch(f"SELECT * FROM {table} WHERE case_id = ANY($1::text[])", cases)
            drop: tuple[str, ...] = ("id", "notice_id", "notified_at", "updated_at")
            drop += ("rating_window_ends", "closed_at")
            drop += ("recorded_at", "at") if table in ("ratings", "reopens") else ()
            out[table] = sorted(
                (normal({k: v for k, v in dict(r).items() if k not in drop}, names) for r in rows),
                key=repr,
            )
        requests = await conn.fetch(
            "SELECT case_id, reporter_ref, round, used_at IS NOT NULL AS used "
            "FROM feedback_requests WHERE case_id = ANY($1::text[])",
            cases,
        )
        out["requests"] = sorted((normal(dict(r), names) for r in requests), key=repr)
    return out


async def test_a_batch_of_facts_does_what_the_same_facts_do_one_at_a_time(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    keys = FeedbackKeys.from_settings(svc.settings)
    fb = Feedback(
        window=timedelta(days=3),
        requests=FollowUpRequests(keys, "https://wangge.example.gov.cn/feedback/"),
        clock=lambda: T0 + timedelta(hours=5),
    )
    batched = await run(svc, fb, sorted(new_case_id() for _ in range(3)), batched=True)
    single = await run(svc, fb, sorted(new_case_id() for _ in range(3)), batched=False)
    assert batched == single
    # what the run did: every fact kept (the redelivered dispatch too), each milestone told
    # once to each of the two reporters, each case asked for its rating by both
    assert len(batched["dispatches"]) == 5
    assert len(batched["resolutions"]) == 3
    kinds = sorted(m["kind"] for m in batched["milestones"])
    assert kinds.count("resolved") == 3
    assert len(batched["notices"]) == 2 * len(batched["milestones"])
    notified = [e for t, e in batched["emitted"] if t == "cases.notified"]
    assert len(notified) == len(batched["notices"])
    assert len(batched["requests"]) == 6
    # the ratings: the first case closed by its reporter's, the supporter's recorded after it
    # (deciding nothing), the token used once; the second reopened; three refused
    states = sorted((c["case_id"], c["state"], c["outcome"]) for c in batched["cases"])
    assert [(s, o) for _, s, o in states][:2] == [("closed", "satisfied"), ("reopened", None)]
    assert sorted((r["case_id"], r["decided"]) for r in batched["ratings"]) == [
        ("case0", False),
        ("case0", True),
        ("case1", True),
    ]
    assert [r["case_id"] for r in batched["reopens"]] == ["case1"]
    rejected = sorted(e["reason"] for t, e in batched["emitted"] if t == "feedback.rejected")
    assert len(rejected) == 3 and "unknown case" in rejected
