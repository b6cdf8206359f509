"""Intake's photo rows (``photos``, migration 017): the photos it stores, what each is and which
upstream system sent it. The bytes are the blob store's (``shared.media.blobs``)."""

from __future__ import annotations

from datetime import datetime

from shared.contract.events import CasePhoto
from shared.media.images import Photo
from shared.runtime.db import Connection


async def add(conn: Connection, photo: Photo, system: str, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO photos (photo_id, content_type, size, width, height, system, stored_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (photo_id) DO NOTHING",
        photo.photo_id,
        photo.content_type,
        photo.size,
        photo.width,
        photo.height,
        system,
        at,
    )


async def held(conn: Connection, photo_ids: list[str]) -> dict[str, CasePhoto]:
    """The photos of ``photo_ids`` intake holds, as the case's events name them."""
    if not photo_ids:
        return {}
    rows = await conn.fetch(
        "SELECT photo_id, content_type, size, width, height FROM photos "
        "WHERE photo_id = ANY($1::text[])",
        photo_ids,
    )
    return {r["photo_id"]: CasePhoto(**dict(r)) for r in rows}


async def content_type(conn: Connection, photo_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT content_type FROM photos WHERE photo_id = $1", photo_id
    )
    return value
