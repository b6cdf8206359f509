"""Each service's HTTP side: a FastAPI app served by uvicorn in the FastStream app's process.

``create_app`` builds it with the service's lifespan (broker, pool, background tasks), the
OpenAPI document at ``/openapi.json`` and Swagger UI at ``/docs`` (its assets served by the
service itself, from ``fastapi-offline``: government networks are offline), and every error as
``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``, ``detail``,
``instance``, and for invalid input ``errors``, one entry per field. A part of the API with an
error format of its own (Open311's) registers it for its path prefix with ``error_format``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.runtime.consumer import TRANSIENT_ERRORS
from shared.runtime.logging import get_logger

PROBLEM_JSON = "application/problem+json"
log = get_logger(component="http")


class FieldError(BaseModel):
    field: str = Field(description="Where: `body.phone`, `query.period`, `path.case_id`")
    message: str
    type: str = Field(description="A stable code for the kind of error (pydantic's)")


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        None, description="For invalid input: one entry per field"
    )


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route for the errors it may answer, documented as problems."""
    return {
        s: {"description": HTTPStatus(s).phrase, "content": _problem_content()} for s in statuses
    }


@dataclass(frozen=True)
class ErrorInfo:
    """What went wrong, before it is put in a format."""

    status: int
    detail: str | None
    errors: list[FieldError] | None = None
    headers: dict[str, str] | None = None


ErrorFormat = Callable[[Request, ErrorInfo], Response]


def problem_response(request: Request, info: ErrorInfo) -> Response:
    body = Problem(
        title=HTTPStatus(info.status).phrase,
        status=info.status,
        detail=info.detail,
        instance=request.url.path,
        errors=info.errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=info.status,
        media_type=PROBLEM_JSON,
        headers=info.headers,
    )


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        out.append(
            FieldError(field=".".join(loc), message=e.get("msg", ""), type=e.get("type", ""))
        )
    return out


def invalid_input(location: str, name: str, message: str) -> RequestValidationError:
    """A 422 for one field a route checks itself (``location``: ``query``, ``path``, ``body``)."""
    return RequestValidationError(
        [{"loc": (location, name), "msg": message, "type": "value_error"}]
    )


def error_format(app: FastAPI, prefix: str, fmt: ErrorFormat) -> None:
    """Errors under ``prefix`` are answered by ``fmt`` instead of problem+json."""
    app.state.error_formats.append((prefix, fmt))


def _respond(request: Request, info: ErrorInfo) -> Response:
    for prefix, fmt in request.app.state.error_formats:
        if request.url.path.startswith(prefix):
            return fmt(request, info)  # type: ignore[no-any-return]
    return problem_response(request, info)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers) if exc.headers else None
    return _respond(request, ErrorInfo(exc.status_code, detail, headers=headers))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    return _respond(request, ErrorInfo(422, detail, errors))


async def _internal_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, TRANSIENT_ERRORS):  # the database or Kafka away: retry later, not a bug
        log.warning(
            "request not handled: a dependency is away",
            path=request.url.path,
            error_class=type(exc).__name__,
        )
        info = ErrorInfo(503, "temporarily unavailable: retry", headers={"Retry-After": "5"})
        return _respond(request, info)
    log.error("request failed", path=request.url.path, method=request.method, exc_info=exc)
    return _respond(request, ErrorInfo(500, "the request could not be handled"))


def create_app(
    name: str,
    version: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None,
    description: str = "",
) -> FastAPI:
    app = FastAPIOffline(
        title=f"wangge {name}",
        version=version,
        description=description,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs/static",
        # FastAPI's own OpenTelemetry hooks, unused (the metrics are Prometheus, at /metrics):
        # off, or every request asks OpenTelemetry for its providers
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.error_formats = []
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with its validation-error answers described as what they are: a
    problem with ``errors`` (``Problem``), as ``application/problem+json``."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=app.servers,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path in doc.get("paths", {}).values():
        for op in path.values():
            answer = op.get("responses", {}).get("422")
            if answer is not None:
                answer["content"] = _problem_content()
    app.openapi_schema = doc
    return doc
