"""Apache Kafka 4.x as a local process in KRaft combined mode, from its Maven Central artifacts.

``mvn dependency:copy-dependencies`` on ``deploy/kafka/pom.xml`` resolves ``kafka_2.13`` and its
runtime dependencies (plus slf4j-simple, so the broker logs) into ``.cache/kafka/lib``; the broker
runs with the machine's Java 17 and a heap of at most 1 GiB.

``auth="scram"`` (``WANGGE_KAFKA_AUTH=scram``): clients authenticate with SASL/SCRAM-SHA-512 on a
SASL_PLAINTEXT listener and the StandardAuthorizer allows only what an ACL allows
(``devstack.kafka_identity`` makes the users and ACLs of ``shared.contract.acls``). The broker's own
user, ``wangge-admin``, is the one super user: its SCRAM credential is written into the storage when
it is formatted (``--add-scram``), and it also logs in, with SASL/PLAIN, on the controller listener,
so that nothing on this machine gets in unauthenticated.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
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
AUTH_MODES = ("none", "scram")
ADMIN_USER = "wangge-admin"  # the local broker's super user (auth="scram")
SCRAM = "SCRAM-SHA-512"


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

    def __init__(
        self, run_dir: Path, proxied: dict[str, int] | None = None, *, auth: str = "none"
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"Kafka auth {auth!r}: one of {', '.join(AUTH_MODES)}")
        if auth != "none" and proxied:
            raise ValueError("proxied listeners are plaintext: not with auth")
        self.auth = auth
        self.proxied = proxied or {}
        self.dir = run_dir / "kafka"
        self.auth_file = self.dir / "auth"  # the mode the storage was formatted for
        self.admin_password_file = self.dir / "admin-password"
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

    def formatted_auth(self) -> str:
        """The mode of the formatted storage (``none`` for storage older than the modes)."""
        return self.auth_file.read_text().strip() if self.auth_file.exists() else "none"

    @property
    def admin_password(self) -> str:
        if not self.admin_password_file.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            self.admin_password_file.write_text(secrets.token_urlsafe(24))
            self.admin_password_file.chmod(0o600)
        return self.admin_password_file.read_text().strip()

    def client_env(self, user: str, password: str) -> dict[str, str]:
        """The ``KAFKA_*`` variables of a client logging in as ``user`` (none without auth)."""
        if self.auth == "none":
            return {}
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": SCRAM,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": password,
        }

    def admin_settings(self) -> Settings:
        """Settings of the broker's super user (a plain client without auth)."""
        env = self.client_env(ADMIN_USER, self.admin_password) if self.auth != "none" else {}
        return Settings(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, **env)  # type: ignore[arg-type]

    @property
    def listener_ports(self) -> dict[str, int]:
        return dict(json.loads(self.listeners_file.read_text())) if self.proxied else {}

    def _security_config(self, port: int, controller: int) -> list[str]:
        """Listeners, and in ``scram`` mode who may log in and what they may do."""
        if self.auth == "none":
            own = {name.upper(): free_port() for name in self.proxied}
            self.listeners_file.write_text(json.dumps(own))
            listeners = "".join(f",{n}://127.0.0.1:{p}" for n, p in own.items())
            advertised = "".join(f",{n.upper()}://127.0.0.1:{p}" for n, p in self.proxied.items())
            protocols = "".join(f",{n}:PLAINTEXT" for n in own)
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{port},"
                f"CONTROLLER://127.0.0.1:{controller}{listeners}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}{advertised}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
                + protocols,
                "inter.broker.listener.name=PLAINTEXT",
            ]
        pw = self.admin_password
        return [
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,"
            "CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={SCRAM}",
            f"sasl.mechanism.inter.broker.protocol={SCRAM}",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{pw}";',
            # SCRAM credentials live in the metadata the controller serves: its own listener
            # cannot use them, so it takes SASL/PLAIN with the one user it knows
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            "listener.name.controller.plain.sasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{ADMIN_USER}" password="{pw}" user_{ADMIN_USER}="{pw}";',
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN_USER}",
            "allow.everyone.if.no.acl.found=false",
        ]

    def _write_config(self) -> None:
        port, controller = free_port(), free_port()
        self.port_file.write_text(str(port))
        self.props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    *self._security_config(port, controller),
                    "controller.listener.names=CONTROLLER",
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
        self.props.chmod(0o600)  # in scram mode it holds the super user's password

    def start(self, timeout: float = 90) -> str:
        """Start (formatting storage on first start) unless running; return the bootstrap.
        Storage formatted for another ``auth`` mode is formatted again (its data is lost)."""
        if self.running():
            if self.formatted_auth() != self.auth:
                raise RuntimeError(
                    f"the local Kafka in {self.dir} runs with auth {self.formatted_auth()!r}, "
                    f"not {self.auth!r}: stop it first (make down)"
                )
            return self.bootstrap
        lib = ensure_jars()
        self.dir.mkdir(parents=True, exist_ok=True)
        cp = f"{lib}/*"
        fresh = not (self.data / "meta.properties").exists() or not self.props.exists()
        if fresh or self.formatted_auth() != self.auth:
            shutil.rmtree(self.data, ignore_errors=True)
            self._write_config()
            scram = (
                ["--add-scram", f"{SCRAM}=[name={ADMIN_USER},password={self.admin_password}]"]
                if self.auth == "scram"
                else []
            )
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
                    *scram,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            self.auth_file.write_text(self.auth)
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
        return asyncio.run(kafka_reachable(self.admin_settings()))

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
