"""``make up`` / ``make down``: the whole stack as background processes on this machine.

Kafka and PostgreSQL come from ``devstack.infra`` (env, else Docker compose, else local
processes); the three services run as ``python -m services.<name>`` with their own database
roles, on free HTTP ports. ``.run/env`` gets the addresses an outside client needs.

``WANGGE_KAFKA_AUTH=scram`` (``make up KAFKA_AUTH=scram``): the local Kafka with SASL/SCRAM and
ACLs; every principal of ``shared.contract.acls`` gets its user and exactly its ACLs
(``devstack.kafka_identity``), the topics are made as ``wangge-ops``, each service logs in as
itself, and ``.run/env`` holds the operators' credentials (``KAFKA_SASL_*``: the CLI runs as
``wangge-ops``) and every upstream system's password (``WANGGE_KAFKA_PASSWORD_<PRINCIPAL>``);
``.run/kafka/users/<principal>.env`` has each principal's settings.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from functools import partial
from pathlib import Path

from devstack.infra import Infra, docker_engine_answers, resolve
from devstack.kafka_identity import AUTH_ENV, KafkaUsers, auth_mode
from devstack.kafka_local import LocalKafka
from devstack.paths import ROOT, RUN, free_port, pid_alive, read_pid
from devstack.postgres_local import LocalPostgres
from devstack.testbed import ROLE_PASSWORD, SERVICES
from devstack.wait import wait_until
from services.intake.privacy import PiiKeyError, parse_key
from shared.contract import keys as link_keys
from shared.contract.acls import OPS, PRINCIPALS, service_principal
from shared.runtime.db import provision_service
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import ensure_topics

COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def _run_dir(arg: str | None) -> Path:
    return Path(arg).resolve() if arg else RUN


def _write_env(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"export {k}='{v}'\n" for k, v in values.items()))
    path.chmod(0o600)


def read_env(path: Path) -> dict[str, str]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export ") :].split("=", 1)
                out[k] = v.strip("'")
    return out


def kafka_users(infra: Infra) -> KafkaUsers | None:
    """In ``scram`` mode, the principals' users made on the local broker with exactly their
    ACLs for this shell's ``WANGGE_TOPIC_PREFIX``; None without auth."""
    if infra.kafka is None or infra.kafka.auth == "none":
        return None
    users = KafkaUsers.load(infra.kafka)
    changes = asyncio.run(users.provision(os.environ.get("WANGGE_TOPIC_PREFIX", "")))
    folder = users.write_env_files()
    print(
        f"Kafka users: {len(users.passwords)} principals, ACLs {len(changes.created)} created, "
        f"{len(changes.deleted)} deleted; settings in {folder}"
    )
    return users


def kafka_env(users: KafkaUsers | None, bootstrap: str) -> dict[str, str]:
    """What ``.run/env`` says about Kafka: the operators' credentials and the upstream systems'
    passwords in ``scram`` mode."""
    if users is None:
        return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    upstream = {
        f"WANGGE_KAFKA_PASSWORD_{p.name.upper().replace('-', '_')}": users.passwords[p.name]
        for p in PRINCIPALS
        if p.kind not in ("service", "ops")
    }
    return {AUTH_ENV: "scram", **users.env(OPS.name), **upstream}


def infra_up(run_dir: str | None) -> int:
    rd = _run_dir(run_dir)
    try:
        infra = resolve(rd, for_tests=False, kafka_auth=auth_mode())
    except (RuntimeError, ValueError) as exc:
        print(f"infra-up: {exc}", file=sys.stderr)
        return 2
    users = kafka_users(infra)
    _write_env(
        rd / "infra.env", {**kafka_env(users, infra.bootstrap), "DATABASE_URL": infra.admin_dsn}
    )
    print(f"Kafka {infra.bootstrap}, PostgreSQL ready ({infra.kind}); env in {rd / 'infra.env'}")
    return 0


def infra_down(run_dir: str | None) -> int:
    rd = _run_dir(run_dir)
    LocalKafka(rd).stop()
    LocalPostgres(rd).stop()
    (rd / "infra.env").unlink(missing_ok=True)
    return 0


def _pii_key(rd: Path) -> str:
    if os.environ.get("WANGGE_PII_KEY"):
        return os.environ["WANGGE_PII_KEY"]
    path = rd / "pii-key"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def _auth_secret(rd: Path) -> str:
    """The signing secret of the services' bearer tokens (``WANGGE_AUTH_JWT_SECRET``): the
    environment's, else one made once per run directory."""
    if os.environ.get("WANGGE_AUTH_JWT_SECRET"):
        return os.environ["WANGGE_AUTH_JWT_SECRET"]
    path = rd / "auth-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


# The residents' links' keys (docs/feedback.md): who holds each; .run/env gets the notify key too,
# for a notifier (and the demo's residents) to open the follow-up requests with.
LINK_KEYS = {
    "WANGGE_NOTIFY_KEY": ("feedback",),
    "WANGGE_LINK_KEY": ("intake", "feedback"),
    # dispatch signs the links to a report's photo, intake checks them (shared/media/links.py)
    "WANGGE_MEDIA_LINK_KEY": ("intake", "dispatch"),
}


def _link_keys(rd: Path) -> dict[str, str]:
    """Each of ``LINK_KEYS``: the environment's (checked: ``KeyFormatError``), else one made once
    per run directory."""
    out = {}
    for var in LINK_KEYS:
        path = rd / var.removeprefix("WANGGE_").lower().replace("_", "-")
        if os.environ.get(var):
            link_keys.parse_key(os.environ[var], var)
            out[var] = os.environ[var]
            continue
        if not path.exists():
            rd.mkdir(parents=True, exist_ok=True)
            path.write_text(link_keys.new_key())
            path.chmod(0o600)
        out[var] = path.read_text().strip()
    return out


async def _prepare(kafka: Settings, admin_dsn: str) -> dict[str, str]:
    dsns = {svc: await provision_service(admin_dsn, svc, ROLE_PASSWORD) for svc in SERVICES}
    await ensure_topics(kafka)
    return dsns


def console_url(dispatch_url: str) -> str:
    """The command-centre board (``wangge token login-url`` signs in to it)."""
    return f"{dispatch_url.rstrip('/')}/console/"


def board_env(dispatch_url: str, feedback_url: str) -> dict[str, str]:
    """The board's figures: its browser reads feedback at ``feedback_url``, which lets the board's
    origin read (each setting already in the environment wins)."""
    return {"WANGGE_CONSOLE_FEEDBACK_URL": feedback_url, "WANGGE_CORS_ORIGINS": dispatch_url}


def ready(url: str) -> bool:
    """The service's /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def spawn_service(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m services.<name>`` in the background, in its own session, logging to a file."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


# The host ports compose publishes (deploy/docker-compose.yml), each configurable.
COMPOSE_PORTS = {
    "KAFKA_PORT": 9092,
    "POSTGRES_PORT": 5432,
    "INTAKE_PORT": 8081,
    "DISPATCH_PORT": 8082,
    "FEEDBACK_PORT": 8083,
}


def compose_ports() -> dict[str, int]:
    return {k: int(os.environ.get(k) or v) for k, v in COMPOSE_PORTS.items()}


def compose_command(project: str, *args: str) -> list[str]:
    return ["docker", "compose", "-f", str(COMPOSE), "-p", project, *args]


def up(run_dir: str | None, *, project: str = "wangge") -> int:
    """Start Kafka, PostgreSQL and the services: compose (project ``project``) where a Docker
    engine answers, else local processes."""
    rd = _run_dir(run_dir)
    if os.environ.get("WANGGE_PII_KEY"):  # refused now rather than by intake after 90 s
        try:
            parse_key(os.environ["WANGGE_PII_KEY"], "WANGGE_PII_KEY")
        except PiiKeyError as exc:
            print(f"make up: {exc}", file=sys.stderr)
            return 2
    try:
        kafka_auth = auth_mode()
        resident_keys = _link_keys(rd)
    except ValueError as exc:  # also a malformed key (KeyFormatError)
        print(f"make up: {exc}", file=sys.stderr)
        return 2
    if (
        kafka_auth == "none"
        and not (os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("DATABASE_URL"))
        and COMPOSE.exists()
        and docker_engine_answers()
    ):
        # the compose file reads the same WANGGE_* settings and *_PORT variables from this
        # environment (docs/operations.md)
        signing = {"WANGGE_AUTH_JWT_SECRET": _auth_secret(rd)}  # compose gives it to each service
        ports = compose_ports()
        board = board_env(
            f"http://127.0.0.1:{ports['DISPATCH_PORT']}",
            f"http://127.0.0.1:{ports['FEEDBACK_PORT']}",
        )
        subprocess.run(
            compose_command(project, "up", "-d", "--wait"),
            check=True,
            env={**board, **os.environ, **resident_keys, **signing},
        )
        _write_env(
            rd / "env",
            {
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['KAFKA_PORT']}",
                "DATABASE_URL": (
                    f"postgresql://postgres:postgres@127.0.0.1:{ports['POSTGRES_PORT']}/wangge"
                ),
                **{
                    f"{s.upper()}_URL": f"http://127.0.0.1:{ports[f'{s.upper()}_PORT']}"
                    for s in SERVICES
                },
                "CONSOLE_URL": console_url(f"http://127.0.0.1:{ports['DISPATCH_PORT']}"),
                "WANGGE_NOTIFY_KEY": resident_keys["WANGGE_NOTIFY_KEY"],
                **signing,  # for wangge token issue
            },
        )
        print(f"stack up (docker compose); env in {rd / 'env'}")
        return 0
    try:
        infra = resolve(rd, for_tests=False, kafka_auth=kafka_auth)
    except RuntimeError as exc:  # e.g. the local Kafka runs in the other auth mode
        print(f"make up: {exc}", file=sys.stderr)
        return 2
    users = kafka_users(infra)
    topics_as = (
        users.settings(OPS.name) if users else Settings(KAFKA_BOOTSTRAP_SERVERS=infra.bootstrap)
    )
    dsns = asyncio.run(_prepare(topics_as, infra.admin_dsn))
    env_out = {
        **kafka_env(users, infra.bootstrap),
        "DATABASE_URL": infra.admin_dsn,
        "WANGGE_AUTH_JWT_SECRET": _auth_secret(rd),  # for wangge token issue
        "WANGGE_NOTIFY_KEY": resident_keys["WANGGE_NOTIFY_KEY"],  # for a notifier
    }
    logs = rd / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    previous = read_env(rd / "env")
    running = set()
    for svc in SERVICES:
        url_key = f"{svc.upper()}_URL"
        if read_pid(rd / f"{svc}.pid") and previous.get(url_key) and ready(previous[url_key]):
            env_out[url_key] = previous[url_key]
            running.add(svc)
        else:
            env_out[url_key] = f"http://127.0.0.1:{free_port()}"
    board = board_env(env_out["DISPATCH_URL"], env_out["FEEDBACK_URL"])
    # where the pages fetch a report's photo from (dispatch redirects there, signed)
    board["WANGGE_PUBLIC_INTAKE_URL"] = env_out["INTAKE_URL"]
    for svc in SERVICES:
        if svc in running:
            continue
        pid_file = rd / f"{svc}.pid"
        url_key = f"{svc.upper()}_URL"
        port = int(env_out[url_key].rsplit(":", 1)[1])
        env = {
            **board,
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
            **(users.env(service_principal(svc).name) if users else {}),
            "DATABASE_URL": dsns[svc],
            "WANGGE_HTTP_PORT": str(port),
            "WANGGE_AUTH_JWT_SECRET": env_out["WANGGE_AUTH_JWT_SECRET"],
            **({"WANGGE_PII_KEY": _pii_key(rd)} if svc == "intake" else {}),  # only intake reads it
            **{k: v for k, v in resident_keys.items() if svc in LINK_KEYS[k]},
        }
        proc = spawn_service(svc, env, logs / f"{svc}.log")
        pid_file.write_text(str(proc.pid))
    for svc in SERVICES:
        url = env_out[f"{svc.upper()}_URL"]
        wait_until(
            partial(ready, url),
            timeout=90,
            interval=0.3,
            what=f"{svc} /readyz (log: {logs / f'{svc}.log'})",
        )
    env_out["CONSOLE_URL"] = console_url(env_out["DISPATCH_URL"])
    _write_env(rd / "env", env_out)
    auth = " with SASL/SCRAM and ACLs" if users else ""
    print(
        f"stack up ({infra.kind} Kafka{auth} and PostgreSQL, three services); env in {rd / 'env'}"
    )
    return 0


def _dead(pid: int) -> bool:
    return not pid_alive(pid)


def stop_services(rd: Path) -> None:
    pids = {svc: read_pid(rd / f"{svc}.pid") for svc in SERVICES}
    for pid in pids.values():
        if pid:
            os.kill(pid, signal.SIGTERM)
    for svc, pid in pids.items():
        if pid:
            try:
                wait_until(partial(_dead, pid), timeout=40, what=f"{svc} to stop")
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
        (rd / f"{svc}.pid").unlink(missing_ok=True)


def down(run_dir: str | None, *, project: str = "wangge", volumes: bool = False) -> int:
    """Stop what ``up`` started; ``volumes`` also drops compose's PostgreSQL volume."""
    rd = _run_dir(run_dir)
    if COMPOSE.exists() and docker_engine_answers() and not (rd / "kafka").exists():
        args = ("down", "--volumes") if volumes else ("down",)
        subprocess.run(compose_command(project, *args), check=False)
    stop_services(rd)
    infra_down(run_dir)
    (rd / "env").unlink(missing_ok=True)
    print("stack down")
    return 0


def status(run_dir: str | None) -> int:
    rd = _run_dir(run_dir)
    env = read_env(rd / "env")
    print(f"kafka:    {'running' if LocalKafka(rd).running() else 'stopped'}")
    print(f"postgres: {'running' if LocalPostgres(rd).running() else 'stopped'}")
    for svc in SERVICES:
        url = env.get(f"{svc.upper()}_URL", "")
        state = (
            "ready"
            if url and ready(url)
            else ("running" if read_pid(rd / f"{svc}.pid") else "stopped")
        )
        print(f"{svc:9} {state:8} {url}")
    return 0


COMMANDS = {
    "infra-up": infra_up,
    "infra-down": infra_down,
    "up": up,
    "down": down,
    "status": status,
}
