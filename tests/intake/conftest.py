"""Intake test helpers: the sample city's location index, and running intake's handlers the way
the consumer pipeline does (one transaction, outbox flushed) against a real database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from cli.registry import publish_registry
from devstack.testbed import Testbed
from services.intake.app import create_service
from services.intake.handlers import Intake
from services.intake.locate import RegistryIndex, UnitInfo
from shared.contract.events import ReportSubmitted, Unit
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.service import Service
from shared.runtime.uow import UnitOfWork
from tests.samples import sample_registry, wait_registry


def sample_units() -> list[UnitInfo]:
    return [
        UnitInfo(
            code=u.code,
            name=u.name,
            level=u.level,
            parent=u.parent,
            aliases=tuple(u.aliases),
            area=tuple(u.area) if u.area else None,
            point=(u.lon, u.lat) if u.lon is not None and u.lat is not None else None,
            served_by=u.served_by,
        )
        for u in sample_registry()
        if isinstance(u, Unit)
    ]


@pytest.fixture(scope="session")
def sample_index() -> RegistryIndex:
    return RegistryIndex.build(sample_units())


@dataclass
class Running:
    svc: Service
    intake: Intake


async def start_intake(bed: Testbed, **overrides: object) -> Running:
    """Intake on the testbed, with the sample registry read."""
    holder: dict[str, Intake] = {}

    def factory(settings: Any) -> Service:
        holder["intake"] = Intake.from_settings(settings)
        return create_service(settings, holder["intake"])

    svc = await bed.start("intake", factory, **overrides)
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)
    return Running(svc, holder["intake"])


def meta() -> Meta:
    return Meta("reports.submitted", 0, 0, None, {}, datetime.now(UTC))


async def handle(run: Running, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Run intake's report handler on one report in its own transaction, as the pipeline does;
    returns the events it wrote to the outbox as (logical topic, payload)."""
    return await handle_batch(run, [body])


async def handle_batch(
    run: Running, bodies: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """Run intake's report handler on ``bodies`` as one batch in one transaction; returns the
    events written to the outbox, in order, as (logical topic, payload)."""
    reports = [ReportSubmitted.model_validate(b) for b in bodies]
    prefix = run.svc.settings.topic_prefix
    async with run.svc.pool.acquire() as conn, conn.transaction():
        claimed = [
            Claimed(r, meta(), UnitOfWork(conn, source="wangge/intake", topic_prefix=prefix))
            for r in reports
        ]
        await run.intake.on_reports(conn, claimed)
        out = [
            (e.topic[len(prefix) :], orjson.loads(e.payload or b"null"))
            for c in claimed
            for e in c.uow.pending
        ]
        await UnitOfWork(
            conn, source="wangge/intake", pending=[e for c in claimed for e in c.uow.pending]
        ).flush()
    return out
