"""The residents' side of feedback over HTTP: the rating page, its JSON twin, the status link.

- ``GET /r/{rating_token}``: the rating form (问题是否解决, 满意度, a comment); ``POST`` of the
  form (``application/x-www-form-urlencoded``) rates. The rating goes down exactly the Kafka
  path: a ``FeedbackSubmitted`` applied in-process by the ``feedback.submitted`` subscription
  (``Subscription.apply_now``), and the answer is read from what that emitted: ``cases.closed``,
  ``cases.reopened``, nothing (a later rating of a decided round), or ``feedback.rejected``
  (used, expired: a 4xx page saying so). The token is the capability: single use (the domain's
  check), unknown and guessed tokens get the same 404. A POST is applied only with the nonce of
  a page served for that token (``tokens.form_nonce``) and never from another site
  (``Sec-Fetch-Site: cross-site``), otherwise the form is shown again.
- ``POST /ratings``: the same as JSON, for mini-programs; errors are problem+json.
- ``GET /s/{status_token}``: the case's state and timeline without personal data, HTML, or JSON
  with ``Accept: application/json``; only with the case's own link (``shared.contract.links``):
  a tampered or guessed token is a 404.

Every page is sent with ``SECURITY_HEADERS`` (no referrer: the token stays in the URL bar; a
strict Content Security Policy). A failure answers a 503 page and is logged without the path
(it holds the token).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from shared.contract.events import (
    CaseClosed,
    CaseReopened,
    FeedbackRejected,
    FeedbackSubmitted,
    Satisfaction,
)
from shared.contract.links import case_of_status_token, status_token, status_url
from shared.registry.store import unit_names
from shared.runtime.clock import Clock
from shared.runtime.http import ErrorInfo, error_format, problem_response, problems
from shared.runtime.logging import get_logger
from shared.runtime.service import Service

from . import pages, store
from .keys import FeedbackKeys
from .periods import TZ
from .status import ordered, resident_view
from .tokens import EXPIRED, MAX_TOKEN, USED, form_nonce, nonce_ok, refusal, token_hash

log = get_logger(component="feedback.resident")
MAX_FORM_BYTES = 16 * 1024
MAX_COMMENT = 2000
SATISFACTIONS: tuple[str, ...] = get_args(Satisfaction)
Outcome = Literal["closed", "reopened", "recorded"]

NOT_FOUND = ("链接无效", "该链接无效或已失效，请核对链接是否完整。" + pages.HELP)
# the domain's reasons (handlers.Feedback.reject) -> (status, title, text)
REFUSED: dict[str, tuple[int, str, str]] = {
    USED: (409, "已完成评价", "该评价链接已使用过，您的评价已收到，感谢您的反馈。"),
    EXPIRED: (410, "评价已截止", "该评价链接已过期，本轮回访已结束。" + pages.HELP),
}
ANSWERS: dict[Outcome, str] = {
    "closed": "感谢您的评价！您反映的问题已办结，本案件已结案。",
    "reopened": "感谢您的反馈！案件已退回重新办理（重办），办结后将再次请您评价。",
    "recorded": "感谢您的评价！您的评价已收到。",
}
HTML_ERRORS = {
    400: "请求有误",
    403: "无法提交",
    404: NOT_FOUND[0],
    405: "请求有误",
    409: "已完成评价",
    410: "链接已过期",
    413: "内容过长",
    415: "请求有误",
    503: "服务暂时不可用",
}


def _html_content(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"description": HTML_ERRORS.get(s, "页面"), "content": {"text/html": {}}}
        for s in statuses
    }


class RatingIn(BaseModel):
    rating_token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN)]
    resolved: bool = Field(description="问题是否解决: whether the problem was solved")
    satisfaction: Satisfaction = Field(description="满意度")
    comment: Annotated[str, Field(max_length=MAX_COMMENT)] | None = None


class RatingOut(BaseModel):
    case_id: str
    outcome: Outcome = Field(
        description="closed: the rating closed the case; reopened: it sent the case back to "
        "dispatch (重办); recorded: it counts, an earlier rating had decided the round"
    )
    status_url: str = Field(description="The case's status link")


class StatusStep(BaseModel):
    at: str
    event: str
    label: str
    tier: str | None
    tier_label: str | None
    unit_name: str | None
    detail: str | None


class ResidentStatus(BaseModel):
    case_id: str
    category_name: str | None
    state: str
    state_label: str
    timeline: list[StatusStep]


@dataclass(frozen=True)
class Rated:
    """What a rating did: its outcome, or the reason the domain refused it."""

    outcome: Outcome | None
    refused: str | None


@dataclass(frozen=True)
class Found:
    """A rating token's request and its case."""

    request: Any
    case: Any


class Resident:
    def __init__(
        self, svc: Service, keys: FeedbackKeys, clock: Clock, public_url: str | None
    ) -> None:
        self.svc = svc
        self.keys = keys
        self.clock = clock
        self.public_url = public_url

    # --- helpers ------------------------------------------------------------------------------

    def status_link(self, case_id: str, *, from_page: bool) -> str:
        """The case's status link: under ``WANGGE_PUBLIC_FEEDBACK_URL``, else relative to the
        page (``/r/<token>`` -> ``../s/<token>``, so that a path prefix of a proxy is kept)."""
        token = status_token(self.keys.link, case_id)
        if self.public_url or not from_page:
            return status_url(self.public_url, token)
        return f"../s/{token}"

    async def find(self, rating_token: str) -> Found | None:
        if not rating_token or len(rating_token) > MAX_TOKEN:
            return None
        async with self.svc.pool.acquire() as conn:
            req = await store.find_request(conn, token_hash(rating_token), lock=False)
            case = await store.get_case(conn, req["case_id"]) if req is not None else None
        return Found(req, case) if req is not None and case is not None else None

    async def rate(self, found: Found, token: str, form: dict[str, Any]) -> Rated:
        """Apply the rating through the ``feedback.submitted`` subscription; what it emitted
        says the outcome, or why it was refused."""
        # parsed as the consumer parses a message (feedback consumes feedback.submitted: it
        # builds only what it publishes, scripts/generate_ops_files.py)
        ev = FeedbackSubmitted.model_validate(
            {
                "case_id": found.request["case_id"],
                "rating_token": token,
                "resolved": form["resolved"],
                "satisfaction": form["satisfaction"],
                "comment": form.get("comment") or None,
                "at": self.clock(),
            }
        )
        sub = self.svc.subscription("feedback.submitted")
        # a key of its own: a second POST is a second rating, which the domain refuses
        applied = await sub.apply_now(ev, key=f"http:{uuid.uuid4()}")
        outcome: Outcome = "recorded"
        for e in applied.events:
            if isinstance(e, FeedbackRejected):
                return Rated(None, e.reason)
            if isinstance(e, CaseClosed):
                outcome = "closed"
            elif isinstance(e, CaseReopened):
                outcome = "reopened"
        return Rated(outcome, None)

    # --- the pages ----------------------------------------------------------------------------

    def form_page(
        self,
        found: Found,
        token: str,
        status: int = 200,
        errors: list[str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response:
        body = pages.rating_form(
            case_id=found.request["case_id"],
            category_name=found.case["category_name"],
            expires_at=found.request["expires_at"],
            nonce=form_nonce(self.keys.form, token, self.clock()),
            errors=errors or (),
            values=values,
        )
        return html(body, status)

    def refused_page(self, reason: str, case_id: str) -> Response:
        if reason not in REFUSED:
            return html(pages.message(*NOT_FOUND), 404)
        status, title, text = REFUSED[reason]
        link = self.status_link(case_id, from_page=True)
        return html(pages.message(title, text, status_url=link), status)

    async def get_rating(self, rating_token: str) -> Response:
        found = await self.find(rating_token)
        if found is None:
            return html(pages.message(*NOT_FOUND), 404)
        case_id = found.request["case_id"]
        why = refusal(found.request, case_id, found.case["round"], self.clock())
        if why is None:
            return self.form_page(found, rating_token)
        if why not in REFUSED:
            return html(pages.message(*NOT_FOUND), 404)
        _, title, text = REFUSED[why]
        link = self.status_link(case_id, from_page=True)
        return html(pages.message(title, text, status_url=link), 410)  # used or expired: gone

    async def post_rating(self, rating_token: str, request: Request) -> Response:
        if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
            return html(pages.message("无法提交", "请在评价页面中提交评价。"), 403)
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return html(pages.message("内容过长", "提交的内容过长。"), 413)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return html(pages.message("请求有误", "请在评价页面中提交评价。"), 415)
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return html(pages.message("内容过长", "提交的内容过长。"), 413)
        found = await self.find(rating_token)
        if found is None:
            return html(pages.message(*NOT_FOUND), 404)
        case_id = found.request["case_id"]
        values, form, errors = read_form(raw)
        if not nonce_ok(self.keys.form, rating_token, values.get("nonce"), self.clock()):
            errors = ["页面已过期，请确认后重新提交。"]
            form = None
        if form is None:
            why = refusal(found.request, case_id, found.case["round"], self.clock())
            if why is not None:
                return self.refused_page(why, case_id)
            return self.form_page(found, rating_token, 400, errors, values)
        rated = await self.rate(found, rating_token, form)
        if rated.outcome is None:
            return self.refused_page(rated.refused or "", case_id)
        link = self.status_link(case_id, from_page=True)
        return html(pages.message("评价已提交", ANSWERS[rated.outcome], status_url=link))

    async def post_rating_json(self, body: RatingIn) -> Any:
        found = await self.find(body.rating_token)
        if found is None:
            raise HTTPException(404, "unknown rating token")
        form = {
            "resolved": body.resolved,
            "satisfaction": body.satisfaction,
            "comment": body.comment,
        }
        rated = await self.rate(found, body.rating_token, form)
        if rated.outcome is None:
            refused = rated.refused or ""
            status = REFUSED[refused][0] if refused in REFUSED else 404
            raise HTTPException(status, refused if status != 404 else "unknown rating token")
        case_id = found.request["case_id"]
        return {
            "case_id": case_id,
            "outcome": rated.outcome,
            "status_url": self.status_link(case_id, from_page=False),
        }

    async def get_status(self, status_token_: str, request: Request) -> Response:
        case_id = case_of_status_token(self.keys.link, status_token_)
        as_json = wants_json(request)
        if case_id is None:
            if as_json:
                return secure(problem_response(request, ErrorInfo(404, "unknown status link")))
            return html(pages.message(*NOT_FOUND), 404)
        async with self.svc.pool.acquire() as conn:
            case = await store.get_case(conn, case_id)
            timeline = ordered(await store.case_events(conn, case_id)) if case else []
            codes = sorted({e["unit"] for e in timeline if e.get("unit")})
            names = await unit_names(conn, codes) if codes else {}
        # a case intake has answered with its link and feedback has not read yet: received
        view = resident_view(case_id, case["category_name"] if case else None, timeline, names)
        if as_json:
            steps = [{**s, "at": s["at"].astimezone(TZ).isoformat()} for s in view["timeline"]]
            return secure(JSONResponse({**view, "timeline": steps}))
        return html(pages.status_page(view))


def read_form(raw: bytes) -> tuple[dict[str, str], dict[str, Any] | None, list[str]]:
    """The form's fields as sent, the rating they make (None when incomplete), and what is
    wrong with them (in Chinese, for the page)."""
    try:
        fields = parse_qs(
            raw.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=20
        )
    except ValueError:
        return {}, None, ["提交的内容无法识别，请重新填写。"]
    values = {k: v[0] for k, v in fields.items() if v}
    errors = []
    resolved = {"yes": True, "no": False, "true": True, "false": False}.get(
        values.get("resolved", "").strip().lower()
    )
    if resolved is None:
        errors.append("请选择问题是否已解决。")
    satisfaction = values.get("satisfaction", "").strip()
    if satisfaction not in SATISFACTIONS:
        errors.append("请选择您对办理结果的满意程度。")
    comment = values.get("comment", "").strip()
    if len(comment) > MAX_COMMENT:
        errors.append(f"意见或建议请不要超过 {MAX_COMMENT} 字。")
    if errors:
        return values, None, errors
    return values, {"resolved": resolved, "satisfaction": satisfaction, "comment": comment}, []


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return ("application/json" in accept or "+json" in accept) and "text/html" not in accept


def secure(resp: Response) -> Response:
    resp.headers.update(pages.SECURITY_HEADERS)
    return resp


def html(body: str, status: int = 200) -> Response:
    return HTMLResponse(body, status_code=status, headers=pages.SECURITY_HEADERS)


def _html_error(request: Request, info: ErrorInfo) -> Response:
    """Errors the framework answers under /r/ and /s/ (a wrong method, a failure): a page, or a
    problem for a client asking for JSON."""
    if wants_json(request):
        return secure(problem_response(request, info))
    title = HTML_ERRORS.get(info.status, "请求有误")
    text = NOT_FOUND[1] if info.status == 404 else "请求无法处理。" + pages.HELP
    return html(pages.message(title, text), info.status)


async def _guarded(what: str, fn: Callable[[], Awaitable[Response]]) -> Response:
    """``fn``'s answer; a failure is a 503 page, logged without the request's path."""
    try:
        return await fn()
    except HTTPException:
        raise
    except Exception as exc:
        log.error("resident page failed", page=what, error_class=type(exc).__name__)
        return html(pages.message("服务暂时不可用", "请稍后再试。" + pages.HELP), 503)


def register_resident_routes(
    svc: Service, keys: FeedbackKeys, clock: Clock, public_url: str | None
) -> None:
    resident = Resident(svc, keys, clock, public_url)
    for prefix in ("/r/", "/s/"):
        error_format(svc.app, prefix, _html_error)
    svc.app.include_router(build_router(resident))


def build_router(resident: Resident) -> APIRouter:
    router = APIRouter(tags=["residents"])
    form_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "nonce": {"type": "string", "description": "from the page"},
                            "resolved": {"type": "string", "enum": ["yes", "no"]},
                            "satisfaction": {"type": "string", "enum": list(SATISFACTIONS)},
                            "comment": {"type": "string", "maxLength": MAX_COMMENT},
                        },
                        "required": ["nonce", "resolved", "satisfaction"],
                    }
                }
            },
        }
    }

    @router.get(
        "/r/{rating_token}",
        response_class=HTMLResponse,
        responses={200: {"content": {"text/html": {}}}, **_html_content(404, 410, 503)},
    )
    async def rating_page(rating_token: str) -> Response:
        """The rating page of a follow-up request (回访): the two questions and a comment.
        404: no such token; 410: already used, or expired."""
        return await _guarded("rating", lambda: resident.get_rating(rating_token))

    @router.post(
        "/r/{rating_token}",
        response_class=HTMLResponse,
        openapi_extra=form_body,
        responses={
            200: {"content": {"text/html": {}}},
            **_html_content(400, 403, 404, 409, 410, 413, 415, 503),
        },
    )
    async def rate(rating_token: str, request: Request) -> Response:
        """Rate (the form of the page). 400: incomplete, or a stale page (the form again);
        403: from another site; 404: no such token; 409: already used; 410: expired."""
        return await _guarded("rate", lambda: resident.post_rating(rating_token, request))

    @router.post("/ratings", response_model=RatingOut, responses=problems(404, 409, 410, 422))
    async def rate_json(body: RatingIn) -> Any:
        """Rate with a follow-up request's token, as JSON (a mini-program's own page). 404: no
        such token; 409: already used; 410: expired."""
        return await resident.post_rating_json(body)

    @router.get(
        "/s/{status_token}",
        response_model=ResidentStatus,
        responses={
            200: {"content": {"text/html": {}}},
            404: {
                "description": "No such status link",
                "content": {
                    "text/html": {},
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    },
                },
            },
            **_html_content(503),
        },
    )
    async def case_status(status_token: str, request: Request) -> Response:
        """A case's state and timeline, without personal data, with the case's own status link
        (HTML; JSON with ``Accept: application/json``). 404: not a status link."""
        return await _guarded("status", lambda: resident.get_status(status_token, request))

    return router
