"""Dispatch as a real process (``python -m services.dispatch``: uvicorn, as the image runs it) on
a testbed, with the sample registry and cases of grid WC-YY-OJY-G01 waiting, for the tests that
call its HTTP API from outside (curl, schemathesis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg

from cli.client import Publisher
from cli.registry import publish_registry
from devstack.stack import ready, spawn_service
from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.dispatch.support import case_opened
from tests.samples import sample_registry


@dataclass(frozen=True)
class Running:
    url: str
    case_ids: list[str]


async def _count(conn: asyncpg.Connection, sql: str) -> bool:
    found: bool = await conn.fetchval(sql)
    return found


@asynccontextmanager
async def dispatch_process(bed: Testbed, logs: Path, cases: int) -> AsyncIterator[Running]:
    """``cases`` cases opened in turn (as intake publishes them for reports of the grid), each
    dispatched before the next, so the first goes to h-0001."""
    env = bed.process_env("dispatch", WANGGE_LOG_LEVEL="WARNING")
    url = f"http://127.0.0.1:{env['WANGGE_HTTP_PORT']}"
    log = logs / "dispatch.log"
    proc = spawn_service("dispatch", env, log)
    conn = await asyncpg.connect(bed.admin_dsn)
    try:
        await eventually(
            partial(asyncio.to_thread, ready, url), timeout=90, interval=0.3, what=f"ready ({log})"
        )
        await publish_registry(bed.settings(), sample_registry())
        sql = "SELECT count(*) = 1 FROM dispatch.handlers WHERE id = 'h-0030'"
        await eventually(partial(_count, conn, sql), timeout=30, what="the registry")
        ids = []
        async with Publisher(bed.settings(), source="test/intake") as pub:
            for n in range(1, cases + 1):
                case = case_opened()
                await pub.send("cases.opened", case, key=case.case_id, subject=case.case_id)
                sql = f"SELECT count(*) = {n} FROM dispatch.cases"
                await eventually(partial(_count, conn, sql), timeout=30, what=f"case {n}")
                ids.append(case.case_id)
        yield Running(url, ids)
    finally:
        await conn.close()
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
