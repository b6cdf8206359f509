"""三代 agency over HTTP: ``agency.py`` behind two routes, for the case's agent only.

- ``POST /cases/{case_id}/commission`` {note, commissioned_at?}: the agent records the resident's
  commission (委托), once: a ``commission`` step on the timeline and ``cases.commissioned``;
- ``POST /cases/{case_id}/relay`` {note}: the agent relays progress to the resident, numbered per
  case: a ``relay`` step and ``cases.relayed``, which feedback tells every reporter.

Who is the token's handler (never a field), when is the server's clock (the commission's own
time, when the resident commissioned, may be given: not in the future, not before the case was
opened). One transaction each: the agency's row locked, the row written, the step, the event in
the outbox. With an ``Idempotency-Key`` a retry is answered as the first time and nothing is sent
twice. A case outside the caller's reach is a 404 (as an unknown one), a caller who reaches it
but is not its agent a 403, a case without an agent or already commissioned (or resolved, for a
commission) a 409, a bad field a 422 naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.runtime.http import invalid_input, problems
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import agency_store, store
from .agency import (
    MAX_NOTE,
    Refused,
    commission_refusal,
    plan_commission,
    plan_relay,
    relay_refusal,
)
from .api import Caller, CaseId, IdempotencyKey, acting_id, case_in_reach, replay_on

if TYPE_CHECKING:
    from .app import DispatchService

log = get_logger(component="dispatch-api")


def _storable(note: str) -> str:
    """Text PostgreSQL can keep (no NUL, no lone surrogate)."""
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("note must be text without lone surrogates") from None
    if "\x00" in note:
        raise ValueError("note must be text without NUL characters")
    return note


class CommissionRequest(BaseModel):
    """The resident's commission (委托) as the agent records it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "note": "王阿姨委托代办临时救助申请，材料已收齐",
                    "commissioned_at": "2026-11-23T09:30:00+08:00",
                }
            ]
        },
    )

    note: Annotated[str, Field(min_length=1, max_length=MAX_NOTE)]
    commissioned_at: AwareDatetime | None = Field(
        None, description="When the resident commissioned (default: now); not in the future"
    )

    _note = field_validator("note")(_storable)


class RelayRequest(BaseModel):
    """Progress the agent tells the resident (in words the resident reads)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "街道民政科已受理，预计下周三前审核完毕"}]},
    )

    note: Annotated[str, Field(min_length=1, max_length=MAX_NOTE)]

    _note = field_validator("note")(_storable)


class CommissionView(BaseModel):
    case_id: str
    agency_mode: str
    agent_id: str
    note: str
    commissioned_at: datetime
    recorded_at: datetime


class RelayView(BaseModel):
    case_id: str
    relay: int = Field(description="The case's n-th relay")
    agent_id: str
    note: str
    at: datetime


def _refused(why: Refused) -> Exception:
    if why.field is not None:
        return invalid_input("body", why.field, str(why))
    return HTTPException(why.status, str(why))


def register_agency_routes(svc: DispatchService) -> None:
    svc.app.include_router(build_router(svc))


def build_router(svc: DispatchService) -> APIRouter:
    router = APIRouter(tags=["agency (三代)"])

    def uow_of(conn: Any) -> UnitOfWork:
        return UnitOfWork(conn, source=f"wangge/{svc.name}", topic_prefix=svc.settings.topic_prefix)

    @router.post(
        "/cases/{case_id}/commission",
        response_model=CommissionView,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def commission(
        case_id: CaseId, body: CommissionRequest, caller: Caller, key: IdempotencyKey = None
    ) -> Any:
        """Record the resident's commission (委托) of the case, as its agent (三代). 200: recorded
        (or a retry with the same Idempotency-Key); 403: not the case's agent; 404: no such case
        within reach; 409: no agent, already commissioned, or resolved; 422: a bad field."""
        me = acting_id(caller)
        now = svc.dispatch.clock()
        request_key = f"{me}\n{key}" if key and me else None
        async with svc.pool.acquire() as conn, conn.transaction():
            await case_in_reach(conn, caller, case_id)
            if request_key is not None:
                earlier = await agency_store.by_commission_key(conn, request_key)
                if earlier is not None:
                    replay_on(earlier["case_id"], case_id)
                    return {
                        "case_id": case_id,
                        "agency_mode": earlier["agency_mode"],
                        "agent_id": earlier["agent_id"],
                        "note": earlier["commission_note"],
                        "commissioned_at": earlier["commissioned_at"],
                        "recorded_at": earlier["commission_recorded_at"],
                    }
            case = await store.load_case(conn, case_id, lock=True)
            assert case is not None  # in reach a moment ago; cases are never deleted
            agency = await agency_store.lock_agency(conn, case_id)
            at = body.commissioned_at or now
            why = commission_refusal(agency, case, me, body.note, at, now)
            if why is not None:
                raise _refused(why)
            assert agency is not None
            step, event = plan_commission(agency, case, body.note, at, now)
            await agency_store.record_commission(conn, event, request_key)
            await store.add_timeline_steps(conn, [step])
            uow = uow_of(conn)
            uow.emit(event, time=now)
            await uow.flush()
        log.info("commission recorded (委托)", case_id=case_id, agency_mode=agency.agency_mode)
        return event.model_dump()

    @router.post(
        "/cases/{case_id}/relay",
        response_model=RelayView,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def relay(
        case_id: CaseId, body: RelayRequest, caller: Caller, key: IdempotencyKey = None
    ) -> Any:
        """Relay progress of the case to the resident, as its agent (三代): feedback tells every
        reporter (``cases.notified`` kind ``relayed``). 200: relayed (or a retry with the same
        Idempotency-Key); 403: not the case's agent; 404: no such case within reach; 409: the
        case has no agent; 422: a bad field."""
        me = acting_id(caller)
        now = svc.dispatch.clock()
        request_key = f"{me}\n{key}" if key and me else None
        async with svc.pool.acquire() as conn, conn.transaction():
            await case_in_reach(conn, caller, case_id)
            if request_key is not None:
                earlier = await agency_store.relay_by_key(conn, request_key)
                if earlier is not None:
                    replay_on(earlier["case_id"], case_id)
                    return {"case_id": case_id, **agency_store.relay_view(earlier)}
            case = await store.load_case(conn, case_id, lock=True)
            assert case is not None
            agency = await agency_store.lock_agency(conn, case_id)
            why = relay_refusal(agency, me, body.note)
            if why is not None:
                raise _refused(why)
            assert agency is not None
            step, event = plan_relay(agency, case, body.note, agency.relays + 1, now)
            await agency_store.insert_relay(conn, event, request_key)
            await store.add_timeline_steps(conn, [step])
            uow = uow_of(conn)
            uow.emit(event, time=now)
            await uow.flush()
        log.info("progress relayed (三代)", case_id=case_id, relay=event.relay)
        return {
            "case_id": case_id,
            "relay": event.relay,
            "agent_id": event.agent_id,
            "note": event.note,
            "at": event.relayed_at,
        }

    return router
