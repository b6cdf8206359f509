"""Where Kafka and PostgreSQL come from, in this order of precedence:

a. ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` set: use them (DATABASE_URL is an admin DSN
   that may create roles and schemas);
b. else a Docker engine answers a ping: testcontainers (tests) or ``deploy/docker-compose.yml``;
c. else local processes: Kafka from Maven Central on Java 17, PostgreSQL from Debian's package.

``kafka_auth="scram"`` (``WANGGE_KAFKA_AUTH=scram``) always runs the local Kafka, with SASL/SCRAM
and ACLs (``devstack.kafka_local``): the broker's users are made here, so it cannot be one of the
environment or of Docker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.kafka_local import LocalKafka
from devstack.postgres_local import LocalPostgres


@dataclass
class Infra:
    bootstrap: str
    admin_dsn: str
    kind: str  # "env", "docker", "local"
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    kafka: LocalKafka | None = None  # the local broker, when it is one

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()
        self.stoppers.clear()


def docker_engine_answers() -> bool:
    """True when a Docker engine answers a ping (the client alone is not enough)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


POSTGRES_IMAGE = "postgres:17-bookworm"  # compose's


def docker_containers(**docker_client_kw: Any) -> tuple[Any, Any]:
    """Kafka (``apache/kafka`` in KRaft mode) and PostgreSQL containers, configured, not started
    (``docker_client_kw`` reaches docker-py: a fixed ``version`` builds them without an engine)."""
    from testcontainers.community.postgres import PostgresContainer

    from devstack.kafka_container import ApacheKafkaContainer

    client_kw = docker_client_kw or None
    kafka = ApacheKafkaContainer(docker_client_kw=client_kw)
    pg = PostgresContainer(
        POSTGRES_IMAGE,
        username="postgres",
        password="postgres",
        dbname="wangge",
        docker_client_kw=client_kw,
    )
    return kafka, pg


def _testcontainers() -> Infra:
    kafka, pg = docker_containers()
    kafka.start()
    try:
        pg.start()
    except BaseException:
        kafka.stop()
        raise
    dsn = pg.get_connection_url(driver=None)
    return Infra(kafka.get_bootstrap_server(), dsn, "docker", [kafka.stop, pg.stop])


def local_processes(run_dir: Path, *, kafka_auth: str = "none") -> Infra:
    kafka, pg = LocalKafka(run_dir, auth=kafka_auth), LocalPostgres(run_dir)
    k_was, p_was = kafka.running(), pg.running()
    bootstrap = kafka.start()
    dsn = pg.start()
    stoppers: list[Callable[[], None]] = []
    if not p_was:
        stoppers.append(pg.stop)
    if not k_was:
        stoppers.append(kafka.stop)
    return Infra(bootstrap, dsn, "local", stoppers, kafka)


def resolve(run_dir: Path, *, for_tests: bool, kafka_auth: str = "none") -> Infra:
    """Kafka and PostgreSQL by precedence a-b-c; ``stop()`` stops only what this call started."""
    env_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    env_db = os.environ.get("DATABASE_URL")
    if kafka_auth != "none":
        if env_kafka:
            raise RuntimeError(
                f"Kafka auth {kafka_auth!r} runs its own local broker: "
                "unset KAFKA_BOOTSTRAP_SERVERS"
            )
        if not env_db:
            return local_processes(run_dir, kafka_auth=kafka_auth)
        kafka = LocalKafka(run_dir, auth=kafka_auth)
        was = kafka.running()
        bootstrap = kafka.start()
        return Infra(bootstrap, env_db, "local", [] if was else [kafka.stop], kafka)
    if env_kafka and env_db:
        return Infra(env_kafka, env_db, "env")
    if for_tests and docker_engine_answers():
        return _testcontainers()
    infra = local_processes(run_dir)
    if env_kafka:
        infra.bootstrap = env_kafka
    if env_db:
        infra.admin_dsn = env_db
    return infra
