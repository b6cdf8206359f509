"""The simulated registry written straight into the services' copies (what the registry
consumer would apply from ``registry.units``, without the topic): the benchmarks' set-up."""

from __future__ import annotations

from devstack.testbed import Testbed
from shared.registry.store import upsert_record
from shared.runtime.db import connect
from sim.territory import Territory


async def seed_registry(
    bed: Testbed, territory: Territory, schemas: tuple[str, ...] = ("intake", "dispatch")
) -> None:
    """Write the registry straight into the copies of ``schemas`` (intake's and dispatch's)
    with the function the registry consumer applies (``shared.registry_store.upsert_record``),
    in one transaction each; intake's location index is rebuilt on its next report, as after a
    registry message."""
    from services.intake.store import bump_registry_version

    for schema in schemas:
        conn = await connect(bed.service_dsns[schema], schema)
        try:
            async with conn.transaction():
                for r in territory.records():
                    await upsert_record(conn, r)
                if schema == "intake":
                    await bump_registry_version(conn)
        finally:
            await conn.close()
