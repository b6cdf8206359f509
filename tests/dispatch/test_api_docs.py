"""The handler API's examples in docs/dispatch.md run as written: their shell blocks, with curl
and jq, against dispatch as a real process (uvicorn, as the image runs it), two cases waiting in
grid WC-YY-OJY-G01 as the section says."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from cli.client import Publisher
from cli.registry import publish_registry
from devstack.stack import ready, spawn_service
from devstack.testbed import Testbed, auth_secret_for_tests
from devstack.wait import eventually
from tests.dispatch.support import case_opened
from tests.samples import sample_registry

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Handler API (HTTP)"


def example_blocks() -> list[str]:
    text = (ROOT / "docs" / "dispatch.md").read_text("utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```bash\n(.*?)```", text[start:end], re.S)


def run_examples(url: str) -> subprocess.CompletedProcess[str]:
    script = "set -euo pipefail\n" + "\n".join(example_blocks())
    env = {
        **os.environ,
        "DISPATCH_URL": url,
        "WANGGE_AUTH_JWT_SECRET": auth_secret_for_tests(),
    }
    return subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


async def count(conn: asyncpg.Connection, sql: str) -> int:
    n: int = await conn.fetchval(sql)
    return n


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
async def test_the_examples_work_as_written(bed: Testbed, tmp_path: Path) -> None:
    assert len(example_blocks()) == 4
    env = bed.process_env("dispatch", WANGGE_LOG_LEVEL="WARNING")
    url = f"http://127.0.0.1:{env['WANGGE_HTTP_PORT']}"
    log = tmp_path / "dispatch.log"
    proc = spawn_service("dispatch", env, log)
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        await eventually(
            partial(asyncio.to_thread, ready, url),
            timeout=90,
            interval=0.3,
            what=f"dispatch ({log})",
        )
        await publish_registry(bed.settings(), sample_registry())
        await eventually(
            partial(count, conn, "SELECT count(*) FROM dispatch.handlers WHERE id = 'h-0030'"),
            timeout=30,
            what="the registry",
        )
        async with Publisher(bed.settings(), source="test/intake") as pub:
            for n in (1, 2):  # what intake publishes for two reports of the grid, in turn
                case = case_opened()
                await pub.send("cases.opened", case, key=case.case_id, subject=case.case_id)
                sql = f"SELECT count(*) = {n} FROM dispatch.cases"
                await eventually(partial(count, conn, sql), timeout=30, what=f"case {n}")
        result = await asyncio.to_thread(run_examples, url)
    finally:
        await conn.close()
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        '"total": 2',
        '"assigned_to_me": true',
        '"actions": [\n    "accept",',
        '"duplicate": true',
        '"field": "body.note"',
        '"state": "resolved"',
        '"detail": "accept is not allowed: the case is resolved"',
        '"handler_id": "command_centre.WC"',
        '"unit": "WC-YY-OJY-G02"',
        "404",
    ):
        assert expected in out, (expected, out)
