"""What dispatch and feedback do to a case shows in GET requests: intake keeps the case events
(cases.dispatched / accepted / escalated / resolved / reopened / closed) and answers the status,
notes, deadlines and extended attributes. Dispatch runs for real; feedback's events are
published as feedback publishes them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed
from devstack.wait import eventually
from services.intake.open311 import schemas
from services.intake.open311.status import TIER_NAMES, w3
from shared.contract.events import TIERS
from tests.intake.open311_support import V2, client, issue_key, spec_form, start


async def until(
    http: httpx.AsyncClient, case_id: str, key: str, cond: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The request as ``GET requests/{id}.json?extensions=true`` answers it, once ``cond``."""

    async def read() -> dict[str, Any] | None:
        got = await http.get(
            f"{V2}/requests/{case_id}.json", params={"api_key": key, "extensions": "true"}
        )
        assert got.status_code == 200, got.text
        (request,) = got.json()
        schemas.ServiceRequest.model_validate(request)
        return request if cond(request) else None

    found = await eventually(read, timeout=30, what=f"{case_id} to satisfy {cond}")
    assert found is not None
    return found


def state(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda r: r["extended_attributes"]["case_state"] == name


async def test_the_loop_shows_in_the_extended_attributes(bed: Testbed) -> None:
    await bed.start("dispatch")
    run = await start(bed)  # the registry is read by both
    key = await issue_key(run.svc, "hotline-12345", "hotline_12345")
    async with (
        client(run.svc) as http,
        TopicReader(bed.settings(), "cases.dispatched") as reader,
        Publisher(bed.settings(), source="test/handler-app") as pub,
    ):
        posted = await http.post(f"{V2}/requests.json", data=spec_form(key))
        case_id = posted.json()[0]["service_request_id"]

        async def dispatch(attempt: int) -> dict[str, Any]:
            found = await reader.wait_for(
                lambda r: [
                    x.json()
                    for x in r.of("cases.dispatched")
                    if x.key == case_id and x.json()["attempt"] == attempt
                ],
                what=f"dispatch {attempt}",
            )
            return dict(found[0])

        async def act(handler: str, action: str, **fields: str) -> None:
            body = {
                "action_id": f"a-{uuid.uuid4().hex[:8]}",
                "case_id": case_id,
                "handler_id": handler,
                "action": action,
                "at": datetime.now(UTC).isoformat(),
                **fields,
            }
            await pub.send("handler.actions", body, key=case_id, subject=case_id)

        first = await dispatch(1)
        seen = await until(http, case_id, key, state("dispatched"))
        ext = seen["extended_attributes"]
        assert seen["status"] == "open"
        assert seen["agency_responsible"] == "欧景苑第一网格"
        assert seen["status_notes"] == "已派至欧景苑第一网格办理"
        assert seen["expected_datetime"] == w3(datetime.fromisoformat(first["resolve_by"]))
        assert seen["service_notice"].startswith("承诺") and seen["service_notice"].endswith(
            "前办结"
        )
        assert ext["tier"] == "grid" and ext["channel"] == "hotline_12345"
        assert ext["handling_unit"] == {"code": "WC-YY-OJY-G01", "name": "欧景苑第一网格"}
        assert ext["grid"] == {"code": "WC-YY-OJY-G01", "name": "欧景苑第一网格"}
        assert ext["community"] == {"code": "WC-YY-OJY", "name": "欧景苑社区"}
        assert ext["street"] == {"code": "WC-YY", "name": "杨园街道"}
        assert ext["respond_by"] == w3(datetime.fromisoformat(first["respond_by"]))
        assert ext["rating_state"] == "none" and ext["overdue"] is False

        await act(first["handler_id"], "accept")
        seen = await until(http, case_id, key, state("accepted"))
        assert seen["status_notes"] == "欧景苑第一网格已接单办理"
        assert seen["extended_attributes"]["accepted_datetime"] is not None

        await act(first["handler_id"], "resolve", note="已清运，有事联系13812345678")
        seen = await until(http, case_id, key, state("resolved"))
        assert seen["status"] == "open"  # until the resident rates it (or the window ends)
        assert seen["status_notes"] == "欧景苑第一网格已办结，待核查：已清运，有事联系138****5678"
        assert seen["extended_attributes"]["rating_state"] == "none"
        assert seen["service_notice"] is None
        # the community verifies it on site (核查结案) before the resident rates it
        await act("h-0010", "verify", note="现场已核实")
        seen = await until(
            http, case_id, key, lambda r: r["extended_attributes"]["rating_state"] == "awaiting"
        )
        assert seen["status_notes"] == "欧景苑第一网格已办结，待评价：已清运，有事联系138****5678"
        admin = await asyncpg.connect(bed.admin_dsn)
        try:
            await eventually(
                lambda: admin.fetchval(
                    "SELECT state = 'resolved' FROM dispatch.cases WHERE case_id = $1", case_id
                ),
                what="the resolution verified",
            )
        finally:
            await admin.close()

        # the resident is not satisfied: feedback reopens, dispatch sends the case again
        async with Publisher(bed.settings(), source="wangge/feedback") as feedback:
            reopened = {"case_id": case_id, "reason": "unsatisfied: 还是有垃圾", "reopen_count": 1}
            await feedback.send("cases.reopened", reopened, key=case_id, subject=case_id)
            second = await dispatch(2)
            seen = await until(
                http,
                case_id,
                key,
                lambda r: (
                    r["extended_attributes"]["reopen_count"] == 1
                    and r["extended_attributes"]["case_state"] == "dispatched"
                ),
            )
            assert seen["extended_attributes"]["rating_state"] == "unsatisfied"
            assert seen["status_notes"].endswith("（评价不满意后重办，第1次）")

            # the grid cannot solve it: 吹哨, one tier up
            await act(second["handler_id"], "escalate", note="需社区协调物业")
            third = await dispatch(3)
            seen = await until(http, case_id, key, state("escalated"))
            ext = seen["extended_attributes"]
            assert (ext["tier"], ext["handling_unit"]["code"]) == (third["tier"], third["unit"])
            assert TIERS.index(third["tier"]) > TIERS.index(second["tier"])
            unit = ext["handling_unit"]["name"]
            assert seen["agency_responsible"] == unit
            tier = TIER_NAMES[third["tier"]]
            assert seen["status_notes"].startswith(f"已上报至{tier}层级（吹哨），由{unit}办理")

            closed_at = datetime.now(UTC)
            closed = {"case_id": case_id, "outcome": "satisfied", "closed_at": closed_at}
            await feedback.send("cases.closed", closed, key=case_id, subject=case_id)
            seen = await until(http, case_id, key, lambda r: r["status"] == "closed")
        assert seen["updated_datetime"] == w3(closed_at)
        assert seen["expected_datetime"] is None
        assert seen["status_notes"] == "已办结，居民评价满意"
        assert seen["extended_attributes"]["rating_state"] == "satisfied"
        assert seen["extended_attributes"]["case_state"] == "closed"
        listed = await http.get(f"{V2}/requests.json", params={"api_key": key, "status": "closed"})
        assert [r["service_request_id"] for r in listed.json()] == [case_id]
