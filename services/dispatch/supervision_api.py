"""Supervision (督办) over HTTP: ``supervision.py`` behind two routes.

- ``POST /cases/{case_id}/supervise``: the command centre (role ``command_centre``, the case in
  its area) sends a supervision to the unit that has the open case: a note, optionally
  ``report_by``. One transaction: the case's row locked, the supervision numbered and stored, a
  ``supervise`` step on the timeline, ``cases.supervised`` in the outbox. With an
  ``Idempotency-Key``, a retry is the same supervision (answered as the first time).
- ``GET /me/supervisions``: the supervisions of the caller's open cases (the handler API's
  ``/me/cases``) sent at their current dispatch: what the phone page badges.

Another role is a 403, a case outside the area a 404 (as an unknown one), a resolved case or
one awaiting triage a 409, a bad field a 422 naming it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from shared.contract.events import DecidedBy
from shared.runtime.http import invalid_input, problems
from shared.runtime.identity import HANDLER_ROLES, Principal, Role, require
from shared.runtime.logging import get_logger
from shared.runtime.uow import UnitOfWork

from . import store, supervision_store
from .api import CaseId, IdempotencyKey, _work, case_in_reach, replay_on
from .supervision import MAX_NOTE, Supervise, plan, refusal

if TYPE_CHECKING:
    from .app import DispatchService

log = get_logger(component="dispatch-api")

CommandCentre = Annotated[Principal, Depends(require(Role.COMMAND_CENTRE))]
Staff = Annotated[Principal, Depends(require(*HANDLER_ROLES, Role.COMMAND_CENTRE))]


class SuperviseRequest(BaseModel):
    """What the command centre asks of the unit; who and when come from the token and the
    clock, never from the body."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "note": "居民多次反映，请今日内上门处置并回复",
                    "report_by": "2026-11-24T18:00:00+08:00",
                }
            ]
        },
    )

    note: Annotated[str, Field(min_length=1, max_length=MAX_NOTE)]
    report_by: AwareDatetime | None = Field(None, description="When the unit is to report back")

    @field_validator("note")
    @classmethod
    def _storable(cls, note: str) -> str:
        """Text PostgreSQL can keep (no NUL, no lone surrogate)."""
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("note must be text without lone surrogates") from None
        if "\x00" in note:
            raise ValueError("note must be text without NUL characters")
        return note


class SupervisionView(BaseModel):
    case_id: str
    supervision: int = Field(description="The case's n-th supervision")
    tier: str
    unit: str = Field(description="The unit supervised: the case's when it was sent")
    handler_id: str | None
    attempt: int = Field(description="The dispatch attempt supervised")
    note: str
    report_by: datetime | None
    by: DecidedBy
    supervised_at: datetime


class CurrentSupervision(SupervisionView):
    count: int = Field(description="Supervisions sent at this dispatch attempt")


class SupervisionList(BaseModel):
    items: list[CurrentSupervision]


def view(row: Any) -> dict[str, Any]:
    return {
        "case_id": row["case_id"],
        "supervision": row["n"],
        "tier": row["tier"],
        "unit": row["unit"],
        "handler_id": row["handler_id"],
        "attempt": row["attempt"],
        "note": row["note"],
        "report_by": row["report_by"],
        "by": DecidedBy(role=row["by_role"], unit=row["by_unit"], subject=row["by_subject"]),
        "supervised_at": row["at"],
    }


def register_supervision_routes(svc: DispatchService) -> None:
    svc.app.include_router(build_router(svc))


def build_router(svc: DispatchService) -> APIRouter:
    router = APIRouter(tags=["supervision (督办)"])

    @router.post(
        "/cases/{case_id}/supervise",
        response_model=SupervisionView,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def supervise(
        case_id: CaseId, body: SuperviseRequest, caller: CommandCentre, key: IdempotencyKey = None
    ) -> Any:
        """Send a supervision (督办) on an open case of the command centre's area to the unit
        that has it. 200: sent (or a retry of one sent with the same Idempotency-Key); 404: no
        such case within the area; 409: resolved, or awaiting triage; 422: a bad field."""
        by = DecidedBy(
            role=caller.role.value,
            unit=caller.unit,
            handler_id=caller.handler_id,
            subject=caller.subject,
        )
        ask = Supervise(body.note, body.report_by, by)
        request_key = f"{caller.subject}\n{key}" if key else None
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn, conn.transaction():
            await case_in_reach(conn, caller, case_id)
            if request_key is not None:
                earlier = await supervision_store.by_request(conn, request_key)
                if earlier is not None:
                    replay_on(earlier["case_id"], case_id)
                    return view(earlier)
            case = await store.load_case(conn, case_id, lock=True)
            assert case is not None  # in reach a moment ago, and cases are never deleted
            why = refusal(case, ask, now)
            if why is not None:
                if why.field is not None:
                    raise invalid_input("body", why.field, str(why))
                raise HTTPException(409, str(why))
            number = await supervision_store.next_number(conn, case_id)
            sent = plan(case, ask, number, now)
            await supervision_store.insert(conn, sent.event, request_key)
            await store.add_timeline_steps(conn, [sent.step])
            uow = UnitOfWork(
                conn, source=f"wangge/{svc.name}", topic_prefix=svc.settings.topic_prefix
            )
            uow.emit(sent.event, time=now)
            await uow.flush()
        log.info(
            "case supervised",
            case_id=case_id,
            supervision=number,
            unit=case.unit,
            by_unit=caller.unit,
        )
        return sent.event.model_dump()

    @router.get("/me/supervisions", response_model=SupervisionList, responses=problems(401, 403))
    async def my_supervisions(caller: Staff) -> Any:
        """The supervisions (督办) of the caller's open cases (as ``GET /me/cases`` lists them)
        sent at each case's current dispatch, the latest of each case with how many there were."""
        async with svc.pool.acquire() as conn:
            cases = await _work(conn, caller)
            rows = await supervision_store.current(conn, [(c.case_id, c.attempt) for c in cases])
        return {"items": [{**view(r), "count": r["of_attempt"]} for r in rows]}

    return router
