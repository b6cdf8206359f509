"""Feedback wiring: follow-up (回访), authenticated ratings, reopen, and governance metrics.

Consumes ``registry.units``, ``cases.opened``, ``cases.merged``, ``cases.dispatched``,
``cases.accepted``, ``cases.escalated``, ``cases.warned``, ``cases.overdue``, ``cases.resolved``,
``cases.reclassified`` (the category the figures count a case under), ``cases.extended`` and
``feedback.submitted``; publishes ``feedback.requested``, ``feedback.rejected``, ``cases.closed``,
``cases.reopened`` and ``cases.notified`` (each milestone told to each reporter: ``notices``).
A durable timer closes cases nobody rated within ``WANGGE_FEEDBACK_WINDOW`` (scaled by
``WANGGE_SLA_SCALE``); another freezes each month's figures of every unit when the month has
closed plus ``WANGGE_METRICS_FREEZE_GRACE`` (``freezing``). The HTTP API serves staff the
metrics, hot issues, rankings, trends and case timelines (``api``), to a bearer token or the
pages' session cookie, from the board's browser where ``WANGGE_CORS_ORIGINS`` allows its origin
(``allow_board``); and residents the rating page and their case's status link (``resident``).
The rating tokens in ``feedback.requested`` are sealed for the notifier with
``WANGGE_NOTIFY_KEY``; without it, or without ``WANGGE_LINK_KEY``, the service does not start
(``keys``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware.cors import CORSMiddleware

from shared.contract.events import (
    CaseExtended,
    CaseMerged,
    CaseOpened,
    CaseReclassified,
    FeedbackSubmitted,
)
from shared.registry.store import RegistryMessage, apply_registry_message
from shared.runtime.clock import Clock, clock_of
from shared.runtime.service import Service
from shared.runtime.settings import Settings
from shared.runtime.signin import Sessions

from .api import register_routes
from .freezing import FreezePolicy
from .handlers import SWEEP_BATCH, Feedback, case_locked, case_ordered
from .keys import FeedbackKeys
from .official import FREEZE_BATCH, FreezeSweep
from .projection import FACTS
from .requests import FollowUpRequests
from .resident import register_resident_routes

MIGRATIONS = Path(__file__).parent / "migrations"


def create_service(settings: Settings, *, clock: Clock | None = None) -> Service:
    """The service; ``clock``: its time (default: ``clock_of(settings)``, the real time unless a
    demonstration's clock is set)."""
    clock = clock or clock_of(settings)
    keys = FeedbackKeys.from_settings(settings)  # a ConfigurationError stops the start
    svc = Service("feedback", settings, MIGRATIONS)
    requests = FollowUpRequests(
        keys, settings.public_feedback_url, emit_v1=settings.feedback_requested_v1
    )
    fb = Feedback(
        window=settings.feedback_window * settings.sla_scale, requests=requests, clock=clock
    )
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(apply_registry_message)
    # each batch of case events locks its cases in case_id order first (``case_ordered``)
    svc.subscribe_batch("cases.opened", CaseOpened)(case_ordered(fb.on_opened))
    svc.subscribe_batch("cases.merged", CaseMerged)(case_ordered(fb.on_merged))
    svc.subscribe_batch("cases.reclassified", CaseReclassified)(case_ordered(fb.on_reclassified))
    for fact in FACTS:  # cases.dispatched, .accepted, .escalated, .resolved, .verified, ...
        svc.subscribe_batch(fact.topic, fact.model)(case_locked(fb.record))
    svc.subscribe_batch("cases.extended", CaseExtended)(case_ordered(fb.on_extended))
    # a rating of an unknown case is rejected: no placeholder for it
    svc.subscribe_batch("feedback.submitted", FeedbackSubmitted, on_invalid=fb.on_invalid)(
        case_locked(fb.on_submitted, create=False)
    )
    svc.sweeper("close-unrated", fb.close_unrated, batch=SWEEP_BATCH).clock = clock
    freezing = FreezePolicy(settings.metrics_freeze_grace)
    months = svc.sweeper(
        "freeze-months",
        FreezeSweep(freezing),
        interval_s=settings.freeze_sweep_interval_s,
        batch=FREEZE_BATCH,
    )
    months.clock = clock
    register_routes(svc, freezing, clock)
    allow_board(svc, settings)
    register_resident_routes(svc, keys, fb.clock, settings.public_feedback_url)
    return svc


def origins(setting: str) -> list[str]:
    """The origins of ``WANGGE_CORS_ORIGINS`` (comma-separated, a trailing slash dropped)."""
    return [o.strip().rstrip("/") for o in setting.split(",") if o.strip()]


def allow_board(svc: Service, settings: Settings) -> None:
    """The command-centre board (served by dispatch) reads the staff API from its browser: the
    pages' session cookie names the caller here as on dispatch (the same session key), and the
    board's origin may read the answers (CORS, with credentials, GET only). A browser sends the
    cookie only to the host that set it (any port): feedback must be on the board's host name."""
    svc.app.state.sessions = Sessions(settings)
    allowed = origins(settings.cors_origins)
    if allowed:
        svc.app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed,
            allow_credentials=True,
            allow_methods=["GET"],
            allow_headers=["Authorization"],
            max_age=600,
        )
