"""``GET /hotspots``: the 未诉先办 hotspots for the command centre (docs/intake.md, "Hotspots").

A bearer token of the ``command_centre`` role is required (401 without a valid one, 403 for
another role); the caller sees the hotspots of the communities within its unit (its district,
or a street or community it holds), never others'.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shared.contract.taxonomy import Taxonomy
from shared.runtime.http import problems
from shared.runtime.identity import Principal, Role, require
from shared.runtime.service import Service

from . import hotspot_store

CommandCentre = Annotated[Principal, Depends(require(Role.COMMAND_CENTRE))]


class UnitRef(BaseModel):
    code: str
    name: str | None


class Hotspot(BaseModel):
    hotspot_id: str
    community: UnitRef
    street: str | None
    district: str | None
    category: str
    category_name: str | None
    started_at: datetime
    active_until: datetime
    active: bool
    reports: int  # cases opened in the window when it was found
    expected: float  # a window's cases at the baseline's rate
    peak: int  # the most in a window while it was active
    case_id: str  # the proactive case (source "proactive")
    case_status: str  # open | closed


class Hotspots(BaseModel):
    unit: str
    hotspots: list[Hotspot]


def install(svc: Service, taxonomy: Taxonomy) -> None:
    router = APIRouter(tags=["未诉先办 hotspots"], responses=problems(401, 403, 422))

    @router.get("/hotspots", response_model=Hotspots)
    async def get_hotspots(
        caller: CommandCentre,
        active: Annotated[bool, Query(description="Only those still active")] = False,
        days: Annotated[int, Query(ge=1, le=366, description="Started in the last N days")] = 30,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Any:
        """The hotspots found in the caller's district (or street, community), newest first:
        each burst of one category in one community and the proactive case it opened."""
        now = datetime.now(UTC)
        assert caller.unit is not None  # a command_centre token names its unit
        async with svc.pool.acquire() as conn:
            rows = await hotspot_store.list_hotspots(
                conn, caller.unit, now if active else None, now - timedelta(days=days), limit
            )
        out = []
        for r in rows:
            category = taxonomy.get(r["category"])
            out.append(
                {
                    **r,
                    "community": {"code": r["community"], "name": r["community_name"]},
                    "category_name": category.name if category else None,
                    "active": r["active_until"] > now,
                }
            )
        return {"unit": caller.unit, "hotspots": out}

    svc.app.include_router(router)
