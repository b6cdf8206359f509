"""Many rows in one statement: each column bound as one array parameter and ``unnest``-ed.

``executemany`` pipelines one INSERT or UPDATE per row: PostgreSQL binds and executes each (about
0.1 ms a row on a loaded 2-core machine). One ``INSERT ... SELECT FROM unnest(...)`` or
``UPDATE ... FROM unnest(...)`` binds once and runs one plan over the whole set (docs/
performance.md, "Sweeps in one statement"). Columns are given with their SQL types, since
arrays need them: ``("respond_by", "timestamptz")``. Two types are passed as text and cast in
SQL, because asyncpg would read their Python values as dimensions of the array: ``jsonb`` (and
``json``) values are sent as JSON text, array columns (``text[]``) as a JSON array each.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson

from shared.runtime.db import Connection, ident

Column = tuple[str, str]  # (name, SQL type)


def _as_text(sql_type: str) -> bool:
    return sql_type in ("json", "jsonb") or sql_type.endswith("[]")


def _param(sql_type: str, i: int) -> str:
    return f"${i}::text[]" if _as_text(sql_type) else f"${i}::{sql_type}[]"


def _value(sql_type: str, name: str) -> str:
    """The unnested column ``v.<name>`` as a value of ``sql_type``."""
    if sql_type in ("json", "jsonb"):
        return f"v.{name}::{sql_type}"
    if sql_type.endswith("[]"):
        element = sql_type[:-2]
        return (
            f"CASE WHEN v.{name} IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text("
            f"v.{name}::jsonb))::{element}[] END"
        )
    return f"v.{name}"


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(list(value) if isinstance(value, tuple) else value).decode()


def _arrays(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """One list per column (the rows transposed), JSON text where the type needs it."""
    out = [list(values) for values in zip(*rows, strict=True)]
    for i, (_, sql_type) in enumerate(columns):
        if _as_text(sql_type):
            out[i] = [_json(v) for v in out[i]]
    return out


@lru_cache(maxsize=256)
def insert_sql(table: str, columns: tuple[Column, ...]) -> str:
    names = [ident(n) for n, _ in columns]
    params = ", ".join(_param(t, i) for i, (_, t) in enumerate(columns, start=1))
    values = ", ".join(_value(t, n) for n, t in columns)
    return (
        f"INSERT INTO {ident(table)} ({', '.join(names)}) SELECT {values} "
        f"FROM unnest({params}) WITH ORDINALITY AS v({', '.join(names)}, ord_) ORDER BY v.ord_"
    )


async def insert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    then: str | None = None,
) -> None:
    """``rows`` (values in ``columns``' order) into ``table`` with one statement, inserted in
    their order (a serial key follows it, as the outbox's relay order needs). ``then``: a
    SELECT run by the same statement after the insert (a round trip saved)."""
    if not rows:
        return
    sql = insert_sql(table, tuple(columns))
    if then is not None:
        sql = f"WITH inserted AS ({sql}) {then}"
    await conn.execute(sql, *_arrays(columns, rows))


@lru_cache(maxsize=256)
def update_sql(table: str, key: Column, columns: tuple[Column, ...], touch: str | None) -> str:
    every = (key, *columns)
    names = [ident(n) for n, _ in every]
    params = ", ".join(_param(t, i) for i, (_, t) in enumerate(every, start=1))
    sets = [f"{ident(n)} = {_value(t, n)}" for n, t in columns]
    if touch is not None:
        sets.append(f"{ident(touch)} = now()")
    return (
        f"UPDATE {ident(table)} SET {', '.join(sets)} FROM unnest({params}) "
        f"AS v({', '.join(names)}) WHERE {ident(table)}.{names[0]} = v.{names[0]}"
    )


async def update_rows(
    conn: Connection,
    table: str,
    key: Column,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    touch: str | None = None,
) -> None:
    """Set ``columns`` of the rows of ``table`` whose ``key`` is each row's first value to its
    other values, with one statement (``touch``: a column also set to ``now()``). The keys must
    be distinct: UPDATE ... FROM changes a row once, with any one of its matches."""
    if not rows:
        return
    keys = [r[0] for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"update_rows on {table}: a key twice in one statement")
    await conn.execute(
        update_sql(table, key, tuple(columns), touch), *_arrays((key, *columns), rows)
    )
