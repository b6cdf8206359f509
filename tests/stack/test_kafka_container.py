"""The testcontainers path (where a Docker engine answers), checked without one: the containers
are configured with a fixed Docker API version, so docker-py never contacts an engine."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from devstack.infra import POSTGRES_IMAGE, docker_containers
from devstack.kafka_container import (
    BROKER_PORT,
    CLIENT_PORT,
    CONTROLLER_PORT,
    KAFKA_IMAGE,
    START_SCRIPT,
    ApacheKafkaContainer,
    start_script,
)

ROOT = Path(__file__).resolve().parents[2]


def _listeners(value: str) -> dict[str, int]:
    return {name: int(port) for name, port in re.findall(r"(\w+)://[^:,]*:(\d+)", value)}


def test_kafka_is_the_apache_image_in_kraft_mode() -> None:
    kafka, pg = docker_containers(version="1.44")
    assert isinstance(kafka, ApacheKafkaContainer)
    assert kafka.image.endswith(KAFKA_IMAGE)
    env = kafka.env
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    node = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@localhost:{CONTROLLER_PORT}"
    listeners = _listeners(env["KAFKA_LISTENERS"])
    assert listeners == {
        "PLAINTEXT": CLIENT_PORT,
        "BROKER": BROKER_PORT,
        "CONTROLLER": CONTROLLER_PORT,
    }
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols) == set(listeners)  # every listener has a protocol
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env and "KAFKA_BROKER_ID" not in env
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])  # a base64 UUID
    for key in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG"):
        assert env[f"KAFKA_{key}_REPLICATION_FACTOR"] == "1"  # one node
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert str(CLIENT_PORT) in kafka.ports
    assert START_SCRIPT in str(kafka._command)
    assert pg.image.endswith(POSTGRES_IMAGE)


def test_the_start_script_advertises_the_mapped_port_and_runs_the_image() -> None:
    script = start_script("127.0.0.1", 49153)
    exported = re.search(r"^export KAFKA_ADVERTISED_LISTENERS=(.+)$", script, re.MULTILINE)
    assert exported is not None
    advertised = exported.group(1)
    assert advertised.startswith("PLAINTEXT://127.0.0.1:49153,BROKER://")
    assert advertised.endswith(f":{BROKER_PORT}")
    assert script.rstrip().endswith("exec /etc/kafka/docker/run")  # the image's entry point


def test_every_path_runs_the_same_kafka() -> None:
    pom = (ROOT / "deploy/kafka/pom.xml").read_text()
    local = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert local is not None
    compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
    assert KAFKA_IMAGE == f"apache/kafka:{local.group(1)}" == compose["services"]["kafka"]["image"]
    assert compose["services"]["postgres"]["image"] == POSTGRES_IMAGE
