"""PostgreSQL plumbing: pools, per-service roles and schemas, and versioned SQL migrations.

Migrations are plain SQL files named ``NNN_description.sql`` in a service's ``migrations/`` folder,
applied in order at start inside one transaction each, under an advisory lock so that several
replicas starting together apply them once. A short module instead of a migration library: the
services own small schemas, SQL is the language the DBA reviews, and nothing else is needed
(docs/architecture.md says more).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

# A connection as code receives it: asyncpg's own, or the proxy a pool lends (the same methods).
# Only the type checker sees the union (asyncpg's classes are not generic at run time).
if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
else:
    Connection = asyncpg.Connection

KIT_MIGRATIONS = Path(__file__).parents[1] / "migrations"  # shared/migrations
_MIGRATION_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

# Transient failures worth waiting for; anything else is a permanent error for that message.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def ident(name: str) -> str:
    if not _IDENT_RE.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


async def _init_connection(conn: Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, schema: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first on the search path."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        server_settings={"search_path": f"{ident(schema)},public", "application_name": schema},
        command_timeout=60,
    )
    assert pool is not None
    return pool


async def connect(dsn: str, schema: str | None = None) -> Connection:
    settings = {"search_path": f"{ident(schema)},public"} if schema else {}
    conn = await asyncpg.connect(dsn, server_settings=settings)
    await _init_connection(conn)
    return conn


def _migration_files(folder: Path) -> list[tuple[int, Path]]:
    out = []
    for path in sorted(folder.glob("*.sql")):
        m = _MIGRATION_RE.match(path.name)
        if not m:
            raise ValueError(f"migration file name must look like 001_name.sql: {path}")
        out.append((int(m.group(1)), path))
    return out


async def migrate(conn: Connection, schema: str, folders: dict[str, Path]) -> list[str]:
    """Apply pending migrations of each source folder to ``schema``; returns the files applied."""
    schema = ident(schema)
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                    source text NOT NULL, version int NOT NULL, name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (source, version))"""
        )
        done = {
            (r["source"], r["version"])
            for r in await conn.fetch(f"SELECT source, version FROM {schema}.schema_migrations")
        }
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        for source, folder in folders.items():
            for version, path in _migration_files(folder):
                if (source, version) in done:
                    continue
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (source, version, name) "
                    "VALUES ($1, $2, $3)",
                    source,
                    version,
                    path.name,
                )
                applied.append(f"{source}/{path.name}")
    return applied


def with_credentials(dsn: str, user: str, password: str) -> str:
    """The same DSN with another user and password."""
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/") or "postgres"


async def provision_service(admin_dsn: str, service: str, password: str) -> str:
    """Create the service's role and schema (idempotent); return the service's own DSN.

    The role ``wangge_<service>`` owns schema ``<service>`` and has no rights on any other schema.
    """
    schema = ident(service)
    role = f"wangge_{schema}"
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        quoted_pw = await conn.fetchval("SELECT quote_literal($1)", password)
        try:
            if not exists:
                await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD {quoted_pw}")
            else:
                await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD {quoted_pw}")
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # another process created it at the same moment
        db = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {role}')
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role}")
        await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {role}")
        await conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")
    finally:
        await conn.close()
    return with_credentials(admin_dsn, role, password)
