"""``wangge metrics`` against feedback as a process: with the signing secret it reads the
figures as the unit's command centre; with a token of another unit it says 403 in one line;
with neither it says what it needs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from devstack.testbed import auth_secret_for_tests
from tests.http.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]


def wangge(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WANGGE_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "metrics", *args, "--url", stack.urls["feedback"]],
        cwd=ROOT,
        env={**base, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_wangge_metrics_reads_the_figures_with_a_token(stack: Stack) -> None:
    run = asyncio.to_thread
    ok = await run(
        wangge,
        stack,
        "WC-YY",
        "--period",
        "2026-11",
        "--ranking",
        WANGGE_AUTH_JWT_SECRET=auth_secret_for_tests(),
    )
    assert ok.returncode == 0, ok.stderr
    assert "杨园街道" in ok.stdout and "满意率" in ok.stdout
    foreign = stack.token("street_staff", "WC-ZHL", "h-x")
    refused = await run(wangge, stack, "WC-YY", "--period", "2026-11", WANGGE_TOKEN=foreign)
    assert refused.returncode == 1 and "403" in refused.stderr, refused.stderr
    bare = await run(wangge, stack, "WC-YY", "--period", "2026-11")
    assert bare.returncode == 2 and "WANGGE_TOKEN" in bare.stderr
