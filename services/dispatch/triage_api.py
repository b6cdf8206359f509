"""The command centre's triage queue over HTTP (人工分拨): ``triage.py`` behind three routes.

- ``GET /triage?limit=&offset=``: the cases awaiting triage in the caller's area, oldest first,
  each with why it is there, the classifier's best three categories and the masked text;
- ``POST /triage/{case_id}``: the category the command centre decides; the case is dispatched by
  that category's tier rules, ``cases.reclassified`` and ``cases.dispatched`` are published;
- ``POST /cases/{case_id}/reclassify``: the same for a case already dispatched (a correction),
  which dispatches it again.

Only the command centre (role ``command_centre``, its area from the token's unit) may call them:
another role is a 403, a case outside its area a 404 (as an unknown one), a category not in the
taxonomy a 422 naming ``body.category``, a case whose state does not allow it a 409. Who decided
is the token's principal, when is the server's clock. Each decision is one transaction: the
case's row, its timeline, the queue entry and the events in the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contract.events import Code, DecidedBy
from shared.runtime.http import invalid_input, problems
from shared.runtime.identity import Principal, Role, require
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import store
from .api import MAX_LIMIT, MAX_OFFSET, CaseId, CaseSummary, Views, acting_id, case_in_reach
from .due import DUE_SOON_FRACTION
from .model import Case, TriageEntry
from .triage import Decision, Refused

if TYPE_CHECKING:
    from .app import DispatchService

log = get_logger(component="dispatch-api")

CommandCentre = Annotated[Principal, Depends(require(Role.COMMAND_CENTRE))]
_NO_TEXT: Final = "text without NUL characters or lone surrogates"


class SuggestedCategory(BaseModel):
    category: str
    category_name: str
    probability: float = Field(description="The classifier's calibrated probability")


class TriageItem(BaseModel):
    """A case awaiting the command centre's category (personal data masked by intake)."""

    case_id: str
    since: datetime = Field(description="When it entered the queue")
    waiting_s: float = Field(description="Seconds in the queue so far")
    reasons: list[str] = Field(description="low_confidence, moderation, returned (退单), ...")
    category: str = Field(description="Intake's guess (a returned case's: its category)")
    category_name: str
    confidence: float = Field(description="The classifier's probability for its guess")
    suggestions: list[SuggestedCategory] = Field(description="The best three, best first")
    moderation: list[str] = Field(description="Kinds of words flagged (审核), never the words")
    source: str
    title: str | None
    description: str
    district: str | None
    street: str | None
    community: str | None
    grid: str | None
    building: str | None
    urgent: bool
    supporters: int = Field(description="Reports on the case (附议 included)")
    households: int | None
    returned_by: str | None = Field(
        None, description="退单: the unit that returned the case as not theirs (null: opened here)"
    )
    return_note: str | None = Field(None, description="退单: why, as the unit said")
    excluded_units: list[str] = Field(
        default_factory=list,
        description="Units that returned it: its category kept, it goes to none of them",
    )


class TriageList(BaseModel):
    items: list[TriageItem]
    total: int = Field(description="Cases awaiting triage in the caller's area")
    limit: int
    offset: int
    now: datetime = Field(description="The server's time")


class ReclassifyRequest(BaseModel):
    """The category the command centre decides (a code of the taxonomy) and, optionally, why.
    Who and when are not fields: they come from the token and the clock."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"category": "parking", "note": "描述为占用消防通道"}]},
    )

    category: Code
    note: Annotated[str, Field(max_length=2000)] | None = None

    @field_validator("note")
    @classmethod
    def _storable(cls, note: str | None) -> str | None:
        """Text PostgreSQL can keep (the note goes to the timeline and the event)."""
        if note is None:
            return note
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"note must be {_NO_TEXT}") from None
        if "\x00" in note:
            raise ValueError(f"note must be {_NO_TEXT}")
        return note


class Reclassified(BaseModel):
    case_id: str
    from_category: str
    to_category: str
    at: datetime = Field(description="When: the server's time")
    by: DecidedBy = Field(description="Who decided: from the token")
    case: CaseSummary = Field(description="The case now, dispatched by its new category")


def register_triage_routes(svc: DispatchService) -> None:
    svc.app.include_router(build_router(svc))


def build_router(svc: DispatchService) -> APIRouter:
    router = APIRouter(tags=["triage (人工分拨)"])
    policy = svc.dispatch.policy
    triage = svc.dispatch.triage

    def item(case: Case, entry: TriageEntry, now: datetime) -> TriageItem:
        return TriageItem(
            case_id=case.case_id,
            since=entry.since,
            waiting_s=max(0.0, (now - entry.since).total_seconds()),
            reasons=list(entry.reasons),
            category=case.category,
            category_name=policy.category_name(case.category),
            confidence=entry.confidence,
            suggestions=[
                SuggestedCategory(
                    category=s.category,
                    category_name=policy.category_name(s.category),
                    probability=s.probability,
                )
                for s in entry.suggestions
            ],
            moderation=list(entry.moderation),
            source=entry.source,
            title=entry.title,
            description=entry.description,
            returned_by=entry.returned_by,
            return_note=entry.return_note,
            excluded_units=list(case.excluded_units),
            district=case.district,
            street=case.street,
            community=case.community,
            grid=case.grid,
            building=case.building,
            urgent=case.urgent,
            supporters=case.supporters,
            households=case.households,
        )

    @router.get("/triage", response_model=TriageList, responses=problems(401, 403, 422))
    async def queue(
        caller: CommandCentre,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Any:
        """The cases awaiting triage (人工分拨) in the command centre's area, oldest first."""
        assert caller.unit is not None  # a command centre's token names its unit
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn:
            units = await store.area_units(conn, caller.unit)
            total, page = await store.triage_queue(conn, units, limit, offset)
        return TriageList(
            items=[item(c, e, now) for c, e in page],
            total=total,
            limit=limit,
            offset=offset,
            now=now,
        )

    async def decide(
        case_id: str, body: ReclassifyRequest, caller: Principal, *, from_triage: bool
    ) -> Reclassified:
        if policy.taxonomy.get(body.category) is None:
            raise invalid_input("body", "category", "not a category of the taxonomy")
        actor = acting_id(caller)
        assert actor is not None  # a command centre's token names its unit
        by = DecidedBy(
            role=caller.role.value,
            unit=caller.unit,
            handler_id=caller.handler_id,
            subject=caller.subject,
        )
        d = Decision(
            body.category,
            by,
            actor,
            "triage" if from_triage else "correction",
            body.note,
        )
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn, conn.transaction():
            case = await case_in_reach(conn, caller, case_id)
            case = await store.load_case(conn, case_id, lock=True) or case
            uow = UnitOfWork(
                conn, source=f"wangge/{svc.name}", topic_prefix=svc.settings.topic_prefix
            )
            try:
                after = await triage.reclassify(uow, case, d, now, from_triage=from_triage)
            except Refused as exc:
                raise HTTPException(409, str(exc)) from None
            await uow.flush()
        log.info(
            "case reclassified",
            case_id=case_id,
            from_category=case.category,
            to_category=after.category,
            origin=d.origin,
            unit=after.unit,
        )
        views = Views(policy, now, actor, DUE_SOON_FRACTION)
        return Reclassified(
            case_id=case_id,
            from_category=case.category,
            to_category=after.category,
            at=now,
            by=by,
            case=views.summary(after),
        )

    @router.post(
        "/triage/{case_id}",
        response_model=Reclassified,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def decide_triage(case_id: CaseId, body: ReclassifyRequest, caller: CommandCentre) -> Any:
        """Decide the category of a case awaiting triage: it is dispatched by that category's
        tier rules (its first dispatch). The guess itself may be confirmed. 409: the case is
        not awaiting triage (decided before, or never held)."""
        return await decide(case_id, body, caller, from_triage=True)

    @router.post(
        "/cases/{case_id}/reclassify",
        response_model=Reclassified,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def reclassify(case_id: CaseId, body: ReclassifyRequest, caller: CommandCentre) -> Any:
        """Correct the category of a dispatched case (not resolved, not at the residents'
        council): it is dispatched again by its new category's tier rules. 409: the state does
        not allow it, the case is already in that category, or it awaits triage."""
        return await decide(case_id, body, caller, from_triage=False)

    return router
