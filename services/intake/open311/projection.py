"""The case events intake keeps for Open311 (``case_progress``): what dispatch and feedback did.

Intake subscribes to ``cases.dispatched``, ``cases.accepted``, ``cases.escalated``,
``cases.resolved``, ``cases.verified``, ``cases.sent_back`` (核查结案), ``cases.reopened`` (and
``cases.closed``, which it already reads to stop merging into a closed case); each handler writes
one fact with its time, nothing is published.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.contract.events import (
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseEscalated,
    CaseReopened,
    CaseResolved,
    CaseSentBack,
    CaseVerified,
)
from shared.runtime.consumer import Meta
from shared.runtime.uow import UnitOfWork

from ..redaction import redact
from . import store


def event_time(meta: Meta) -> datetime:
    """When the event happened, for events that carry no time of their own: its ``ce_time``."""
    try:
        at = datetime.fromisoformat(meta.headers["ce_time"])
    except (KeyError, ValueError):
        return meta.received_at
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def on_dispatched(uow: UnitOfWork, e: CaseDispatched, meta: Meta) -> None:
    at = e.dispatched_at or event_time(meta)
    await store.dispatched(
        uow.conn, e.case_id, e.attempt, e.tier, e.unit, at, e.respond_by, e.resolve_by
    )


async def on_accepted(uow: UnitOfWork, e: CaseAccepted, meta: Meta) -> None:
    await store.accepted(uow.conn, e.case_id, e.accepted_at)


async def on_escalated(uow: UnitOfWork, e: CaseEscalated, meta: Meta) -> None:
    await store.escalated(uow.conn, e.case_id, e.escalated_at or event_time(meta), e.from_tier)


async def on_resolved(uow: UnitOfWork, e: CaseResolved, meta: Meta) -> None:
    await store.resolved(uow.conn, e.case_id, e.resolved_at, redact(e.note), e.verifier_unit)


async def on_verified(uow: UnitOfWork, e: CaseVerified, meta: Meta) -> None:
    await store.verified(uow.conn, e.case_id, e.resolved_at, e.verified_at)


async def on_sent_back(uow: UnitOfWork, e: CaseSentBack, meta: Meta) -> None:
    await store.sent_back(uow.conn, e.case_id, e.sent_back_at)


async def on_reopened(uow: UnitOfWork, e: CaseReopened, meta: Meta) -> None:
    await store.reopened(uow.conn, e.case_id, event_time(meta), e.reopen_count)


async def on_closed(uow: UnitOfWork, e: CaseClosed, meta: Meta) -> None:
    await store.closed(uow.conn, e.case_id, e.closed_at, e.outcome)
