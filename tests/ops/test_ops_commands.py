"""``wangge ops topics``, ``lag``, ``setup`` and ``wait`` against the real broker and database
(the testbed's prefix and database)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from cli.client import Publisher
from cli.main import app
from cli.ops import (
    SERVICES,
    TopicCheck,
    check_topics,
    consumer_lag,
    group_topic,
    lag_of,
    role_password,
    service_migrations,
    setup_problems,
    wait_for_setup,
    wanted_topics,
)
from devstack.testbed import Testbed
from devstack.wait import eventually
from shared.contract.acls import topics_of
from shared.contract.topics import ALL_TOPICS, min_insync_replicas, spec, topic_config
from shared.runtime.db import connect, migrate, with_credentials
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client, ensure_topics


def test_group_names_and_lag_arithmetic() -> None:
    assert group_topic("wangge-dispatch.cases.opened") == ("dispatch", "cases.opened")
    assert group_topic("someone-else") is None
    assert lag_of(None, 0, 5) == 5  # nothing committed: reads from the beginning
    assert lag_of(3, 0, 5) == 2
    assert lag_of(1, 4, 9) == 5  # committed offset was deleted by retention
    assert lag_of(9, 0, 9) == 0


def test_min_insync_replicas_follow_the_replication_factor() -> None:
    assert [min_insync_replicas(r) for r in (1, 2, 3, 5)] == [1, 1, 2, 2]
    closed = spec("cases.closed")
    for replication, want in ((1, "1"), (3, "2")):
        for w in wanted_topics(Settings(), replication=replication):
            assert w.config["min.insync.replicas"] == want, w.name
    # a topic's own configuration is kept beside it
    assert topic_config(closed, 3) == {"min.insync.replicas": "2", **closed.config}


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
                ),
                # a replication factor of 1 wants 1: acks=all would refuse every event
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    s.topic("cases.closed"),
                    configs={"min.insync.replicas": "2"},
                ),
            ]
        )
        await admin.delete_topics([s.topic("feedback.rejected")])
    finally:
        await admin.close()

    async def drifted() -> dict[str, TopicCheck] | None:  # both changes apply asynchronously
        after = {c.name: c for c in await check_topics(s, partitions=2, create=False)}
        changed = {after[s.topic(t)].state for t in ("registry.units", "cases.closed")} == {"drift"}
        return after if changed and after[s.topic("feedback.rejected")].state == "missing" else None

    after = await eventually(drifted, timeout=20, what="the broker to apply both changes")
    assert after is not None
    assert after[s.topic("registry.units")].problems == ["cleanup.policy=delete (want compact)"]
    assert "min.insync.replicas=2 (want 1)" in after[s.topic("cases.closed")].problems

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


# --- setup and wait (the Kubernetes set-up Job and the Deployments' initContainers) ----------


def test_role_password_comes_from_the_service_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    for svc in SERVICES:
        monkeypatch.delenv(f"WANGGE_{svc.upper()}_DATABASE_URL", raising=False)
    monkeypatch.delenv("WANGGE_DB_ROLE_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="WANGGE_INTAKE_DATABASE_URL"):
        role_password("intake")
    monkeypatch.setenv("WANGGE_DB_ROLE_PASSWORD", "fallback")
    assert role_password("intake") == "fallback"
    monkeypatch.setenv(
        "WANGGE_INTAKE_DATABASE_URL", "postgresql://wangge_intake:p%40ss@db:5432/wangge"
    )
    assert role_password("intake") == "p@ss"  # the DSN wins, percent-decoded as asyncpg does
    assert role_password("dispatch") == "fallback"
    monkeypatch.setenv("WANGGE_INTAKE_DATABASE_URL", "postgresql://postgres:s3cret@db/wangge")
    with pytest.raises(ValueError, match="must connect as wangge_intake") as err:
        role_password("intake")
    assert "s3cret" not in str(err.value)


def test_cli_setup_applies_what_wait_checks(
    cli_env: CliRunner, bed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job's command, then the initContainers' one: before the set-up a service waits (its
    schema has no migrations yet), after it it may start; the role passwords come from the
    services' own DSNs, as on Kubernetes, and no password is printed."""
    password = urlsplit(bed.service_dsns["intake"]).password
    assert password
    monkeypatch.delenv("WANGGE_DB_ROLE_PASSWORD", raising=False)
    for svc in SERVICES:
        monkeypatch.setenv(f"WANGGE_{svc.upper()}_DATABASE_URL", bed.service_dsns[svc])

    with monkeypatch.context() as m:
        m.setenv("DATABASE_URL", bed.service_dsns["intake"])
        before = cli_env.invoke(app, ["ops", "wait", "intake", "--timeout", "0"])
    assert before.exit_code == 1, before.output
    assert "migrations not applied: shared/001_outbox_inbox.sql" in before.output
    assert "intake/001_init.sql" in before.output and "topics missing" not in before.output

    setup = cli_env.invoke(app, ["ops", "setup", "--partitions", "2"])  # DATABASE_URL: admin
    assert setup.exit_code == 0, setup.output
    for svc in SERVICES:
        assert f"role wangge_{svc} and schema {svc}: ready (applied shared/001" in setup.output
    assert "drift" not in setup.output and "missing" not in setup.output
    again = cli_env.invoke(app, ["ops", "setup", "--no-topics"])
    assert again.exit_code == 0, again.output
    assert again.output.count("migrations up to date") == 3
    assert "left to the Topic Operator" in again.output

    for svc in SERVICES:
        with monkeypatch.context() as m:
            m.setenv("DATABASE_URL", bed.service_dsns[svc])
            ready = cli_env.invoke(app, ["ops", "wait", svc, "--timeout", "10"])
        assert ready.exit_code == 0, ready.output
        assert f"{svc}: set-up applied" in ready.output

    with monkeypatch.context() as m:  # a password the set-up did not give: not logged in
        m.setenv("DATABASE_URL", with_credentials(bed.admin_dsn, "wangge_intake", "not-it-9x"))
        wrong = cli_env.invoke(app, ["ops", "wait", "intake", "--timeout", "0"])
    assert wrong.exit_code == 1
    assert "cannot log in" in wrong.output and "wangge_intake" in wrong.output
    for output in (before.output, setup.output, again.output, wrong.output):
        assert password not in output and "not-it-9x" not in output

    monkeypatch.setenv("WANGGE_FEEDBACK_DATABASE_URL", bed.admin_dsn)  # not feedback's role
    refused = cli_env.invoke(app, ["ops", "setup"])
    assert refused.exit_code == 2
    assert "WANGGE_FEEDBACK_DATABASE_URL must connect as wangge_feedback" in refused.output


async def test_wait_returns_when_a_missing_topic_appears(bed: Testbed) -> None:
    s = bed.settings("dispatch")  # the service's own DSN, as in its initContainer
    conn = await connect(bed.service_dsns["dispatch"])
    try:
        await migrate(conn, "dispatch", service_migrations("dispatch"))
    finally:
        await conn.close()
    assert await setup_problems(s, "dispatch") == []

    gone = s.topic("cases.reopened")
    admin = admin_client(s)
    await admin.start()
    try:
        await admin.delete_topics([gone])
    finally:
        await admin.close()

    async def noticed() -> list[str]:
        return await setup_problems(s, "dispatch")

    problems = await eventually(noticed, timeout=20, what="the deleted topic to be missing")
    needed = len(topics_of("dispatch"))
    assert problems == [f"kafka: 1 of the {needed} topics of dispatch missing: {gone}"]

    reports: list[list[str]] = []
    waiting = asyncio.create_task(
        wait_for_setup(s, "dispatch", timeout=60, interval=0.2, report=reports.append)
    )

    async def reported() -> bool:
        return bool(reports)

    await eventually(reported, timeout=20, what="the first check")
    assert reports[0] == problems and not waiting.done()
    assert await ensure_topics(s, partitions=2) == [gone]
    assert await waiting == []  # the wait's own timeout bounds this
    assert reports[-1] == []
