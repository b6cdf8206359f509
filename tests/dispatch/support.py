"""What the dispatch tests share: a settable clock, starting dispatch with it, case builders (a
``cases.opened`` event; a ``Case`` for pure tests), and a small driver that publishes inputs and
waits for outputs."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cli.client import Publisher, Record, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.dispatch.app import DispatchService, create_service
from services.dispatch.model import Case
from shared.contract.events import (
    CaseLocation,
    CaseOpened,
    Classification,
    Department,
    Handler,
    Unit,
)
from shared.contract.taxonomy import default_taxonomy
from shared.runtime.clock import utcnow
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.uow import UnitOfWork
from tests.samples import sample_registry, wait_registry

OUTPUTS = (
    "cases.dispatched",
    "cases.accepted",
    "cases.escalated",
    "cases.overdue",
    "cases.warned",
    "cases.resolved",
    "cases.verified",
    "cases.sent_back",
    "cases.returned",
    "cases.extended",
    "cases.supervised",
    "cases.reclassified",
    "cases.agent_assigned",
    "cases.commissioned",
    "cases.relayed",
    "cases.order_issued",
    "cases.order_updated",
    "cases.council_decided",
    "handler.actions.rejected",
)
OJY_G01 = {"district": "WC", "street": "WC-YY", "community": "WC-YY-OJY", "grid": "WC-YY-OJY-G01"}


class FakeClock:
    """A clock the test moves by hand (shared by every replica it is given to)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


async def start_dispatch(
    bed: Testbed, clock: Callable[[], datetime] = utcnow, **overrides: object
) -> DispatchService:
    svc = await bed.start("dispatch", lambda s: create_service(s, clock=clock), **overrides)
    assert isinstance(svc, DispatchService)
    return svc


async def load_registry(bed: Testbed, *extra: Unit | Department | Handler) -> None:
    await publish_registry(bed.settings(), [*sample_registry(), *extra])
    await wait_registry(bed)


async def sweeps_pass(svc: DispatchService, n: int = 2, timeout: float = 20) -> None:
    """Wait until every sweeper of ``svc`` has completed ``n`` more sweeps."""
    targets = {name: sw.sweeps + n for name, sw in svc.sweepers.items()}

    async def done() -> bool:
        return all(sw.sweeps >= targets[name] for name, sw in svc.sweepers.items())

    await eventually(done, timeout=timeout, what="sweeps")


def case_opened(
    case_id: str | None = None,
    *,
    category: str = "sanitation",
    location: Mapping[str, str | None] | None = None,
    households: int | None = None,
    urgent: bool = False,
    opened_at: datetime | None = None,
) -> CaseOpened:
    cat = default_taxonomy().get(category)
    assert cat is not None
    cid = case_id or f"c-{uuid.uuid4().hex[:10]}"
    return CaseOpened(
        case_id=cid,
        report_ids=[f"r-{cid}"],
        source="app",
        opened_at=opened_at or datetime.now(UTC),
        category=category,
        category_name=cat.name,
        agency_mode=cat.agency_mode,
        classification=Classification(method="test", confidence=1.0),
        location=CaseLocation(**(location or OJY_G01)),
        description="测试诉求",
        households_affected=households,
        urgent=urgent,
        reporter_ref=f"ref-{cid}",
    )


@asynccontextmanager
async def driving(bed: Testbed, source: str) -> AsyncIterator[Driver]:
    """A Driver publishing as ``source`` and reading every output topic of dispatch."""
    async with (
        Publisher(bed.settings(), source=source) as pub,
        TopicReader(bed.settings(), *OUTPUTS) as reader,
    ):
        yield Driver(pub, reader)


class Driver:
    """Publishes dispatch's inputs and reads its outputs (from the beginning of each topic)."""

    def __init__(self, pub: Publisher, reader: TopicReader) -> None:
        self.pub = pub
        self.reader = reader

    async def send(self, topic: str, payload: Any, key: str) -> None:
        await self.pub.send(topic, payload, key=key, subject=key)

    async def open(self, case: CaseOpened) -> dict[str, Any]:
        await self.send("cases.opened", case, case.case_id)
        return await self.one("cases.dispatched", case.case_id, attempt=1)

    async def act(
        self,
        case_id: str,
        handler_id: str,
        action: str,
        *,
        at: datetime | None = None,
        action_id: str | None = None,
        **fields: Any,
    ) -> str:
        aid = action_id or f"a-{uuid.uuid4().hex[:10]}"
        body = {
            "action_id": aid,
            "case_id": case_id,
            "handler_id": handler_id,
            "action": action,
            "at": (at or datetime.now(UTC)).isoformat(),
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()},
        }
        await self.send("handler.actions", body, case_id)
        return aid

    def of(self, topic: str, case_id: str, **match: Any) -> list[dict[str, Any]]:
        out = []
        for r in self.reader.of(topic):
            body = r.json()
            if body.get("case_id") == case_id and all(body.get(k) == v for k, v in match.items()):
                out.append(body)
        return out

    async def one(
        self, topic: str, case_id: str, timeout: float = 20, **match: Any
    ) -> dict[str, Any]:
        """The first record of ``topic`` about ``case_id`` whose fields equal ``match``."""
        found = await self.reader.wait_for(
            lambda _: self.of(topic, case_id, **match),
            timeout=timeout,
            what=f"{topic} {case_id} {match}",
        )
        return dict(found[0])

    async def rejected(self, action_id: str, case_id: str) -> str:
        body = await self.one("handler.actions.rejected", case_id, action_id=action_id)
        return str(body["reason"])

    async def drain(self) -> list[Record]:
        return await self.reader.read_to_end()


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a fixed time for pure tests


def a_case(**over: object) -> Case:
    """A dispatched grid case (``over``: other values of its columns)."""
    base = Case(
        case_id="c-1",
        category="sanitation",
        district="WC",
        street="WC-YY",
        community="WC-YY-OJY",
        grid="WC-YY-OJY-G01",
        start_tier="grid",
        tier="grid",
        tier_reasons=("category default: grid",),
        unit="WC-YY-OJY-G01",
        handler_id="h-0001",
        state="dispatched",
        dispatched_at=T0,
        respond_by=T0 + timedelta(hours=2),
        resolve_by=T0 + timedelta(hours=24),
        opened_at=T0,
    )
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


async def apply_batch(
    svc: DispatchService, handler: Any, events: list[Any], topic: str
) -> list[Any]:
    """``events`` as one batch through the batch ``handler`` in one transaction, as a
    subscription applies it; the events it published, as (topic, payload)."""
    async with svc.pool.acquire() as conn, conn.transaction():
        claimed = [
            Claimed(
                ev,
                Meta(topic, 0, i, None, {}, datetime.now(UTC)),
                UnitOfWork(conn, source="wangge/dispatch", topic_prefix=""),
            )
            for i, ev in enumerate(events)
        ]
        await handler(conn, claimed)
        return [(e.topic, orjson.loads(e.payload or b"")) for c in claimed for e in c.uow.pending]
