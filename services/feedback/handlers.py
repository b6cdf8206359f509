"""Feedback's handlers: the case read model, follow-up requests, authenticated ratings, closing,
reopening, and the unrated-closing timer.

Case events arrive on different topics through different consumers, so their order across
topics is not guaranteed. Every handler first makes sure the case row exists (a placeholder
when cases.opened is late) and records its fact; follow-up requests go to the reporters known
when the case is resolved, and to each reporter learnt later (a late cases.opened, a
cases.merged) while the case still awaits its rating.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.clock import Clock, utcnow
from shared.consumer import Meta
from shared.events import (
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseEscalated,
    CaseMerged,
    CaseOpened,
    CaseReopened,
    CaseResolved,
    FeedbackRejected,
    FeedbackRequested,
    FeedbackSubmitted,
    FieldError,
)
from shared.logging import get_logger
from shared.uow import UnitOfWork

from . import store
from .formulas import SATISFIED
from .tokens import new_token, token_hash

log = get_logger(component="feedback")
SWEEP_BATCH = 500


def event_time(meta: Meta) -> datetime:
    """When the event happened, by its CloudEvents ``ce_time`` (else when it was received)."""
    raw = meta.headers.get("ce_time")
    if raw:
        try:
            at = datetime.fromisoformat(raw)
            if at.tzinfo is not None:
                return at
        except ValueError:
            pass
    return meta.received_at


class Feedback:
    def __init__(self, *, window: timedelta, clock: Clock = utcnow) -> None:
        self.window = window
        self.clock = clock

    # --- the read model -----------------------------------------------------------------------

    async def on_opened(self, uow: UnitOfWork, ev: CaseOpened, meta: Meta) -> None:
        loc = ev.location
        await store.upsert_opened(
            uow.conn,
            case_id=ev.case_id,
            category=ev.category,
            category_name=ev.category_name,
            source=ev.source,
            district=loc.district,
            street=loc.street,
            community=loc.community,
            grid=loc.grid,
            building=loc.building,
            default_tier=ev.default_tier,
            opened_at=ev.opened_at,
        )
        await store.add_reporter(uow.conn, ev.case_id, ev.reporter_ref, ev.source)
        await self.ask_reporters(uow, ev.case_id)

    async def on_merged(self, uow: UnitOfWork, ev: CaseMerged, meta: Meta) -> None:
        """A supporter (附议) of the case: followed up like the first reporter."""
        await store.ensure_case(uow.conn, ev.case_id)
        await store.add_reporter(uow.conn, ev.case_id, ev.reporter_ref, ev.source)
        await self.ask_reporters(uow, ev.case_id)

    async def on_dispatched(self, uow: UnitOfWork, ev: CaseDispatched, meta: Meta) -> None:
        await store.ensure_case(uow.conn, ev.case_id)
        await store.insert_fact(
            uow.conn,
            "dispatches",
            case_id=ev.case_id,
            attempt=ev.attempt,
            tier=ev.tier,
            unit=ev.unit,
            respond_by=ev.respond_by,
            resolve_by=ev.resolve_by,
            dispatched_at=ev.dispatched_at or event_time(meta),
        )

    async def on_accepted(self, uow: UnitOfWork, ev: CaseAccepted, meta: Meta) -> None:
        await store.ensure_case(uow.conn, ev.case_id)
        await store.insert_fact(
            uow.conn,
            "accepts",
            case_id=ev.case_id,
            tier=ev.tier,
            unit=ev.unit,
            accepted_at=ev.accepted_at,
            on_time=ev.on_time,
        )

    async def on_escalated(self, uow: UnitOfWork, ev: CaseEscalated, meta: Meta) -> None:
        await store.ensure_case(uow.conn, ev.case_id)
        await store.insert_fact(
            uow.conn,
            "escalations",
            case_id=ev.case_id,
            from_tier=ev.from_tier,
            to_tier=ev.to_tier,
            unit=ev.unit,
            reason=ev.reason,
            at=ev.escalated_at or event_time(meta),
        )

    async def on_resolved(self, uow: UnitOfWork, ev: CaseResolved, meta: Meta) -> None:
        """Record the resolution; unless the case already awaits a rating or is closed, open a
        new rating round: every reporter gets a fresh single-use token."""
        conn = uow.conn
        await store.ensure_case(conn, ev.case_id)
        case = await store.get_case(conn, ev.case_id, lock=True)
        assert case is not None
        await store.insert_fact(
            conn,
            "resolutions",
            case_id=ev.case_id,
            tier=ev.tier,
            unit=ev.unit,
            resolved_at=ev.resolved_at,
            on_time=ev.on_time,
        )
        if case["state"] not in ("open", "reopened"):
            log.info("resolution recorded, no new rating round", state=case["state"])
            return
        await store.update_case(
            conn,
            ev.case_id,
            state="resolved",
            round=case["round"] + 1,
            rating_window_ends=self.clock() + self.window,
        )
        await self.ask_reporters(uow, ev.case_id)

    async def ask_reporters(self, uow: UnitOfWork, case_id: str) -> None:
        """While the round's rating window is open, send a request to each reporter not yet asked
        in this round (the row lock serialises this with the other handlers of the case). Open
        also once another reporter's rating has closed the case: a reporter learnt late (its
        ``cases.opened`` or ``cases.merged`` read after the resolution and that rating, as after
        a network partition) still gets to rate; the rating counts and decides nothing."""
        conn = uow.conn
        case = await store.get_case(conn, case_id, lock=True)
        now = self.clock()
        if (
            case is None
            or case["state"] not in ("resolved", "closed")
            or case["rating_window_ends"] is None
            or case["rating_window_ends"] <= now
        ):
            return
        expires = case["rating_window_ends"]
        for r in await store.reporters_to_ask(conn, case_id, case["round"]):
            token = new_token()
            await store.insert_request(
                conn,
                token_hash=token_hash(token),
                case_id=case_id,
                reporter_ref=r["reporter_ref"],
                round_=case["round"],
                requested_at=now,
                expires_at=expires,
            )
            uow.publish(
                "feedback.requested",
                FeedbackRequested(
                    case_id=case_id,
                    reporter_ref=r["reporter_ref"],
                    channel=r["channel"],
                    rating_token=token,
                    expires_at=expires,
                    round=case["round"],
                ),
                key=case_id,
                subject=case_id,
            )

    # --- ratings ------------------------------------------------------------------------------

    def reject(
        self,
        uow: UnitOfWork,
        case_id: str | None,
        reason: str,
        request: Any = None,
    ) -> None:
        """``feedback.rejected``; ``request``: the request row of the rating's token, if any."""
        log.info("rating rejected", reason=reason)
        uow.publish(
            "feedback.rejected",
            FeedbackRejected(
                case_id=case_id,
                reason=reason,
                reporter_ref=request["reporter_ref"] if request is not None else None,
                round=request["round"] if request is not None else None,
            ),
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
        """Authenticate the rating by its token; the first valid rating of a round decides."""
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
            self.reject(uow, ev.case_id, "token already used", req)
            return
        if req["expires_at"] <= now or req["round"] != case["round"]:
            self.reject(uow, ev.case_id, "token expired", req)
            return
        await store.use_request(conn, req["token_hash"], now)
        decides = case["state"] == "resolved"
        await store.insert_rating(
            conn,
            case_id=ev.case_id,
            reporter_ref=req["reporter_ref"],
            round=req["round"],
            resolved=ev.resolved,
            satisfaction=ev.satisfaction,
            comment=ev.comment,
            at=min(ev.at, now),  # the channel's time, never in the future
            recorded_at=now,
            decided=decides,
        )
        if not decides:
            return  # another reporter's rating already decided this round; this one still counts
        if ev.resolved and ev.satisfaction in SATISFIED:
            await store.update_case(
                conn, ev.case_id, state="closed", closed_at=now, outcome="satisfied"
            )
            uow.publish(
                "cases.closed",
                CaseClosed(case_id=ev.case_id, outcome="satisfied", closed_at=now),
                key=ev.case_id,
                subject=ev.case_id,
            )
            return
        count = case["reopen_count"] + 1
        reason = "unsatisfied" if ev.resolved else "not_resolved"
        await store.update_case(
            conn, ev.case_id, state="reopened", reopen_count=count, rating_window_ends=None
        )
        await store.insert_fact(
            conn, "reopens", case_id=ev.case_id, reopen_count=count, reason=reason, at=now
        )
        comment = (ev.comment or "").strip()
        detail = f"{reason}: {comment[:500]}" if comment else reason
        uow.publish(
            "cases.reopened",
            CaseReopened(case_id=ev.case_id, reason=detail, reopen_count=count),
            key=ev.case_id,
            subject=ev.case_id,
        )

    # --- the durable timer --------------------------------------------------------------------

    async def close_unrated(self, uow: UnitOfWork, now: datetime) -> int:
        """Close, as ``unrated``, every case whose rating window ended without a decisive
        rating. Rows are claimed with FOR UPDATE SKIP LOCKED: replicas never close one twice."""
        ids = await store.claim_unrated(uow.conn, now, SWEEP_BATCH)
        for case_id in ids:
            await store.update_case(
                uow.conn, case_id, state="closed", closed_at=now, outcome="unrated"
            )
            uow.publish(
                "cases.closed",
                CaseClosed(case_id=case_id, outcome="unrated", closed_at=now),
                key=case_id,
                subject=case_id,
            )
        if ids:
            log.info("closed unrated cases", count=len(ids))
        return len(ids)
