"""``wangge apikey``: the Open311 api keys of upstream systems (docs/integration.md, "Open311").

- ``wangge apikey create SYSTEM [--channel hotline_12345]``: a new key for SYSTEM, printed once
  on stdout (only its SHA-256 is stored); its service requests carry the report source
  ``--channel`` (``open311`` by default).
- ``wangge apikey list``: every key's id, system, channel, creation and revocation (never a key).
- ``wangge apikey revoke KEY_ID``: the key stops working (within 10 s on every intake replica).

The database is ``DATABASE_URL`` (intake's role or an admin), whose intake schema must have been
migrated (intake started once).
"""

from __future__ import annotations

import asyncpg
import typer
from rich.table import Table

from cli.common import console, run, schema_connection
from services.intake.open311 import store
from services.intake.open311.apikeys import check_channel, check_system, new_key

app = typer.Typer(help="Open311 api keys of upstream systems.", no_args_is_help=True)

SCHEMA = "intake"
NOT_MIGRATED = (
    "wangge apikey: intake's schema has no api_keys table: start intake once (it applies its "
    "migrations), then try again"
)


def _system(value: str) -> str:
    try:
        return check_system(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _channel(value: str) -> str:
    try:
        return check_channel(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


async def _create(system: str, channel: str) -> str:
    key = new_key()
    conn = await schema_connection(SCHEMA)
    try:
        await store.insert_key(conn, key.key_id, system, channel, key.digest)
    finally:
        await conn.close()
    return key.key


@app.command("create")
def create(
    system: str = typer.Argument(..., callback=_system, help="the upstream system's name"),
    channel: str = typer.Option(
        "open311", "--channel", callback=_channel, help="the report source of its requests"
    ),
) -> None:
    """Print a new Open311 api_key for SYSTEM (shown once: keep it in the system's secrets)."""
    try:
        key = run(_create(system, channel))
    except asyncpg.UndefinedTableError:
        typer.echo(NOT_MIGRATED, err=True)
        raise typer.Exit(1) from None
    typer.echo(key)


async def _list() -> list[asyncpg.Record]:
    conn = await schema_connection(SCHEMA)
    try:
        return await store.list_keys(conn)
    finally:
        await conn.close()


@app.command("list")
def list_keys() -> None:
    """The keys: id, system, channel, created, revoked (the keys themselves are not kept)."""
    try:
        rows = run(_list())
    except asyncpg.UndefinedTableError:
        typer.echo(NOT_MIGRATED, err=True)
        raise typer.Exit(1) from None
    table = Table("key id", "system", "channel", "created", "revoked")
    for r in rows:
        revoked = r["revoked_at"].isoformat(timespec="seconds") if r["revoked_at"] else ""
        table.add_row(
            r["key_id"],
            r["system"],
            r["channel"],
            r["created_at"].isoformat(timespec="seconds"),
            revoked,
        )
    console.print(table)


async def _revoke(key_id: str) -> bool:
    conn = await schema_connection(SCHEMA)
    try:
        return await store.revoke_key(conn, key_id)
    finally:
        await conn.close()


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="the key id (wangge apikey list)")) -> None:
    """Revoke a key: its system's requests are refused (403) from then on."""
    try:
        done = run(_revoke(key_id))
    except asyncpg.UndefinedTableError:
        typer.echo(NOT_MIGRATED, err=True)
        raise typer.Exit(1) from None
    if not done:
        typer.echo(f"wangge apikey revoke: no active key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
