"""An isolated environment on shared infrastructure: its own database and its own topic prefix.

Tests, the demo and the benchmarks use it, so that several runs can share one Kafka and one
PostgreSQL without seeing each other's messages or rows.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from devstack.paths import free_port
from shared.contract.topics import ALL_TOPICS
from shared.runtime.db import provision_service
from shared.runtime.identity import issue_token
from shared.runtime.service import Service
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import ensure_topics

SERVICES = ("intake", "dispatch", "feedback")
ROLE_PASSWORD = os.environ.get("WANGGE_DB_ROLE_PASSWORD", "wangge-dev-password")
# The suites and the bench dispatch every case on its guess (triage on confidence is tested on its
# own, with a threshold of its own): what WANGGE_TRIAGE_MIN_CONFIDENCE is there
NO_TRIAGE_THRESHOLD = 0.0


def with_database(dsn: str, db: str) -> str:
    p = urlsplit(dsn)
    return urlunsplit((p.scheme, p.netloc, f"/{db}", p.query, p.fragment))


def pii_key_for_tests() -> str:
    return base64.urlsafe_b64encode(b"k" * 32).decode()


def notify_key_for_tests() -> str:
    """WANGGE_NOTIFY_KEY of the testbeds: feedback seals with it, the simulated residents open."""
    return base64.urlsafe_b64encode(b"n" * 32).decode()


def link_key_for_tests() -> str:
    """WANGGE_LINK_KEY of the testbeds (the cases' status links)."""
    return base64.urlsafe_b64encode(b"l" * 32).decode()


def media_link_key_for_tests() -> str:
    """WANGGE_MEDIA_LINK_KEY of the testbeds (dispatch signs the links to intake's photos)."""
    return base64.urlsafe_b64encode(b"m" * 32).decode()


def auth_secret_for_tests() -> str:
    return "wangge-test-signing-secret-0123456789abcdef"


@dataclass
class Testbed:
    __test__ = False  # not a pytest test class

    bootstrap: str
    admin_dsn: str  # admin DSN of the testbed's own database
    prefix: str
    database: str
    service_dsns: dict[str, str] = field(default_factory=dict)
    running: list[Service] = field(default_factory=list)
    overrides: dict[str, object] = field(default_factory=dict)

    def settings(self, service: str | None = None, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.service_dsns.get(service or "", self.admin_dsn),
            "WANGGE_TOPIC_PREFIX": self.prefix,
            "WANGGE_PII_KEY": pii_key_for_tests(),
            "WANGGE_NOTIFY_KEY": notify_key_for_tests(),
            "WANGGE_LINK_KEY": link_key_for_tests(),
            "WANGGE_MEDIA_LINK_KEY": media_link_key_for_tests(),
            "WANGGE_AUTH_JWT_SECRET": auth_secret_for_tests(),
            "WANGGE_OUTBOX_POLL_S": 0.2,
            "WANGGE_RETRY_MAX_BACKOFF_S": 2.0,
            # the suites replay months long closed (2026-10): their figures stay live unless a
            # test sets a grace itself (tests/feedback/test_frozen_months.py)
            "WANGGE_METRICS_FREEZE_GRACE": timedelta(days=36500),
            # the suites dispatch on the classifier's guess unless a test sets a threshold of
            # its own (tests/intake/test_triage.py)
            "WANGGE_TRIAGE_MIN_CONFIDENCE": NO_TRIAGE_THRESHOLD,
            **self.overrides,
        }
        values.update({k.upper(): v for k, v in overrides.items()})
        return Settings(**values)  # type: ignore[arg-type]

    def process_env(self, service: str, **overrides: str) -> dict[str, str]:
        """The environment of ``python -m services.<service>`` run as a process against this
        testbed (its own DSN, the prefix, a free HTTP port in ``WANGGE_HTTP_PORT``)."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.service_dsns[service],
            "WANGGE_TOPIC_PREFIX": self.prefix,
            "WANGGE_PII_KEY": pii_key_for_tests(),
            "WANGGE_NOTIFY_KEY": notify_key_for_tests(),
            "WANGGE_LINK_KEY": link_key_for_tests(),
            "WANGGE_MEDIA_LINK_KEY": media_link_key_for_tests(),
            "WANGGE_AUTH_JWT_SECRET": auth_secret_for_tests(),
            "WANGGE_HTTP_PORT": str(free_port()),
            "WANGGE_TRIAGE_MIN_CONFIDENCE": str(NO_TRIAGE_THRESHOLD),
            **overrides,
        }

    def token(self, role: str, unit: str | None = None, handler_id: str | None = None) -> str:
        """A bearer token for ``role`` in ``unit``, signed with the testbed's secret."""
        return issue_token(self.settings(), role=role, unit=unit, handler_id=handler_id)

    async def start(
        self, name: str, factory: Callable[[Settings], Service] | None = None, **overrides: object
    ) -> Service:
        """Start a service in-process against this testbed (several replicas are allowed)."""
        if factory is None:
            factory = service_factory(name)
        svc = factory(self.settings(name, **overrides))
        await svc.start()
        self.running.append(svc)
        return svc

    async def stop(self, svc: Service) -> None:
        await svc.stop()
        self.running.remove(svc)

    async def stop_all(self) -> None:
        for svc in list(self.running):
            await self.stop(svc)


def service_factory(name: str) -> Callable[[Settings], Service]:
    import importlib

    module = importlib.import_module(f"services.{name}.app")
    factory: Callable[[Settings], Service] = module.create_service
    return factory


async def create_testbed(
    bootstrap: str, admin_dsn: str, *, partitions: int = 2, name: str | None = None
) -> Testbed:
    tag = name or uuid.uuid4().hex[:10]
    db = f"wg_{tag}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
    db_admin = with_database(admin_dsn, db)
    bed = Testbed(bootstrap, db_admin, f"{tag}.", db)
    for svc in SERVICES:
        bed.service_dsns[svc] = await provision_service(db_admin, svc, ROLE_PASSWORD)
    await ensure_topics(bed.settings(), partitions=partitions)
    return bed


async def destroy_testbed(bed: Testbed, admin_dsn: str) -> None:
    await bed.stop_all()
    admin = AIOKafkaAdminClient(bootstrap_servers=bed.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([bed.prefix + t.name for t in ALL_TOPICS])
    except Exception:
        pass
    finally:
        await admin.close()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{bed.database}" WITH (FORCE)')
    finally:
        await conn.close()
