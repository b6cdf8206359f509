"""shared.runtime.bulk against PostgreSQL: many rows in one statement, as executemany would
write them (order, NULLs, jsonb, arrays, text), and nothing else touched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from devstack.testbed import Testbed
from shared.runtime import bulk
from shared.runtime.db import Connection, connect

COLUMNS = (
    ("name", "text"),
    ("at", "timestamptz"),
    ("n", "int"),
    ("tags", "text[]"),
    ("detail", "jsonb"),
    ("body", "bytea"),
)
T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
async def conn(bed: Testbed) -> AsyncIterator[Connection]:
    c = await connect(bed.admin_dsn)
    await c.execute("CREATE SCHEMA bulk_t")
    await c.execute("SET search_path TO bulk_t")
    await c.execute(
        """CREATE TABLE things (id bigserial PRIMARY KEY, name text, at timestamptz, n int,
           tags text[], detail jsonb, body bytea, updated_at timestamptz)"""
    )
    try:
        yield c
    finally:
        await c.execute("DROP SCHEMA bulk_t CASCADE")
        await c.close()


ROWS = [
    ("甲", T0, 1, ("a", "b"), {"k": [1, 2], "s": "中文"}, b"\x00\x01"),
    ("b", None, None, (), [1, "x"], None),
    ("c", T0 + timedelta(hours=1), 3, None, None, b""),
]


async def test_insert_rows_writes_each_row_in_order(conn: Connection) -> None:
    many = [*ROWS, *[(f"r{i}", T0, i, ("t",), {"i": i}, None) for i in range(500)]]
    await bulk.insert_rows(conn, "things", COLUMNS, many)
    got = await conn.fetch("SELECT name, at, n, tags, detail, body FROM things ORDER BY id")
    assert [tuple(r) for r in got[:3]] == [
        ("甲", T0, 1, ["a", "b"], {"k": [1, 2], "s": "中文"}, b"\x00\x01"),
        ("b", None, None, [], [1, "x"], None),
        ("c", T0 + timedelta(hours=1), 3, None, None, b""),
    ]
    assert [r["name"] for r in got[3:]] == [f"r{i}" for i in range(500)]  # ids follow the order
    await bulk.insert_rows(conn, "things", COLUMNS, [])  # nothing: no statement
    assert await conn.fetchval("SELECT count(*) FROM things") == 503


async def test_update_rows_sets_the_columns_of_the_rows_named_only(conn: Connection) -> None:
    await bulk.insert_rows(conn, "things", COLUMNS, ROWS)
    await bulk.update_rows(
        conn,
        "things",
        ("name", "text"),
        [("n", "int"), ("tags", "text[]"), ("detail", "jsonb"), ("at", "timestamptz")],
        [("甲", None, ("x",), {"new": True}, None), ("c", 30, (), [], T0)],
        touch="updated_at",
    )
    got = {
        r["name"]: tuple(r)[1:]
        for r in await conn.fetch(
            "SELECT name, n, tags, detail, at, body, updated_at IS NOT NULL FROM things"
        )
    }
    assert got == {
        "甲": (None, ["x"], {"new": True}, None, b"\x00\x01", True),
        "b": (None, [], [1, "x"], None, None, False),
        "c": (30, [], [], T0, b"", True),
    }


async def test_update_rows_refuses_a_key_twice(conn: Connection) -> None:
    with pytest.raises(ValueError, match="a key twice"):
        await bulk.update_rows(
            conn, "things", ("name", "text"), [("n", "int")], [("b", 1), ("b", 2)]
        )


async def test_insert_rows_then_runs_in_the_same_statement(conn: Connection, bed: Testbed) -> None:
    listener = await connect(bed.admin_dsn)
    heard: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("bulk_t_chan", lambda *args: heard.put_nowait(args[3]))
    try:
        async with conn.transaction():
            await bulk.insert_rows(
                conn, "things", COLUMNS, ROWS, then="SELECT pg_notify('bulk_t_chan', 'written')"
            )
            assert heard.empty()  # delivered at commit
        async with asyncio.timeout(10):
            assert await heard.get() == "written"
        assert await conn.fetchval("SELECT count(*) FROM things") == len(ROWS)
    finally:
        await listener.close()
