"""Each service's copy of the unit registry: applying ``registry.units`` records and reading it."""

from __future__ import annotations

from pydantic import RootModel

from shared.contract.events import Department, Handler, RegistryRecord, Unit
from shared.runtime.consumer import Meta
from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork

LEVELS = ("district", "street", "community", "grid", "building")


class RegistryMessage(RootModel[RegistryRecord]):
    """One ``registry.units`` value: a unit, a department or a handler (``kind`` says which)."""


async def apply_registry_message(uow: UnitOfWork, msg: RegistryMessage | None, meta: Meta) -> None:
    """Upsert the record; a tombstone (null value) removes whatever has the message's key."""
    conn = uow.conn
    if msg is None:
        if meta.key:
            for table, col in (("units", "code"), ("departments", "code"), ("handlers", "id")):
                await conn.execute(f"DELETE FROM {table} WHERE {col} = $1", meta.key)
        return
    await upsert_record(conn, msg.root)


async def upsert_record(conn: Connection, r: Unit | Department | Handler) -> None:
    if isinstance(r, Unit):
        await conn.execute(
            """INSERT INTO units (code, name, level, parent, area, aliases, lon, lat, served_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
                 parent = EXCLUDED.parent, area = EXCLUDED.area, aliases = EXCLUDED.aliases,
                 lon = EXCLUDED.lon, lat = EXCLUDED.lat, served_by = EXCLUDED.served_by""",
            r.code,
            r.name,
            r.level,
            r.parent,
            [list(p) for p in r.area] if r.area else None,
            r.aliases,
            r.lon,
            r.lat,
            r.served_by,
        )
    elif isinstance(r, Department):
        await conn.execute(
            """INSERT INTO departments (code, name, parent, categories) VALUES ($1, $2, $3, $4)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, parent = EXCLUDED.parent,
                 categories = EXCLUDED.categories""",
            r.code,
            r.name,
            r.parent,
            r.categories,
        )
    else:
        await conn.execute(
            """INSERT INTO handlers (id, name, unit, role, on_duty) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, unit = EXCLUDED.unit,
                 role = EXCLUDED.role, on_duty = EXCLUDED.on_duty""",
            r.id,
            r.name,
            r.unit,
            r.role,
            r.on_duty,
        )


async def lineage(conn: Connection, code: str) -> dict[str, str]:
    """``{level: code}`` for the unit and all its ancestors (empty when the unit is unknown)."""
    rows = await conn.fetch(
        """WITH RECURSIVE up(code, level, parent, depth) AS (
               SELECT code, level, parent, 0 FROM units WHERE code = $1
               UNION ALL
               SELECT u.code, u.level, u.parent, up.depth + 1
               FROM units u JOIN up ON u.code = up.parent WHERE up.depth < 8)
           SELECT code, level FROM up""",
        code,
    )
    return {r["level"]: r["code"] for r in rows}


async def served_lineage(conn: Connection, code: str) -> dict[str, str]:
    """``{level: code}`` of the chain that serves the unit (插花地): its lineage, except that above
    the finest building or grid of it served by another community (``served_by``) come that
    community, its street and district instead of its own (empty when the unit is unknown)."""
    rows = await conn.fetch(
        """WITH RECURSIVE up(code, level, parent, served_by, depth) AS (
               SELECT code, level, parent, served_by, 0 FROM units WHERE code = $1
               UNION ALL
               SELECT u.code, u.level, u.parent, u.served_by, up.depth + 1
               FROM units u JOIN up ON u.code = up.parent WHERE up.depth < 8)
           SELECT up.code, up.level, up.served_by, s.level AS serving_level
           FROM up LEFT JOIN units s ON s.code = up.served_by ORDER BY up.depth""",
        code,
    )
    own = {r["level"]: r["code"] for r in rows}
    chain: dict[str, str] = {}
    for r in rows:
        chain.setdefault(r["level"], r["code"])
        if r["level"] not in ("building", "grid") or r["serving_level"] != "community":
            continue
        if r["served_by"] != own.get("community"):
            return {**(await lineage(conn, r["served_by"])), **chain}
        break  # served by its own community
    return own


async def unit_names(conn: Connection, codes: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT code, name FROM units WHERE code = ANY($1::text[]) "
        "UNION ALL SELECT code, name FROM departments WHERE code = ANY($1::text[])",
        codes,
    )
    return {r["code"]: r["name"] for r in rows}


async def reach_codes(conn: Connection, code: str) -> set[str]:
    """The codes whose holders reach ``code``: the unit and its ancestors, or for a department,
    the department, its parent and the parent's ancestors (``shared.runtime.identity.in_scope``
    checks a caller's unit against them). For a unit served by another community (插花地) the
    ancestors are the serving chain's (``served_lineage``): they handle its cases."""
    codes = set((await served_lineage(conn, code)).values())
    if not codes:
        parent = await conn.fetchval("SELECT parent FROM departments WHERE code = $1", code)
        if parent is not None:
            codes = {code, *(await lineage(conn, parent)).values()}
    return codes
