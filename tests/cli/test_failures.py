"""The CLI as an operator meets it, run as a command: an unreachable broker or database is one
line on stderr and exit code 1; a bad ``--period`` or topic name is refused before anything is
contacted (a listener on the configured addresses sees no connection)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cli.failures import database_address, explain
from devstack.infra import Infra
from devstack.paths import free_port
from shared.runtime.db import with_credentials
from shared.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def wangge(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env={**os.environ, "WANGGE_TOPIC_PREFIX": "cli-failures.", "COLUMNS": "400", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [["ops", "topics", "--check"], ["ops", "lag"], ["dlq", "list", "reports.submitted"]],
)
def test_an_unreachable_broker_is_one_line_and_exit_1(args: list[str]) -> None:
    port = free_port()  # nothing listens there
    result = wangge(*args, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    assert result.returncode == 1, result.stdout + result.stderr
    line = _one_line(result)
    assert line.startswith(f"wangge: cannot reach Kafka at 127.0.0.1:{port}"), line
    assert "KAFKA_BOOTSTRAP_SERVERS" in line


def test_an_unknown_broker_host_is_one_line_and_exit_1() -> None:
    result = wangge("ops", "topics", "--check", KAFKA_BOOTSTRAP_SERVERS="nosuchhost.invalid:9092")
    assert result.returncode == 1
    assert "cannot reach Kafka at nosuchhost.invalid:9092" in _one_line(result)


def test_an_unreachable_database_is_one_line_and_exit_1(infra: Infra) -> None:
    port = free_port()
    refused = wangge(
        "case", "show", "c-1", DATABASE_URL=f"postgresql://ops:s3cret@127.0.0.1:{port}/wangge"
    )
    assert refused.returncode == 1
    line = _one_line(refused)
    assert line == (
        f"wangge: cannot connect to PostgreSQL at 127.0.0.1:{port}/wangge (DATABASE_URL): "
        "connection refused"
    )
    wrong = wangge(
        "report",
        "show",
        "--source",
        "app",
        "r-1",
        DATABASE_URL=with_credentials(
            infra.admin_dsn, urlsplit(infra.admin_dsn).username or "", "not-the-password"
        ),
    )
    assert wrong.returncode == 1
    line = _one_line(wrong)
    assert "cannot connect to PostgreSQL" in line and "password authentication failed" in line
    assert "not-the-password" not in wrong.stderr + wrong.stdout


@pytest.fixture
def listener() -> Iterator[tuple[int, list[object]]]:
    """A TCP listener that records every connection made to it."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except TimeoutError:
                continue
            accepted.append(addr)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    t.join(5)
    srv.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["metrics", "g-1", "--period", "2026-13"], "month must be in 1..12"),
        (["metrics", "g-1", "--period", "last month"], "use 2026-11 (month)"),
        (["dlq", "list", "reports.submited"], "is not a topic with a dead-letter topic"),
        (["dlq", "replay", "reports.submitted.dlq"], "give the original topic"),
    ],
)
def test_bad_periods_and_topics_are_refused_before_any_network_call(
    listener: tuple[int, list[object]], args: list[str], message: str
) -> None:
    port, accepted = listener
    here = f"127.0.0.1:{port}"
    url = ["--url", f"http://{here}"] if args[0] == "metrics" else []
    result = wangge(
        *args,
        *url,
        KAFKA_BOOTSTRAP_SERVERS=here,
        DATABASE_URL=f"postgresql://ops:x@{here}/wangge",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert accepted == []


def test_version() -> None:
    result = wangge("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == "wangge 0.1.0"


def test_explain_leaves_other_errors_alone_and_hides_credentials() -> None:
    s = Settings(DATABASE_URL="postgresql://u:pw@db.example:6543/gov")
    assert explain(ValueError("a bug"), s) is None
    assert explain(ConnectionRefusedError(111, "refused"), s) is None  # not from asyncpg
    assert database_address(s.database_url.get_secret_value()) == "db.example:6543/gov"
