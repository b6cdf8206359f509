"""Kafka in a container for the tests, where a Docker engine answers: the ``apache/kafka`` image
in KRaft mode (one node, broker and controller).

testcontainers' ``KafkaContainer`` drives Confluent's images (its start script calls
``/etc/confluent/docker/*``; ``with_kraft()`` refuses any tag below 7.0.0, so ``apache/kafka:4.1.1``
raises), so this is a generic ``DockerContainer`` configured the way testcontainers-java's
``org.testcontainers.kafka.KafkaContainer`` configures the same image: the listeners in
``KAFKA_*`` variables (the image's ``/etc/kafka/docker/run`` turns them into
``server.properties``), and a start script written into the container once the mapped port is
known, which advertises that host port and then runs the image's own entry point.

Same Kafka version as the local process path (``deploy/kafka/pom.xml``) and compose; the unit test
``tests/stack/test_kafka_container.py`` checks the configuration without Docker; the image's own
scripts (``docker/resources/common-scripts/{run,configure,configureDefaults}`` and
``docker/jvm/Dockerfile`` of apache/kafka: bash installed, ``CMD /etc/kafka/docker/run``) were read
to match it.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

KAFKA_IMAGE = "apache/kafka:4.1.1"
CLIENT_PORT = 9092  # PLAINTEXT, advertised as the host's mapped port
BROKER_PORT = 9093  # inter-broker, advertised inside the container network
CONTROLLER_PORT = 9094
START_SCRIPT = "/tmp/wangge-kafka-start.sh"
STARTED = re.compile(r"Kafka Server started")
CLUSTER_ID = "d2FuZ2dlLXRlc3RzLWthZg"  # any 22-character base64 UUID; one per container


def kraft_env(cluster_id: str = CLUSTER_ID) -> dict[str, str]:
    """The image's ``KAFKA_*`` settings: one KRaft node, the topics' defaults of the tests."""
    return {
        "CLUSTER_ID": cluster_id,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{CONTROLLER_PORT}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENERS": (
            f"PLAINTEXT://0.0.0.0:{CLIENT_PORT},BROKER://0.0.0.0:{BROKER_PORT},"
            f"CONTROLLER://0.0.0.0:{CONTROLLER_PORT}"
        ),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        # as in production: every topic is created by `wangge ops setup` / the testbeds
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }


def start_script(host: str, port: int) -> str:
    """Advertise the client listener at the host's mapped port, then start the image's Kafka."""
    return (
        "#!/bin/bash\n"
        "set -e\n"
        f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port},"
        f"BROKER://$(hostname -i | cut -d' ' -f1):{BROKER_PORT}\n"
        "exec /etc/kafka/docker/run\n"
    )


class ApacheKafkaContainer(DockerContainer):
    def __init__(self, image: str = KAFKA_IMAGE, **kwargs: Any) -> None:
        super().__init__(image, **kwargs)
        for key, value in kraft_env().items():
            self.with_env(key, value)
        self.with_exposed_ports(CLIENT_PORT)
        # wait for the start script (written once the mapped port is known), then run it
        self.with_command(
            f'sh -c "while [ ! -f {START_SCRIPT} ]; do sleep 0.1; done; bash {START_SCRIPT}"'
        )

    def get_bootstrap_server(self) -> str:
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(CLIENT_PORT)}"

    def start(self, timeout: int = 90) -> ApacheKafkaContainer:
        super().start()
        host = self.get_container_host_ip()
        port = int(self.get_exposed_port(CLIENT_PORT))
        self._put_file(start_script(host, port).encode(), START_SCRIPT)
        wait = LogMessageWaitStrategy(STARTED)
        wait.with_startup_timeout(timeout)
        wait.wait_until_ready(self)
        return self

    def _put_file(self, content: bytes, path: str) -> None:
        with io.BytesIO() as archive:
            with tarfile.TarFile(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo(name=path)
                info.size = len(content)
                info.mode = 0o755
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(content))
            archive.seek(0)
            self.get_wrapped_container().put_archive("/", archive)
