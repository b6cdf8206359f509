"""The image's entrypoints run as plain commands: each per-service CMD of deploy/Dockerfile
starts, becomes ready, answers ``wangge ops status``, and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from cli.ops import gather_status
from devstack.paths import free_port
from devstack.testbed import Testbed, pii_key_for_tests
from devstack.wait import eventually
from tests.ops.test_deploy_files import dockerfile_commands

ROOT = Path(__file__).resolve().parents[2]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Run a Dockerfile CMD as a plain command (``python`` is this interpreter)."""
    assert cmd[0] == "python"
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, *cmd[1:]],
            cwd=log_path.parent,  # not the repository: the image runs from /app
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_dockerfile_commands_start_serve_and_stop(bed: Testbed) -> None:
    s = bed.settings()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    logs = Path(tempfile.mkdtemp(prefix="wangge-entrypoints-"))
    try:
        for svc, cmd in dockerfile_commands().items():
            port = free_port()
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
                "DATABASE_URL": bed.service_dsns[svc],
                "WANGGE_TOPIC_PREFIX": s.topic_prefix,
                "WANGGE_PII_KEY": pii_key_for_tests(),
                "WANGGE_HTTP_HOST": "127.0.0.1",
                "WANGGE_HTTP_PORT": str(port),
            }
            procs[svc] = _start(cmd, env, logs / f"{svc}.log")
            urls[svc] = f"http://127.0.0.1:{port}"
        for svc, url in urls.items():

            async def ready(url: str = url) -> bool:
                return await asyncio.to_thread(_ready, url)

            await eventually(ready, timeout=60, interval=0.2, what=f"{svc} ready ({logs})")

        statuses, dlq = await gather_status(s, urls)
        assert [st.service for st in statuses] == ["intake", "dispatch", "feedback"]
        for st in statuses:
            assert st.state == "ready", st
            assert st.checks == {"started": True, "database": True, "kafka": True}
            assert st.outbox_backlog == 0 and st.dead_letters == 0
            assert st.lag is not None and st.lag >= 0
        assert dlq and set(dlq.values()) == {0}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {svc: await asyncio.to_thread(proc.wait, 45) for svc, proc in procs.items()}
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -SIGTERM).
    for svc, code in codes.items():
        assert code in (0, -signal.SIGTERM), f"{svc} exit code {code}; logs in {logs}"
        log_text = (logs / f"{svc}.log").read_text()
        assert "Application shutdown complete." in log_text, f"{svc} did not shut down cleanly"
