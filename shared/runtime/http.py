"""A small ASGI router for each service's HTTP side: health, readiness, Prometheus, JSON reads.

FastStream's ASGI app matches exact paths only; the services need path parameters
(``/units/{code}/metrics``), so this router serves every HTTP route and hands the ASGI lifespan
to FastStream, which starts and stops the broker.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Request:
    path_params: dict[str, str]
    query: dict[str, str]


@dataclass
class Response:
    body: bytes
    status: int = 200
    content_type: str = "application/json"

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS), status)

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message}, status)


RouteHandler = Callable[[Request], Awaitable[Response]]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[re.Pattern[str], RouteHandler]] = []

    def get(self, pattern: str) -> Callable[[RouteHandler], RouteHandler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def deco(fn: RouteHandler) -> RouteHandler:
            self.routes.append((regex, fn))
            return fn

        return deco

    def match(self, path: str) -> tuple[RouteHandler, dict[str, str]] | None:
        for regex, fn in self.routes:
            m = regex.match(path)
            if m:
                return fn, m.groupdict()
        return None


class HttpApp:
    """ASGI entry: ``lifespan`` goes to ``inner`` (FastStream), GET requests to the router."""

    def __init__(self, router: Router, inner: ASGIApp) -> None:
        self.router = router
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        found = self.router.match(scope["path"])
        if found is None:
            response = Response.error(404, "not found")
        elif scope["method"] not in ("GET", "HEAD"):
            response = Response.error(405, "method not allowed")
        else:
            handler, params = found
            qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            try:
                response = await handler(Request(params, {k: v[-1] for k, v in qs.items()}))
            except ValueError as exc:
                response = Response.error(400, str(exc))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", response.content_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
