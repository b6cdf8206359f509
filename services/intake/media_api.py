"""Intake's photos over HTTP: ``GET /media/{photo_id}?exp=&sig=``, a photo intake stores (a
report's upload), to whoever holds a link dispatch signed (``shared.media.links``): dispatch
knows who may see the case and signs a link for those callers only, valid for
``WANGGE_MEDIA_LINK_TTL_S`` seconds. No link, a wrong or expired one: 403; an unknown photo: 404.
Without ``WANGGE_MEDIA_LINK_KEY`` intake serves no photo (403)."""

from __future__ import annotations

import time
from typing import Annotated, Final

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from shared.media import images
from shared.media.blobs import Blobs, BlobsUnavailable, blobs_from_settings, media_link_key
from shared.media.links import link_valid
from shared.runtime.http import problems
from shared.runtime.logging import get_logger
from shared.runtime.service import Service

from . import photo_store

log = get_logger(component="intake-media")

SERVED_HEADERS: Final = {
    "Cache-Control": "private, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
    "Referrer-Policy": "no-referrer",
}


def register_media(svc: Service) -> Blobs:
    """The route, and the blob store intake keeps its photos in (its life a background task)."""
    blobs = blobs_from_settings(svc.settings, "intake", lambda: svc.pool)
    svc.background(blobs.run)
    svc.app.include_router(build_router(svc, blobs, media_link_key(svc.settings)))
    return blobs


def build_router(svc: Service, blobs: Blobs, key: bytes | None) -> APIRouter:
    router = APIRouter(tags=["photos"])

    @router.get(
        "/media/{photo_id}",
        response_class=Response,
        responses={
            200: {"description": "The photo", "content": {t: {} for t in images.CONTENT_TYPES}},
            **problems(403, 404, 422, 503),
        },
    )
    async def media(
        photo_id: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
        exp: Annotated[str, Query(max_length=12, description="The link's expiry (Unix s)")] = "",
        sig: Annotated[str, Query(max_length=64, description="The link's signature")] = "",
    ) -> Response:
        """A report's photo, by a link dispatch signed for a caller who may see its case."""
        if key is None or not link_valid(key, photo_id, exp, sig, now=time.time()):
            raise HTTPException(403, "a valid, unexpired photo link is required")
        async with svc.pool.acquire() as conn:
            kind = await photo_store.content_type(conn, photo_id)
        if kind is None:
            raise HTTPException(404, "unknown photo")
        try:
            data = await blobs.get(photo_id)
        except BlobsUnavailable:
            raise HTTPException(
                503, "the photo store is away: retry", headers={"Retry-After": "5"}
            ) from None
        if data is None:
            log.error("photo missing from its store", store=blobs.kind)
            raise HTTPException(404, "unknown photo")
        return Response(data, media_type=kind, headers=SERVED_HEADERS)

    return router
