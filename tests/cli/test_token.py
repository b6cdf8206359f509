"""``wangge token``: the tokens it prints are the ones the services accept; without a key it
says so in one line (exit 2) and prints no token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.runtime.identity import Role, TokenVerifier
from shared.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-test-secret-long-enough-0123456789abcdef"


def wangge(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("WANGGE_AUTH_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "token", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_an_issued_token_is_accepted_by_a_service_with_the_same_secret() -> None:
    out = wangge(
        "issue",
        "--role",
        "grid_worker",
        "--unit",
        "WC-YY-OJY-G01",
        "--handler",
        "h-0001",
        WANGGE_AUTH_JWT_SECRET=SECRET,
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    p = await TokenVerifier(Settings(WANGGE_AUTH_JWT_SECRET=SECRET)).verify(token)
    assert (p.role, p.unit, p.handler_id) == (Role.GRID_WORKER, "WC-YY-OJY-G01", "h-0001")


def test_without_a_secret_or_with_a_bad_role_no_token_is_printed() -> None:
    out = wangge("issue", "--role", "grid_worker", "--unit", "WC-YY-OJY-G01")
    assert out.returncode == 2 and out.stdout == ""
    assert "WANGGE_AUTH_JWT_SECRET" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = wangge("issue", "--role", "mayor", "--unit", "WC", WANGGE_AUTH_JWT_SECRET=SECRET)
    assert out.returncode == 2 and out.stdout == "" and "role must be one of" in out.stderr


def test_a_fresh_secret_is_long_enough_for_the_services() -> None:
    out = wangge("secret")
    secret = out.stdout.strip()
    assert out.returncode == 0 and len(secret) >= 32
    assert TokenVerifier(Settings(WANGGE_AUTH_JWT_SECRET=secret)).configured
