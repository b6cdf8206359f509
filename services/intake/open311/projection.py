"""The case events intake keeps for Open311 (``case_progress``): what dispatch and feedback did.

Intake subscribes to ``cases.dispatched``, ``cases.accepted``, ``cases.escalated``,
``cases.resolved``, ``cases.verified``, ``cases.sent_back`` (核查结案), ``cases.reopened`` (and
``cases.closed``, which it already reads to stop merging into a closed case); each handler writes
its batch's facts with their times (one pipelined statement a batch), nothing is published.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel

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
from shared.runtime.consumer import Claimed, Meta
from shared.runtime.db import Connection
from shared.runtime.uow import UnitOfWork

from ..redaction import redact
from . import store

E = TypeVar("E", bound=BaseModel)


def event_time(meta: Meta) -> datetime:
    """When the event happened, for events that carry no time of their own: its ``ce_time``."""
    try:
        at = datetime.fromisoformat(meta.headers["ce_time"])
    except (KeyError, ValueError):
        return meta.received_at
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _events(claimed: list[Claimed[E]]) -> Iterator[tuple[E, Meta]]:
    return ((c.event, c.meta) for c in claimed if c.event is not None)


async def on_dispatched(conn: Connection, claimed: list[Claimed[CaseDispatched]]) -> None:
    rows = []
    for e, m in _events(claimed):
        at = e.dispatched_at or event_time(m)
        rows.append((e.case_id, e.attempt, e.tier, e.unit, at, e.respond_by, e.resolve_by))
    await store.dispatched(conn, rows)


async def on_accepted(conn: Connection, claimed: list[Claimed[CaseAccepted]]) -> None:
    await store.accepted(conn, [(e.case_id, e.accepted_at) for e, _ in _events(claimed)])


async def on_escalated(conn: Connection, claimed: list[Claimed[CaseEscalated]]) -> None:
    await store.escalated(
        conn,
        [(e.case_id, e.escalated_at or event_time(m), e.from_tier) for e, m in _events(claimed)],
    )


async def on_resolved(conn: Connection, claimed: list[Claimed[CaseResolved]]) -> None:
    await store.resolved(
        conn,
        [(e.case_id, e.resolved_at, redact(e.note), e.verifier_unit) for e, _ in _events(claimed)],
    )


async def on_verified(conn: Connection, claimed: list[Claimed[CaseVerified]]) -> None:
    await store.verified(
        conn, [(e.case_id, e.resolved_at, e.verified_at) for e, _ in _events(claimed)]
    )


async def on_sent_back(conn: Connection, claimed: list[Claimed[CaseSentBack]]) -> None:
    await store.sent_back(conn, [(e.case_id, e.sent_back_at) for e, _ in _events(claimed)])


async def on_reopened(conn: Connection, claimed: list[Claimed[CaseReopened]]) -> None:
    await store.reopened(
        conn, [(e.case_id, event_time(m), e.reopen_count) for e, m in _events(claimed)]
    )


async def on_closed(uow: UnitOfWork, e: CaseClosed, meta: Meta) -> None:
    await store.closed(uow.conn, [(e.case_id, e.closed_at, e.outcome)])
