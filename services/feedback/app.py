"""Feedback wiring: follow-up (回访), authenticated ratings, reopen, and governance metrics.

Consumes ``registry.units``, ``cases.opened``, ``cases.resolved`` and ``feedback.submitted``;
publishes ``feedback.requested``, ``feedback.rejected``, ``cases.closed`` and ``cases.reopened``.
"""

from __future__ import annotations

from pathlib import Path

from shared.events import CaseOpened, CaseResolved, FeedbackSubmitted
from shared.registry_store import RegistryMessage, apply_registry_message
from shared.service import Service
from shared.settings import Settings

from .handlers import Feedback

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: Settings) -> Service:
    svc = Service("feedback", settings, MIGRATIONS)
    fb = Feedback(window=settings.feedback_window * settings.sla_scale)
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(apply_registry_message)
    svc.subscribe("cases.opened", CaseOpened)(fb.on_opened)
    svc.subscribe("cases.resolved", CaseResolved)(fb.on_resolved)
    svc.subscribe("feedback.submitted", FeedbackSubmitted, on_invalid=fb.on_invalid)(
        fb.on_submitted
    )
    return svc
