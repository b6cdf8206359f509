"""The three services as real processes (uvicorn, as the image runs them) on one testbed, for
the tests that call their HTTP APIs as an outside client does: the OpenAPI fuzzing and the
access matrix. The sample city's registry is loaded; wait_for_registry says when each service
has read it."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import asyncpg
import pytest

from cli.registry import publish_registry
from devstack.infra import Infra
from devstack.stack import SERVICES, ready, spawn_service
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from devstack.wait import eventually
from tests.samples import sample_registry


@dataclass
class Stack:
    bed: Testbed
    urls: dict[str, str]
    logs: dict[str, Path]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def token(self, role: str, unit: str | None = None, handler_id: str | None = None) -> str:
        return self.bed.token(role, unit, handler_id)


async def _wait_registry(bed: Testbed, last: str = "h-0030") -> None:
    """Until every service's schema holds the sample registry's last record."""
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        for name in SERVICES:
            await eventually(
                partial(conn.fetchval, f"SELECT 1 FROM {name}.handlers WHERE id = $1", last),
                timeout=30,
                what=f"{name} to read the registry",
            )
    finally:
        await conn.close()


@pytest.fixture(scope="package")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    bed = await create_testbed(infra.bootstrap, infra.admin_dsn)
    logs_dir = tmp_path_factory.mktemp("http-logs")
    st = Stack(bed, {}, {})
    try:
        envs = {name: bed.process_env(name, WANGGE_LOG_LEVEL="WARNING") for name in SERVICES}
        for name, env in envs.items():
            st.urls[name] = f"http://127.0.0.1:{env['WANGGE_HTTP_PORT']}"
        # the board (dispatch's page) reads feedback's figures from the browser
        envs["dispatch"]["WANGGE_CONSOLE_FEEDBACK_URL"] = st.urls["feedback"]
        envs["feedback"]["WANGGE_CORS_ORIGINS"] = st.urls["dispatch"]
        # a report's photo: dispatch sends the page to intake with a signed link
        envs["dispatch"]["WANGGE_PUBLIC_INTAKE_URL"] = st.urls["intake"]
        for name, env in envs.items():
            st.logs[name] = logs_dir / f"{name}.log"
            st.procs.append(spawn_service(name, env, st.logs[name]))
        for name, url in st.urls.items():
            await eventually(
                partial(asyncio.to_thread, ready, url),
                timeout=90,
                interval=0.3,
                what=f"{name} ready (log {st.logs[name]})",
            )
        await publish_registry(bed.settings(), sample_registry())
        await _wait_registry(bed)
        yield st
    finally:
        for proc in st.procs:
            proc.terminate()
        for proc in st.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        await destroy_testbed(bed, infra.admin_dsn)
