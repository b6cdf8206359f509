"""Photos over dispatch's handler API (docs/dispatch.md, "Photos").

- ``POST /cases/{case_id}/photos`` (multipart, the file in field ``photo``): a photo for an
  action, by a caller who may act on the case now (any action ``GET /cases/{id}`` offers them:
  a handler of the case, a verifier of its resolution, ...). It is checked by its content
  (JPEG, PNG or WebP; at most ``WANGGE_MEDIA_MAX_BYTES``), rewritten without its metadata (the
  GPS position above all: ``shared.media.images``) and stored (``shared.media.blobs``); the
  answer is its id, which an action then names in ``photos``.
- ``GET /cases/{case_id}/photos/{photo_id}``: a photo of the case, to a caller who may see the
  case (404 otherwise, as for an unknown case): a photo uploaded to dispatch is served by
  dispatch; a report's photo, which intake stores, is a redirect (307) to intake's
  ``/media/{photo_id}`` with a link signed for ``WANGGE_MEDIA_LINK_TTL_S`` seconds
  (``shared.media.links``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from shared.media import images
from shared.media.blobs import Blobs, BlobsUnavailable, blobs_from_settings, media_link_key
from shared.media.images import PhotoRejected
from shared.media.links import media_link
from shared.runtime.http import invalid_input, problems
from shared.runtime.logging import get_logger

from . import photo_store, store
from .api import Caller, CaseId, acting_id, case_in_reach, case_readable
from .photos import PhotoInfo, photo_info
from .states import allowed_actions

if TYPE_CHECKING:
    from .app import DispatchService

log = get_logger(component="dispatch-photos")

FORM_OVERHEAD: Final = 64 * 1024  # a multipart body's boundaries and headers beside the file
PhotoIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="The photo's id")]
SERVED_HEADERS: Final = {
    "Cache-Control": "private, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
}


def rejected(exc: PhotoRejected) -> Exception:
    if exc.reason == "too_large":
        return HTTPException(413, str(exc))
    return invalid_input("body", "photo", str(exc))


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The file of a multipart upload (field ``photo``), its size bounded before it is read."""
    declared = request.headers.get("content-length", "")
    if not (declared.isascii() and declared.isdigit()):
        raise HTTPException(411, "send the photo with a Content-Length")
    if int(declared) > max_bytes + FORM_OVERHEAD:
        raise HTTPException(413, f"the photo is larger than {max_bytes} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        raise invalid_input("body", "photo", "send the photo as multipart/form-data (field photo)")
    form = await request.form(max_files=1, max_fields=5)
    try:
        upload = form.get("photo")
        if not isinstance(upload, UploadFile):
            raise invalid_input("body", "photo", "a file in field photo is required")
        return await upload.read(max_bytes + 1)
    finally:
        await form.close()


def store_away() -> HTTPException:
    return HTTPException(503, "the photo store is away: retry", headers={"Retry-After": "5"})


UPLOAD_BODY: Final = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["photo"],
                    "properties": {
                        "photo": {
                            "type": "string",
                            "format": "binary",
                            "description": "A JPEG, PNG or WebP photo",
                        }
                    },
                }
            }
        },
    }
}


def register_photo_routes(svc: DispatchService) -> Blobs:
    """The routes, and the blob store they keep the photos in (its life a background task)."""
    blobs = blobs_from_settings(svc.settings, "dispatch", lambda: svc.pool)
    svc.background(blobs.run)
    svc.app.include_router(build_router(svc, blobs))
    return blobs


def build_router(svc: DispatchService, blobs: Blobs) -> APIRouter:
    router = APIRouter(tags=["handler API"])
    settings = svc.settings
    max_bytes = settings.media_max_bytes
    link_key = media_link_key(settings)

    @router.post(
        "/cases/{case_id}/photos",
        response_model=PhotoInfo,
        status_code=201,
        responses=problems(401, 403, 404, 411, 413, 422, 503),
        openapi_extra=UPLOAD_BODY,
    )
    async def upload_photo(case_id: CaseId, request: Request, caller: Caller) -> Any:
        """A photo for an action on the case, by a caller who may act on it now; checked by
        its content, its metadata (EXIF, GPS) stripped, stored; then name its id in an action's
        ``photos``. 413: too large; 422: not a JPEG, PNG or WebP image (field ``body.photo``)."""
        me = acting_id(caller)
        async with svc.pool.acquire() as conn:
            case = await case_in_reach(conn, caller, case_id)
            actor = await store.actor(conn, me) if me is not None else None
        if me is None or not allowed_actions(actor, case.view):
            raise HTTPException(403, "you may not act on this case now")
        data = await read_upload(request, max_bytes)
        try:
            photo = await asyncio.to_thread(images.clean, data, max_bytes)
        except PhotoRejected as exc:
            log.info("photo refused", case_id=case_id, reason=exc.reason)
            raise rejected(exc) from None
        try:
            await blobs.put(photo)
        except BlobsUnavailable:
            raise store_away() from None
        now = svc.dispatch.clock()
        async with svc.pool.acquire() as conn:
            await photo_store.add_upload(conn, case_id, photo, me, now)
            row = await photo_store.photo_of(conn, case_id, photo.photo_id)
        assert row is not None
        log.info("photo uploaded", case_id=case_id, size=photo.size, store=blobs.kind)
        return photo_info(row)

    @router.get(
        "/cases/{case_id}/photos/{photo_id}",
        response_class=Response,
        responses={
            200: {
                "description": "The photo",
                "content": {t: {} for t in images.CONTENT_TYPES},
            },
            307: {"description": "A report's photo: a short-lived signed link to intake"},
            **problems(401, 403, 404, 422, 503),
        },
    )
    async def get_photo(case_id: CaseId, photo_id: PhotoIdPath, caller: Caller) -> Response:
        """A photo of the case, to a caller who may see the case (404 otherwise)."""
        async with svc.pool.acquire() as conn:
            await case_readable(conn, caller, case_id)
            row = await photo_store.photo_of(conn, case_id, photo_id)
        if row is None:
            raise HTTPException(404, "unknown photo")
        if row.origin == "report":
            if link_key is None:
                raise HTTPException(503, "report photos need WANGGE_MEDIA_LINK_KEY on dispatch")
            expires = int(time.time()) + settings.media_link_ttl_s
            link = media_link(settings.public_intake_url, link_key, photo_id, expires)
            return RedirectResponse(link, status_code=307, headers={"Cache-Control": "no-store"})
        try:
            data = await blobs.get(photo_id)
        except BlobsUnavailable:
            raise store_away() from None
        if data is None:
            log.error("photo missing from its store", case_id=case_id, store=blobs.kind)
            raise HTTPException(404, "unknown photo")
        return Response(data, media_type=row.content_type, headers=SERVED_HEADERS)

    return router
