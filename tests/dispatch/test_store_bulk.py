"""Dispatch's set-based writes (``store.update_cases``, ``store.add_timeline_steps``, through
``shared.runtime.bulk``) on the migrated schema: every column a ``CaseChange`` may set has the
SQL type of the table's column, and a batch of changes leaves the rows as the same changes
applied one by one would."""

from __future__ import annotations

from datetime import timedelta

from devstack.testbed import Testbed
from services.dispatch import store
from services.dispatch.model import CaseChange, Step
from tests.dispatch.support import T0, a_case, start_dispatch

# information_schema's names of the types CHANGE_TYPES uses
SQL_NAMES = {
    "text": "text",
    "int": "integer",
    "float8": "double precision",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "text[]": "ARRAY",
}


async def test_every_change_column_has_the_tables_type(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    rows = await svc.pool.fetch(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'dispatch' AND table_name = 'cases'"""
    )
    table = {r["column_name"]: r["data_type"] for r in rows}
    assert {c: SQL_NAMES[t] for c, t in store.CHANGE_TYPES.items()} == {
        c: table[c] for c in store.CHANGE_TYPES
    }


async def test_a_batch_of_changes_is_applied_as_one_by_one(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    cases = [a_case(case_id=f"c-{i}") for i in range(3)]
    changes = [
        ("c-0", CaseChange(state="accepted", accepted_at=T0, excluded_units=("U1", "U2"))),
        ("c-1", CaseChange(tier="community", unit="WC-YY-OJY", handler_id=None, attempt=2)),
        ("c-0", CaseChange(state="resolved", resolved_at=T0 + timedelta(hours=1))),
        ("c-1", CaseChange(respond_within_s=90.5, urgent=True, tier_reasons=())),
    ]
    async with svc.pool.acquire() as conn, conn.transaction():
        await store.insert_cases(conn, cases)
        await store.update_cases(conn, changes)
        got = {c.case_id: c for c in await store.load_cases(conn, ["c-0", "c-1", "c-2"])}
    expected = {c.case_id: c for c in cases}
    for case_id, change in changes:
        expected[case_id] = expected[case_id].apply(change)
    assert got == expected


async def test_timeline_steps_keep_their_order(bed: Testbed) -> None:
    svc = await start_dispatch(bed)
    steps = [
        Step("c-9", T0, "dispatched", None, "dispatched", "grid", "G1", "h-1", {"n": i})
        for i in range(300)
    ]
    async with svc.pool.acquire() as conn, conn.transaction():
        await store.add_timeline_steps(conn, steps)
        got = await conn.fetch("SELECT detail FROM timeline WHERE case_id = 'c-9' ORDER BY id")
    assert [r["detail"] for r in got] == [{"n": i} for i in range(300)]
