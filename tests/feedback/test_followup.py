"""Follow-up (回访) on the real broker and database: a request per reporter, tokens stored as
hashes, forgery and reuse rejected, the first valid rating deciding, events in any order."""

from __future__ import annotations

import hashlib

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.feedback.helpers import (
    merged,
    new_case_id,
    of_case,
    opened,
    rating,
    resolved,
    send,
    token_of,
    wait_n,
)

TOPICS = ("feedback.requested", "feedback.rejected", "cases.closed", "cases.reopened")


async def test_tokens_forgery_reuse_and_merged_reporters(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    a, b, late = new_case_id(), new_case_id(), new_case_id()
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        await send(pub, "cases.opened", opened(a, reporter_ref="ref-a1"))
        await send(pub, "cases.merged", merged(a, "ref-a2", source="hotline_12345"))
        await send(pub, "cases.opened", opened(b))
        # out of order: the resolution is applied before the case is known, then the opening
        await send(pub, "cases.resolved", resolved(late))
        await send(pub, "cases.resolved", resolved(a))
        await send(pub, "cases.resolved", resolved(b))

        requests = await wait_n(reader, "feedback.requested", a, 2)
        by_ref = {r["reporter_ref"]: r for r in requests}
        assert set(by_ref) == {"ref-a1", "ref-a2"}
        assert by_ref["ref-a1"]["channel"] == "weixin_grid_group"
        assert by_ref["ref-a2"]["channel"] == "hotline_12345"
        tok1, tok2 = token_of(by_ref["ref-a1"]), token_of(by_ref["ref-a2"])
        assert tok1 != tok2 and len(tok1) >= 32
        tok_b = token_of((await wait_n(reader, "feedback.requested", b, 1))[0])

        # only hashes are stored
        stored = await svc.pool.fetch("SELECT * FROM feedback_requests WHERE case_id = $1", a)
        assert {r["token_hash"] for r in stored} == {
            hashlib.sha256(t.encode()).hexdigest() for t in (tok1, tok2)
        }
        assert not any(tok1 in str(dict(r)) or tok2 in str(dict(r)) for r in stored)

        await send(pub, "cases.opened", opened(late))
        assert (await wait_n(reader, "feedback.requested", late, 1))[0]["reporter_ref"] == (
            f"ref-{late}"
        )

        # forgery: a made-up token, another case's token, an unknown case, an invalid payload
        await send(pub, "feedback.submitted", rating(a, "forged-" + tok1[7:]))
        await send(pub, "feedback.submitted", rating(a, tok_b))
        await send(pub, "feedback.submitted", rating("no-such-case", tok1))
        await send(pub, "feedback.submitted", rating(a, tok1, satisfaction="great"))
        # the first valid rating decides; reuse is refused; the supporter's rating still counts
        await send(pub, "feedback.submitted", rating(a, tok1, satisfaction="basically_satisfied"))
        await send(pub, "feedback.submitted", rating(a, tok1, ok=False))
        await send(pub, "feedback.submitted", rating(a, tok2, satisfaction="unsatisfied"))

        rejected = await wait_n(reader, "feedback.rejected", a, 4)
        rejected += await wait_n(reader, "feedback.rejected", "no-such-case", 1)
        reasons = sorted(r["reason"].split(":")[0] for r in rejected)
        assert reasons == [
            "invalid",
            "invalid token",
            "invalid token",
            "token already used",
            "unknown case",
        ]
        # a real token's rejection names its request (never the token); a forged one cannot
        by_reason = {r["reason"]: r for r in rejected}
        used = by_reason["token already used"]
        assert (used["reporter_ref"], used["round"]) == ("ref-a1", 1)
        assert by_reason["invalid token"]["reporter_ref"] is None
        assert all(tok1 not in str(r) for r in rejected)
        closed = await wait_n(reader, "cases.closed", a, 1)
        assert closed[0]["outcome"] == "satisfied"

        async def both_ratings() -> list[dict[str, object]]:
            rows = await svc.pool.fetch(
                "SELECT reporter_ref, satisfaction, decided FROM ratings WHERE case_id = $1 "
                "ORDER BY id",
                a,
            )
            return [dict(r) for r in rows] if len(rows) == 2 else []

        assert await eventually(both_ratings, what="two ratings of case a") == [
            {"reporter_ref": "ref-a1", "satisfaction": "basically_satisfied", "decided": True},
            {"reporter_ref": "ref-a2", "satisfaction": "unsatisfied", "decided": False},
        ]
        await reader.read_to_end()
        assert len(of_case(reader, "cases.closed", a)) == 1
        assert of_case(reader, "cases.reopened", a) == []


async def test_a_reporter_learnt_after_the_deciding_rating_is_still_asked(bed: Testbed) -> None:
    """The order a network partition produced: feedback read a case's resolution, its
    supporter's request and satisfied rating (which closed the case) before the case's
    ``cases.opened``. The first reporter must still be asked in that round; their rating counts
    and decides nothing (the case stays closed, once)."""
    await bed.start("feedback")
    case = new_case_id()
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        await send(pub, "cases.merged", merged(case, "ref-supporter"))
        await send(pub, "cases.resolved", resolved(case))
        supporter = (await wait_n(reader, "feedback.requested", case, 1))[0]
        await send(pub, "feedback.submitted", rating(case, token_of(supporter)))
        await wait_n(reader, "cases.closed", case, 1)
        await send(pub, "cases.opened", opened(case, reporter_ref="ref-opener"))
        requests = await wait_n(reader, "feedback.requested", case, 2)
        late = [r for r in requests if r["reporter_ref"] == "ref-opener"]
        assert len(late) == 1 and late[0]["round"] == 1
        assert late[0]["expires_at"] == supporter["expires_at"]
        await send(pub, "feedback.submitted", rating(case, token_of(late[0]), ok=False))
        await eventually(
            lambda: _decided_and_not(bed, case), what="the late reporter's rating to be recorded"
        )
        assert len(of_case(reader, "cases.closed", case)) == 1
        assert not of_case(reader, "cases.reopened", case)


async def _decided_and_not(bed: Testbed, case_id: str) -> bool:
    """The case has two ratings: the one that decided and one that did not."""
    svc = bed.running[0]
    rows = await svc.pool.fetch("SELECT decided FROM ratings WHERE case_id = $1", case_id)
    return sorted(r["decided"] for r in rows) == [False, True]


async def test_anonymous_reporters_are_not_followed_up(bed: Testbed) -> None:
    """docs/integration.md: ``anonymous: true`` keeps the reporter out of follow-up."""
    svc = await bed.start("feedback")
    mixed, alone = new_case_id(), new_case_id()
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        await send(pub, "cases.opened", {**opened(mixed, reporter_ref="anon-1"), "anonymous": True})
        await send(pub, "cases.merged", merged(mixed, "named-2"))
        await send(pub, "cases.merged", {**merged(mixed, "anon-3"), "anonymous": True})
        await send(pub, "cases.opened", {**opened(alone, reporter_ref="anon-4"), "anonymous": True})
        await send(pub, "cases.resolved", resolved(mixed))
        await send(pub, "cases.resolved", resolved(alone))
        await wait_n(reader, "feedback.requested", mixed, 1)

        async def round_started() -> bool:
            state = await svc.pool.fetchval("SELECT state FROM cases WHERE case_id = $1", alone)
            return bool(state == "resolved")

        await eventually(round_started, timeout=30, what="the anonymous case's round")
        await reader.read_to_end()
        requests = of_case(reader, "feedback.requested", mixed)
        assert [r["reporter_ref"] for r in requests] == ["named-2"]
        assert of_case(reader, "feedback.requested", alone) == []
