"""Intake wiring: reports from every channel become located, classified, de-duplicated cases.

Consumes ``registry.units``, ``reports.submitted`` and ``cases.closed``; publishes
``cases.opened``, ``cases.merged`` and ``reports.rejected`` through its outbox.
"""

from __future__ import annotations

from pathlib import Path

from shared.contract.events import CaseClosed, ReportSubmitted
from shared.registry.store import RegistryMessage
from shared.runtime.service import Service
from shared.runtime.settings import Settings

from .handlers import Intake

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
    )(intake.on_reports)
    svc.subscribe("cases.closed", CaseClosed)(intake.on_case_closed)
    return svc
