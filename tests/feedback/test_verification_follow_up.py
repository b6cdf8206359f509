"""核查结案 as feedback sees it, on the real broker and database: a resolution naming a verifier
starts no follow-up; a send-back withdraws it (it counts as no resolution in the figures); the
next resolution's verification starts the round, told to the residents first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cli.client import Publisher, TopicReader
from cli.registry import publish_registry
from devstack.testbed import Testbed
from devstack.wait import eventually
from tests.feedback.helpers import (
    http_get,
    iso,
    new_case_id,
    of_case,
    opened,
    resolved,
    send,
    wait_n,
)
from tests.samples import sample_registry, wait_registry

OJY = "WC-YY-OJY"
SH = ZoneInfo("Asia/Shanghai")


def awaiting(case_id: str, at: datetime) -> dict[str, Any]:
    return {
        **resolved(case_id, at=at),
        "verifier_unit": OJY,
        "verify_by": iso(at + timedelta(days=1)),
    }


def verification(case_id: str, resolved_at: datetime, at: datetime) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "tier": "grid",
        "unit": "WC-YY-OJY-G01",
        "handler_id": "h-0001",
        "resolved_at": iso(resolved_at),
        "verifier_id": "h-0010",
        "verifier_unit": OJY,
        "verified_at": iso(at),
        "on_time": True,
    }


def sent_back(case_id: str, resolved_at: datetime, at: datetime) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "tier": "grid",
        "unit": "WC-YY-OJY-G01",
        "handler_id": "h-0001",
        "resolved_at": iso(resolved_at),
        "verifier_id": "h-0010",
        "verifier_unit": OJY,
        "reason": "现场仍有垃圾",
        "sent_back_at": iso(at),
    }


async def test_the_follow_up_waits_for_the_verification(bed: Testbed) -> None:
    svc = await bed.start("feedback")
    await publish_registry(bed.settings(), sample_registry())
    await wait_registry(bed)
    cid = new_case_id()
    # the 2nd of this month (Shanghai time), 09:00: in the open period, never a frozen one (and
    # maybe after now: feedback takes dispatch's times as they come)
    now = datetime.now(SH)
    first = now.replace(day=2, hour=9, minute=0, second=0, microsecond=0)
    second = first + timedelta(hours=2)
    month = f"{first:%Y-%m}"
    async with (
        Publisher(bed.settings(), source="test/dispatch") as pub,
        TopicReader(bed.settings(), "feedback.requested", "cases.notified") as reader,
    ):
        await send(pub, "cases.opened", opened(cid, at=first - timedelta(hours=1)))
        await send(pub, "cases.resolved", awaiting(cid, first))
        # the resolution is recorded, and in the same transaction nothing else happens
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT count(*) = 1 FROM resolutions WHERE case_id = $1", cid
            ),
            what="the resolution recorded",
        )
        assert await svc.pool.fetchval("SELECT state FROM cases WHERE case_id = $1", cid) == "open"

        await send(pub, "cases.sent_back", sent_back(cid, first, first + timedelta(hours=1)))
        await eventually(
            lambda: svc.pool.fetchval(
                "SELECT count(*) = 1 FROM send_backs WHERE case_id = $1", cid
            ),
            what="the send-back recorded",
        )
        status, figures = await http_get(svc, f"/units/WC-YY-OJY-G01/metrics?period={month}")
        assert status == 200, figures
        assert figures["metrics"]["resolved"] == 0  # the one resolution was withdrawn

        await send(pub, "cases.resolved", awaiting(cid, second))
        await send(pub, "cases.verified", verification(cid, second, second + timedelta(minutes=30)))
        (request,) = await wait_n(reader, "feedback.requested", cid, 1)
        assert request["reporter_ref"] == f"ref-{cid}"
        told = await reader.wait_for(
            lambda r: [n for n in of_case(r, "cases.notified", cid) if n["kind"] == "verified"],
            what="the verified notice",
        )
        assert "现场核查" in told[0]["text"]
        await reader.wait_for(
            lambda r: [n for n in of_case(r, "cases.notified", cid) if n["kind"] == "resolved"][1:],
            what="both resolutions told",
        )
        assert of_case(reader, "feedback.requested", cid) == [request]  # one round

    async def resolved_once() -> dict[str, Any]:
        status, figures = await http_get(svc, f"/units/WC-YY-OJY-G01/metrics?period={month}")
        assert status == 200 and figures["metrics"]["resolved"] == 1, figures
        return dict(figures)

    await eventually(resolved_once, what="the verified resolution counted")
    status, view = await http_get(svc, f"/cases/{cid}")
    events = [e["event"] for e in view["timeline"]]
    assert events == ["opened", "resolved", "sent_back", "resolved", "verified"]
    assert view["state"] == "resolved"
