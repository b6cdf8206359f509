"""``wangge pii``: the keys of personal data at rest (docs/operations.md, "Keys").

- ``wangge pii new-key``: a fresh 32-byte key for ``WANGGE_PII_KEY`` (or the pseudonym key).
- ``wangge pii pseudonym-key``: the pseudonym key in use, to pin in ``WANGGE_PII_PSEUDONYM_KEY``
  before the first rotation (reporter_ref stays the same when the data key changes).
- ``wangge pii legacy-key``: the key the code before key checks made of a configured string
  (read from stdin), for a deployment whose ``WANGGE_PII_KEY`` was a passphrase.
- ``wangge pii status``: the configured keys and how many values of each ``*_enc`` column of
  intake's schema each key seals.
- ``wangge pii rotate [--dry-run]``: re-encrypt every value not under the current key, in batches
  (one transaction each); values already under it are skipped, so it is resumable.

Keys come from ``WANGGE_PII_KEY``, ``WANGGE_PII_OLD_KEYS`` and ``WANGGE_PII_PSEUDONYM_KEY``; the
database from ``DATABASE_URL`` (intake's role or an admin). Keys are printed only by the commands
whose output is a key; nothing else prints or logs one.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import typer
from rich.table import Table

from cli.common import console, run, schema_connection, settings
from services.intake import store
from services.intake.privacy import (
    Pii,
    PiiKeyError,
    PiiUndecryptable,
    Seal,
    derived_pseudonym_key,
    encode_key,
    legacy_key,
    new_key,
    parse_key,
)
from shared.runtime.db import Connection

app = typer.Typer(help="Personal data keys: status, rotation, new keys.", no_args_is_help=True)

SCHEMA = "intake"


def keyring() -> Pii:
    """The keyring from the settings; a missing or malformed key: one line on stderr, exit 2."""
    try:
        return Pii.from_settings(settings())
    except PiiKeyError as exc:
        typer.echo(f"wangge: {exc}", err=True)
        raise typer.Exit(2) from None


# --- counting -----------------------------------------------------------------------------------


def label(seal: Seal, pii: Pii) -> str:
    """How ``status`` names what a value is sealed with."""
    if seal.key_id is None:
        return "legacy format, no configured key opens it"
    if not seal.known:
        return f"{seal.key_id} (not configured)"
    role = "current" if seal.key_id == pii.current.name else "old"
    return f"{seal.key_id} ({role}{', legacy format' if seal.legacy else ''})"


Counts = dict[str, Counter[str]]  # "table.column" -> label -> values


async def seal_counts(conn: Connection, pii: Pii) -> Counts:
    """Values per key of every ``*_enc`` column: format 1 under a configured key counted by its
    header in SQL; the rest (legacy format, unknown keys) read and identified here."""
    headers = [k.header for k in pii.keys.values()]
    out: Counts = {}
    for table in await store.encrypted_tables(conn, SCHEMA):
        for column in table.columns:
            counts: Counter[str] = Counter()
            by_header = await store.count_by_header(conn, table, column, headers)
            for key in pii.keys.values():
                if n := by_header.get(key.header, 0):
                    counts[label(Seal(key.name, legacy=False, known=True), pii)] += n
            if by_header.get(None):
                async with conn.transaction():
                    async for blob in store.values_without_header(conn, table, column, headers):
                        counts[label(pii.seal(blob), pii)] += 1
            out[f"{table.name}.{column}"] = counts
    return out


def counts_table(title: str, counts: Counts) -> Table:
    table = Table(title=title)
    table.add_column("column")
    table.add_column("key id")
    table.add_column("values", justify="right")
    for column, by_key in counts.items():
        if not by_key:
            table.add_row(column, "-", "0")
        for key, n in sorted(by_key.items()):
            table.add_row(column, key, str(n))
    return table


def not_current(counts: Counts, pii: Pii) -> int:
    current = label(Seal(pii.current.name, legacy=False, known=True), pii)
    return sum(n for by_key in counts.values() for key, n in by_key.items() if key != current)


# --- rotation -----------------------------------------------------------------------------------


@dataclass
class Rotation:
    rows: int = 0  # rows with at least one value re-encrypted (or to be, in a dry run)
    values: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)  # column -> values no key opens


async def rotate_values(
    conn: Connection,
    pii: Pii,
    *,
    batch: int = 500,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> Rotation:
    """Re-encrypt every ``*_enc`` value of intake's schema that is not under the current key,
    ``batch`` rows per transaction, in primary key order. Values already under the current key
    are skipped (a second run, or one after an interruption, only does what is left); a value
    no configured key opens is left as it is and counted."""
    done = Rotation()
    current = pii.current.header
    for table in await store.encrypted_tables(conn, SCHEMA):
        after: tuple[object, ...] | None = None
        while True:
            async with conn.transaction():
                rows = await store.rows_to_reencrypt(conn, table, current, after, batch)
                if not rows:
                    break
                updates, values = [], 0
                for row in rows:
                    new: list[object] = []
                    for column in table.columns:
                        blob = row[column]
                        try:
                            fresh = pii.reencrypt(blob) if blob is not None else None
                        except PiiUndecryptable:
                            where = f"{table.name}.{column}"
                            done.unreadable[where] = done.unreadable.get(where, 0) + 1
                            fresh = None
                        values += fresh is not None
                        new.append(fresh if fresh is not None else blob)
                    if new != [row[c] for c in table.columns]:
                        updates.append((*(row[k] for k in table.key), *new))
                if not dry_run:
                    await store.update_encrypted(conn, table, updates)
                after = tuple(rows[-1][k] for k in table.key)
            done.rows += len(updates)
            done.values += values
            verb = "would re-encrypt" if dry_run else "re-encrypted"
            progress(f"{table.name}: {verb} {values} values in {len(updates)} rows")
    return done


# --- commands -----------------------------------------------------------------------------------


def _keys_line(pii: Pii) -> str:
    olds = ", ".join(k.name for k in pii.old_keys) or "none"
    pseudonym = "WANGGE_PII_PSEUDONYM_KEY" if pii.pseudonym_pinned else "derived from the current"
    return (
        f"current key {pii.current.name}; old keys: {olds}; "
        f"pseudonym key {pii.pseudonym_key_id} ({pseudonym})"
    )


async def _status(pii: Pii) -> Counts:
    conn = await schema_connection(SCHEMA)
    try:
        return await seal_counts(conn, pii)
    finally:
        await conn.close()


async def _rotate(pii: Pii, batch: int, dry_run: bool) -> tuple[Counts, Rotation, Counts]:
    conn = await schema_connection(SCHEMA)
    try:
        before = await seal_counts(conn, pii)
        console.print(counts_table("before", before))
        done = await rotate_values(conn, pii, batch=batch, dry_run=dry_run, progress=console.print)
        after = await seal_counts(conn, pii)
    finally:
        await conn.close()
    return before, done, after


@app.command("new-key")
def new_key_command() -> None:
    """Print a fresh key (32 random bytes, urlsafe base64)."""
    typer.echo(new_key())


@app.command("pseudonym-key")
def pseudonym_key() -> None:
    """Print the pseudonym key in use (to pin before the first rotation).

    WANGGE_PII_PSEUDONYM_KEY if set, otherwise the one derived from WANGGE_PII_KEY: set it as
    WANGGE_PII_PSEUDONYM_KEY before the first rotation, so reporter_ref does not change."""
    s = settings()
    try:
        if s.pii_pseudonym_key is not None and s.pii_pseudonym_key.get_secret_value().strip():
            raw = parse_key(s.pii_pseudonym_key.get_secret_value(), "WANGGE_PII_PSEUDONYM_KEY")
        else:
            key = s.pii_key.get_secret_value() if s.pii_key is not None else ""
            raw = derived_pseudonym_key(parse_key(key, "WANGGE_PII_KEY"))
    except PiiKeyError as exc:
        typer.echo(f"wangge: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(encode_key(raw))


@app.command("legacy-key")
def legacy_key_command() -> None:
    """Print the key an older wangge made of its WANGGE_PII_KEY (read from stdin).

    Older versions accepted any string (a passphrase was hashed into a key). Set what this
    prints as WANGGE_PII_KEY, and as WANGGE_PII_PSEUDONYM_KEY to keep the old reporter_refs."""
    secret = sys.stdin.read().rstrip("\r\n")
    if not secret:
        typer.echo('wangge: nothing on stdin (echo "$OLD_VALUE" | wangge pii legacy-key)', err=True)
        raise typer.Exit(2)
    typer.echo(encode_key(legacy_key(secret)))


@app.command("status")
def status() -> None:
    """The configured keys, and how many values of each *_enc column each one seals."""
    pii = keyring()
    console.print(_keys_line(pii), markup=False, highlight=False)
    counts = run(_status(pii))
    console.print(counts_table("personal data at rest (schema intake)", counts))
    left = not_current(counts, pii)
    if left:
        console.print(f"{left} values not under the current key: run `wangge pii rotate`")


@app.command("rotate")
def rotate(
    batch: int = typer.Option(500, min=1, max=10_000, help="rows per transaction"),
    dry_run: bool = typer.Option(False, "--dry-run", help="decrypt and count, write nothing"),
) -> None:
    """Re-encrypt intake's personal data under the current key.

    Every value of intake's *_enc columns not under WANGGE_PII_KEY is read (with
    WANGGE_PII_OLD_KEYS) and written again under it, in batches of one transaction each.
    Resumable: values already under the current key are skipped. Exits 1 if some value no
    configured key opens."""
    pii = keyring()
    console.print(_keys_line(pii), markup=False, highlight=False)
    _, done, after = run(_rotate(pii, batch, dry_run))
    if dry_run:
        console.print(f"dry run: would re-encrypt {done.values} values in {done.rows} rows")
    else:
        console.print(counts_table("after", after))
        console.print(f"re-encrypted {done.values} values in {done.rows} rows")
    if done.unreadable:
        for column, n in done.unreadable.items():
            console.print(f"[red]{column}: {n} values no configured key opens[/red]")
        console.print(
            "add their key to WANGGE_PII_OLD_KEYS and run `wangge pii rotate` again",
            markup=False,
        )
        raise typer.Exit(1)
