"""Dispatch's photo rows (``case_photos``, migration 015): which photos a case has, and where
each comes from. The bytes are the blob store's (``shared.media.blobs``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.contract.events import CaseMerged, CaseOpened
from shared.media.images import Photo
from shared.runtime.db import Connection

Origin = Literal["upload", "report"]


@dataclass(frozen=True, slots=True)
class CasePhotoRow:
    case_id: str
    photo_id: str
    origin: Origin
    content_type: str
    size: int
    width: int | None
    height: int | None
    uploaded_by: str | None
    report_id: str | None
    added_at: datetime


_COLUMNS = (
    "case_id, photo_id, origin, content_type, size, width, height, uploaded_by, report_id, added_at"
)


async def add_upload(
    conn: Connection, case_id: str, photo: Photo, uploaded_by: str, at: datetime
) -> None:
    await conn.execute(
        f"INSERT INTO case_photos ({_COLUMNS}) VALUES ($1, $2, 'upload', $3, $4, $5, $6, $7, "
        "NULL, $8) ON CONFLICT (case_id, photo_id) DO NOTHING",
        case_id,
        photo.photo_id,
        photo.content_type,
        photo.size,
        photo.width,
        photo.height,
        uploaded_by,
        at,
    )


async def add_report_photos(conn: Connection, events: list[CaseOpened | CaseMerged]) -> None:
    """The photos of opened and merged reports (intake stores them), once each."""
    rows = []
    for ev in events:
        if isinstance(ev, CaseOpened):
            report_id, at = (ev.report_ids[0] if ev.report_ids else None), ev.opened_at
        else:
            report_id, at = ev.report_id, ev.merged_at
        for p in ev.photos:
            rows.append(
                (ev.case_id, p.photo_id, p.content_type, p.size, p.width, p.height, report_id, at)
            )
    if rows:
        await conn.executemany(
            f"INSERT INTO case_photos ({_COLUMNS}) VALUES ($1, $2, 'report', $3, $4, $5, $6, "
            "NULL, $7, $8) ON CONFLICT (case_id, photo_id) DO NOTHING",
            rows,
        )


async def photos_of(conn: Connection, case_id: str) -> list[CasePhotoRow]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM case_photos WHERE case_id = $1 ORDER BY added_at, photo_id",
        case_id,
    )
    return [CasePhotoRow(**dict(r)) for r in rows]


async def photo_of(conn: Connection, case_id: str, photo_id: str) -> CasePhotoRow | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM case_photos WHERE case_id = $1 AND photo_id = $2",
        case_id,
        photo_id,
    )
    return None if row is None else CasePhotoRow(**dict(row))


async def uploaded_ids(conn: Connection, case_id: str, photo_ids: list[str]) -> set[str]:
    """Which of ``photo_ids`` were uploaded to dispatch for this case."""
    rows = await conn.fetch(
        "SELECT photo_id FROM case_photos WHERE case_id = $1 AND photo_id = ANY($2::text[]) "
        "AND origin = 'upload'",
        case_id,
        photo_ids,
    )
    return {r["photo_id"] for r in rows}
