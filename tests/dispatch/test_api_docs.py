"""The handler API's examples in docs/dispatch.md run as written: their shell blocks, with curl
and jq, against dispatch as a real process (uvicorn, as the image runs it), two cases waiting in
grid WC-YY-OJY-G01 as the section says."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.testbed import Testbed, auth_secret_for_tests
from tests.dispatch.process import dispatch_process

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


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
async def test_the_examples_work_as_written(bed: Testbed, tmp_path: Path) -> None:
    assert len(example_blocks()) == 4
    async with dispatch_process(bed, tmp_path, cases=2) as dispatch:
        result = await asyncio.to_thread(run_examples, dispatch.url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for expected in (
        '"total": 2',
        '"assigned_to_me": true',
        '"actions": [\n    "accept",',
        '"duplicate": true',
        '"field": "body.note"',
        '"state": "verifying"',
        '"detail": "accept is not allowed in state verifying (the case is already accepted)"',
        '"handler_id": "h-0010"',
        '"state": "resolved"',
        '"handler_id": "command_centre.WC"',
        '"unit": "WC-YY-OJY-G02"',
        "404",
    ):
        assert expected in out, (expected, out)
