"""Applied message keys are forgotten only after the retention, by a durable sweep."""

from __future__ import annotations

from devstack.testbed import Testbed


async def test_old_inbox_rows_are_pruned(bed: Testbed) -> None:
    svc = await bed.start("feedback", WANGGE_INBOX_RETENTION="P30D")
    await svc.pool.execute(
        "INSERT INTO inbox (consumer, message_key, processed_at) VALUES "
        "('c', 'old', now() - interval '31 days'), ('c', 'recent', now() - interval '29 days')"
    )
    assert await svc.inbox_pruner.sweep_once() >= 1
    keys = {r["message_key"] for r in await svc.pool.fetch("SELECT message_key FROM inbox")}
    assert "old" not in keys and "recent" in keys
