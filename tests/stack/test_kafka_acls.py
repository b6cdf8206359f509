"""Kafka identity end to end: ``make up`` in SASL/SCRAM mode (``WANGGE_KAFKA_AUTH=scram``) on a
broker of this module's own, with the StandardAuthorizer and the ACLs generated from the topic
table (shared/contract/acls.py). Each service runs as its own principal, ``wangge ops`` as
``wangge-ops``, and each upstream system as itself; a report goes round the loop (case, dispatch,
the handler app's actions, the follow-up request, a rating and its answer), and the broker refuses
what a principal's ACLs do not allow: a report source writing ``handler.actions`` or
``feedback.submitted`` or reading ``feedback.requested``, a service writing a topic it does not
own, a consumer group outside a principal's own, a wrong password."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from cli.client import Publisher, TopicReader
from cli.dlq import read_dead_letters, replay
from cli.registry import publish_registry
from devstack.infra import Infra
from devstack.kafka_identity import KafkaUsers
from devstack.kafka_local import LocalKafka
from devstack.paths import ROOT, read_pid
from devstack.stack import SERVICES, read_env
from devstack.testbed import ROLE_PASSWORD, with_database
from devstack.wait import eventually
from shared.contract.acls import acl_table
from shared.runtime.acl_admin import describe_acls
from shared.runtime.db import with_credentials
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.producer import OutRecord, Producer
from shared.runtime.settings import Settings
from tests.samples import VERIFIER_OF, now_iso, report, sample_registry


@dataclass
class ScramStack:
    run_dir: Path
    prefix: str
    dsn: str  # admin DSN of the stack's own database
    users: KafkaUsers

    def env_of(self, principal: str) -> dict[str, str]:
        """What ``make up`` wrote for ``principal`` (``.run/kafka/users/<principal>.env``)."""
        return read_env(self.run_dir / "kafka" / "users" / f"{principal}.env")

    def settings(self, principal: str) -> Settings:
        return Settings(**self.env_of(principal), WANGGE_TOPIC_PREFIX=self.prefix)  # type: ignore[arg-type]

    def cli_env(self, principal: str, **extra: str) -> dict[str, str]:
        """A shell with ``.run/env``, acting as ``principal``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        return {
            **base,
            **read_env(self.run_dir / "env"),
            **self.env_of(principal),
            "WANGGE_TOPIC_PREFIX": self.prefix,
            **extra,
        }


def _devstack(cmd: str, run_dir: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "devstack", cmd, "--run-dir", str(run_dir)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=180,
        capture_output=True,
    )


def _wangge(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def process_environ(pid: int) -> dict[str, str]:
    items = Path(f"/proc/{pid}/environ").read_text().split("\0")
    return dict(item.split("=", 1) for item in items if "=" in item)


@pytest.fixture(scope="module")
async def stack(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ScramStack]:
    tag = uuid.uuid4().hex[:8]
    database, prefix = f"wg_acl_{tag}", f"acl{tag}."
    conn = await asyncpg.connect(infra.admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    dsn = with_database(infra.admin_dsn, database)
    run_dir = tmp_path_factory.mktemp("scram-stack")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
        "WANGGE_KAFKA_AUTH": "scram",
        "DATABASE_URL": dsn,
        "WANGGE_TOPIC_PREFIX": prefix,
        "WANGGE_OUTBOX_POLL_S": "0.2",
    }
    try:
        await asyncio.to_thread(_devstack, "up", run_dir, env)
        yield ScramStack(run_dir, prefix, dsn, KafkaUsers.load(LocalKafka(run_dir, auth="scram")))
    finally:
        await asyncio.to_thread(_devstack, "down", run_dir, env)
        conn = await asyncpg.connect(infra.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


async def test_each_principal_has_exactly_the_generated_acls(stack: ScramStack) -> None:
    admin = stack.users.kafka.admin_settings()
    on_broker = await describe_acls(admin)
    wanted = {(p, a) for p, acls in acl_table(stack.prefix).items() for a in acls}
    assert on_broker == wanted
    # .run/env: the operators' credentials and the upstream systems' passwords, no service's
    env = read_env(stack.run_dir / "env")
    assert env["KAFKA_SASL_USERNAME"] == "wangge-ops"
    assert env["KAFKA_SASL_PASSWORD"] == stack.users.passwords["wangge-ops"]
    assert env["WANGGE_KAFKA_PASSWORD_HOTLINE_12345"] == stack.users.passwords["hotline-12345"]
    for svc in SERVICES:
        assert stack.users.passwords[f"wangge-{svc}"] not in env.values()
    assert stack.users.kafka.admin_password not in env.values()
    # each service process logs in as its own user, and knows no other password
    for svc in SERVICES:
        pid = read_pid(stack.run_dir / f"{svc}.pid")
        assert pid is not None, svc
        environ = process_environ(pid)
        assert environ["KAFKA_SASL_USERNAME"] == f"wangge-{svc}"
        assert environ["KAFKA_SASL_PASSWORD"] == stack.users.passwords[f"wangge-{svc}"]
        assert environ["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"


async def test_the_cli_as_wangge_ops_and_a_service_waits_with_its_own_user(
    stack: ScramStack,
) -> None:
    ops = stack.cli_env("wangge-ops", WANGGE_DB_ROLE_PASSWORD=ROLE_PASSWORD)
    intake = stack.cli_env(
        "wangge-intake", DATABASE_URL=with_credentials(stack.dsn, "wangge_intake", ROLE_PASSWORD)
    )
    setup, wait, lag = await asyncio.gather(
        asyncio.to_thread(_wangge, ops, "ops", "setup", "--partitions", "2"),
        asyncio.to_thread(_wangge, intake, "ops", "wait", "intake", "--timeout", "30"),
        asyncio.to_thread(_wangge, stack.cli_env("wangge-watcher"), "ops", "lag"),
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "drift" not in setup.stdout and "role wangge_intake" in setup.stdout
    assert wait.returncode == 0, wait.stdout + wait.stderr
    assert "intake: set-up applied" in wait.stdout
    assert lag.returncode == 0, lag.stdout + lag.stderr
    assert "wangge-dispatch.handler.actions" in lag.stdout


async def _handlers_read(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        for svc in SERVICES:
            if not await conn.fetchval(f"SELECT 1 FROM {svc}.handlers WHERE id = 'h-0030'"):
                return False
        return True
    finally:
        await conn.close()


async def test_a_report_round_the_loop_each_party_as_itself(stack: ScramStack) -> None:
    await publish_registry(stack.settings("wangge-ops"), sample_registry())
    await eventually(partial(_handlers_read, stack.dsn), timeout=30, what="the registry")

    source, app, page = (stack.settings(p) for p in ("hotline-12345", "handler-app", "rating-page"))
    rep = report(source="hotline_12345")
    async with (
        Publisher(source, source="hotline-12345") as source_pub,
        Publisher(app, source="handler-app") as app_pub,
        Publisher(page, source="rating-page") as page_pub,
        TopicReader(source, "cases.opened") as source_reads,
        TopicReader(app, "cases.dispatched") as app_reads,
        TopicReader(page, "feedback.requested", "feedback.rejected") as page_reads,
    ):
        await source_pub.send("reports.submitted", rep, key=rep["report_id"])

        def mine(r: TopicReader) -> list[dict[str, object]]:
            return [
                c.json() for c in r.of("cases.opened") if rep["report_id"] in c.json()["report_ids"]
            ]

        case = (await source_reads.wait_for(mine, what="the case"))[0]
        cid = str(case["case_id"])
        dispatched = await app_reads.wait_for(
            lambda r: [d.json() for d in r.of("cases.dispatched") if d.json()["case_id"] == cid],
            what="the dispatch",
        )
        handler = dispatched[0]["handler_id"]
        # the grid's worker resolves it, its community verifies it (核查) before the follow-up
        assert dispatched[0]["tier"] == "grid"
        verifier = VERIFIER_OF[str(case["location"]["community"])]
        steps = ((handler, "accept"), (handler, "resolve"), (verifier, "verify"))
        for i, (who, action) in enumerate(steps):
            await app_pub.send(
                "handler.actions",
                {
                    "action_id": f"{cid}-{i}",
                    "case_id": cid,
                    "handler_id": who,
                    "action": action,
                    "at": now_iso(),
                    "note": "已清运并消杀",
                },
                key=cid,
            )
        await page_reads.wait_for(
            lambda r: [q for q in r.of("feedback.requested") if q.json()["case_id"] == cid],
            what="the follow-up request",
        )
        # a rating with a token that is not the resident's: refused, and the refusal comes back
        await page_pub.send(
            "feedback.submitted",
            {
                "case_id": cid,
                "rating_token": "not-the-residents-token",
                "resolved": True,
                "satisfaction": "satisfied",
                "at": now_iso(),
            },
            key=cid,
        )
        rejected = await page_reads.wait_for(
            lambda r: [q.json() for q in r.of("feedback.rejected") if q.json()["case_id"] == cid],
            what="the rating's rejection",
        )
        assert "token" in rejected[0]["reason"]
    # and no service was refused anything on the way (nor tried to create a topic)
    for svc in SERVICES:
        log = await asyncio.to_thread((stack.run_dir / "logs" / f"{svc}.log").read_text)
        refused = [line for line in log.splitlines() if "Authorization" in line]
        assert refused == [], (svc, refused[:3])


async def test_a_dead_letter_written_by_intake_and_replayed_by_ops(stack: ScramStack) -> None:
    source, ops = stack.settings("hotline-12345"), stack.settings("wangge-ops")
    key = f"not-json-{uuid.uuid4().hex[:8]}"
    async with (
        Publisher(source, source="hotline-12345") as pub,
        TopicReader(ops, "reports.submitted.dlq") as letters,
    ):
        await pub.send("reports.submitted", b"not json", key=key)

        def of_key(r: TopicReader) -> list[dict[str, str]]:
            return [d.headers for d in r.of("reports.submitted.dlq") if d.key == key]

        first = await letters.wait_for(of_key, what="the dead letter")
        assert first[0]["dlq_error_class"] == "NotJson" and first[0]["dlq_service"] == "intake"
        # wangge dlq list / replay, as the operators
        listed = await read_dead_letters(ops, "reports.submitted")
        assert [d.ident for d in listed] == [first[0]["ce_id"]]
        assert await replay(ops, "reports.submitted", [first[0]["ce_id"]]) == [first[0]["ce_id"]]
        again = await letters.wait_for(lambda r: of_key(r)[1:], what="the replay's dead letter")
        assert again[0]["wangge_replayed_from"].startswith(source.topic("reports.submitted.dlq"))


async def _refused(
    attempt: Callable[[], Awaitable[object]], error: type[BaseException]
) -> BaseException:
    with pytest.raises(error) as caught:
        async with asyncio.timeout(30):
            await attempt()
    return caught.value


async def _read_with_group(s: Settings, topic: str, group: str) -> object:
    consumer = AIOKafkaConsumer(
        s.topic(topic),
        bootstrap_servers=s.kafka_bootstrap_servers,
        group_id=s.topic_prefix + group,
        auto_offset_reset="earliest",
        **client_security_kwargs(s),
    )
    await consumer.start()
    try:
        while not consumer.assignment():  # joined the group, partitions assigned
            await consumer.getmany(timeout_ms=200)
        return consumer.assignment()
    finally:
        await consumer.stop()


async def test_a_report_source_may_send_reports_and_nothing_else(stack: ScramStack) -> None:
    s = stack.settings("hotline-12345")
    rep = report(source="hotline_12345")
    async with Publisher(s, source="hotline-12345") as pub:
        sent = await pub.send("reports.submitted", rep, key=rep["report_id"])
        assert sent.topic == s.topic("reports.submitted")
        for topic in ("handler.actions", "feedback.submitted"):
            err = await _refused(
                partial(pub.send, topic, {"case_id": "C-1"}, key="C-1"),
                TopicAuthorizationFailedError,
            )
            assert s.topic(topic) in str(err)
        # it reads what comes back for it, but never the rating tokens
        await _refused(
            partial(_read_with_group, s, "feedback.requested", "hotline-12345.peek"),
            TopicAuthorizationFailedError,
        )
    assert await _read_with_group(s, "reports.rejected", "hotline-12345.rejections")
    # in its own consumer groups only
    await _refused(
        partial(_read_with_group, s, "reports.rejected", "wangge-intake.reports.rejected"),
        GroupAuthorizationFailedError,
    )


async def test_a_service_writes_only_the_topics_it_owns(stack: ScramStack) -> None:
    s = stack.settings("wangge-intake")
    producer = Producer(s, "wangge-intake")
    try:
        sent = await producer.send(OutRecord(s.topic("reports.rejected"), "x:1", b"{}", {}))
        assert sent.topic == s.topic("reports.rejected")
        await _refused(
            partial(producer.send, OutRecord(s.topic("cases.dispatched"), "C-x", b"{}", {})),
            TopicAuthorizationFailedError,
        )
    finally:
        await producer.stop()
    wrong = Settings(
        **{**stack.env_of("wangge-intake"), "KAFKA_SASL_PASSWORD": "not-the-password"},  # type: ignore[arg-type]
    )
    await _refused(Producer(wrong, "wangge-intake").start, KafkaConnectionError)
