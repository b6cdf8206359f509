"""Photos on dispatch's cases: on handler actions of any kind, and the reports' photos.

- An action may carry ``photos`` (ids), each uploaded to dispatch for its case first
  (``POST /cases/{case_id}/photos``, ``photos_api``). The action's check refuses an id that was
  not (``Refusal`` invalid, field ``photos``), and the timeline step the action records carries
  them (``detail.photos``): an accept, a progress report, a resolve, a verification (核查) or
  any kind added later alike, with no code per kind.
- A report's photos are intake's (``cases.opened`` / ``cases.merged`` name them, ``CasePhoto``):
  dispatch records which case they belong to (``recording``), in the same transaction as the
  case, and serves them to those who may see the case by a signed link to intake
  (``shared.media.links``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from shared.contract.events import CaseMerged, CaseOpened, HandlerAction
from shared.runtime.consumer import Claimed
from shared.runtime.db import Connection

from . import photo_store
from .model import Refusal
from .photo_store import CasePhotoRow
from .planning import Plan

E = TypeVar("E", CaseOpened, CaseMerged)
NOT_UPLOADED = "photo {photo_id} was not uploaded for this case (POST /cases/{case_id}/photos)"


def attach(plan: Plan, a: HandlerAction) -> Plan:
    """The plan with the action's photos on the step it records (the step of the action's own
    event; its first step when the action records none of that name)."""
    if not a.photos:
        return plan
    photos = list(dict.fromkeys(a.photos))
    steps = list(plan.steps)
    index = next((i for i, s in enumerate(steps) if s.event == a.action), 0 if steps else None)
    if index is None:
        return plan
    steps[index] = dataclasses.replace(
        steps[index], detail={**steps[index].detail, "photos": photos}
    )
    return dataclasses.replace(plan, steps=tuple(steps))


async def refusal(conn: Connection, a: HandlerAction) -> Refusal | None:
    """Why the action's photos cannot go with it: one was not uploaded for its case."""
    if not a.photos:
        return None
    known = await photo_store.uploaded_ids(conn, a.case_id, list(a.photos))
    for photo_id in a.photos:
        if photo_id not in known:
            reason = NOT_UPLOADED.format(photo_id=photo_id, case_id=a.case_id)
            return Refusal(reason, "invalid", "photos")
    return None


def recording(
    handler: Callable[[Connection, list[Claimed[E]]], Awaitable[None]],
) -> Callable[[Connection, list[Claimed[E]]], Awaitable[None]]:
    """``handler`` (of ``cases.opened`` or ``cases.merged`` batches), and then, in the same
    transaction, the rows of the reports' photos."""

    async def on_batch(conn: Connection, claimed: list[Claimed[E]]) -> None:
        await handler(conn, claimed)
        events: list[Any] = [c.event for c in claimed if c.event.photos]
        await photo_store.add_report_photos(conn, events)

    on_batch.__name__ = getattr(handler, "__name__", "on_batch")
    return on_batch


class PhotoInfo(BaseModel):
    photo_id: str = Field(description="The SHA-256 of the photo as stored (metadata stripped)")
    origin: str = Field(description="upload (by a handler, for an action) or report")
    content_type: str
    size: int
    width: int | None
    height: int | None
    uploaded_by: str | None = Field(description="upload: the handler who sent it")
    report_id: str | None = Field(description="report: the report it came with")
    added_at: datetime
    url: str = Field(description="Where the caller fetches it (GET, the same credentials)")


def photo_url(case_id: str, photo_id: str) -> str:
    return f"/cases/{case_id}/photos/{photo_id}"


def photo_info(row: CasePhotoRow) -> PhotoInfo:
    return PhotoInfo(
        photo_id=row.photo_id,
        origin=row.origin,
        content_type=row.content_type,
        size=row.size,
        width=row.width,
        height=row.height,
        uploaded_by=row.uploaded_by,
        report_id=row.report_id,
        added_at=row.added_at,
        url=photo_url(row.case_id, row.photo_id),
    )
