"""The shared consumer pipeline on the real broker and database: inbox, outbox, CloudEvents
headers, dead letters, transient retries. A purpose-built service keeps the tests about the kit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.events import HandlerAction, HandlerActionRejected
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.service import Service
from shared.runtime.settings import Settings
from shared.runtime.uow import UnitOfWork
from tests.samples import now_iso


class KitService:
    """Records each handler action in ``notes`` and answers on handler.actions.rejected."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.transient_failures_left = 0
        self.calls = 0
        self.fixed = False

    def factory(self, settings: Settings) -> Service:
        mig = self.tmp / "migrations"
        mig.mkdir(exist_ok=True)
        (mig / "001_notes.sql").write_text(
            "CREATE TABLE notes (action_id text PRIMARY KEY, note text);"
        )
        svc = Service("kit", settings, mig)
        svc.subscribe("handler.actions", HandlerAction, idempotency_key=None)(self.handle)
        return svc

    async def handle(self, uow: UnitOfWork, ev: HandlerAction, meta: Meta) -> None:
        self.calls += 1
        await uow.conn.execute("INSERT INTO notes VALUES ($1, $2)", ev.action_id, ev.note)
        if ev.note == "boom" and not self.fixed:
            raise ValueError("a permanent failure")
        if self.transient_failures_left:
            self.transient_failures_left -= 1
            raise ConnectionResetError("database went away")
        uow.emit(HandlerActionRejected(action_id=ev.action_id, case_id=ev.case_id, reason="noted"))


def action(action_id: str, note: str = "ok") -> dict[str, Any]:
    return {
        "action_id": action_id,
        "case_id": "C1",
        "handler_id": "h-0001",
        "action": "progress",
        "at": now_iso(),
        "note": note,
    }


@pytest.fixture
async def kit(bed: Testbed, tmp_path: Path) -> tuple[KitService, Service]:
    ks = KitService(tmp_path)
    svc = await bed.start("kit", ks.factory, DATABASE_URL=bed.admin_dsn)
    return ks, svc


async def notes(svc: Service) -> list[str]:
    return [r["action_id"] for r in await svc.pool.fetch("SELECT action_id FROM notes")]


async def test_redelivered_event_is_applied_once(bed: Testbed, kit: Any) -> None:
    ks, svc = kit
    s = bed.settings()
    async with Publisher(s) as pub, TopicReader(s, "handler.actions.rejected") as reader:
        for _ in range(2):  # the same event (same ce_id) delivered twice
            await pub.send("handler.actions", action("a1"), key="C1", headers={"ce_id": "ev-1"})
        await pub.send("handler.actions", action("a2"), key="C1")
        await reader.wait_for(lambda r: len(r.of("handler.actions.rejected")) >= 2)
        out = reader.of("handler.actions.rejected")
    assert sorted(await notes(svc)) == ["a1", "a2"]
    assert ks.calls == 2
    assert [r.json()["action_id"] for r in out] == ["a1", "a2"]
    assert await svc.pool.fetchval("SELECT count(*) FROM inbox") == 2


async def test_outgoing_events_carry_cloudevents_headers(bed: Testbed, kit: Any) -> None:
    s = bed.settings()
    async with Publisher(s) as pub, TopicReader(s, "handler.actions.rejected") as reader:
        await pub.send("handler.actions", action("a1"), key="C1")
        rec = (await reader.wait_for(lambda r: r.of("handler.actions.rejected")))[0]
    h = rec.headers
    assert h["ce_specversion"] == "1.0"
    assert h["ce_source"] == "wangge/kit"
    assert h["ce_type"] == "org.wangge.handler.actions.rejected.v1"
    assert h["ce_subject"] == "C1" and rec.key == "C1"
    assert len(h["ce_id"]) >= 32 and h["ce_time"].endswith("+00:00")
    _, svc = kit
    await eventually(lambda: _outbox_empty(svc), what="outbox to drain")


async def _outbox_empty(svc: Service) -> bool:
    return bool(await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0)


async def test_poison_messages_go_to_dlq_and_do_not_block(bed: Testbed, kit: Any) -> None:
    _, svc = kit
    s = bed.settings()
    async with Publisher(s) as pub, TopicReader(s, "handler.actions.dlq") as dlq:
        bad = await pub.send("handler.actions", b"\xff not json", key="C1")
        await pub.send("handler.actions", b"[1, 2]", key="C1")
        await pub.send("handler.actions", {"action_id": "x"}, key="C1")  # invalid, no hook
        await pub.send("handler.actions", action("boom", note="boom"), key="C1")
        await pub.send("handler.actions", action("good"), key="C1")
        await dlq.wait_for(lambda r: len(r.of("handler.actions.dlq")) >= 4, what="4 dead letters")
        dead = dlq.of("handler.actions.dlq")
        await eventually(lambda: _has_note(svc, "good"), what="the good message")
    classes = [r.headers["dlq_error_class"] for r in dead]
    assert classes == ["NotJson", "NotJsonObject", "ValidationError", "ValueError"]
    first = dead[0]
    assert first.value == b"\xff not json"
    assert first.headers["dlq_original_topic"] == s.topic("handler.actions")
    assert first.headers["dlq_original_partition"] == str(bad.partition)
    assert first.headers["dlq_original_offset"] == str(bad.offset)
    assert first.headers["dlq_service"] == "kit" and first.headers["dlq_time"]
    # The permanent failure rolled back its own effects.
    assert await notes(svc) == ["good"]


async def _has_note(svc: Service, action_id: str) -> bool:
    return action_id in await notes(svc)


async def test_transient_failures_are_retried_not_skipped(bed: Testbed, kit: Any) -> None:
    ks, svc = kit
    ks.transient_failures_left = 2
    s = bed.settings()
    async with Publisher(s) as pub, TopicReader(s, "handler.actions.rejected") as reader:
        await pub.send("handler.actions", action("t1"), key="C1")
        await reader.wait_for(lambda r: r.of("handler.actions.rejected"), timeout=30)
    assert ks.calls == 3
    assert await notes(svc) == ["t1"]


async def test_dlq_list_and_replay_after_the_fix(bed: Testbed, kit: Any) -> None:
    from cli.dlq import read_dead_letters, replay

    ks, svc = kit
    s = bed.settings()
    async with Publisher(s) as pub, TopicReader(s, "handler.actions.dlq") as dlq:
        await pub.send("handler.actions", action("r1", note="boom"), key="C1")
        await dlq.wait_for(lambda r: r.of("handler.actions.dlq"), what="the dead letter")
    letters = await read_dead_letters(s, "handler.actions")
    assert [d.header("dlq_error_class") for d in letters] == ["ValueError"]
    assert letters[0].record.key == "C1"
    assert await notes(svc) == []

    ks.fixed = True  # the bug is fixed: replaying now applies the message, once
    replayed = await replay(s, "handler.actions", [letters[0].ident])
    assert replayed == [letters[0].ident]
    await eventually(lambda: _has_note(svc, "r1"), what="the replayed message")
    assert await replay(s, "handler.actions", ["no-such-id"]) == []


async def test_a_batch_with_a_poison_message_and_duplicates(bed: Testbed, tmp_path: Path) -> None:
    """Published before the service starts, so they arrive as one batch: the batch's set-based
    path fails on the poison message, the batch is applied again message by message, and only
    the poison message is rolled back and dead-lettered; a duplicate inside the batch (same
    ``ce_id``) is applied once."""
    s = bed.settings()
    goods = [f"g{i}" for i in range(20)]
    async with Publisher(s) as pub:
        for i, a in enumerate(goods):
            await pub.send("handler.actions", action(a), key="C1")
            if i == 10:
                await pub.send("handler.actions", action("boom", note="boom"), key="C1")
        for _ in range(2):
            await pub.send("handler.actions", action("twice"), key="C1", headers={"ce_id": "d-1"})
    ks = KitService(tmp_path)
    async with TopicReader(s, "handler.actions.dlq") as dlq:
        svc = await bed.start("kit", ks.factory, DATABASE_URL=bed.admin_dsn)
        await eventually(lambda: _has_note(svc, "twice"), what="the last message")
        await dlq.wait_for(lambda r: r.of("handler.actions.dlq"), what="the dead letter")
        dead = dlq.of("handler.actions.dlq")
    assert [d.headers["dlq_error_class"] for d in dead] == ["ValueError"]
    assert sorted(await notes(svc)) == sorted([*goods, "twice"])
    claimed = [r["message_key"] for r in await svc.pool.fetch("SELECT message_key FROM inbox")]
    assert len([k for k in claimed if not k.startswith("dead:")]) == len(goods) + 1
    assert len([k for k in claimed if k.startswith("dead:")]) == 1  # the dead letter's position
    await eventually(lambda: _outbox_empty(svc), what="outbox to drain")


async def test_invalid_messages_do_not_split_a_batch(bed: Testbed, tmp_path: Path) -> None:
    """Published before the service starts, so they arrive as one batch: the batch handler gets
    every valid message in one call, and the invalid ones in between are each answered by the
    ``on_invalid`` hook (a rejection), none of them lost."""
    s = bed.settings()
    calls: list[list[str]] = []

    async def handle(conn: Any, claimed: list[Claimed[HandlerAction]]) -> None:
        calls.append([c.event.action_id for c in claimed])

    async def on_invalid(uow: UnitOfWork, obj: Any, errors: Any, meta: Meta) -> None:
        uow.emit(
            HandlerActionRejected(action_id=obj.get("action_id"), case_id="C1", reason="invalid")
        )

    def factory(settings: Settings) -> Service:
        mig = tmp_path / "migrations"
        mig.mkdir(exist_ok=True)
        svc = Service("kit", settings, mig)
        svc.subscribe_batch("handler.actions", HandlerAction, on_invalid=on_invalid)(handle)
        return svc

    goods = [f"g{i}" for i in range(12)]
    async with Publisher(s) as pub:
        for i, a in enumerate(goods):
            await pub.send("handler.actions", action(a), key="C1")
            if i % 4 == 1:  # three invalid actions (no handler) among the valid ones
                await pub.send("handler.actions", {**action(f"bad{i}"), "handler_id": 7}, key="C1")
    async with TopicReader(s, "handler.actions.rejected") as reader:
        await bed.start("kit", factory, DATABASE_URL=bed.admin_dsn)
        rejected = await reader.wait_for(
            lambda r: (
                len(r.of("handler.actions.rejected")) == 3 and r.of("handler.actions.rejected")
            ),
            what="three rejections",
        )
    assert calls == [goods]
    assert sorted(r.json()["action_id"] for r in rejected) == ["bad1", "bad5", "bad9"]


async def _rewind(settings: Settings, group: str, topic: str) -> None:
    """Commit offset 0 for every partition of ``topic`` in ``group`` (the service stopped): its
    records are delivered again, as after a crash between the commit and the offset commit."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.topic_prefix + group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # as cli.client and cli.ops do
        parts = consumer.partitions_for_topic(settings.topic(topic)) or set()
        assert parts, f"no partitions known for {topic}"
        tps = [TopicPartition(settings.topic(topic), p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.commit({tp: 0 for tp in tps})
    finally:
        await consumer.stop()


async def test_a_redelivered_batch_is_not_dead_lettered_again(bed: Testbed, tmp_path: Path) -> None:
    """Dead letters are written with the batch's transaction, and the records' positions claimed:
    when the whole topic is delivered again, nothing is dead-lettered a second time."""
    s = bed.settings()
    async with Publisher(s) as pub:
        await pub.send("handler.actions", b"{not json", key="C1")
        await pub.send("handler.actions", action("boom", note="boom"), key="C1")
        await pub.send("handler.actions", action("a1"), key="C1")
    ks = KitService(tmp_path)
    async with TopicReader(s, "handler.actions.dlq") as dlq:
        svc = await bed.start("kit", ks.factory, DATABASE_URL=bed.admin_dsn)
        await eventually(lambda: _has_note(svc, "a1"), what="the good message")
        await dlq.wait_for(lambda r: len(r.of("handler.actions.dlq")) == 2, what="2 dead letters")
        await bed.stop(svc)
        calls = ks.calls
        await _rewind(s, "wangge-kit.handler.actions", "handler.actions")
        async with Publisher(s) as pub:  # a marker after the redelivered records: one more
            await pub.send("handler.actions", b"marker", key="C1")
        svc = await bed.start("kit", ks.factory, DATABASE_URL=bed.admin_dsn)
        await dlq.wait_for(
            lambda r: any(d.value == b"marker" for d in r.of("handler.actions.dlq")),
            what="the marker's dead letter",
        )
        dead = dlq.of("handler.actions.dlq")
    assert [d.headers["dlq_error_class"] for d in dead] == ["NotJson", "ValueError", "NotJson"]
    assert ks.calls > calls  # the redelivered poison message did reach the handler again
    assert sorted(await notes(svc)) == ["a1"]
