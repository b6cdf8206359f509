"""Helpers of the feedback tests: upstream event builders, the HTTP API, waiting on topics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from cli.client import Publisher, Record, TopicReader
from devstack.testbed import notify_key_for_tests
from shared.contract.notify import NotifyKeys, open_request
from shared.runtime.identity import issue_token
from shared.runtime.service import Service

DISTRICT = "WC"  # the district of the sample registries (武昌区)
NOTIFY_KEYS = NotifyKeys.parse(notify_key_for_tests())  # the notifier's, as the testbeds'

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def sh(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    """A local time in Asia/Shanghai."""
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def iso(at: datetime) -> str:
    return at.isoformat()


def new_case_id() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


LOCATIONS = {
    "WC-YY-OJY-G01": ("WC", "WC-YY", "WC-YY-OJY", "WC-YY-OJY-G01"),
    "WC-YY-OJY-G02": ("WC", "WC-YY", "WC-YY-OJY", "WC-YY-OJY-G02"),
    "WC-YY-HPY-G01": ("WC", "WC-YY", "WC-YY-HPY", "WC-YY-HPY-G01"),
}


def opened(
    case_id: str,
    *,
    grid: str = "WC-YY-OJY-G01",
    category: str = "sanitation",
    at: datetime | None = None,
    reporter_ref: str | None = None,
    source: str = "weixin_grid_group",
    default_tier: str | None = None,
) -> dict[str, Any]:
    district, street, community, grid_code = LOCATIONS[grid]
    return {
        "case_id": case_id,
        "report_ids": [f"r-{case_id}"],
        "source": source,
        "opened_at": iso(at or datetime.now(UTC)),
        "category": category,
        "category_name": {"sanitation": "环境卫生", "parking": "停车管理", "noise": "噪音扰民"}.get(
            category, category
        ),
        "agency_mode": "errand_service",
        "classification": {"method": "keywords", "terms": [], "confidence": 0.9},
        "location": {
            "district": district,
            "street": street,
            "community": community,
            "grid": grid_code,
        },
        "description": "楼道垃圾堆积",
        "reporter_ref": reporter_ref or f"ref-{case_id}",
        "reporter_phone_masked": "138****5678",
        "default_tier": default_tier,
    }


def merged(case_id: str, reporter_ref: str, source: str = "hotline_12345") -> dict[str, Any]:
    return {
        "case_id": case_id,
        "report_id": f"r-{uuid.uuid4().hex[:8]}",
        "source": source,
        "merged_at": iso(datetime.now(UTC)),
        "supporter_count": 2,
        "reporter_ref": reporter_ref,
    }


def dispatched(
    case_id: str, tier: str, unit: str, at: datetime, attempt: int = 1
) -> dict[str, Any]:
    respond = {"grid": 2, "community": 4, "street": 8, "district": 24}[tier]
    return {
        "case_id": case_id,
        "tier": tier,
        "unit": unit,
        "handler_id": "h-0001",
        "respond_by": iso(at + respond * H),
        "resolve_by": iso(at + 24 * H),
        "attempt": attempt,
        "dispatched_at": iso(at),
    }


def accepted(case_id: str, tier: str, unit: str, at: datetime, on_time: bool) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "tier": tier,
        "unit": unit,
        "handler_id": "h-0001",
        "accepted_at": iso(at),
        "on_time": on_time,
    }


def escalated(
    case_id: str, from_tier: str, to_tier: str, unit: str, at: datetime | None = None
) -> dict[str, Any]:
    """``at``: the payload's ``escalated_at`` (without it, the event's time is its ce_time)."""
    body = {
        "case_id": case_id,
        "from_tier": from_tier,
        "to_tier": to_tier,
        "unit": unit,
        "reason": "超出网格处置能力",
    }
    return body if at is None else {**body, "escalated_at": iso(at)}


def resolved(
    case_id: str,
    tier: str = "grid",
    unit: str = "WC-YY-OJY-G01",
    at: datetime | None = None,
    on_time: bool = True,
    note: str = "已处理",
) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "resolved_at": iso(at or datetime.now(UTC)),
        "tier": tier,
        "unit": unit,
        "handler_id": "h-0001",
        "note": note,
        "on_time": on_time,
    }


def extended(
    case_id: str,
    resolve_by: datetime,
    at: datetime | None = None,
    tier: str = "grid",
    unit: str = "WC-YY-OJY-G01",
) -> dict[str, Any]:
    """An approved extension (缓办/延期) to ``resolve_by``, applied ``at``."""
    at = at or datetime.now(UTC)
    return {
        "case_id": case_id,
        "tier": tier,
        "unit": unit,
        "handler_id": "h-0001",
        "previous_resolve_by": iso(at + 2 * H),
        "resolve_by": iso(resolve_by),
        "reason": "等待配件到货",
        "approved_by": "h-0002",
        "requested_at": iso(at - H),
        "extended_at": iso(at),
    }


def rating(
    case_id: str,
    token: str,
    *,
    ok: bool = True,
    satisfaction: str = "satisfied",
    at: datetime | None = None,
    comment: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_id": case_id,
        "rating_token": token,
        "resolved": ok,
        "satisfaction": satisfaction,
        "at": iso(at or datetime.now(UTC)),
    }
    if comment is not None:
        body["comment"] = comment
    return body


def token_of(request: dict[str, Any]) -> str:
    """The rating token of a ``feedback.requested`` payload, opened as the notifier does."""
    return open_request(request, NOTIFY_KEYS).rating_token


async def send(pub: Publisher, topic: str, body: dict[str, Any], **headers: str) -> None:
    await pub.send(
        topic, body, key=body.get("case_id"), subject=body.get("case_id"), headers=headers or None
    )


def of_case(reader: TopicReader, topic: str, case_id: str) -> list[Any]:
    return [r.json() for r in reader.of(topic) if _case(r) == case_id]


def _case(r: Record) -> str | None:
    body = r.json()
    return body.get("case_id") if isinstance(body, dict) else None


async def wait_n(
    reader: TopicReader, topic: str, case_id: str, n: int, timeout: float = 30
) -> list[Any]:
    """The first ``n`` messages of ``topic`` about ``case_id`` (waits for them)."""
    found: list[Any] = await reader.wait_for(
        lambda r: len(of_case(r, topic, case_id)) >= n and of_case(r, topic, case_id),
        timeout=timeout,
        what=f"{n} x {topic} for {case_id}",
    )
    return found


async def http_get(
    svc: Service, path: str, token: str | None = None, *, role: str = "command_centre"
) -> tuple[int, Any]:
    """GET through the service's real ASGI app (routing, validation, problem+json), as
    ``token``, or by default as the command centre of the city the tests build."""
    if token is None:
        token = issue_token(svc.settings, role=role, unit=DISTRICT)
    transport = httpx.ASGITransport(app=svc.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        resp = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    return resp.status_code, resp.json()
