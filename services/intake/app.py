"""Intake wiring: reports from every channel become located, classified, de-duplicated cases.

Consumes ``registry.units``, ``reports.submitted`` and ``cases.closed``, and for the Open311
status of cases ``cases.dispatched``, ``cases.accepted``, ``cases.escalated``,
``cases.resolved`` and ``cases.reopened``, and ``cases.reclassified`` (the command centre's
categories: labelled examples for the classifier); publishes ``cases.opened``, ``cases.merged`` and
``reports.rejected`` through its outbox. Serves Open311 GeoReport v2 at ``/open311/v2/``
(``services.intake.open311``), and the 未诉先办 hotspots at ``/hotspots`` (``hotspots_api``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.contract.events import (
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseEscalated,
    CaseReclassified,
    CaseReopened,
    CaseResolved,
    CaseSentBack,
    CaseVerified,
    ReportSubmitted,
)
from shared.registry.store import RegistryMessage
from shared.runtime.consumer import BatchHandler, Meta, locked_batch, one_by_one
from shared.runtime.service import Service
from shared.runtime.settings import Settings
from shared.runtime.uow import UnitOfWork

from . import hotspots_api
from .handlers import Intake
from .media_api import register_media
from .open311 import projection
from .open311 import store as open311_store
from .open311.api import Open311, recording

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: Settings, intake: Intake | None = None) -> Service:
    svc = Service("intake", settings, MIGRATIONS)
    intake = intake or Intake.from_settings(settings)
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(intake.on_registry)
    svc.subscribe_batch(
        "reports.submitted",
        ReportSubmitted,
        idempotency_key=lambda r, _: f"{r.source}:{r.report_id}",
        on_invalid=intake.on_invalid,
        prompt=True,
    )(recording(intake.on_reports))

    async def on_case_closed(uow: UnitOfWork, event: CaseClosed, meta: Meta) -> None:
        await intake.on_case_closed(uow, event, meta)
        await projection.on_closed(uow, event, meta)

    # each batch of case events takes its cases' progress locks first, in one order
    def ordered(handler: BatchHandler[Any]) -> BatchHandler[Any]:
        return locked_batch(open311_store.lock_progress, lambda e: e.case_id, handler)

    svc.subscribe_batch("cases.closed", CaseClosed)(ordered(one_by_one(on_case_closed)))
    svc.subscribe_batch("cases.dispatched", CaseDispatched)(ordered(projection.on_dispatched))
    svc.subscribe_batch("cases.accepted", CaseAccepted)(ordered(projection.on_accepted))
    svc.subscribe_batch("cases.escalated", CaseEscalated)(ordered(projection.on_escalated))
    svc.subscribe_batch("cases.resolved", CaseResolved)(ordered(projection.on_resolved))
    svc.subscribe_batch("cases.verified", CaseVerified)(ordered(projection.on_verified))
    svc.subscribe_batch("cases.sent_back", CaseSentBack)(ordered(projection.on_sent_back))
    svc.subscribe_batch("cases.reopened", CaseReopened)(ordered(projection.on_reopened))
    svc.subscribe("cases.reclassified", CaseReclassified)(intake.on_reclassified)
    blobs = register_media(svc)  # the photos of reports (GET /media/{photo_id}, signed links)
    Open311(svc, intake.taxonomy, intake.known_unit, blobs).install()
    hotspots_api.install(svc, intake.taxonomy)
    svc.background(lambda: intake.keep_warm(svc.pool))
    return svc
