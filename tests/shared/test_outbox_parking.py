"""An event the broker refuses for good (larger than its topic allows) is parked in
``outbox_parked`` with the broker's answer; the rows before and after it are published once."""

from __future__ import annotations

from pathlib import Path

from cli.client import TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.runtime.service import Service
from tests.shared.test_consumer_pipeline import KitService


async def test_a_record_too_large_for_its_topic_is_parked_not_retried(
    bed: Testbed, tmp_path: Path
) -> None:
    s = bed.settings()
    ks = KitService(tmp_path)
    svc = await bed.start("kit", ks.factory, DATABASE_URL=bed.admin_dsn)
    topic = s.topic("handler.actions.rejected")
    rows = [(b"before", 1), (b"x" * 3_000_000, 2), (b"after", 3)]  # the topic allows 1 MiB
    async with TopicReader(s, "handler.actions.rejected") as reader:
        async with svc.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO outbox (topic, key, headers, payload) VALUES ($1, $2, $3, $4)",
                [(topic, f"k{n}", {"ce_id": f"e{n}"}, body) for body, n in rows],
            )
            await conn.execute("SELECT pg_notify(current_schema() || '_outbox', '')")
        await eventually(lambda: _outbox_empty(svc), timeout=60, what="the outbox to drain")
        await reader.read_to_end()
        got = [r.value for r in reader.of("handler.actions.rejected")]
    assert got == [b"before", b"after"]
    parked = await svc.pool.fetch(
        "SELECT topic, key, length(payload) AS n, error FROM outbox_parked"
    )
    assert [(p["topic"], p["key"], p["n"]) for p in parked] == [(topic, "k2", 3_000_000)]
    assert "MessageSizeTooLarge" in parked[0]["error"]
    assert svc.metrics.outbox_parked._value.get() == 1


async def _outbox_empty(svc: Service) -> bool:
    return bool(await svc.pool.fetchval("SELECT count(*) FROM outbox") == 0)
