"""Open311 GeoReport v2 routes on intake's app (docs/intake.md, "Open311").

Who may call what:

- ``GET services.{fmt}``, ``GET services/{code}.{fmt}``, ``GET /open311/discovery.{fmt}``: anyone,
  as the specification has it.
- ``POST requests.{fmt}``: an upstream system, by its ``api_key`` (a form or JSON field, the
  query parameter, or the password of HTTP Basic); 403 without a valid one. A multipart POST may
  carry a photo as the file ``media`` (as some GeoReport v2 servers take it) beside or instead
  of ``media_url``: checked, stripped of its metadata and stored (``shared.media``), and named
  by the report (``photo_ids``).
- ``GET requests.{fmt}``, ``GET requests/{id}.{fmt}``: the specification has them public, but a
  case must not be readable by whoever guesses its id: an ``api_key`` reads the requests its own
  system posted, a staff bearer token (``shared.runtime.identity.STAFF_ROLES``) the Open311
  requests whose case is within its reach; 403 otherwise. Another's request is a 404, as an
  unknown one.

``jurisdiction_id`` is optional (one jurisdiction is served, ``WANGGE_OPEN311_JURISDICTION``);
another one is a 404. Every error under ``/open311/`` is answered in the specification's format
(``formats.errors``): 400 for bad input (request validation included), 403 for a missing or
wrong key, 404 for what does not exist, 503 while the database is away (retry: a POST with an
``Idempotency-Key`` is never applied twice).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import (
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from starlette.datastructures import UploadFile

from shared.contract import links
from shared.contract.events import CaseMerged, CaseOpened, ReportRejected, ReportSubmitted
from shared.contract.keys import KeyFormatError, parse_key
from shared.contract.taxonomy import DEFAULT_TAXONOMY, Taxonomy
from shared.media import images
from shared.media.blobs import Blobs, BlobsUnavailable
from shared.media.images import Photo, PhotoRejected
from shared.runtime.consumer import TRANSIENT_ERRORS, Claimed
from shared.runtime.db import Connection
from shared.runtime.http import ErrorInfo, error_format
from shared.runtime.identity import STAFF_ROLES, InvalidToken
from shared.runtime.logging import get_logger
from shared.runtime.service import Service
from shared.runtime.settings import ConfigurationError, Settings

from .. import photo_store
from ..locate import UnitInfo
from ..redaction import redact
from . import catalog, formats, schemas, store, submission
from . import status as case_status
from .apikeys import MAX_KEY_CHARS, Caller, digest
from .query import BadQuery, RequestQuery, request_query
from .submission import AddressUnit, Invalid, Submission

log = get_logger(component="open311")

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MAX_BODY = 256 * 1024
MAX_FIELDS = 200
MEDIA_OVERHEAD = 64 * 1024  # a multipart body's fields beside its photo
STORE_AWAY: tuple[type[BaseException], ...] = (BlobsUnavailable, *TRANSIENT_ERRORS)
KEY_CACHE_S = 10.0  # a revoked key stops working within this
KEY_CACHE_SIZE = 10_000
Fmt = Literal["json", "xml"]
STATUS = {422: 400, 401: 403}  # request validation is a 400, bad credentials a 403
TAG = "Open311 GeoReport v2"

BatchHandler = Callable[[Connection, list[Claimed[ReportSubmitted]]], Awaitable[None]]
UnitLookup = Callable[[str], UnitInfo | None]


@dataclass(frozen=True)
class Posting:
    """A POST on its way through the report handler: what ``GET requests`` will answer of it,
    written in the handler's transaction once the report opened or seconded a case."""

    system: str
    requested_at: datetime
    service_code: str
    description: str
    address: str | None
    address_id: str | None
    lat: float | None
    long: float | None
    media_url: str | None

    def row(self, source: str, report_id: str, case_id: str, merged: bool) -> store.NewRequest:
        return store.NewRequest(
            source=source,
            report_id=report_id,
            system=self.system,
            case_id=case_id,
            merged=merged,
            requested_at=self.requested_at,
            service_code=self.service_code,
            description=self.description,
            address=self.address,
            address_id=self.address_id,
            lat=self.lat,
            long=self.long,
            media_url=self.media_url,
        )


def recording(handler: BatchHandler) -> BatchHandler:
    """``handler`` (intake's reports handler), and then, for each POST that opened or seconded
    a case, its row of ``open311_requests`` in the same transaction (a POST's ``Claimed`` carries
    its ``Posting`` as its context; the messages of a Kafka batch carry none)."""

    async def on_reports(conn: Connection, claimed: list[Claimed[ReportSubmitted]]) -> None:
        await handler(conn, claimed)
        rows = [
            c.context.row(c.event.source, c.event.report_id, e.case_id, isinstance(e, CaseMerged))
            for c in claimed
            if isinstance(c.context, Posting)
            for e in c.uow.emitted
            if isinstance(e, CaseOpened | CaseMerged)
        ]
        if rows:
            await store.record_requests(conn, rows)

    on_reports.__name__ = getattr(handler, "__name__", "on_reports")
    return on_reports


@dataclass(frozen=True)
class Accepted:
    case_id: str
    notice: str
    replayed: bool


def invalid(errors: list[tuple[str, str]]) -> RequestValidationError:
    """A 400 naming each field (the error format turns request validation into 400s)."""
    return RequestValidationError(
        [{"loc": ("body", f), "msg": m, "type": "value_error"} for f, m in errors]
    )


def _name(field: str) -> str:
    head, _, rest = field.partition(".")
    name = rest if head in ("query", "path", "body", "header") and rest else field
    return "format" if name == "fmt" else name


def error_response(request: Request, info: ErrorInfo) -> Response:
    """Every error under ``/open311/``: ``[{"code", "description"}]`` (or its XML) with the
    specification's status codes."""
    fmt = formats.fmt_of(request.url.path)
    code = STATUS.get(info.status, info.status)
    headers = {k: v for k, v in (info.headers or {}).items() if k.lower() != "www-authenticate"}
    if info.errors:
        entries = [(code, f"{_name(e.field)}: {e.message}") for e in info.errors]
    elif info.status == 401:
        entries = [(code, "invalid credentials: give a valid api_key")]
    else:
        entries = [(code, info.detail or HTTPStatus(code).phrase)]
    return formats.errors(fmt, code, entries, headers or None)


def _link_key(settings: Settings) -> bytes | None:
    """``WANGGE_LINK_KEY`` (shared with feedback, which serves the status page), when set; a
    malformed one stops the start."""
    if settings.link_key is None:
        return None
    try:
        return parse_key(settings.link_key.get_secret_value(), "WANGGE_LINK_KEY")
    except KeyFormatError as exc:
        raise ConfigurationError(str(exc)) from None


class KeyCache:
    """Api keys found lately (a POST then needs no look-up); at most ``KEY_CACHE_S`` old."""

    def __init__(self) -> None:
        self._found: dict[bytes, tuple[float, Caller]] = {}

    def get(self, key_digest: bytes) -> Caller | None:
        hit = self._found.get(key_digest)
        if hit is None or time.monotonic() - hit[0] > KEY_CACHE_S:
            return None
        return hit[1]

    def put(self, key_digest: bytes, caller: Caller) -> None:
        if len(self._found) >= KEY_CACHE_SIZE:
            self._found.clear()
        self._found[key_digest] = (time.monotonic(), caller)


_key_query = APIKeyQuery(
    name="api_key", auto_error=False, description="The upstream system's key (`wangge apikey`)"
)
_basic = HTTPBasic(auto_error=False, description="The api_key as the password (any user name)")
_bearer = HTTPBearer(auto_error=False, description="A staff token (GET requests only)")
KeyQuery = Annotated[str | None, Depends(_key_query)]
Basic = Annotated[HTTPBasicCredentials | None, Depends(_basic)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Jurisdiction = Annotated[
    str | None, Query(description="Optional: one jurisdiction is served; another is a 404")
]
Listed = Annotated[
    list[str] | None, Query(description="Comma-separated, or the parameter repeated")
]


def _answers(model: Any, *errors: int, what: str = "OK") -> dict[int | str, dict[str, Any]]:
    """A route's ``responses``: ``model`` as JSON (the same fields as XML), and the errors."""
    xml = {"text/xml": {"schema": {"type": "string", "description": "The same, as XML"}}}
    out: dict[int | str, dict[str, Any]] = {200: {"model": model, "description": what}}
    out[200]["content"] = xml
    for s in errors:
        out[s] = {
            "model": list[schemas.Error],
            "description": HTTPStatus(s).phrase,
            "content": xml,
        }
    return out


class Open311:
    """The Open311 front door of one intake service."""

    def __init__(
        self,
        svc: Service,
        taxonomy: Taxonomy,
        known_unit: UnitLookup,
        blobs: Blobs | None = None,
    ) -> None:
        self.svc = svc
        self.blobs = blobs  # where an uploaded photo (media) goes; None: uploads refused
        self.taxonomy = taxonomy
        self.known_unit = known_unit
        self.jurisdiction = svc.settings.open311_jurisdiction
        self.keys = KeyCache()
        self.link_key = _link_key(svc.settings)
        path = Path(svc.settings.taxonomy_file or DEFAULT_TAXONOMY)
        stamp = datetime.fromtimestamp(path.stat().st_mtime, case_status.SH)
        self.changeset = stamp.strftime("%Y-%m-%d %H:%M")

    def status_link(self, case_id: str) -> dict[str, str]:
        """``{"status_url": ...}``, the case's status page for the resident, when intake has
        the link key (the system that posted hands it to the resident); else nothing."""
        if self.link_key is None:
            return {}
        token = links.status_token(self.link_key, case_id)
        return {"status_url": links.status_url(self.svc.settings.public_feedback_url, token)}

    def install(self) -> None:
        app = self.svc.app
        app.include_router(self.router())
        error_format(app, "/open311/", error_response)
        _no_422(app)

    # --- who is calling -------------------------------------------------------------------------

    def check_jurisdiction(self, given: str | None) -> None:
        if given and given != self.jurisdiction:
            raise HTTPException(
                404, f"jurisdiction_id not found: this endpoint serves {self.jurisdiction}"
            )

    async def caller(self, key: str | None) -> Caller:
        """The upstream system ``key`` identifies; 403 for none, or an unknown or revoked one."""
        if not key:
            raise HTTPException(403, "an api_key is required")
        if len(key) > MAX_KEY_CHARS:
            raise HTTPException(403, "invalid api_key")
        d = digest(key)
        found = self.keys.get(d)
        if found is None:
            async with self.svc.pool.acquire() as conn:
                found = await store.caller(conn, d)
            if found is None:
                raise HTTPException(403, "invalid api_key")
            self.keys.put(d, found)
        return found

    async def reader(
        self, api_key: str | None, basic: HTTPBasicCredentials | None, bearer: Any
    ) -> store.Scope:
        """Whose requests the caller of ``GET requests`` reads."""
        if bearer is not None:
            try:
                principal = await self.svc.verifier.verify(bearer.credentials)
            except InvalidToken:
                raise HTTPException(403, "invalid bearer token") from None
            if principal.role not in STAFF_ROLES or principal.unit is None:
                raise HTTPException(403, f"the {principal.role} role may not read requests")
            return store.Scope(unit=principal.unit)
        found = await self.caller(api_key or (basic.password if basic else None))
        return store.Scope(system=found.system)

    # --- POST requests --------------------------------------------------------------------------

    async def body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
            raise invalid([("body", f"larger than {MAX_BODY // 1024} KiB")])
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise invalid([("body", f"larger than {MAX_BODY // 1024} KiB")])
            chunks.append(chunk)
        return b"".join(chunks)

    async def multipart(self, request: Request) -> tuple[Submission, bytes | None]:
        """A multipart POST's fields, and its photo (the file ``media``), the body's size
        bounded by ``WANGGE_MEDIA_MAX_BYTES`` before it is read."""
        max_bytes = self.svc.settings.media_max_bytes
        declared = request.headers.get("content-length", "")
        if not (declared.isascii() and declared.isdigit()):
            raise invalid([("body", "a multipart POST needs a Content-Length")])
        if int(declared) > max_bytes + MEDIA_OVERHEAD:
            raise invalid([("media", f"the photo is larger than {max_bytes} bytes")])
        form = await request.form(max_files=1, max_fields=MAX_FIELDS)
        try:
            files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
            if any(k != "media" for k, _ in files):
                raise invalid([(files[0][0], "the only file a POST takes is media")])
            media = await files[0][1].read(max_bytes + 1) if files else None
            pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        finally:
            await form.close()
        return submission.from_form(pairs), media

    async def submission(self, request: Request) -> tuple[Submission, bytes | None]:
        """The POST's fields: form-encoded (the specification's), JSON, or multipart fields
        (with a photo, the file ``media``)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return await self.multipart(request)
        return await self.plain_submission(request, kind), None

    async def plain_submission(self, request: Request, kind: str) -> Submission:
        raw = await self.body(request)
        if kind in ("", "application/x-www-form-urlencoded"):
            try:
                pairs = parse_qsl(
                    raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS
                )
            except UnicodeDecodeError:
                raise invalid([("body", "not UTF-8")]) from None
            except ValueError:
                raise invalid([("body", f"more than {MAX_FIELDS} fields")]) from None
            return submission.from_form(pairs)
        if kind == "application/json" or kind.endswith("+json"):
            try:
                return submission.from_json(orjson.loads(raw))
            except orjson.JSONDecodeError:
                raise invalid([("body", "not JSON")]) from None
        raise invalid([("Content-Type", "application/x-www-form-urlencoded (or application/json)")])

    async def cleaned(self, media: bytes, caller: Caller) -> Photo:
        """An uploaded photo checked and rewritten without its metadata; 400 naming ``media``
        when it is refused."""
        if self.blobs is None:
            raise invalid([("media", "this endpoint takes no photo uploads: give a media_url")])
        try:
            return await asyncio.to_thread(images.clean, media, self.svc.settings.media_max_bytes)
        except PhotoRejected as exc:
            log.info("open311 photo refused", system=caller.system, reason=exc.reason)
            raise invalid([("media", str(exc))]) from None

    async def keep(self, photo: Photo, caller: Caller) -> None:
        """The photo stored (its bytes, then its row), before the report naming it is applied;
        503 while the store or the database is away."""
        assert self.blobs is not None
        try:
            await self.blobs.put(photo)
            async with self.svc.pool.acquire() as conn:
                await photo_store.add(conn, photo, caller.system, datetime.now(UTC))
        except STORE_AWAY:
            raise HTTPException(
                503, "temporarily unavailable: retry", headers={"Retry-After": "5"}
            ) from None

    async def report(
        self,
        sub: Submission,
        caller: Caller,
        idempotency_key: str | None,
        photo_ids: list[str] | None = None,
    ) -> tuple[ReportSubmitted, Posting]:
        code = sub.get("service_code")
        if not code:
            raise invalid([("service_code", "required")])
        category = self.taxonomy.get(code)
        if category is None:
            raise HTTPException(404, "service_code not found (GET services lists them)")
        address_id = sub.get("address_id")
        unit = None
        if address_id:
            unit = await self.address_unit(address_id)
            if unit is None:
                raise invalid([("address_id", "no unit of the registry has this code")])
        now = datetime.now(UTC)
        report = submission.to_report(
            sub,
            service_code=category.code,
            system=caller.system,
            channel=caller.channel,
            report_id=submission.report_id(caller.system, idempotency_key),
            now=now,
            address_unit=unit,
            photo_ids=photo_ids or [],
        )
        address = sub.get("address_string")
        posting = Posting(  # what GET answers: free text redacted (services/intake/redaction.py)
            system=caller.system,
            requested_at=now,
            service_code=category.code,
            description=redact(report.description),
            address=redact(address) if address else None,
            address_id=address_id,
            lat=report.location.lat,
            long=report.location.lon,
            media_url=report.photos[0] if report.photos else None,
        )
        return report, posting

    async def posted(
        self, request: Request, basic: HTTPBasicCredentials | None
    ) -> tuple[Submission, Caller, ReportSubmitted, Posting]:
        """A POST's fields, its caller, the report it stands for and what GET will answer of
        it; its photo (``media``), if any, stored."""
        try:
            sub, media = await self.submission(request)
            query = request.query_params
            self.check_jurisdiction(sub.get("jurisdiction_id") or query.get("jurisdiction_id"))
            key = sub.get("api_key") or query.get("api_key")
            caller = await self.caller(key or (basic.password if basic else None))
            idempotency_key = request.headers.get("idempotency-key")
            photo = await self.cleaned(media, caller) if media is not None else None
            photos = [photo.photo_id] if photo is not None else []
            report, posting = await self.report(sub, caller, idempotency_key, photos)
        except Invalid as exc:
            raise invalid(exc.errors) from None
        if photo is not None:
            await self.keep(photo, caller)
        return sub, caller, report, posting

    async def address_unit(self, code: str) -> AddressUnit | None:
        """The unit ``code`` names: from intake's location index when it has it (the report
        handler checks the code again against the current registry), else from the database
        (a unit newer than the index, or none)."""
        known = self.known_unit(code)
        if known is not None:
            return AddressUnit(known.code, known.level, known.name)
        async with self.svc.pool.acquire() as conn:
            return await store.address_unit(conn, code)

    async def apply(self, report: ReportSubmitted, posting: Posting) -> Accepted:
        """The report down the Kafka path's inbox and handler; its outcome (a retry: the first
        one's)."""
        try:
            applied = await self.svc.subscription("reports.submitted").apply_now(
                report, context=posting
            )
        except TRANSIENT_ERRORS:
            log.warning("open311 request not applied: database away", system=posting.system)
            raise HTTPException(
                503, "temporarily unavailable: retry", headers={"Retry-After": "5"}
            ) from None
        for event in applied.events:
            if isinstance(event, CaseOpened):
                notice = submission.opened_notice(
                    event.case_id, event.category_name, event.default_tier
                )
                return Accepted(event.case_id, notice, replayed=False)
            if isinstance(event, CaseMerged):
                notice = submission.merged_notice(event.case_id, event.supporter_count)
                return Accepted(event.case_id, notice, replayed=False)
            if isinstance(event, ReportRejected):
                raise invalid(submission.rejection_errors(event.errors))
        return await self.replay(report)

    async def replay(self, report: ReportSubmitted) -> Accepted:
        """A report handled before (a retried POST): the answer it had."""
        async with self.svc.pool.acquire() as conn:
            seen = await store.recorded(conn, report.source, report.report_id)
        if seen is None or seen.case_id is None:
            if seen is not None and seen.outcome == "rejected":
                raise invalid(submission.rejection_errors(seen.errors))
            raise HTTPException(503, "still being handled: retry", headers={"Retry-After": "1"})
        if seen.outcome == "merged":
            notice = submission.merged_notice(seen.case_id, seen.supporter_count or 1)
        else:
            category = self.taxonomy.get(seen.category or "")
            notice = submission.opened_notice(
                seen.case_id,
                category.name if category else (seen.category or ""),
                category.tier if category else None,
            )
        return Accepted(seen.case_id, notice, replayed=True)

    # --- GET requests ---------------------------------------------------------------------------

    async def requests(self, scope: store.Scope, q: RequestQuery) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        async with self.svc.pool.acquire() as conn:
            rows = await store.find_requests(conn, scope, q)
            codes = {c for r in rows for c in (*r.lineage.values(), r.place, r.progress.unit)}
            places = await store.places(conn, sorted(c for c in codes if c))
        out = []
        for row in rows:
            category = self.taxonomy.get(row.service_code)
            name = category.name if category else None
            out.append(case_status.service_request(row, name, places, now, extensions=q.extensions))
        return out

    # --- the routes -----------------------------------------------------------------------------

    def router(self) -> APIRouter:
        r = APIRouter(tags=[TAG])

        @r.get(
            f"{PREFIX}/services.{{fmt}}",
            response_model=None,
            responses=_answers(list[schemas.Service], 400, 404),
        )
        async def services(fmt: Fmt, jurisdiction_id: Jurisdiction = None) -> Response:
            """GET Service List: one service per category of the taxonomy."""
            self.check_jurisdiction(jurisdiction_id)
            return formats.render(fmt, "services", catalog.services(self.taxonomy))

        @r.get(
            f"{PREFIX}/services/{{service_code}}.{{fmt}}",
            response_model=None,
            responses=_answers(schemas.ServiceDefinition, 400, 404),
        )
        async def service_definition(
            service_code: str, fmt: Fmt, jurisdiction_id: Jurisdiction = None
        ) -> Response:
            """GET Service Definition: the attributes a POST may give."""
            self.check_jurisdiction(jurisdiction_id)
            category = self.taxonomy.get(service_code)
            if category is None:
                raise HTTPException(404, "service_code not found")
            return formats.render(fmt, "service_definition", catalog.definition(category))

        @r.post(
            f"{PREFIX}/requests.{{fmt}}",
            response_model=None,
            responses=_answers(
                list[schemas.PostedRequest], 400, 403, 404, 503, what="The service request"
            ),
            openapi_extra=_post_extra(),
        )
        async def post_request(request: Request, fmt: Fmt) -> Response:
            """POST Service Request: a report, handled as one on reports.submitted."""
            # the key and the Idempotency-Key read here, not as FastAPI dependencies (each one
            # costs the hot path; _post_extra documents them as the dependencies would)
            basic = await _basic(request)  # a malformed Authorization header: 403 first
            sub, caller, report, posting = await self.posted(request, basic)
            done = await self.apply(report, posting)
            log.info(
                "open311 request",
                system=caller.system,
                case_id=done.case_id,
                replayed=done.replayed,
            )
            answer = {
                "service_request_id": done.case_id,
                "service_notice": done.notice,
                "account_id": sub.get("account_id"),
                **self.status_link(done.case_id),
            }
            headers = {"Idempotent-Replayed": "true"} if done.replayed else None
            return formats.render(fmt, "service_requests", [answer], headers=headers)

        @r.get(
            f"{PREFIX}/requests.{{fmt}}",
            response_model=None,
            responses=_answers(list[schemas.ServiceRequest], 400, 403, 404),
        )
        async def get_requests(
            fmt: Fmt,
            api_key: KeyQuery,
            basic: Basic,
            bearer: Bearer,
            jurisdiction_id: Jurisdiction = None,
            service_request_id: Listed = None,
            service_code: Listed = None,
            start_date: Annotated[str | None, Query(description="W3C date-time")] = None,
            end_date: Annotated[str | None, Query(description="W3C date-time")] = None,
            status: Annotated[
                list[str] | None, Query(description="open, closed (comma-separated or repeated)")
            ] = None,
            extensions: Annotated[
                str | None, Query(description="true: add extended_attributes")
            ] = None,
            page_size: Annotated[str | None, Query(description="1..1000 (1000)")] = None,
            page: Annotated[str | None, Query(description="From 1")] = None,
        ) -> Response:
            """GET Service Requests: the caller's requests, newest first."""
            self.check_jurisdiction(jurisdiction_id)
            scope = await self.reader(api_key, basic, bearer)
            try:
                q = request_query(
                    service_request_id=service_request_id,
                    service_code=service_code,
                    status=status,
                    start_date=start_date,
                    end_date=end_date,
                    page_size=page_size,
                    page=page,
                    extensions=extensions,
                    now=datetime.now(UTC),
                )
            except BadQuery as exc:
                raise invalid(exc.errors) from None
            return formats.render(fmt, "service_requests", await self.requests(scope, q))

        @r.get(
            f"{PREFIX}/requests/{{service_request_id}}.{{fmt}}",
            response_model=None,
            responses=_answers(list[schemas.ServiceRequest], 400, 403, 404),
        )
        async def get_request(
            service_request_id: Annotated[str, PathParam(max_length=128)],
            fmt: Fmt,
            api_key: KeyQuery,
            basic: Basic,
            bearer: Bearer,
            jurisdiction_id: Jurisdiction = None,
            extensions: Annotated[
                str | None, Query(description="true: add extended_attributes")
            ] = None,
        ) -> Response:
            """GET Service Request: one request, as a list of one."""
            self.check_jurisdiction(jurisdiction_id)
            scope = await self.reader(api_key, basic, bearer)
            try:
                q = request_query(
                    service_request_id=[service_request_id],
                    service_code=None,
                    status=None,
                    start_date=None,
                    end_date=None,
                    page_size=None,
                    page=None,
                    extensions=extensions,
                    now=datetime.now(UTC),
                )
            except BadQuery as exc:
                raise invalid(exc.errors) from None
            found = await self.requests(scope, q)
            if not found:
                raise HTTPException(404, "service_request_id not found")
            return formats.render(fmt, "service_requests", found)

        @r.get(
            "/open311/discovery.{fmt}",
            response_model=None,
            responses=_answers(schemas.Discovery),
        )
        async def discovery(request: Request, fmt: Fmt) -> Response:
            """Service Discovery: where the GeoReport v2 endpoint is and what it speaks."""
            base = str(request.base_url).rstrip("/")
            doc = {
                "changeset": self.changeset,
                "contact": "区网格化服务管理中心（见 docs/integration.md）",
                "key_service": "api_key 由运维以 wangge apikey create SYSTEM 发放",
                "endpoints": [
                    {
                        "specification": SPECIFICATION,
                        "url": f"{base}{PREFIX}",
                        "changeset": self.changeset,
                        "type": "production",
                        "formats": ["text/xml", "application/json"],
                    }
                ],
            }
            return formats.render(fmt, "discovery", doc)

        return r


def _post_extra() -> dict[str, Any]:
    """What ``POST requests`` reads itself, in its OpenAPI operation: the body, the
    ``Idempotency-Key`` header, and the key (the security schemes of ``_key_query`` and
    ``_basic``, which the GET routes declare as dependencies; a form field too)."""
    schema = schemas.Submission.model_json_schema()
    form = {**schema, "additionalProperties": {"type": "string"}}
    retry = "A retry with the same key answers the same service request"
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": form},
                "application/json": {"schema": schema},
                "multipart/form-data": {
                    "schema": {
                        **form,
                        "properties": {
                            **form.get("properties", {}),
                            "media": {
                                "type": "string",
                                "format": "binary",
                                "description": "A photo (JPEG, PNG or WebP), instead of or "
                                "beside media_url: its metadata (EXIF, GPS) is stripped",
                            },
                        },
                    }
                },
            },
        },
        "parameters": [
            {
                "in": "header",
                "name": "idempotency-key",
                "required": False,
                "description": retry,
                "schema": {"type": "string", "title": "Idempotency-Key", "description": retry},
            }
        ],
        "security": [{"APIKeyQuery": []}, {"HTTPBasic": []}],
    }


def _no_422(app: FastAPI) -> None:
    """The Open311 routes answer bad input with a 400 (documented), never the 422 FastAPI
    documents for every route with parameters."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        doc = build()
        for path, ops in doc.get("paths", {}).items():
            if path.startswith("/open311/"):
                for op in ops.values():
                    op.get("responses", {}).pop("422", None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
