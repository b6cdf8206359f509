"""The command-centre board's routes, on dispatch's HTTP server.

Pages (not in the OpenAPI document: a browser's, not an API client's):

- ``GET /console/``: the board (Chinese), for a ``command_centre`` session; without a session a
  page saying how to sign in (401), another role a 403 page;
- ``GET /console/login?token=``: a sign-in link (``shared.runtime.signin``): the token checked and
  used up, a session cookie set, a redirect (303) without the token to ``/console/`` (the
  command centre) or to the handler page ``/console/handler/`` (``handler``);
- ``GET /console/api/events``: server-sent events, ``event: board`` with the whole board (as
  ``GET /console/api/board``) on connect and after every change of the caller's area
  (``hub.BoardHub``), a comment every ``KEEPALIVE_S`` otherwise; with ``deltas=true`` the board
  without its buildings on connect, then ``event: delta`` (``board.BoardDelta``: the totals,
  the lists and only the units whose counts changed, buildings too) after every change;
- ``/console/static/``: the bundle built from ``web/`` (ECharts, Leaflet), served from the package.

API (in the OpenAPI document, bearer token or the page's session, role ``command_centre``):
``GET /console/api/board`` (the board of the caller's area; ``buildings=false`` without the
buildings' rows) and ``GET /console/api/map`` (the area's grids and buildings as GeoJSON, from the
registry; ``counts=true`` with each one's counts, the buildings' counts the page shows). The
page reads a case and transfers it through the handler API (``/cases/{case_id}``,
``/cases/{case_id}/actions``) with its session. The figures (rates per unit and month, the
ranking, hot issues) are feedback's: the page reads them from the browser at
``WANGGE_CONSOLE_FEEDBACK_URL`` (``board_headers`` lets it connect there).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from shared.registry.store import lineage
from shared.runtime.consumer import TRANSIENT_ERRORS
from shared.runtime.http import problems
from shared.runtime.identity import InvalidToken, Principal, Role, authenticated, require
from shared.runtime.logging import get_logger
from shared.runtime.signin import SIGNIN_PURPOSE, Sessions

from ..due import DUE_SOON_FRACTION
from . import queries
from .board import (
    TALLY_FIELDS,
    ZERO,
    AreaUnit,
    Board,
    BoardDelta,
    Counted,
    Listed,
    Snapshot,
    Tally,
    counts_fields,
    snapshot,
)
from .handler import landing, register_handler_page
from .hub import BoardHub, Build

if TYPE_CHECKING:
    from ..app import DispatchService

log = get_logger(component="dispatch-console")

PAGES: Final = Path(__file__).parent / "pages"
STATIC: Final = Path(__file__).parent / "static"
KEEPALIVE_S: Final = 15.0
FORGET_S: Final = 60.0
SYNC_S: Final = 2.0
CommandCentre = Annotated[Principal, Depends(require(Role.COMMAND_CENTRE))]
Buildings = Annotated[
    bool,
    Query(
        description="false: the board without the buildings' rows (a district has 25,000; the "
        "map carries their counts: GET /console/api/map?counts=true)"
    ),
]
MapCounts = Annotated[
    bool, Query(description="true: each feature with its open cases' counts, as on the board")
]
# The pages' own headers: scripts and styles from the service only, never framed, no referrer
PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def board_headers(feedback_url: str) -> dict[str, str]:
    """The board's headers: the pages' own, and its calls to feedback's figures allowed
    (``connect-src``) when feedback is on another origin (``WANGGE_CONSOLE_FEEDBACK_URL``)."""
    parts = urlsplit(feedback_url)
    if not (parts.scheme and parts.netloc):  # a path of the board's own origin, or none
        return PAGE_HEADERS
    csp = f"{PAGE_HEADERS['Content-Security-Policy']}; connect-src 'self' {parts.scheme}://{parts.netloc}"
    return {**PAGE_HEADERS, "Content-Security-Policy": csp}


def message_page(status: int, title: str, message: str) -> HTMLResponse:
    html = (PAGES / "message.html").read_text(encoding="utf-8")
    body = html.replace("{title}", escape(title)).replace("{message}", escape(message))
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def register_console(svc: DispatchService) -> None:
    """The board's routes, its session cookies and its hub (a background task)."""
    sessions = Sessions(svc.settings)
    svc.app.state.sessions = sessions
    policy = svc.dispatch.policy
    categories = {c.code: c.name for c in policy.taxonomy.categories}
    keeper = queries.BoardDue(policy, DUE_SOON_FRACTION)
    svc.app.state.board_due = keeper
    areas = queries.Areas()
    svc.app.state.board_areas = areas

    def snap_of(
        unit: str, where: queries.Area, counted: Counted, listed: Listed, now: datetime
    ) -> Snapshot:
        # a unit the registry does not (yet) hold: an empty board
        top = where.top or AreaUnit(unit, unit, "unknown", None)
        return snapshot(top, where.units, counted, listed, categories, now, where.ordered)

    async def board_of(unit: str, buildings: bool = True) -> Snapshot:
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn:
            where, counted, listed = await queries.read_board(
                conn, keeper, areas, unit, now, buildings=buildings
            )
        return snap_of(unit, where, counted, listed, now)

    def live_of(unit: str) -> Build:
        """A watched board's builds: its live board, changed by what was kept since."""
        live = queries.LiveArea(unit, keeper, areas)

        async def build() -> Snapshot:
            now = svc.dispatch.clock()
            async with svc.pool.acquire() as conn:
                where, counted, listed = await live.read(conn, now)
            return snap_of(unit, where, counted, listed, now)

        return build

    async def district_of(unit: str) -> str | None:
        async with svc.pool.acquire() as conn:
            return (await lineage(conn, unit)).get("district")

    hub = BoardHub(
        svc.dsn,
        svc.schema,
        live_of,
        district_of,
        max_backoff_s=svc.settings.retry_max_backoff_s,
    )
    svc.app.state.console_hub = hub
    svc.background(hub.run)

    async def keep_warm() -> None:
        """The board's read model kept: every open case checked at start (so that the first
        board after a restart finds them kept) and once a minute, with the rows of closed cases
        deleted; the cases marked changed worked out every ``SYNC_S`` (and before each board),
        so that no board opened after a quiet hour has the hour's changes to work out."""
        checked = -FORGET_S
        while True:
            with contextlib.suppress(*TRANSIENT_ERRORS):
                t0 = time.monotonic()
                async with svc.pool.acquire() as conn:
                    if t0 - checked >= FORGET_S:
                        worked = await keeper.check(conn)
                        await keeper.forget(conn)
                        checked = t0
                        if worked:
                            log.info(
                                "board due times kept",
                                cases=worked,
                                s=round(time.monotonic() - t0, 2),
                            )
                    await keeper.sync(conn)
            await asyncio.sleep(SYNC_S)  # a period, not synchronisation

    svc.background(keep_warm)
    svc.app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    svc.app.include_router(build_router(svc, sessions, hub, board_of))


def _etags(header: str | None) -> set[str]:
    """The entity tags of an ``If-None-Match`` header (RFC 9110 13.1.2), weak ones as strong
    (a weak comparison); ``*`` as itself."""
    if not header:
        return set()
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


class UnitTallies(BaseModel):
    """``GET /console/api/counts``: each unit's counts as an array (``fields`` names them)."""

    now: datetime = Field(description="The server's time the due status is computed at")
    fields: list[str] = Field(description="What each array holds, in order")
    totals: list[int] = Field(description="Every open case of the area, once")
    units: dict[str, list[int]] = Field(
        description="Unit code -> its counts; a unit of the area not named has none open"
    )


def counts_of(tally: Tally | None) -> dict[str, Any]:
    """A unit's counts as the board's rows give them (zero without any open case)."""
    return counts_fields(tally or ZERO)


def _unit_of(caller: Principal) -> str:
    assert caller.unit is not None  # a command_centre token always names its unit
    return caller.unit


def build_router(
    svc: DispatchService, sessions: Sessions, hub: BoardHub, board_of: Any
) -> APIRouter:
    router = APIRouter(tags=["command-centre board"])
    keeper: queries.BoardDue = svc.app.state.board_due
    areas: queries.Areas = svc.app.state.board_areas

    @router.get("/console/api/board", response_model=Board, responses=problems(401, 403))
    async def board(caller: CommandCentre, buildings: Buildings = True) -> Response:
        """The board of the caller's area: its open cases counted by street, community, grid,
        building and department and by tier, the overdue and due-soon cases, the latest ones."""
        # serialised here: FastAPI would validate the model again first (seconds for a
        # district's 26,000 units)
        snap: Snapshot = await board_of(_unit_of(caller), buildings)
        return Response(
            snap.board(buildings=buildings).model_dump_json(), media_type="application/json"
        )

    @router.get(
        "/console/api/map",
        responses={
            200: {
                "description": "A GeoJSON FeatureCollection (RFC 7946)",
                "content": {"application/geo+json": {"schema": {"type": "object"}}},
            },
            304: {"description": "Not modified: the map of the ETag sent (If-None-Match)"},
            **problems(401, 403),
        },
    )
    async def area_map(
        caller: CommandCentre,
        request: Request,
        counts: MapCounts = False,
    ) -> Response:
        """The caller's area as the registry draws it: each grid's polygon (``area``) and each
        building's point (``lon``/``lat``), with code, name, level and parent. Without counts
        it changes only with the registry: it carries an ``ETag`` and answers a request whose
        ``If-None-Match`` names it with 304 (``Cache-Control: private, no-cache``: the browser
        asks again each time, the map comes again only when it changed). With ``counts=true``
        also each one's open cases as the board counts them (``open``, ``due_soon``,
        ``overdue``, ``by_tier``) and the time they were counted at (``now``); the page reads
        them from ``GET /console/api/counts`` instead, a fraction of the size."""
        unit = _unit_of(caller)
        async with svc.pool.acquire() as conn:
            drawn = await areas.map(conn, unit)
            if not counts:
                cache = {"ETag": drawn.etag, "Cache-Control": "private, no-cache"}
                if drawn.etag in _etags(request.headers.get("if-none-match")):
                    return Response(status_code=304, headers=cache)
                return Response(drawn.body, media_type="application/geo+json", headers=cache)
            now = svc.dispatch.clock()
            _, counted = await queries.read_counts(conn, keeper, areas, unit, now)
        doc = {
            "type": "FeatureCollection",
            "features": [
                {
                    **f,
                    "properties": {
                        **f["properties"],
                        **counts_of(counted.units.get(f["properties"]["code"])),
                    },
                }
                for f in drawn.doc["features"]
            ],
            "now": now.isoformat(),
        }
        return Response(orjson.dumps(doc), media_type="application/geo+json")

    @router.get("/console/api/counts", response_model=UnitTallies, responses=problems(401, 403))
    async def unit_counts(caller: CommandCentre) -> Response:
        """Every unit of the caller's area that has open cases (buildings included), its counts
        as one array in the order of ``fields``, at ``now``: what the map shows, without its
        geometry (a district's 25,000 buildings: about a tenth of ``map?counts=true``)."""
        unit = _unit_of(caller)
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn:
            _, counted = await queries.read_counts(conn, keeper, areas, unit, now)
        body = {
            "now": now,
            "fields": list(TALLY_FIELDS),
            "totals": counted.total,
            "units": counted.units,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    @router.get("/console/api/events", include_in_schema=False)
    async def events(
        caller: CommandCentre,
        request: Request,
        deltas: Annotated[
            bool,
            Query(
                description="The whole board without its buildings on connect, then only what "
                "changed (event: delta)"
            ),
        ] = False,
    ) -> StreamingResponse:
        unit = _unit_of(caller)

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            async with hub.watch(unit) as channel:
                seen = 0
                sent: dict[str, Tally] | None = None  # the counts the client has (deltas)
                while not await request.is_disconnected():
                    try:
                        async with asyncio.timeout(KEEPALIVE_S):
                            seen, snap = await channel.after(seen)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if not deltas:
                        data = channel.board_json(seen, snap, buildings=True)
                        yield f"event: board\nid: {seen}\ndata: {data}\n\n"
                    elif sent is None or sent.keys() != snap.counts.keys():  # the area changed
                        data = channel.board_json(seen, snap, buildings=False)
                        sent = snap.counts
                        yield f"event: board\nid: {seen}\ndata: {data}\n\n"
                    else:
                        delta: BoardDelta = snap.changed(sent)
                        sent = snap.counts
                        yield f"event: delta\nid: {seen}\ndata: {delta.model_dump_json()}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    add_pages(router, svc, sessions)
    register_handler_page(svc, router)
    return router


def add_pages(router: APIRouter, svc: DispatchService, sessions: Sessions) -> None:
    """The pages and the sign-in link's exchange."""

    @router.get("/console/login", include_in_schema=False)
    async def login(token: Annotated[str, Query(max_length=4096)] = "") -> Response:
        if not sessions.configured:
            return message_page(503, "无法登录", "本服务未配置会话密钥（WANGGE_SESSION_KEY）。")
        try:
            claims = await svc.verifier.claims(token, purpose=SIGNIN_PURPOSE)
        except InvalidToken as exc:
            log.info("sign-in refused", reason=str(exc))
            return message_page(401, "登录链接无效", "此登录链接无效或已过期，请重新获取。")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return message_page(401, "登录链接无效", "此登录链接无效，请重新获取。")
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        async with svc.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM signins_used WHERE expires_at < now() - interval '1 day'"
            )
            fresh = await conn.fetchval(
                "INSERT INTO signins_used (jti, expires_at) VALUES ($1, $2) "
                "ON CONFLICT (jti) DO NOTHING RETURNING true",
                jti,
                expires,
            )
        if not fresh:
            log.warning("sign-in link used twice", subject=claims.get("sub"))
            return message_page(403, "登录链接已使用", "每个登录链接只能使用一次，请重新获取。")
        principal = await svc.verifier.verify(token, purpose=SIGNIN_PURPOSE)
        log.info("signed in", role=principal.role, unit=principal.unit, subject=principal.subject)
        resp = RedirectResponse(landing(principal.role), status_code=303, headers=PAGE_HEADERS)
        resp.set_cookie(value=sessions.issue(principal), **sessions.cookie_settings())
        return resp

    @router.get("/console/", include_in_schema=False)
    async def page(request: Request) -> Response:
        try:
            caller = await authenticated(request, None)
        except HTTPException:
            return message_page(
                401, "请先登录", "请使用登录链接进入指挥调度中心（wangge token login-url）。"
            )
        if caller.role != Role.COMMAND_CENTRE:
            return message_page(403, "无权访问", "指挥调度中心页面仅供指挥中心人员使用。")
        feedback = svc.settings.console_feedback_url or ""
        html = (PAGES / "board.html").read_text(encoding="utf-8")
        html = html.replace("{feedback_url}", escape(feedback, quote=True))
        return HTMLResponse(html, headers=board_headers(feedback))

    @router.get("/console", include_in_schema=False)
    async def page_slash() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=308)
