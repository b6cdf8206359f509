"""Dispatch wiring: tiered dispatch (小事不出网格、大事不出社区), SLA timers, handler actions.

Consumes ``registry.units``, ``cases.opened``, ``cases.merged``, ``cases.reopened`` and
``handler.actions``; publishes ``cases.dispatched``, ``cases.escalated``, ``cases.overdue``,
``cases.resolved`` and ``handler.actions.rejected`` through its outbox.
"""

from __future__ import annotations

from pathlib import Path

from shared.events import CaseOpened, HandlerAction
from shared.registry_store import RegistryMessage, apply_registry_message
from shared.service import Service
from shared.settings import Settings
from shared.taxonomy import load_taxonomy

from .handlers import Dispatch

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: Settings) -> Service:
    svc = Service("dispatch", settings, MIGRATIONS)
    dispatch = Dispatch(load_taxonomy(settings.taxonomy_file), sla_scale=settings.sla_scale)
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(apply_registry_message)
    svc.subscribe("cases.opened", CaseOpened)(dispatch.on_opened)
    svc.subscribe(
        "handler.actions",
        HandlerAction,
        idempotency_key=lambda a, _: a.action_id,
        on_invalid=dispatch.on_invalid_action,
    )(dispatch.on_action)
    return svc
