"""Dispatch wiring: tiered dispatch (小事不出网格、大事不出社区), SLA timers, handler actions.

Consumes ``registry.units``, ``cases.opened``, ``cases.merged``, ``cases.reopened`` and
``handler.actions``; publishes ``cases.dispatched``, ``cases.accepted``, ``cases.escalated``,
``cases.overdue``, ``cases.warned``, ``cases.resolved``, ``cases.verified``,
``cases.sent_back``, ``cases.extended``, ``cases.reclassified`` and
``handler.actions.rejected`` through its outbox. Seven sweepers keep the cases' deadlines (response,
resolution, verification, the end of a pause: a council's, a suspension, an extension request)
and the stages' warnings (黄牌: respond, resolve, verify). The handler
API (``api.py``: a handler's cases, a case, actions over HTTP) applies actions through the
``handler.actions`` subscription; the command centre's triage queue (``triage_api.py``, 人工分拨)
decides categories over HTTP, and it sends supervisions (督办, ``supervision_api.py``:
``cases.supervised``); work orders (派单/协办: 吹哨报到, ``orders_api.py``) and councils'
decisions (议事会/联席会) publish ``cases.order_issued``, ``cases.order_updated`` and
``cases.council_decided``, and an eighth sweeper finds the orders left unreported.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from shared.contract.events import TIERS, CaseMerged, CaseOpened, CaseReopened, HandlerAction
from shared.contract.taxonomy import load_taxonomy
from shared.registry.store import RegistryMessage, apply_registry_message
from shared.runtime.clock import Clock, clock_of
from shared.runtime.service import Service
from shared.runtime.settings import Settings
from shared.runtime.sweeper import Sweeper

from .agency_api import register_agency_routes
from .api import register_routes
from .console.routes import register_console
from .handlers import Dispatch
from .orders_api import register_order_routes
from .photos import recording
from .photos_api import register_photo_routes
from .supervision_api import register_supervision_routes
from .tiers import load_rules
from .triage_api import register_triage_routes

MIGRATIONS = Path(__file__).parent / "migrations"


class DispatchService(Service):
    """The service, with its domain object and sweepers in reach (tests drive them directly)."""

    def __init__(self, settings: Settings, dispatch: Dispatch) -> None:
        super().__init__("dispatch", settings, MIGRATIONS)
        self.dispatch = dispatch
        self.sweepers: dict[str, Sweeper] = {}


def create_service(settings: Settings, *, clock: Clock | None = None) -> DispatchService:
    """The service; ``clock``: its time (default: ``clock_of(settings)``, the real time unless a
    demonstration's clock is set)."""
    clock = clock or clock_of(settings)
    dispatch = Dispatch(
        load_taxonomy(settings.taxonomy_file),
        load_rules(settings.tier_rules_file),
        sla_scale=settings.sla_scale,
        warn_fraction=settings.warn_fraction,
        action_skew_max=timedelta(seconds=settings.action_skew_max_s),
        clock=clock,
    )
    svc = DispatchService(settings, dispatch)
    svc.subscribe("registry.units", RegistryMessage, allow_tombstone=True)(apply_registry_message)
    # the reports' photos (intake stores them) recorded with the case: photos.recording
    svc.subscribe_batch("cases.opened", CaseOpened, prompt=True)(recording(dispatch.on_opened))
    svc.subscribe_batch("cases.merged", CaseMerged, prompt=True)(
        recording(dispatch.on_merged_batch)
    )
    svc.subscribe("cases.reopened", CaseReopened)(dispatch.on_reopened)
    svc.subscribe_batch(
        "handler.actions",
        HandlerAction,
        idempotency_key=lambda a, _: a.action_id,
        on_invalid=dispatch.on_invalid_action,
        prompt=True,
    )(dispatch.on_actions)
    for name, fn in (
        ("response-deadlines", dispatch.sweep_response),
        ("resolution-deadlines", dispatch.sweep_resolution),
        ("pauses", dispatch.sweep_pauses),
        ("respond-warnings", dispatch.sweep_respond_warnings),
        ("resolve-warnings", dispatch.sweep_resolve_warnings),
        ("verification-deadlines", dispatch.sweep_verification),
        ("verify-warnings", dispatch.sweep_verify_warnings),
        ("order-reports", dispatch.sweep_order_reports),  # 吹哨报到: work orders unreported
    ):
        sw = svc.sweeper(name, fn)
        sw.clock = clock
        svc.sweepers[name] = sw
    add_metrics(svc)
    register_routes(svc)
    register_photo_routes(svc)
    register_console(svc)
    register_triage_routes(svc)
    register_supervision_routes(svc)  # 督办 from the command centre
    register_agency_routes(svc)  # 三代: the agent's commission and relays
    register_order_routes(svc)  # 派单/协办, 吹哨报到, and councils (议事会/联席会)
    return svc


def add_metrics(svc: DispatchService) -> None:
    """Open cases by tier (refreshed at scrape time; aggregate replicas with max), missed
    deadlines, warnings, sweeps that fell back to one case at a time (counted by the replica
    whose sweep found them) and handler actions whose time was skewed (by the replica that
    applied them; aggregate these with sum)."""
    open_cases = svc.metrics.gauge("wangge_open_cases", "Open cases by tier", ["tier"])
    breaches = svc.metrics.counter(
        "wangge_deadline_breaches", "Deadlines missed", ["deadline", "tier"]
    )
    svc.dispatch.deadlines.on_breach = lambda deadline, tier: breaches.labels(deadline, tier).inc()
    fallbacks = svc.metrics.counter(
        "wangge_sweep_fallbacks",
        "Deadline sweeps whose set-based write failed and that went one case at a time",
        ["sweep"],
    )
    svc.dispatch.deadlines.on_sweep_fallback = lambda sweep: fallbacks.labels(sweep).inc()
    warnings = svc.metrics.counter(
        "wangge_stage_warnings", "Stage warnings given (黄牌)", ["stage", "tier"]
    )
    svc.dispatch.deadlines.on_warning = lambda stage, tier: warnings.labels(stage, tier).inc()
    skewed = svc.metrics.counter(
        "wangge_action_time_skewed",
        "Handler actions whose at was further than WANGGE_ACTION_SKEW_MAX_S from when they were "
        "applied",
        ["action"],
    )
    svc.dispatch.actions.on_skew = lambda action: skewed.labels(action).inc()

    @svc.metrics.on_scrape
    async def count_open_cases() -> None:
        rows = await svc.pool.fetch(
            "SELECT tier, count(*) AS n FROM cases WHERE state <> 'resolved' GROUP BY tier"
        )
        counts = {r["tier"]: r["n"] for r in rows}
        for tier in TIERS:
            open_cases.labels(tier).set(counts.get(tier, 0))
