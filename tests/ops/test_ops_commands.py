"""``wangge ops topics`` and ``wangge ops lag`` against the real broker (the testbed's prefix)."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from cli.main import app
from cli.ops import TopicCheck, check_topics, consumer_lag, group_topic, lag_of
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.client import Publisher
from shared.topics import ALL_TOPICS, admin_client


def test_group_names_and_lag_arithmetic() -> None:
    assert group_topic("wangge-dispatch.cases.opened") == ("dispatch", "cases.opened")
    assert group_topic("someone-else") is None
    assert lag_of(None, 0, 5) == 5  # nothing committed: reads from the beginning
    assert lag_of(3, 0, 5) == 2
    assert lag_of(1, 4, 9) == 5  # committed offset was deleted by retention
    assert lag_of(9, 0, 9) == 0


async def test_topics_verify_report_drift_and_create_missing(bed: Testbed) -> None:
    s = bed.settings()
    # The testbed made every topic with 2 partitions (single-partition topics stay single).
    checks = await check_topics(s, partitions=2, create=False)
    assert [c.name for c in checks] == [s.topic(t.name) for t in ALL_TOPICS]
    assert {c.state for c in checks} == {"ok"}, [c for c in checks if c.state != "ok"]

    by_name = {c.name: c for c in await check_topics(s, create=False)}  # production: 6
    assert by_name[s.topic("cases.opened")].problems == ["partitions 2 < 6"]
    assert by_name[s.topic("registry.units")].state == "ok"

    admin = admin_client(s)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    s.topic("registry.units"),
                    configs={"cleanup.policy": "delete", "min.compaction.lag.ms": "0"},
                )
            ]
        )
        await admin.delete_topics([s.topic("feedback.rejected")])
    finally:
        await admin.close()

    async def drifted() -> dict[str, TopicCheck] | None:  # both changes apply asynchronously
        after = {c.name: c for c in await check_topics(s, partitions=2, create=False)}
        changed = after[s.topic("registry.units")].state == "drift"
        return after if changed and after[s.topic("feedback.rejected")].state == "missing" else None

    after = await eventually(drifted, timeout=20, what="the broker to apply both changes")
    assert after is not None
    assert after[s.topic("registry.units")].problems == ["cleanup.policy=delete (want compact)"]

    created = {c.name: c for c in await check_topics(s, partitions=2)}
    assert created[s.topic("feedback.rejected")].state == "created"

    async def recreated() -> TopicCheck | None:
        again = {c.name: c for c in await check_topics(s, partitions=2, create=False)}
        check = again[s.topic("feedback.rejected")]
        return check if check.state == "ok" else None

    check = await eventually(recreated, timeout=20, what="feedback.rejected to be back")
    assert check is not None and check.partitions == 2


async def test_lag_per_group_and_partition(bed: Testbed) -> None:
    s = bed.settings()
    async with Publisher(s) as pub:
        for i in range(5):  # one key: one partition
            sent = await pub.send("handler.actions", {"n": i}, key="case-1")
    group = s.topic_prefix + "wangge-dispatch.handler.actions"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topic = s.topic("handler.actions")
        busy = TopicPartition(topic, sent.partition)
        consumer.assign([busy])
        await consumer.commit({busy: OffsetAndMetadata(2, "")})
    finally:
        await consumer.stop()

    rows = [r for r in await consumer_lag(s) if r.group == "wangge-dispatch.handler.actions"]
    assert {r.partition for r in rows} == {0, 1}  # the testbed's two partitions
    row = next(r for r in rows if r.partition == busy.partition)
    assert (row.service, row.topic, row.committed, row.end, row.lag) == (
        "dispatch",
        "handler.actions",
        2,
        5,
        3,
    )
    assert sum(r.lag for r in rows) == 3


@pytest.fixture
def cli_env(bed: Testbed, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    s = bed.settings()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", s.kafka_bootstrap_servers)
    monkeypatch.setenv("WANGGE_TOPIC_PREFIX", s.topic_prefix)
    monkeypatch.setenv("DATABASE_URL", bed.admin_dsn)
    return CliRunner()


def test_cli_topics_exit_codes(cli_env: CliRunner) -> None:
    ok = cli_env.invoke(app, ["ops", "topics", "--check", "--partitions", "2"])
    assert ok.exit_code == 0, ok.output
    assert "cases.opened" in ok.output and "drift" not in ok.output
    drift = cli_env.invoke(app, ["ops", "topics", "--check"])
    assert drift.exit_code == 1
    assert "partitions 2 < 6" in drift.output


def test_cli_status_and_lag_render_without_services(
    cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("INTAKE_URL", "DISPATCH_URL", "FEEDBACK_URL"):
        monkeypatch.delenv(var, raising=False)
    result = cli_env.invoke(app, ["ops", "status", "--feedback-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1, result.output  # nothing is ready
    assert result.output.count("down") == 3
    assert "(no URL)" in result.output and "http://127.0.0.1:9" in result.output
    assert "dead-letter topics: all empty" in result.output
    lag = cli_env.invoke(app, ["ops", "lag"])
    assert lag.exit_code == 0 and "total lag: 0" in lag.output
