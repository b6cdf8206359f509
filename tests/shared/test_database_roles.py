"""Each service connects with its own role, limited to its own schema."""

from __future__ import annotations

import asyncpg
import pytest

from devstack.testbed import Testbed


async def test_roles_see_only_their_own_schema(bed: Testbed) -> None:
    intake = await bed.start("intake")
    await bed.start("dispatch")
    conn = await asyncpg.connect(bed.service_dsns["intake"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM intake.reports") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM dispatch.cases")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (x int)")
    finally:
        await conn.close()
    assert intake.dsn.startswith("postgresql://wangge_intake:")


async def test_migrations_apply_once_and_are_recorded(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    await bed.stop(svc)
    again = await bed.start("feedback")  # a restart applies nothing twice
    rows = await again.pool.fetch("SELECT source, version FROM schema_migrations")
    assert len(rows) == len({(r["source"], r["version"]) for r in rows})
    assert {r["source"] for r in rows} == {"shared", "feedback"}
