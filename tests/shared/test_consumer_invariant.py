"""The consumer's invariant on the real broker and database: a record's offset is committed only
after the transaction holding its effects, or its dead letter, has committed. Each test breaks
something the pipeline did not foresee and checks that no record of the batch is lost, none is
applied twice, and the offsets stay where they were until the batch is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.consumer import Subscription
from shared.runtime.service import Service
from shared.runtime.settings import Settings
from tests.shared.raw_records import RawProducer
from tests.shared.test_consumer_pipeline import KitService, action, notes

GROUP = "wangge-kit.handler.actions"


async def committed_and_end(settings: Settings, group: str, topic: str) -> tuple[int, int]:
    """(sum of the group's committed offsets, sum of the end offsets) over ``topic``."""
    name = settings.topic(topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.topic_prefix + group)
        done = sum(m.offset for tp, m in offsets.items() if tp.topic == name and m.offset > 0)
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(name) or set()
        end = await consumer.end_offsets([TopicPartition(name, p) for p in parts])
        return done, sum(end.values())
    finally:
        await consumer.stop()
        await admin.close()


async def all_committed(settings: Settings) -> bool:
    done, end = await committed_and_end(settings, GROUP, "handler.actions")
    return done == end


async def publish_burst(settings: Settings, goods: list[str], poison: dict[str, Any]) -> None:
    """``goods`` as valid actions on one partition, the ``poison`` record in their middle."""
    async with Publisher(settings) as pub, RawProducer(settings) as raw:
        for i, a in enumerate(goods):
            await pub.send("handler.actions", action(a), key="C1")
            if i == len(goods) // 2:
                meta = await raw.send("handler.actions", **poison)
    assert meta is not None


async def start_kit(bed: Testbed, tmp: Path) -> tuple[KitService, Service]:
    ks = KitService(tmp)
    svc = await bed.start("kit", ks.factory, DATABASE_URL=bed.admin_dsn)
    return ks, svc


async def test_a_record_with_nul_and_bad_bytes_in_headers_does_not_take_its_batch(
    bed: Testbed, tmp_path: Path
) -> None:
    """The report of the issue: a record that is not JSON, with a NUL in a ``ce_`` header value
    and a header name that is not UTF-8, in the middle of a burst: its dead letter could not be
    written (jsonb cannot hold NUL) and the whole batch was acknowledged unapplied."""
    s = bed.settings()
    goods = [f"g{i}" for i in range(40)]
    headers = [("ce_id", b"ev\x00il"), (b"\xff\xfename", b"\xc3\x28"), ("x-bin", b"\x00\x01")]
    poison = {"value": b"\x00not json", "key": b"C1", "headers": headers}
    await publish_burst(s, goods, poison)
    async with TopicReader(s, "handler.actions.dlq") as dlq:
        _, svc = await start_kit(bed, tmp_path)
        await eventually(lambda: _count(svc, 40), what="the 40 good actions")
        dead = await dlq.wait_for(lambda r: r.of("handler.actions.dlq"), what="the dead letter")
        await eventually(lambda: all_committed(s), what="the offsets to be committed")
        await dlq.read_to_end()
        assert len(dlq.of("handler.actions.dlq")) == 1
    assert sorted(await notes(svc)) == sorted(goods)
    letter = dead[0]
    assert letter.value == b"\x00not json" and letter.raw_key == b"C1"
    assert letter.headers["dlq_error_class"] == "BadHeaders"
    assert "ce_id" in letter.headers["dlq_error"]
    # the original headers first, byte for byte; the name that is not UTF-8 marked
    original = list(letter.raw_headers[:3])
    assert original[0] == ("ce_id", b"ev\x00il")
    assert original[1] == ("dlq_header_name_b64://5uYW1l", b"\xc3\x28")
    assert original[2] == ("x-bin", b"\x00\x01")


async def _count(svc: Service, n: int) -> bool:
    return len(await notes(svc)) == n


async def test_an_unexpected_error_in_the_careful_pass(
    bed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The savepoint pass itself raises (as a dead letter that could not be written did): each
    message then goes in a transaction of its own; the poison one is dead-lettered once."""

    async def broken(self: Any, conn: Any, items: Any) -> Any:
        raise RuntimeError("the careful pass broke")

    monkeypatch.setattr(Subscription, "_apply_careful", broken)
    s = bed.settings()
    goods = [f"g{i}" for i in range(30)]
    poison = {"value": _body(action("boom", note="boom")), "key": b"C1"}
    await publish_burst(s, goods, poison)
    async with TopicReader(s, "handler.actions.dlq") as dlq:
        _, svc = await start_kit(bed, tmp_path)
        await dlq.wait_for(lambda r: r.of("handler.actions.dlq"), what="the dead letter")
        await eventually(lambda: all_committed(s), what="the offsets to be committed")
        await dlq.read_to_end()
        dead = dlq.of("handler.actions.dlq")
    assert [d.headers["dlq_error_class"] for d in dead] == ["ValueError"]
    assert sorted(await notes(svc)) == sorted(goods)


async def test_a_dead_letter_that_cannot_be_written_holds_the_offsets(
    bed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing the dead letter fails, again and again: the batch is retried with backoff and its
    offsets stay uncommitted (never acknowledged unapplied); once it can be written, it is
    written once and the offsets move on."""
    s = bed.settings()
    goods = [f"g{i}" for i in range(20)]
    poison = {"value": _body(action("boom", note="boom")), "key": b"C1"}
    await publish_burst(s, goods, poison)
    attempts: list[int] = []
    original = Service.dead_letter_event

    def failing(self: Service, *args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        if len(attempts) <= 4:
            raise RuntimeError("cannot build the dead letter")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Service, "dead_letter_event", failing)
    async with TopicReader(s, "handler.actions.dlq") as dlq:
        held: list[tuple[int, int]] = []

        async def failed_three_times() -> bool:
            if len(attempts) >= 3 and not held:
                held.append(await committed_and_end(s, GROUP, "handler.actions"))
            return bool(held)

        _, svc = await start_kit(bed, tmp_path)
        await eventually(failed_three_times, timeout=60, what="three failed attempts")
        done, end = held[0]
        assert done < end, "offsets were committed while the dead letter was not written"
        await dlq.wait_for(lambda r: r.of("handler.actions.dlq"), timeout=60, what="dead letter")
        await eventually(lambda: all_committed(s), what="the offsets to be committed")
        await dlq.read_to_end()
        assert len(dlq.of("handler.actions.dlq")) == 1
    assert sorted(await notes(svc)) == sorted(goods)
    failures = svc.metrics.failures.labels("handler.actions", "unexpected")._value.get()
    assert failures >= 3


async def test_an_exception_that_escapes_the_pipeline_rewinds_the_batch(
    bed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug outside the pipeline's isolation (here: applying the batch raises once): the
    batch is not acknowledged; it is read again and applied, nothing lost."""
    calls: list[int] = []
    original = Subscription._apply_batch

    async def once_broken(self: Subscription[Any], items: Any) -> None:
        calls.append(len(items))
        if len(calls) == 1:
            raise RuntimeError("a bug")
        await original(self, items)

    monkeypatch.setattr(Subscription, "_apply_batch", once_broken)
    s = bed.settings()
    goods = [f"g{i}" for i in range(25)]
    poison = {"value": b"not json", "key": b"C1"}
    await publish_burst(s, goods, poison)
    _, svc = await start_kit(bed, tmp_path)
    await eventually(lambda: _count(svc, 25), timeout=60, what="the 25 good actions")
    await eventually(lambda: all_committed(s), what="the offsets to be committed")
    assert len(calls) >= 2 and calls[0] == calls[1]
    assert sorted(await notes(svc)) == sorted(goods)


def _body(obj: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(obj)
