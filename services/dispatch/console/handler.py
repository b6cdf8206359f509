"""The handler's phone page (处置人手机页), on dispatch's HTTP server, beside the board.

For grid workers, community, street and department staff and party volunteers signed in by a
single-use link (``shared.runtime.signin``; the link lands a handler role here):

- ``GET /console/handler/``: the page (Chinese, phone-sized first): my cases by deadline (overdue,
  due soon, the rest), a case's detail with its timeline, the actions the API allows with a note;
  a party volunteer's list also holds the open orders of their community they may take (接单),
  which ``GET /me/cases`` already returns (``assigned_to_me`` false). Without a session a page
  saying how to sign in (401), the command centre a 403 page (its page is the board).
- ``GET /console/api/names`` (in the OpenAPI document, read-only, any staff role): the caller's
  role and the names the page shows instead of codes: the categories of the taxonomy, and the
  caller's unit, its ancestors and the units below it.

Everything else the page does goes through the handler API (``/me/cases``, ``/cases/{case_id}``,
``/cases/{case_id}/actions``) with the session cookie; its POSTs send ``X-Requested-With``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from shared.registry.store import lineage, unit_names
from shared.runtime.http import problems
from shared.runtime.identity import HANDLER_ROLES, Principal, Role, authenticated, require

from .. import store

if TYPE_CHECKING:
    from ..app import DispatchService

HANDLER_PAGE = "/console/handler/"
Staff = Annotated[Principal, Depends(require(*HANDLER_ROLES, Role.COMMAND_CENTRE))]


class Names(BaseModel):
    role: Role = Field(description="The caller's role")
    unit: str = Field(description="The caller's unit (its code)")
    units: dict[str, str] = Field(
        description="Code to name: the caller's unit, its ancestors and every unit below it"
    )
    categories: dict[str, str] = Field(description="Category code to name (the taxonomy)")


def landing(role: Role) -> str:
    """Where a sign-in link lands: the board for the command centre, else the handler page."""
    return "/console/" if role == Role.COMMAND_CENTRE else HANDLER_PAGE


def page_headers(base: dict[str, str], intake_url: str | None) -> dict[str, str]:
    """The page's headers: the pages' own, and the reports' photos allowed (``img-src``) from
    intake's origin when intake is on another one (``WANGGE_PUBLIC_INTAKE_URL``): dispatch
    answers a report's photo with a signed link there."""
    parts = urlsplit(intake_url or "")
    if not (parts.scheme and parts.netloc):
        return base
    origin = f"{parts.scheme}://{parts.netloc}"
    csp = base["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {origin}"
    )
    return {**base, "Content-Security-Policy": csp}


def register_handler_page(svc: DispatchService, router: APIRouter) -> None:
    """The handler page and its names, on the console's router."""
    from .routes import PAGE_HEADERS, PAGES, message_page

    categories = {c.code: c.name for c in svc.dispatch.policy.taxonomy.categories}

    @router.get("/console/api/names", response_model=Names, responses=problems(401, 403))
    async def names(caller: Staff) -> Any:
        """The names of the caller's units (its own, its ancestors, those below it) and of the
        categories, for the pages to show instead of codes."""
        unit = caller.unit
        assert unit is not None  # every staff role holds one (identity.principal_of)
        async with svc.pool.acquire() as conn:
            codes = {*(await lineage(conn, unit)).values(), *await store.area_units(conn, unit)}
            units = await unit_names(conn, sorted(codes))
        return Names(role=caller.role, unit=unit, units=units, categories=categories)

    @router.get(HANDLER_PAGE, include_in_schema=False)
    async def page(request: Request) -> Response:
        try:
            caller = await authenticated(request, None)
        except HTTPException:
            return message_page(401, "请先登录", "请使用登录链接进入（wangge token login-url）。")
        if caller.role not in HANDLER_ROLES:
            return message_page(403, "无权访问", "此页面供网格员、社区工作人员和党员志愿者使用。")
        html = (PAGES / "handler.html").read_text(encoding="utf-8")
        return HTMLResponse(
            html, headers=page_headers(PAGE_HEADERS, svc.settings.public_intake_url)
        )

    @router.get(HANDLER_PAGE.rstrip("/"), include_in_schema=False)
    async def page_slash() -> RedirectResponse:
        return RedirectResponse(HANDLER_PAGE, status_code=308)
