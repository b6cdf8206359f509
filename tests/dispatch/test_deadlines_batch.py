"""The set-based deadline sweeps on the real database: several due cases of different units each
get the handler a case-by-case sweep would give them (loads kept current within the sweep), and
one case that cannot be written does not hold back the others."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from devstack.testbed import Testbed
from services.dispatch import store
from services.dispatch.app import DispatchService
from services.dispatch.model import Case
from services.dispatch.states import State
from shared.contract.events import Handler, Tier
from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork
from tests.dispatch.support import FakeClock, load_registry, start_dispatch
from tests.samples import wait_registry

G01 = {"district": "WC", "street": "WC-YY", "community": "WC-YY-OJY", "grid": "WC-YY-OJY-G01"}
G02 = {**G01, "grid": "WC-YY-OJY-G02"}
HPY = {**G01, "community": "WC-YY-HPY", "grid": "WC-YY-HPY-G01"}
QHJ = {"district": "WC", "street": "WC-ZHL", "community": "WC-ZHL-QHJ", "grid": "WC-ZHL-QHJ-G01"}
# a second community worker of 欧景苑 (the sample has one, plus a party volunteer)
H0014 = Handler(id="h-0014", name="许可", unit="WC-YY-OJY", role="community_staff")

Sweep = Callable[[UnitOfWork, datetime], Awaitable[int]]


async def setup(bed: Testbed) -> tuple[DispatchService, datetime]:
    """Dispatch whose own sweepers see nothing due (its clock stays put; the tests sweep at
    later times themselves), with the sample registry plus h-0014."""
    clock = FakeClock()
    svc = await start_dispatch(bed, clock, WANGGE_SWEEP_INTERVAL_S=3600)
    await load_registry(bed, H0014)
    await wait_registry(bed, "h-0014")
    return svc, clock()


async def put(
    conn: Connection,
    case_id: str,
    t0: datetime,
    *,
    where: dict[str, str],
    tier: Tier,
    unit: str,
    handler: str | None,
    state: State,
    respond_in: timedelta = timedelta(days=30),
    resolve_in: timedelta = timedelta(days=30),
    category: str = "sanitation",
) -> None:
    await store.insert_cases(
        conn,
        [
            Case(
                case_id=case_id,
                category=category,
                district=where["district"],
                street=where["street"],
                community=where["community"],
                grid=where["grid"],
                start_tier=tier,
                tier=tier,
                unit=unit,
                handler_id=handler,
                state=state,
                dispatched_at=t0,
                respond_by=t0 + respond_in,
                resolve_by=t0 + resolve_in,
                opened_at=t0,
            )
        ],
    )


async def sweep(
    bed: Testbed, svc: DispatchService, fn: Sweep, now: datetime
) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    """One sweep in one transaction, as the Sweeper runs it; returns its count and its events."""
    async with svc.pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn, source="test/sweeps", topic_prefix=bed.prefix)
        handled = await fn(uow, now)
        events = [
            (e.topic.removeprefix(bed.prefix), json.loads(e.payload or b"{}")) for e in uow.pending
        ]
        await uow.flush()
    return handled, events


async def where_now(svc: DispatchService, *case_ids: str) -> dict[str, tuple[Any, ...]]:
    rows = await svc.pool.fetch(
        "SELECT case_id, tier, unit, handler_id, state, attempt FROM cases"
        " WHERE case_id = ANY($1::text[])",
        list(case_ids),
    )
    return {r["case_id"]: tuple(r.values())[1:] for r in rows}


def topics_of(events: list[tuple[str, dict[str, Any]]], case_id: str) -> list[str]:
    return [topic for topic, body in events if body["case_id"] == case_id]


async def test_a_sweep_of_several_units_gives_each_case_the_right_handler(bed: Testbed) -> None:
    svc, t0 = await setup(bed)
    minute = timedelta(minutes=1)
    async with svc.pool.acquire() as conn:
        # response deadlines missed, due in this order (each sweep works in due-date order)
        await put(
            conn,
            "r1",
            t0,
            where=G01,
            tier="grid",
            unit=G01["grid"],
            handler="h-0001",
            state="dispatched",
            respond_in=minute,
        )
        await put(
            conn,
            "r2",
            t0,
            where=G01,
            tier="grid",
            unit=G01["grid"],
            handler="h-0002",
            state="dispatched",
            respond_in=2 * minute,
        )
        await put(
            conn,
            "r3",
            t0,
            where=G02,
            tier="grid",
            unit=G02["grid"],
            handler="h-0003",
            state="escalated",
            respond_in=3 * minute,
        )
        await put(
            conn,
            "r4",
            t0,
            where=QHJ,
            tier="grid",
            unit=QHJ["grid"],
            handler=None,
            state="dispatched",
            respond_in=4 * minute,
        )
        await put(
            conn,
            "r5",
            t0,
            where=G01,
            tier="community",
            unit="WC-YY-OJY",
            handler="h-0010",
            state="returned",
            respond_in=5 * minute,
        )
        # resolution deadlines missed (accepted: no response deadline pending)
        for i, (where, unit, handler) in enumerate(
            [
                (G01, G01["grid"], "h-0001"),
                (G02, G02["grid"], "h-0003"),
                (G01, G01["grid"], "h-0002"),
                (QHJ, QHJ["grid"], "h-0005"),
            ],
            start=1,
        ):
            await put(
                conn,
                f"s{i}",
                t0,
                where=where,
                tier="grid",
                unit=unit,
                handler=handler,
                state="accepted",
                resolve_in=i * minute,
            )
        await put(
            conn,
            "s5",
            t0,
            where=HPY,
            tier="community",
            unit="WC-YY-HPY",
            handler="h-0011",
            state="accepted",
            resolve_in=5 * minute,
            category="municipal_facility",
        )
        await put(
            conn,
            "s6",
            t0,
            where=G01,
            tier="district",
            unit="WC",
            handler="h-0030",
            state="accepted",
            resolve_in=6 * minute,
        )
        # not due: keeps h-0010 busy with one open case
        await put(
            conn,
            "busy",
            t0,
            where=G02,
            tier="community",
            unit="WC-YY-OJY",
            handler="h-0010",
            state="accepted",
        )

    now = t0 + timedelta(hours=1)
    handled, events = await sweep(bed, svc, svc.dispatch.sweep_response, now)
    assert handled == 5
    assert await where_now(svc, "r1", "r2", "r3", "r4", "r5") == {
        "r1": ("grid", "WC-YY-OJY-G01", "h-0002", "dispatched", 2),  # the other grid worker
        "r2": ("grid", "WC-YY-OJY-G01", "h-0001", "dispatched", 2),
        "r3": ("grid", "WC-YY-OJY-G02", "h-0003", "escalated", 2),  # nobody else: the same one
        "r4": ("grid", "WC-ZHL-QHJ-G01", "h-0005", "dispatched", 2),  # was the unit as a whole
        "r5": ("community", "WC-YY-OJY", "h-0014", "returned", 2),  # never the party volunteer
    }
    for cid in ("r1", "r2", "r3", "r4", "r5"):
        assert topics_of(events, cid) == ["cases.overdue", "cases.dispatched"]
    r1 = next(b for t, b in events if b["case_id"] == "r1" and t == "cases.dispatched")
    assert datetime.fromisoformat(r1["respond_by"]) == now + timedelta(hours=2)

    # 欧景苑 now: h-0010 one open case (busy), h-0014 one (r5). Each escalated case counts for
    # its new handler before the next one is assigned, so they alternate, ties going by id.
    handled, events = await sweep(bed, svc, svc.dispatch.sweep_resolution, now)
    assert handled == 6
    assert await where_now(svc, "s1", "s2", "s3", "s4", "s5", "s6") == {
        "s1": ("community", "WC-YY-OJY", "h-0010", "escalated", 2),
        "s2": ("community", "WC-YY-OJY", "h-0014", "escalated", 2),
        "s3": ("community", "WC-YY-OJY", "h-0010", "escalated", 2),
        "s4": ("community", "WC-ZHL-QHJ", "h-0012", "escalated", 2),
        "s5": ("street", "WC-YY-SZ", "h-0022", "escalated", 2),  # the street's 市政所
        "s6": ("district", "WC", "h-0030", "accepted", 1),  # top tier: recorded, not moved
    }
    for cid in ("s1", "s2", "s3", "s4", "s5"):
        assert topics_of(events, cid) == ["cases.overdue", "cases.dispatched", "cases.escalated"]
    assert topics_of(events, "s6") == ["cases.overdue"]
    assert (
        await svc.pool.fetchval("SELECT resolve_missed_at FROM cases WHERE case_id = 's6'") == now
    )
    steps = await svc.pool.fetch(
        "SELECT case_id, event FROM timeline WHERE event IN ('respond_timeout', 'resolve_timeout')"
        " ORDER BY id"
    )
    assert [(r["case_id"], r["event"]) for r in steps] == [
        *((f"r{i}", "respond_timeout") for i in range(1, 6)),
        *((f"s{i}", "resolve_timeout") for i in range(1, 7)),
    ]
    assert svc.dispatch.sweep_fallbacks == 0  # all of it set-based
    # and once past, nothing is due again
    assert (await sweep(bed, svc, svc.dispatch.sweep_resolution, now))[0] == 0


async def test_one_broken_case_does_not_stop_the_others(bed: Testbed) -> None:
    svc, t0 = await setup(bed)
    async with svc.pool.acquire() as conn:
        for i, (where, unit, handler) in enumerate(
            [(G01, G01["grid"], "h-0001"), (QHJ, QHJ["grid"], "h-0005"), (G02, G02["grid"], None)],
            start=1,
        ):
            await put(
                conn,
                f"c{i}",
                t0,
                where=where,
                tier="grid",
                unit=unit,
                handler=handler,
                state="dispatched",
                respond_in=i * timedelta(minutes=1),
            )
        # the database refuses any change to c2 (as a corrupt row or a violated rule would)
        await conn.execute(
            """CREATE FUNCTION refuse_c2() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.case_id = 'c2' THEN RAISE EXCEPTION 'c2 cannot change'; END IF;
                 RETURN NEW;
               END $$;
               CREATE TRIGGER refuse_c2 BEFORE UPDATE ON cases
               FOR EACH ROW EXECUTE FUNCTION refuse_c2()"""
        )

    now = t0 + timedelta(hours=1)
    handled, events = await sweep(bed, svc, svc.dispatch.sweep_response, now)
    assert handled == 3
    assert svc.dispatch.sweep_fallbacks == 1
    text = svc.metrics.render().decode()  # what operators see on /metrics
    assert 'wangge_sweep_fallbacks_total{sweep="response"} 1.0' in text
    assert await where_now(svc, "c1", "c2", "c3") == {
        "c1": ("grid", "WC-YY-OJY-G01", "h-0002", "dispatched", 2),
        "c2": ("grid", "WC-ZHL-QHJ-G01", "h-0005", "dispatched", 1),  # left as it was
        "c3": ("grid", "WC-YY-OJY-G02", "h-0003", "dispatched", 2),
    }
    assert topics_of(events, "c2") == []  # no event about what did not happen
    for cid in ("c1", "c3"):
        assert topics_of(events, cid) == ["cases.overdue", "cases.dispatched"]
    steps = await svc.pool.fetch("SELECT case_id FROM timeline WHERE event = 'respond_timeout'")
    assert sorted(r["case_id"] for r in steps) == ["c1", "c3"]

    # once the cause is gone, the next sweep takes c2 (set-based again)
    await svc.pool.execute("DROP TRIGGER refuse_c2 ON cases")
    handled, events = await sweep(bed, svc, svc.dispatch.sweep_response, now)
    assert handled == 1
    assert topics_of(events, "c2") == ["cases.overdue", "cases.dispatched"]
    assert svc.dispatch.sweep_fallbacks == 1
    assert (await where_now(svc, "c2"))["c2"] == (
        "grid",
        "WC-ZHL-QHJ-G01",
        "h-0005",
        "dispatched",
        2,
    )
