"""A case as Open311 shows it: status, notes, dates and the extended attributes (pure).

Intake keeps what dispatch and feedback said of each case (``case_progress``: the latest
dispatch, acceptance, escalation, resolution, reopening and closing, each with its time); the
topics they come on are not ordered with each other, so the current state is the latest of
those facts, worked out here when a request is read. Open311 knows two statuses: ``closed``
once feedback has closed the case (rated satisfied, or not rated in time), ``open`` before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

SH = ZoneInfo("Asia/Shanghai")

State = Literal["opened", "dispatched", "escalated", "accepted", "resolved", "reopened", "closed"]
RatingState = Literal["none", "awaiting", "unsatisfied", "satisfied", "unrated"]
LEVELS = ("district", "street", "community", "grid", "building")
TIER_NAMES = {"grid": "网格", "community": "社区", "street": "街道", "district": "区"}


@dataclass(frozen=True)
class Progress:
    """What dispatch and feedback reported of a case (a row of ``case_progress``)."""

    opened_at: datetime
    attempt: int = 0
    tier: str | None = None
    unit: str | None = None
    dispatched_at: datetime | None = None
    respond_by: datetime | None = None
    resolve_by: datetime | None = None
    accepted_at: datetime | None = None
    escalated_at: datetime | None = None
    escalated_from: str | None = None
    resolved_at: datetime | None = None
    resolution_note: str | None = None
    reopened_at: datetime | None = None
    reopen_count: int = 0
    closed_at: datetime | None = None
    close_outcome: str | None = None
    updated_at: datetime | None = None
    # 核查结案: who verifies the latest resolution (None: nobody), when one was verified, and
    # when one was sent back (handled again)
    verifier_unit: str | None = None
    verified_at: datetime | None = None
    sent_back_at: datetime | None = None

    @property
    def awaiting_verification(self) -> bool:
        """The latest resolution waits for its verifier."""
        if self.verifier_unit is None or self.resolved_at is None:
            return False
        return self.verified_at is None or self.verified_at < self.resolved_at


@dataclass(frozen=True)
class Place:
    """A unit of the registry copy: its name and, for a building, its point."""

    name: str
    lon: float | None = None
    lat: float | None = None


@dataclass(frozen=True)
class RequestRow:
    """One service request as the store reads it: an upstream system's first report on a case,
    with the case's place and progress."""

    case_id: str
    source: str
    merged: bool
    requested_at: datetime
    service_code: str
    description: str
    address: str | None
    address_id: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    place: str
    lineage: dict[str, str | None]
    supporter_count: int
    progress: Progress


def w3(at: datetime | None) -> str | None:
    """A W3C-DTF date-time with the offset of Asia/Shanghai, to the second."""
    return None if at is None else at.astimezone(SH).replace(microsecond=0).isoformat()


def local(at: datetime) -> str:
    return at.astimezone(SH).strftime("%Y-%m-%d %H:%M")


def state(p: Progress) -> State:
    """The case's current state: closed once closed, else the latest fact reported."""
    if p.closed_at is not None:
        return "closed"
    facts: list[tuple[datetime, int, State]] = [(p.opened_at, 0, "opened")]
    if p.dispatched_at is not None:
        escalated = p.escalated_at is not None and p.escalated_at >= p.dispatched_at
        facts.append((p.dispatched_at, 1, "escalated" if escalated else "dispatched"))
    if p.accepted_at is not None:
        facts.append((p.accepted_at, 2, "accepted"))
    if p.sent_back_at is not None:  # the resolution sent back: being handled again
        facts.append((p.sent_back_at, 3, "accepted"))
    if p.resolved_at is not None:
        facts.append((p.resolved_at, 3, "resolved"))
    if p.reopened_at is not None:
        facts.append((p.reopened_at, 4, "reopened"))
    # at equal times, the later step of the loop wins (a resolution beats its acceptance)
    return max(facts, key=lambda f: (f[0], f[1]))[2]


def rating_state(p: Progress, current: State) -> RatingState:
    """Where the resident's rating (评价) stands: not yet asked, awaited after a resolution,
    unsatisfied (the case was reopened and is being handled again), or the closing outcome."""
    if current == "closed":
        return "satisfied" if p.close_outcome == "satisfied" else "unrated"
    if current == "resolved":
        return "none" if p.awaiting_verification else "awaiting"
    if p.reopen_count > 0:
        return "unsatisfied"
    return "none"


def status(p: Progress) -> Literal["open", "closed"]:
    return "closed" if p.closed_at is not None else "open"


def updated_at(p: Progress) -> datetime:
    times = [
        t
        for t in (
            p.opened_at,
            p.updated_at,
            p.dispatched_at,
            p.accepted_at,
            p.resolved_at,
            p.reopened_at,
            p.closed_at,
        )
        if t is not None
    ]
    return p.closed_at if p.closed_at is not None else max(times)


def _unit(p: Progress, names: dict[str, str]) -> str:
    if p.unit is None:
        return "承办单位"
    return names.get(p.unit, p.unit)


def status_notes(p: Progress, current: State, names: dict[str, str]) -> str:
    """What has happened last, in Chinese, for the resident-facing platform."""
    unit = _unit(p, names)
    redo = f"（评价不满意后重办，第{p.reopen_count}次）" if p.reopen_count else ""
    if current == "opened":
        return "已受理，待派单"
    if current == "dispatched":
        return f"已派至{unit}办理{redo}"
    if current == "escalated":
        tier = TIER_NAMES.get(p.tier or "", p.tier or "")
        return f"已上报至{tier}层级（吹哨），由{unit}办理{redo}"
    if current == "accepted":
        again = p.sent_back_at is not None and (
            p.accepted_at is None or p.sent_back_at > p.accepted_at
        )
        if again:
            return f"核查未通过，{unit}重新办理中{redo}"
        return f"{unit}已接单办理{redo}"
    if current == "resolved":
        note = (p.resolution_note or "").strip()
        awaiting = "待核查" if p.awaiting_verification else "待评价"
        return f"{unit}已办结，{awaiting}" + (f"：{note}" if note else "")
    if current == "reopened":
        return f"评价不满意，重新办理（第{p.reopen_count}次）"
    if p.close_outcome == "satisfied":
        return "已办结，居民评价满意"
    return "已办结（评价期内未评价）"


def service_notice(p: Progress, current: State) -> str | None:
    """The action expected: the resolution deadline while the case is being handled."""
    if current in ("closed", "resolved") or p.resolve_by is None:
        return None
    return f"承诺{local(p.resolve_by)}前办结"


def overdue(p: Progress, current: State, now: datetime) -> bool:
    """The resolution deadline passed while the case was still being handled."""
    if p.resolve_by is None or current in ("closed", "resolved"):
        return False
    return now > p.resolve_by


def _ref(code: str | None, names: dict[str, str]) -> dict[str, str | None] | None:
    return None if code is None else {"code": code, "name": names.get(code)}


def address_of(row: RequestRow, places: dict[str, Place]) -> str | None:
    """The address given, else the place's names from the district down (a Chinese address
    reads from the largest unit to the smallest; grids are not part of one)."""
    if row.address:
        return row.address
    parts = [
        places[c].name
        for lvl in ("district", "street", "community", "building")
        if (c := row.lineage.get(lvl)) is not None and c in places
    ]
    return "".join(parts) or None


def service_request(
    row: RequestRow,
    service_name: str | None,
    places: dict[str, Place],
    now: datetime,
    *,
    extensions: bool,
) -> dict[str, Any]:
    """One ``request`` of ``GET requests``, with ``extended_attributes`` when asked for."""
    p = row.progress
    current = state(p)
    names = {code: place.name for code, place in places.items()}
    point = places.get(row.lineage.get("building") or row.place)
    given_point = row.lat is not None and row.long is not None
    out: dict[str, Any] = {
        "service_request_id": row.case_id,
        "status": status(p),
        "status_notes": status_notes(p, current, names),
        "service_name": service_name,
        "service_code": row.service_code,
        "description": row.description,
        "agency_responsible": names.get(p.unit, p.unit) if p.unit else None,
        "service_notice": service_notice(p, current),
        "requested_datetime": w3(row.requested_at),
        "updated_datetime": w3(max(updated_at(p), row.requested_at)),
        "expected_datetime": w3(p.resolve_by) if current != "closed" else None,
        "address": address_of(row, places),
        "address_id": row.address_id or row.place,
        "zipcode": None,
        "lat": row.lat if given_point else (point.lat if point else None),
        "long": row.long if given_point else (point.lon if point else None),
        "media_url": row.media_url,
    }
    if extensions:
        out["extended_attributes"] = {
            "channel": row.source,
            "case_state": current,
            "duplicate": row.merged,
            "supporter_count": row.supporter_count,
            **{lvl: _ref(row.lineage.get(lvl), names) for lvl in LEVELS},
            "tier": p.tier,
            "handling_unit": _ref(p.unit, names),
            "respond_by": w3(p.respond_by),
            "resolve_by": w3(p.resolve_by),
            "accepted_datetime": w3(p.accepted_at),
            "resolved_datetime": w3(p.resolved_at),
            "overdue": overdue(p, current, now),
            "rating_state": rating_state(p, current),
            "reopen_count": p.reopen_count,
        }
    return out
