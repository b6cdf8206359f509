"""Feedback's handlers: the case read model, follow-up requests, authenticated ratings, closing,
reopening, and the unrated-closing timer.

Case events arrive on different topics through different consumers, so their order across
topics is not guaranteed. Every batch of case events first locks its cases' rows in case_id
order, placeholders made for cases not known yet (cases.opened late: ``case_ordered``,
``case_locked``); each event then records its fact (``projection``: a batch of facts
set-based, ``Feedback.record``); what happens to the case then
is the step of ``lifecycle``'s table for its state and the input, consulted once per input:
follow-up requests go to the reporters known when the case is resolved, and to each reporter
learnt later (a late cases.opened, a cases.merged) while the round's rating window is open.
Each milestone of the case (``notices``: dispatched, accepted, extended, resolved) is told to every
reporter once (``cases.notified``), and a reporter learnt later is told the milestones so far.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeAlias, assert_never

import asyncpg

from shared.contract.events import (
    CaseClosed,
    CaseExtended,
    CaseMerged,
    CaseOpened,
    CaseReclassified,
    CaseReopened,
    FeedbackRejected,
    FeedbackSubmitted,
    FieldError,
)
from shared.registry.store import unit_names
from shared.runtime.clock import Clock, utcnow
from shared.runtime.consumer import (
    BatchHandler,
    Claimed,
    Handler,
    Meta,
    locked_batch,
    locked_first,
)
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import lifecycle, notices, projection, store
from .lifecycle import Input, Step
from .projection import FactEvent
from .requests import FollowUpRequests
from .tokens import INVALID, new_token, refusal, token_hash

log = get_logger(component="feedback")
SWEEP_BATCH = 500
# a row of ``cases``, or the columns of it that a step reads
CaseRow: TypeAlias = asyncpg.Record | Mapping[str, Any]


def case_ordered(handler: Handler[Any], *, create: bool = True) -> BatchHandler[Any]:
    """A per-message handler of case events as a batch handler that first locks the batch's
    cases in case_id order (``store.lock_cases``; ``create``: placeholders for cases not known
    yet), then applies each message in order (``locked_first``)."""
    return locked_first(_case_lock(create), lambda e: e.case_id, handler)


def case_locked(handler: BatchHandler[Any], *, create: bool = True) -> BatchHandler[Any]:
    """A batch handler of case events that gets its batch with the batch's cases locked in
    case_id order first (``create``: placeholders made for cases not known yet;
    ``locked_batch``)."""
    return locked_batch(_case_lock(create), lambda e: e.case_id, handler)


def _case_lock(create: bool) -> Callable[[Connection, list[str]], Awaitable[None]]:
    async def lock(conn: Connection, case_ids: list[str]) -> None:
        await store.lock_cases(conn, case_ids, create=create)

    return lock


class Feedback:
    def __init__(
        self, *, window: timedelta, requests: FollowUpRequests, clock: Clock = utcnow
    ) -> None:
        self.window = window
        self.requests = requests
        self.clock = clock

    # --- the read model -----------------------------------------------------------------------

    async def on_opened(self, uow: UnitOfWork, ev: CaseOpened, meta: Meta) -> None:
        loc = ev.location
        admin = loc.administrative  # 插花地: the place's own chain (None: served by it)
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
            admin_district=admin.district if admin else None,
            admin_street=admin.street if admin else None,
            admin_community=admin.community if admin else None,
            admin_grid=admin.grid if admin else None,
            default_tier=ev.default_tier,
            opened_at=ev.opened_at,
        )
        if not ev.anonymous:  # an anonymous reporter (匿名) is not followed up
            await self.learn_reporter(uow, ev.case_id, ev.reporter_ref, ev.source)

    async def on_merged(self, uow: UnitOfWork, ev: CaseMerged, meta: Meta) -> None:
        """A supporter (附议) of the case: followed up like the first reporter, unless
        anonymous (its case row made and locked by ``case_ordered``)."""
        if not ev.anonymous:
            await self.learn_reporter(uow, ev.case_id, ev.reporter_ref, ev.source)

    async def on_reclassified(self, uow: UnitOfWork, ev: CaseReclassified, meta: Meta) -> None:
        """The command centre's category (人工分拨): the figures count the case under it (its
        case row made and locked by ``case_ordered``)."""
        await store.reclassify(
            uow.conn,
            ev.case_id,
            ev.to_category,
            ev.to_category_name,
            ev.to_default_tier,
            ev.reclassified_at,
        )

    async def learn_reporter(
        self, uow: UnitOfWork, case_id: str, reporter_ref: str, channel: str
    ) -> None:
        """The lifecycle's ``reporter``: asked at once while the round's rating window is open
        (the row lock serialises this with the other handlers of the case; taken before the
        reporter row's foreign key shares it, as every handler does)."""
        case = await store.get_case(uow.conn, case_id, lock=True)
        assert case is not None
        await store.add_reporter(uow.conn, case_id, reporter_ref, channel)
        await self.notify(uow, case_id)  # the milestones reached so far
        await self.advance(uow, case, "reporter")

    async def record(self, conn: Connection, claimed: list[Claimed[FactEvent]]) -> None:
        """A batch of events of ``projection.FACTS`` (one topic's; its cases locked first:
        ``case_locked``), set-based: their fact rows; the milestones among them (``notices``)
        kept and told to the reporters; then, message by message in order, the step of the
        lifecycle of each that is an input of it (``cases.verified``, or ``cases.resolved``
        where nobody verifies it: a new rating round, unless the case already awaits its
        rating or is closed): a milestone is told before the follow-up it may start."""
        by_table: dict[str, list[dict[str, Any]]] = {}
        reached: list[tuple[UnitOfWork, notices.MilestoneEvent, datetime]] = []
        inputs: list[tuple[Claimed[FactEvent], Input]] = []
        for c in claimed:
            ev = c.event
            fact = projection.fact_of(ev)
            row = projection.fact_row(fact, ev, c.meta)
            by_table.setdefault(fact.table, []).append(row)
            if isinstance(ev, notices.MILESTONE_EVENTS):
                reached.append((c.uow, ev, row[fact.when]))
            if (given := projection.input_of(fact, ev)) is not None:
                inputs.append((c, given))
        for table, rows in by_table.items():
            await store.insert_facts(conn, table, rows)
        if reached:
            await self.reached_many(conn, reached)
        if not inputs:
            return
        # the inputs' steps in order, each on its case as the steps before it left it; the new
        # rating rounds started together
        now = self.clock()
        cases: dict[str, CaseRow] = dict(
            await store.get_cases(conn, [c.event.case_id for c, _ in inputs])
        )
        starts: list[tuple[UnitOfWork, CaseRow]] = []
        for c, given in inputs:
            case_id = c.event.case_id
            case = cases[case_id]  # locked (made if need be) by case_locked
            step = lifecycle.step(case["state"], given)
            if step is None:
                log.debug("no step", state=case["state"], input=given)
            elif step.action == "start_round":
                cases[case_id] = self.round_started(case, step, now)
                starts.append((c.uow, cases[case_id]))
            else:
                await self.start_rounds(conn, starts)
                starts = []
                cases[case_id] = await self.carried_out(c.uow, case, given, step, now)
        await self.start_rounds(conn, starts)

    async def on_extended(self, uow: UnitOfWork, ev: CaseExtended, meta: Meta) -> None:
        """An extension approved (缓办/延期): a milestone the reporters hear of (its case row
        made and locked by ``case_ordered``)."""
        await self.reached(uow, ev, ev.extended_at)

    # --- what residents hear (cases.notified) -------------------------------------------------

    async def reached(self, uow: UnitOfWork, ev: notices.MilestoneEvent, at: datetime) -> None:
        """The case reached a milestone (``at``: when): kept once, and told to each reporter
        (the case row is locked)."""
        await self.reached_many(uow.conn, [(uow, ev, at)])

    async def reached_many(
        self, conn: Connection, reached: list[tuple[UnitOfWork, notices.MilestoneEvent, datetime]]
    ) -> None:
        """Milestones reached (each with its message's unit of work and when), kept once each,
        then told to each reporter of their cases (the cases' rows locked), each case's notices
        emitted by the unit of work of its last milestone here."""
        names = await unit_names(conn, sorted({ev.unit for _, ev, _ in reached}))
        await store.add_milestones(
            conn,
            [notices.milestone(ev, at=at, unit_name=names.get(ev.unit)) for _, ev, at in reached],
        )
        await self.notify_many(conn, {ev.case_id: uow for uow, ev, _ in reached})

    async def notify(self, uow: UnitOfWork, case_id: str) -> None:
        """A ``cases.notified`` for each milestone of the case to each reporter not told of it
        yet (anonymous reporters are not reporters here: they hear nothing)."""
        await self.notify_many(uow.conn, {case_id: uow})

    async def notify_many(self, conn: Connection, uows: dict[str, UnitOfWork]) -> None:
        """``notify`` for each case of ``uows``, emitting by its unit of work."""
        made = [
            (row["case_id"], notices.notice(row["case_id"], dict(row)), row["key"])
            for row in await store.notices_due(conn, list(uows))
        ]
        new = await store.add_notices(
            conn, [(n.notice_id, case, key, n.reporter_ref) for case, n, key in made], self.clock()
        )
        for case, notice, _ in made:
            if notice.notice_id in new:
                uows[case].emit(notice)

    # --- the lifecycle ------------------------------------------------------------------------

    async def advance(self, uow: UnitOfWork, case: asyncpg.Record, event: Input) -> None:
        """Consult the transition table once for ``event`` and carry out its step (``case``:
        the case's row, locked)."""
        step = lifecycle.step(case["state"], event)
        if step is None:
            log.debug("no step", state=case["state"], input=event)
            return
        await self.carry_out(uow, case, event, step, self.clock())

    async def carry_out(
        self,
        uow: UnitOfWork,
        case: CaseRow,
        event: Input,
        step: Step,
        now: datetime,
        comment: str | None = None,
    ) -> None:
        """Step ``step`` of the table for ``event``: the case's new state and the step's
        action, its events published (``comment``: of the rating that reopens the case)."""
        conn, case_id = uow.conn, case["case_id"]
        match step.action:
            case "start_round":
                await self.start_rounds(conn, [(uow, self.round_started(case, step, now))])
            case "ask_new_reporters":
                await self.ask_reporters(uow, case)
            case "close_satisfied" | "close_unrated":
                outcome = "satisfied" if step.action == "close_satisfied" else "unrated"
                await store.update_case(
                    conn, case_id, state=step.state, closed_at=now, outcome=outcome
                )
                uow.emit(CaseClosed(case_id=case_id, outcome=outcome, closed_at=now))
            case "reopen":
                count = case["reopen_count"] + 1
                await store.update_case(
                    conn, case_id, state=step.state, reopen_count=count, rating_window_ends=None
                )
                await store.insert_fact(
                    conn, "reopens", case_id=case_id, reopen_count=count, reason=event, at=now
                )
                text = (comment or "").strip()
                detail = f"{event}: {text[:500]}" if text else event
                uow.emit(CaseReopened(case_id=case_id, reason=detail, reopen_count=count))
            case _:
                assert_never(step.action)

    async def carried_out(
        self,
        uow: UnitOfWork,
        case: CaseRow,
        event: Input,
        step: Step,
        now: datetime,
        comment: str | None = None,
    ) -> asyncpg.Record:
        """``carry_out``, then the case's row as the step left it (read again: a later message
        of the same batch decides on it)."""
        await self.carry_out(uow, case, event, step, now, comment)
        row = await store.get_case(uow.conn, case["case_id"])
        assert row is not None
        return row

    def round_started(self, case: CaseRow, step: Step, now: datetime) -> dict[str, Any]:
        """The case's row once a new rating round started at ``now`` (``step``: start_round)."""
        return {
            **dict(case),
            "state": step.state,
            "round": case["round"] + 1,
            "rating_window_ends": now + self.window,
        }

    async def start_rounds(
        self, conn: Connection, started: list[tuple[UnitOfWork, CaseRow]]
    ) -> None:
        """New rating rounds (each case's row as ``round_started`` made it, with its message's
        unit of work): the rows written with one statement, then the reporters asked."""
        if not started:
            return
        await store.start_rounds(
            conn,
            [(c["case_id"], c["state"], c["round"], c["rating_window_ends"]) for _, c in started],
        )
        await self.ask_reporters_many(conn, started)

    async def ask_reporters(self, uow: UnitOfWork, case: CaseRow) -> None:
        """``ask_reporters_many`` for one case."""
        await self.ask_reporters_many(uow.conn, [(uow, case)])

    async def ask_reporters_many(
        self, conn: Connection, cases: list[tuple[UnitOfWork, CaseRow]]
    ) -> None:
        """While each round's rating window is open, send a request to each reporter of the case
        not yet asked in this round, with the round's expiry (the requests of all the cases
        found and recorded with one statement each; the events by each case's unit of work)."""
        now = self.clock()
        open_ = {
            c["case_id"]: (uow, c)
            for uow, c in cases
            if lifecycle.window_open(c["rating_window_ends"], now)
        }
        if not open_:
            return
        rows = await store.reporters_to_ask(
            conn, [(case_id, c["round"]) for case_id, (_, c) in open_.items()]
        )
        requests = []
        for r in rows:
            uow, case = open_[r["case_id"]]
            token, expires = new_token(), case["rating_window_ends"]
            requests.append(
                (token_hash(token), r["case_id"], r["reporter_ref"], case["round"], now, expires)
            )
            for event in self.requests.events(
                case_id=r["case_id"],
                reporter_ref=r["reporter_ref"],
                channel=r["channel"],
                rating_token=token,
                expires_at=expires,
                round=case["round"],
            ):
                uow.emit(event)
        await store.insert_requests(conn, requests)

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
        uow.emit(
            FeedbackRejected(
                case_id=case_id,
                reason=reason,
                reporter_ref=request["reporter_ref"] if request is not None else None,
                round=request["round"] if request is not None else None,
            )
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

    async def on_submitted(
        self, conn: Connection, claimed: list[Claimed[FeedbackSubmitted]]
    ) -> None:
        """A batch of ratings (its cases locked first, none made: ``case_locked``), each
        authenticated by its token; the first valid rating of a round decides. Set-based: the
        cases and the tokens' requests read at once, each rating then judged in order on its
        case and request as the ratings before it in the batch left them (a token used once; a
        case a rating closed is read again), the requests used and the ratings recorded at
        once."""
        now = self.clock()
        cases = await store.get_cases(conn, [c.event.case_id for c in claimed])
        requests: dict[str, Any] = dict(
            await store.find_requests(conn, [token_hash(c.event.rating_token) for c in claimed])
        )
        used: list[tuple[str, datetime]] = []
        ratings: list[dict[str, Any]] = []
        for c in claimed:
            ev, uow = c.event, c.uow
            case = cases.get(ev.case_id)
            if case is None:
                self.reject(uow, ev.case_id, "unknown case")
                continue
            hashed = token_hash(ev.rating_token)
            req = requests.get(hashed)
            why = refusal(req, ev.case_id, case["round"], now)
            if why is not None:
                # the request (its reporter and round) only for a real token of this case
                self.reject(uow, ev.case_id, why, None if why == INVALID else req)
                continue
            assert req is not None
            used.append((hashed, now))
            requests[hashed] = {**dict(req), "used_at": now}
            # the table has a step only for the first valid rating of the round: it decides;
            # any other valid rating is recorded, counts in the rates, and decides nothing
            verdict = lifecycle.verdict(ev.resolved, ev.satisfaction)
            step = lifecycle.step(case["state"], verdict)
            ratings.append(
                {
                    "case_id": ev.case_id,
                    "reporter_ref": req["reporter_ref"],
                    "round": req["round"],
                    "resolved": ev.resolved,
                    "satisfaction": ev.satisfaction,
                    "comment": ev.comment,
                    "at": min(ev.at, now),  # the channel's time, never in the future
                    "recorded_at": now,
                    "decided": step is not None,
                }
            )
            if step is not None:
                cases[ev.case_id] = await self.carried_out(
                    uow, case, verdict, step, now, ev.comment
                )
        await store.use_requests(conn, used)
        await store.insert_ratings(conn, ratings)

    # --- the durable timer --------------------------------------------------------------------

    async def close_unrated(self, uow: UnitOfWork, now: datetime) -> int:
        """Close, as ``unrated``, every case whose rating window ended without a decisive
        rating. Rows are claimed with FOR UPDATE SKIP LOCKED: replicas never close one twice.
        The claim takes only cases awaiting a rating (state resolved): one step for all."""
        step = lifecycle.step("resolved", "window_ended")
        assert step is not None
        ids = await store.claim_unrated(uow.conn, now, SWEEP_BATCH)
        for case_id in ids:
            await self.carry_out(uow, {"case_id": case_id}, "window_ended", step, now)
        if ids:
            log.info("closed unrated cases", count=len(ids))
        return len(ids)
