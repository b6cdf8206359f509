"""Apache Kafka 4.x as a local process in KRaft combined mode, from its Maven Central artifacts.

``mvn dependency:copy-dependencies`` on ``deploy/kafka/pom.xml`` resolves ``kafka_2.13`` and its
runtime dependencies (plus slf4j-simple, so the broker logs) into ``.cache/kafka/lib``; the broker
runs with the machine's Java 17 and a heap of at most 1 GiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from devstack.paths import CACHE, ROOT, free_port, pid_alive, port_open, read_pid
from devstack.wait import wait_until
from shared.runtime.kafka import kafka_reachable
from shared.runtime.settings import Settings

LIB = CACHE / "kafka" / "lib"
POM = ROOT / "deploy" / "kafka" / "pom.xml"


def ensure_jars() -> Path:
    if not any(LIB.glob("kafka_2.13-*.jar")):
        if shutil.which("mvn") is None:
            raise RuntimeError("Maven (mvn) is needed to fetch Kafka from Maven Central")
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"], check=True
        )
    return LIB


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = Path(home, "bin", "java") if home else shutil.which("java")
    if not java:
        raise RuntimeError("Java 17 is needed to run Kafka")
    return str(java)


class LocalKafka:
    """``proxied``: extra listeners, name -> the port it is advertised on (a proxy in front of
    it, as the network-fault suite puts Toxiproxy between each service and the broker): a
    client that bootstraps through that port is told to use it for every later connection too.
    Each listener's own port is in ``listener_ports`` (the proxy's upstream)."""

    def __init__(self, run_dir: Path, proxied: dict[str, int] | None = None) -> None:
        self.proxied = proxied or {}
        self.dir = run_dir / "kafka"
        self.data = self.dir / "data"
        self.props = self.dir / "server.properties"
        self.pid_file = self.dir / "kafka.pid"
        self.port_file = self.dir / "port"
        self.log = self.dir / "kafka.log"
        self.listeners_file = self.dir / "listeners.json"

    @property
    def port(self) -> int:
        return int(self.port_file.read_text())

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def running(self) -> bool:
        return (
            read_pid(self.pid_file) is not None and self.port_file.exists() and port_open(self.port)
        )

    @property
    def listener_ports(self) -> dict[str, int]:
        return dict(json.loads(self.listeners_file.read_text())) if self.proxied else {}

    def _write_config(self) -> None:
        port, controller = free_port(), free_port()
        self.port_file.write_text(str(port))
        own = {name.upper(): free_port() for name in self.proxied}
        self.listeners_file.write_text(json.dumps(own))
        listeners = "".join(f",{n}://127.0.0.1:{p}" for n, p in own.items())
        advertised = "".join(f",{n.upper()}://127.0.0.1:{p}" for n, p in self.proxied.items())
        protocols = "".join(f",{n}:PLAINTEXT" for n in own)
        self.props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{port},"
                    f"CONTROLLER://127.0.0.1:{controller}{listeners}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}{advertised}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
                    + protocols,
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    "num.partitions=3",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "delete.topic.enable=true",
                    "log.cleaner.backoff.ms=1000",
                    "",
                ]
            )
        )

    def start(self, timeout: float = 90) -> str:
        """Start (formatting storage on first start) unless running; return the bootstrap."""
        if self.running():
            return self.bootstrap
        lib = ensure_jars()
        self.dir.mkdir(parents=True, exist_ok=True)
        cp = f"{lib}/*"
        if not (self.data / "meta.properties").exists() or not self.props.exists():
            shutil.rmtree(self.data, ignore_errors=True)
            self._write_config()
            subprocess.run(
                [
                    _java(),
                    "-cp",
                    cp,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    str(uuid.uuid4().hex[:22]),
                    "-c",
                    str(self.props),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        elif port_open(self.port):
            raise RuntimeError(f"port {self.port} of the local Kafka is taken by another process")
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                [
                    _java(),
                    "-Xms256m",
                    "-Xmx1g",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    "-Djava.awt.headless=true",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                    "-cp",
                    cp,
                    "kafka.Kafka",
                    str(self.props),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        wait_until(
            lambda: (proc.poll() is None or _died(self.log)) and self.healthy(),
            timeout=timeout,
            interval=0.25,
            what=f"Kafka on {self.bootstrap} (log: {self.log})",
        )
        return self.bootstrap

    def healthy(self) -> bool:
        """A metadata request succeeds."""
        if not self.port_file.exists() or not port_open(self.port):
            return False
        return asyncio.run(kafka_reachable(Settings(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap)))

    def stop(self, timeout: float = 20) -> None:
        pid = read_pid(self.pid_file)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not pid_alive(pid), timeout=timeout, what="Kafka to stop")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)


def _died(log: Path) -> bool:
    raise RuntimeError(f"Kafka exited during start; see {log}")
