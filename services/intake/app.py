"""Intake wiring: reports from every channel become located, classified, de-duplicated cases.

Consumes ``registry.units`` and ``reports.submitted``; publishes ``cases.opened``,
``cases.merged`` and ``reports.rejected`` through its outbox.
"""

from __future__ import annotations

from pathlib import Path

from shared.events import ReportSubmitted
from shared.registry_store import RegistryMessage, apply_registry_message
from shared.service import Service
from shared.settings import Settings
from shared.taxonomy import load_taxonomy

from .handlers import Intake
from .privacy import Pii

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: Settings) -> Service:
    svc = Service("intake", settings, MIGRATIONS)
    intake = Intake(
        load_taxonomy(settings.taxonomy_file),
        Pii(settings.pii_key.get_secret_value() if settings.pii_key else None),
    )
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(apply_registry_message)
    svc.subscribe(
        "reports.submitted",
        ReportSubmitted,
        idempotency_key=lambda r, _: f"{r.source}:{r.report_id}",
        on_invalid=intake.on_invalid,
    )(intake.on_report)
    return svc
