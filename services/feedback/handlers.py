"""Feedback's handlers: follow-up requests, authenticated ratings, closing and reopening."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.consumer import Meta
from shared.events import (
    CaseClosed,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    FeedbackRejected,
    FeedbackRequested,
    FeedbackSubmitted,
    FieldError,
)
from shared.uow import UnitOfWork

from . import store
from .tokens import new_token, token_hash

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Feedback:
    def __init__(self, *, window: timedelta, clock: Clock = utcnow) -> None:
        self.window = window
        self.clock = clock

    async def on_opened(self, uow: UnitOfWork, ev: CaseOpened, meta: Meta) -> None:
        loc = ev.location
        await store.insert_case(
            uow.conn,
            case_id=ev.case_id,
            category=ev.category,
            source=ev.source,
            district=loc.district,
            street=loc.street,
            community=loc.community,
            grid=loc.grid,
            building=loc.building,
            opened_at=ev.opened_at,
        )
        await store.add_reporter(uow.conn, ev.case_id, ev.reporter_ref, ev.source)

    async def on_resolved(self, uow: UnitOfWork, ev: CaseResolved, meta: Meta) -> None:
        case = await store.get_case(uow.conn, ev.case_id, lock=True)
        if case is None:
            raise LookupError(f"resolved case {ev.case_id} was never opened here")
        now = self.clock()
        expires = now + self.window
        round_ = case["reopen_count"] + 1
        await store.update_case(
            uow.conn,
            ev.case_id,
            state="resolved",
            resolved_at=ev.resolved_at,
            tier=ev.tier,
            unit=ev.unit,
            rating_window_ends=expires,
        )
        for r in await store.reporters(uow.conn, ev.case_id):
            token = new_token()
            await uow.conn.execute(
                "INSERT INTO feedback_requests (token_hash, case_id, reporter_ref, round, "
                "expires_at) VALUES ($1, $2, $3, $4, $5)",
                token_hash(token),
                ev.case_id,
                r["reporter_ref"],
                round_,
                expires,
            )
            uow.publish(
                "feedback.requested",
                FeedbackRequested(
                    case_id=ev.case_id,
                    reporter_ref=r["reporter_ref"],
                    channel=r["channel"],
                    rating_token=token,
                    expires_at=expires,
                ),
                key=ev.case_id,
                subject=ev.case_id,
            )

    def reject(self, uow: UnitOfWork, case_id: str | None, reason: str) -> None:
        uow.publish(
            "feedback.rejected",
            FeedbackRejected(case_id=case_id, reason=reason),
            key=case_id,
            subject=case_id,
        )

    async def on_invalid(
        self, uow: UnitOfWork, obj: Any, errors: list[FieldError], meta: Meta
    ) -> None:
        case_id = obj.get("case_id")
        self.reject(
            uow,
            case_id if isinstance(case_id, str) else None,
            "invalid: " + "; ".join(f"{e.field}: {e.message}" for e in errors),
        )

    async def on_submitted(self, uow: UnitOfWork, ev: FeedbackSubmitted, meta: Meta) -> None:
        conn = uow.conn
        case = await store.get_case(conn, ev.case_id, lock=True)
        if case is None:
            self.reject(uow, ev.case_id, "unknown case")
            return
        req = await store.find_request(conn, token_hash(ev.rating_token))
        now = self.clock()
        if req is None or req["case_id"] != ev.case_id:
            self.reject(uow, ev.case_id, "invalid token")
            return
        if req["used_at"] is not None:
            self.reject(uow, ev.case_id, "token already used")
            return
        if req["expires_at"] <= now:
            self.reject(uow, ev.case_id, "token expired")
            return
        await conn.execute(
            "UPDATE feedback_requests SET used_at = $2 WHERE token_hash = $1",
            req["token_hash"],
            now,
        )
        decides = case["state"] == "resolved" and req["round"] == case["reopen_count"] + 1
        await conn.execute(
            "INSERT INTO ratings (case_id, round, resolved, satisfaction, comment, at, decided) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ev.case_id,
            req["round"],
            ev.resolved,
            ev.satisfaction,
            ev.comment,
            ev.at,
            decides,
        )
        if not decides:
            return
        if ev.resolved and ev.satisfaction in ("satisfied", "basically_satisfied"):
            await store.update_case(
                conn, ev.case_id, state="closed", closed_at=now, outcome="satisfied"
            )
            uow.publish(
                "cases.closed",
                CaseClosed(
                    case_id=ev.case_id,
                    outcome="satisfied",
                    closed_at=now,
                ),
                key=ev.case_id,
                subject=ev.case_id,
            )
        else:
            count = case["reopen_count"] + 1
            await store.update_case(conn, ev.case_id, state="reopened", reopen_count=count)
            reason = "not resolved" if not ev.resolved else "unsatisfied"
            uow.publish(
                "cases.reopened",
                CaseReopened(
                    case_id=ev.case_id,
                    reason=reason,
                    reopen_count=count,
                ),
                key=ev.case_id,
                subject=ev.case_id,
            )
