"""What residents hear (cases.notified) on the real broker and database: every reporter of a
merged case (附议) told each milestone (assigned, accepted, extended, resolved with the answer 答复)
once, a reporter learnt late told the milestones so far, anonymous reporters (匿名) told nothing
and not followed up, and the source events delivered again (the same record, a re-dispatch of
the same attempt, an accept or resolution sent twice) telling nobody twice."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.service import Service
from tests.feedback.helpers import (
    H,
    accepted,
    dispatched,
    extended,
    merged,
    new_case_id,
    of_case,
    opened,
    resolved,
    send,
    wait_n,
)
from tests.samples import sample_registry, wait_registry

TOPICS = ("cases.notified", "feedback.requested")
ANSWER = "已联系物业清运，楼道已消杀，联系电话 13812345678"
KINDS = ["assigned", "accepted", "extended", "resolved"]


async def _drained(svc: Service, *ce_ids: str) -> bool:
    """Feedback applied these records and published what they made (its outbox is empty)."""
    done = await svc.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE message_key = ANY($1::text[])", list(ce_ids)
    )
    left = await svc.pool.fetchval("SELECT count(*) FROM outbox")
    return bool(done == len(ce_ids) and left == 0)


def _by_reporter(notices: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for n in notices:
        out.setdefault(n["reporter_ref"], []).append(n)
    return out


async def test_every_reporter_hears_every_milestone_once(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)
    case = new_case_id()
    t0 = datetime.now(UTC).replace(microsecond=0) - 2 * H
    later = t0 + 72 * H  # the extension's deadline
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        await send(pub, "cases.opened", opened(case, reporter_ref="ref-opener"))
        await send(pub, "cases.merged", merged(case, "ref-supporter", source="hotline_12345"))
        await send(pub, "cases.merged", {**merged(case, "anon-1"), "anonymous": True})
        first = dispatched(case, "grid", "WC-YY-OJY-G01", t0)
        await send(pub, "cases.dispatched", first, ce_id="dispatch-1")
        await send(
            pub, "cases.accepted", accepted(case, "grid", "WC-YY-OJY-G01", t0 + 0.5 * H, True)
        )
        await send(pub, "cases.extended", extended(case, later, at=t0 + H))
        answer = resolved(case, at=t0 + 1.5 * H, note=ANSWER)
        await send(pub, "cases.resolved", answer)

        notices = await wait_n(reader, "cases.notified", case, 8)
        told = _by_reporter(notices)
        assert set(told) == {"ref-opener", "ref-supporter"}  # anon-1: nothing
        for ref, channel in (
            ("ref-opener", "weixin_grid_group"),
            ("ref-supporter", "hotline_12345"),
        ):
            # the topics are applied in any order: each notice as its milestone is
            assert [n["kind"] for n in sorted(told[ref], key=lambda n: n["at"])] == KINDS
            assert {n["channel"] for n in told[ref]} == {channel}
        by_kind = {n["kind"]: n for n in told["ref-supporter"]}
        assert "欧景苑第一网格" in by_kind["assigned"]["text"]
        assert datetime.fromisoformat(by_kind["assigned"]["deadline"]) == t0 + 24 * H
        assert "欧景苑第一网格" in by_kind["accepted"]["text"]
        assert datetime.fromisoformat(by_kind["extended"]["deadline"]) == later
        assert by_kind["resolved"]["text"].endswith(
            "答复：已联系物业清运，楼道已消杀，联系电话 138****5678"
        )
        assert datetime.fromisoformat(by_kind["resolved"]["at"]) == t0 + 1.5 * H
        assert len({n["notice_id"] for n in notices}) == 8
        # no identity beyond the pseudonym and the channel: no phone in clear anywhere
        assert all("13812345678" not in str(n) for n in notices)

        # the follow-up goes to the named reporters only, after their answer
        requests = await wait_n(reader, "feedback.requested", case, 2)
        assert sorted(r["reporter_ref"] for r in requests) == ["ref-opener", "ref-supporter"]

        # a supporter learnt after all this hears every milestone so far, each at its time
        await send(pub, "cases.merged", merged(case, "ref-late", source="app"))
        late = _by_reporter(await wait_n(reader, "cases.notified", case, 12))["ref-late"]
        assert [n["kind"] for n in late] == KINDS  # in the order they happened
        assert [n["at"] for n in late] == sorted(n["at"] for n in told["ref-opener"])

        # delivered again: the same record, the same dispatch attempt under a new ce_id, the
        # accept, the extension and the resolution sent twice: nobody is told twice
        again = {topic: f"again-{topic}-{uuid.uuid4().hex[:6]}" for topic in KINDS}
        await send(pub, "cases.dispatched", first, ce_id="dispatch-1")
        await send(pub, "cases.dispatched", first, ce_id=again["assigned"])
        await send(
            pub,
            "cases.accepted",
            accepted(case, "grid", "WC-YY-OJY-G01", t0 + 0.5 * H, True),
            ce_id=again["accepted"],
        )
        await send(pub, "cases.extended", extended(case, later, at=t0 + H), ce_id=again["extended"])
        await send(pub, "cases.resolved", answer, ce_id=again["resolved"])
        await eventually(lambda: _drained(svc, *again.values()), what="the copies applied")
        await reader.read_to_end()
        assert len(of_case(reader, "cases.notified", case)) == 12
        assert len(of_case(reader, "feedback.requested", case)) == 3  # ref-late's, at once

        # the next attempt (an escalation's re-dispatch) is a new milestone for all three
        up = dispatched(case, "community", "WC-YY-OJY", t0 + 3 * H, attempt=2)
        await send(pub, "cases.dispatched", up)
        notices = await wait_n(reader, "cases.notified", case, 15)
        second = [n for n in notices if n["kind"] == "assigned" and "欧景苑社区" in n["text"]]
        assert sorted(n["reporter_ref"] for n in second) == [
            "ref-late",
            "ref-opener",
            "ref-supporter",
        ]
        counts = Counter(n["notice_id"] for n in notices)
        assert max(counts.values()) == 1


async def test_an_anonymous_reporter_hears_nothing_and_is_not_followed_up(bed: Testbed) -> None:
    """A case whose only reporter is anonymous reaches every milestone and its follow-up round:
    no cases.notified, no feedback.requested (docs/integration.md)."""
    svc = await bed.start("feedback")
    case, named = new_case_id(), new_case_id()
    t0 = datetime.now(UTC).replace(microsecond=0) - 2 * H
    async with (
        Publisher(bed.settings(), source="test/upstream") as pub,
        TopicReader(bed.settings(), *TOPICS) as reader,
    ):
        await send(pub, "cases.opened", {**opened(case, reporter_ref="anon-9"), "anonymous": True})
        ids = []
        for c in (case, named):  # a named reporter's case beside it, through the same topics
            for topic, body in (
                ("cases.dispatched", dispatched(c, "grid", "WC-YY-OJY-G01", t0)),
                ("cases.accepted", accepted(c, "grid", "WC-YY-OJY-G01", t0 + H, True)),
                ("cases.extended", extended(c, t0 + 48 * H, at=t0 + 1.2 * H)),
                ("cases.resolved", resolved(c, at=t0 + 1.5 * H, note=ANSWER)),
            ):
                ids.append(f"{topic}-{c}")
                await send(pub, topic, body, ce_id=ids[-1])
        await send(pub, "cases.opened", opened(named, reporter_ref="ref-named"))

        async def milestones_kept() -> bool:
            n = await svc.pool.fetchval("SELECT count(*) FROM milestones WHERE case_id = $1", case)
            state = await svc.pool.fetchval("SELECT state FROM cases WHERE case_id = $1", case)
            return bool(n == 4 and state == "resolved")

        await eventually(milestones_kept, what="the anonymous case's milestones and round")
        assert len(await wait_n(reader, "cases.notified", named, 4)) == 4  # the named one hears
        await eventually(lambda: _drained(svc, *ids), what="every record applied")
        await reader.read_to_end()
        assert of_case(reader, "cases.notified", case) == []
        assert of_case(reader, "feedback.requested", case) == []
        rows = await svc.pool.fetch("SELECT * FROM notices WHERE case_id = $1", case)
        assert rows == []
