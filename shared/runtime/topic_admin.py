"""Creating the topics of ``shared.contract.topics`` on the broker (the Kafka admin client)."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.contract.topics import ALL_TOPICS, topic_config
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.settings import Settings


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30
) -> None:
    """New topics are usable once every partition has a leader."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        ready = all(
            t.get("error_code", 0) == 0
            and t.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
            for t in described
        )
        if ready:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout}s: {names}")
        await asyncio.sleep(0.1)


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **client_security_kwargs(settings)
    )


async def ensure_topics(
    settings: Settings, *, partitions: int | None = None, replication: int = 1
) -> list[str]:
    """Create every missing topic (prefixed). Returns the names created."""
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=settings.topic(t.name),
                num_partitions=t.partitions if t.partitions == 1 else (partitions or t.partitions),
                replication_factor=replication,
                topic_configs=topic_config(t, replication),
            )
            for t in ALL_TOPICS
            if settings.topic(t.name) not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
            await _wait_for_leaders(admin, [n.name for n in new])
        return [n.name for n in new]
    finally:
        await admin.close()
