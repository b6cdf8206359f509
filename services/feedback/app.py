"""Feedback wiring: follow-up (回访), authenticated ratings, reopen, and governance metrics.

Consumes ``registry.units``, ``cases.opened``, ``cases.merged``, ``cases.dispatched``,
``cases.accepted``, ``cases.escalated``, ``cases.resolved``, ``cases.reclassified`` (the category
the figures count a case under) and ``feedback.submitted``;
publishes ``feedback.requested``, ``feedback.rejected``, ``cases.closed`` and ``cases.reopened``.
A durable timer closes cases nobody rated within ``WANGGE_FEEDBACK_WINDOW`` (scaled by
``WANGGE_SLA_SCALE``); the HTTP API serves staff the metrics, hot issues, rankings and case
timelines (``api``), and residents the rating page and their case's status link (``resident``).
The rating tokens in ``feedback.requested`` are sealed for the notifier with
``WANGGE_NOTIFY_KEY``; without it, or without ``WANGGE_LINK_KEY``, the service does not start
(``keys``).
"""

from __future__ import annotations

from pathlib import Path

from shared.contract.events import CaseMerged, CaseOpened, CaseReclassified, FeedbackSubmitted
from shared.registry.store import RegistryMessage, apply_registry_message
from shared.runtime.service import Service
from shared.runtime.settings import Settings

from .api import register_routes
from .handlers import SWEEP_BATCH, Feedback
from .keys import FeedbackKeys
from .projection import FACTS
from .requests import FollowUpRequests
from .resident import register_resident_routes

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: Settings) -> Service:
    keys = FeedbackKeys.from_settings(settings)  # a ConfigurationError stops the start
    svc = Service("feedback", settings, MIGRATIONS)
    requests = FollowUpRequests(
        keys, settings.public_feedback_url, emit_v1=settings.feedback_requested_v1
    )
    fb = Feedback(window=settings.feedback_window * settings.sla_scale, requests=requests)
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(apply_registry_message)
    svc.subscribe("cases.opened", CaseOpened)(fb.on_opened)
    svc.subscribe("cases.merged", CaseMerged)(fb.on_merged)
    svc.subscribe("cases.reclassified", CaseReclassified)(fb.on_reclassified)
    for fact in FACTS:  # cases.dispatched, .accepted, .escalated, .resolved
        svc.subscribe(fact.topic, fact.model)(fb.record)
    svc.subscribe("feedback.submitted", FeedbackSubmitted, on_invalid=fb.on_invalid)(
        fb.on_submitted
    )
    svc.sweeper("close-unrated", fb.close_unrated, batch=SWEEP_BATCH)
    register_routes(svc)
    register_resident_routes(svc, keys, fb.clock, settings.public_feedback_url)
    return svc
