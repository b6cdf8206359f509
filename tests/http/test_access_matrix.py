"""Who may call what: every operation of every service's OpenAPI document, called by no token, a
bad token, and each role both in the unit that reaches a case and in a foreign one; each answer
is the status the access rules (docs/integration.md, "Identity") say. An operation the documents
list and this matrix does not fails the test, so a new endpoint cannot ship without its rules.

The case: a report at building WC-YY-OJY-G01-B03, dispatched to that grid (欧景苑第一网格, street
杨园街道 WC-YY, district WC). "Own" units reach it, "foreign" ones are their neighbours."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.wait import eventually
from services.intake.open311 import store as open311_store
from services.intake.open311.apikeys import new_key
from tests.http.conftest import Stack

GRID, COMMUNITY, STREET, DISTRICT = "WC-YY-OJY-G01", "WC-YY-OJY", "WC-YY", "WC"


@dataclass(frozen=True)
class Caller:
    label: str
    role: str | None  # None: no token at all
    unit: str | None = None
    handler_id: str | None = None
    reaches: bool = False  # the caller's unit reaches the case (and its grid)
    bad_token: bool = False

    def headers(self, stack: Stack) -> dict[str, str]:
        if self.bad_token:
            return {"Authorization": "Bearer not.a.token"}
        if self.role is None:
            return {}
        return {"Authorization": f"Bearer {stack.token(self.role, self.unit, self.handler_id)}"}


HANDLER_ROLES = {"grid_worker", "community_staff", "party_volunteer", "street_staff"}
CALLERS = [
    Caller("no token", None),
    Caller("bad token", None, bad_token=True),
    Caller("resident", "resident"),
    Caller("ops", "ops"),
    Caller("grid worker", "grid_worker", GRID, "h-0001", reaches=True),
    Caller("grid worker, other grid", "grid_worker", "WC-YY-HPY-G01", "h-0004"),
    Caller("community staff", "community_staff", COMMUNITY, "h-0010", reaches=True),
    Caller("community staff, other", "community_staff", "WC-YY-HPY", "h-0011"),
    Caller("party volunteer", "party_volunteer", COMMUNITY, "h-0013", reaches=True),
    Caller("party volunteer, other", "party_volunteer", "WC-ZHL-QHJ", "pv-qhj"),
    Caller("street staff", "street_staff", STREET, "h-0020", reaches=True),
    Caller("street staff, other", "street_staff", "WC-ZHL", "ss-zhl"),
    Caller("department staff, not dispatched", "department_staff", "WC-CGJ", "h-0021"),
    Caller("command centre", "command_centre", DISTRICT, reaches=True),
    Caller("command centre, other district", "command_centre", "HK"),
]


def anyone(status: int) -> Callable[[Caller], set[int]]:
    return lambda c: {status}


def bearer(
    *, reach_ok: set[int], reach_no: int, roles: set[str] | None = None
) -> Callable[[Caller], set[int]]:
    """A bearer-token operation: 401 without a valid token, 403 for a role not in ``roles``
    (default: every role but resident and ops), else ``reach_ok`` or ``reach_no``."""
    allowed = roles or {*HANDLER_ROLES, "department_staff", "command_centre"}

    def expect(c: Caller) -> set[int]:
        if c.role is None:
            return {401}
        if c.role not in allowed:
            return {403}
        return reach_ok if c.reaches else {reach_no}

    return expect


def open311_read(c: Caller) -> set[int]:
    """Open311 GET requests* with a bearer token and no api_key: a staff token reads the requests
    within its reach (an unknown or unreachable id: 404); no credentials, or a role that is not
    staff, is the specification's 403."""
    if c.role in (None, "resident", "ops"):
        return {403}
    return {200} if c.reaches else {404}


def open311_list(c: Caller) -> set[int]:
    if c.role in (None, "resident", "ops"):
        return {403}
    return {200}  # a list of what the caller reaches (empty for a foreign unit)


# (service, method, path template) -> expected statuses per caller. Path parameters: {case_id}
# the case, {code} its grid, {fmt} json, {service_code} its category; Open311 without api_key.
MATRIX: dict[tuple[str, str, str], Callable[[Caller], set[int]]] = {
    **{
        (svc, "GET", path): anyone(200)
        for svc in ("intake", "dispatch", "feedback")
        for path in ("/healthz", "/readyz", "/metrics")
    },
    ("intake", "GET", "/open311/discovery.{fmt}"): anyone(200),
    ("intake", "GET", "/open311/v2/services.{fmt}"): anyone(200),
    ("intake", "GET", "/open311/v2/services/{service_code}.{fmt}"): anyone(200),
    ("intake", "POST", "/open311/v2/requests.{fmt}"): anyone(403),  # an api_key only
    ("intake", "GET", "/open311/v2/requests.{fmt}"): open311_list,
    ("intake", "GET", "/open311/v2/requests/{service_request_id}.{fmt}"): open311_read,
    # 未诉先办 hotspots: the command centre only, of its own district (another sees none: 200)
    ("intake", "GET", "/hotspots"): bearer(reach_ok={200}, reach_no=200, roles={"command_centre"}),
    ("dispatch", "GET", "/me/cases"): bearer(reach_ok={200}, reach_no=200),
    ("dispatch", "GET", "/cases/{case_id}"): bearer(reach_ok={200}, reach_no=404),
    # acting: within reach the state machine decides (200, or its 403/409/422), outside it 404
    ("dispatch", "POST", "/cases/{case_id}/actions"): bearer(
        reach_ok={200, 403, 409, 422}, reach_no=404
    ),
    # the triage queue (人工分拨): the command centre only; the matrix's case is dispatched, so a
    # triage decision is a 409, a correction to its own category too (nothing changes)
    ("dispatch", "GET", "/triage"): bearer(reach_ok={200}, reach_no=200, roles={"command_centre"}),
    ("dispatch", "POST", "/triage/{case_id}"): bearer(
        reach_ok={409}, reach_no=404, roles={"command_centre"}
    ),
    ("dispatch", "POST", "/cases/{case_id}/reclassify"): bearer(
        reach_ok={409}, reach_no=404, roles={"command_centre"}
    ),
    # 督办: the command centre of the case's area only; the handlers' list of supervisions
    ("dispatch", "POST", "/cases/{case_id}/supervise"): bearer(
        reach_ok={200}, reach_no=404, roles={"command_centre"}
    ),
    ("dispatch", "GET", "/me/supervisions"): bearer(reach_ok={200}, reach_no=200),
    # 吹哨报到 (work orders): the matrix's case is with a grid, which does not whistle (its worker
    # and the command centre: 409), others within reach may not (403); a council's decision
    # needs a case at deliberation (the grid's and the community's staff: 409; others 403); an
    # unknown order is a 404 to every role of the API; a unit's open orders (none: 200)
    ("dispatch", "POST", "/cases/{case_id}/orders"): bearer(reach_ok={403, 409}, reach_no=404),
    ("dispatch", "POST", "/cases/{case_id}/council"): bearer(reach_ok={403, 409}, reach_no=404),
    ("dispatch", "POST", "/orders/{order_id}/actions"): bearer(reach_ok={404}, reach_no=404),
    ("dispatch", "GET", "/me/orders"): bearer(reach_ok={200}, reach_no=200),
    # 三代 agency: the case's agent only; the matrix's case (sanitation) has none, so whoever
    # reaches it is answered 409, anyone else 404 (tests/dispatch/test_agency.py: the agent's
    # 200 and the 403 of a caller who reaches a case with an agent and is not it)
    ("dispatch", "POST", "/cases/{case_id}/commission"): bearer(reach_ok={409}, reach_no=404),
    ("dispatch", "POST", "/cases/{case_id}/relay"): bearer(reach_ok={409}, reach_no=404),
    # photos (照片): an upload by a caller who may act on the case now (a form that is no image:
    # 422; no action open to them: 403), one of its photos to whoever reaches it (an unknown
    # photo: 404); a report's photo from intake only by the link dispatch signs (none: 403)
    ("dispatch", "POST", "/cases/{case_id}/photos"): bearer(reach_ok={403, 422}, reach_no=404),
    ("dispatch", "GET", "/cases/{case_id}/photos/{photo_id}"): bearer(reach_ok={404}, reach_no=404),
    ("intake", "GET", "/media/{photo_id}"): anyone(403),
    # the command-centre board's API (the pages and the event stream are not in the document)
    ("dispatch", "GET", "/console/api/board"): bearer(
        reach_ok={200}, reach_no=200, roles={"command_centre"}
    ),
    ("dispatch", "GET", "/console/api/map"): bearer(
        reach_ok={200}, reach_no=200, roles={"command_centre"}
    ),
    ("dispatch", "GET", "/console/api/counts"): bearer(
        reach_ok={200}, reach_no=200, roles={"command_centre"}
    ),
    # the handler page's names (its unit, ancestors and units below; the categories): any staff
    ("dispatch", "GET", "/console/api/names"): bearer(reach_ok={200}, reach_no=200),
    ("feedback", "GET", "/units/{code}/metrics"): bearer(reach_ok={200}, reach_no=403),
    ("feedback", "GET", "/units/{code}/hot-issues"): bearer(reach_ok={200}, reach_no=403),
    ("feedback", "GET", "/units/{code}/ranking"): bearer(reach_ok={200}, reach_no=403),
    ("feedback", "GET", "/units/{code}/trends"): bearer(reach_ok={200}, reach_no=403),
    ("feedback", "GET", "/cases/{case_id}"): bearer(reach_ok={200}, reach_no=404),
}
# Resident pages by capability link: the link is the credential; a token changes nothing, and a
# made-up link is a 404 whoever asks.
CAPABILITY_PREFIXES = ("/r/", "/s/")
CAPABILITY_PATHS = ("/ratings",)


async def open_a_case(stack: Stack, **form: str) -> tuple[str, dict[str, Any]]:
    """A report posted over Open311 by an upstream system (so that the case is also a service
    request): its case id, once dispatch has dispatched it and feedback knows it, and the answer
    of the POST."""
    conn = await asyncpg.connect(stack.bed.admin_dsn, server_settings={"search_path": "intake"})
    try:
        key = new_key()
        await open311_store.insert_key(conn, key.key_id, "matrix", "open311", key.digest)
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(
                f"{stack.urls['intake']}/open311/v2/requests.json",
                data={
                    "api_key": key.key,
                    "service_code": "sanitation",
                    "address_id": f"{GRID}-B03",
                    "description": "3栋楼道垃圾堆了三天没人清运，异味很大",
                    **form,
                },
            )
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()[0]
        case_id: str = answer["service_request_id"]
        await eventually(
            partial(conn.fetchval, "SELECT 1 FROM dispatch.cases WHERE case_id = $1", case_id),
            timeout=60,
            what="the case dispatched to the grid",
        )
        await eventually(
            partial(conn.fetchval, "SELECT 1 FROM feedback.cases WHERE case_id = $1", case_id),
            timeout=30,
            what="feedback to know the case",
        )
    finally:
        await conn.close()
    return case_id, answer


def fill(path: str, case_id: str) -> str:
    return (
        path.replace("{case_id}", case_id)
        .replace("{service_request_id}", case_id)
        .replace("{code}", GRID)
        .replace("{fmt}", "json")
        .replace("{service_code}", "sanitation")
        .replace("{photo_id}", "0" * 64)
        .replace("{order_id}", f"{case_id}.o999")
    )


def query(path: str) -> dict[str, str]:
    return {"period": "2026-11"} if path.startswith("/units/") else {}


async def call(
    client: httpx.AsyncClient, method: str, url: str, caller: Caller, stack: Stack, path: str
) -> int:
    kwargs: dict[str, Any] = {"headers": caller.headers(stack), "params": query(path)}
    if method == "POST" and path.startswith("/orders/"):
        kwargs["json"] = {"action": "report"}
    elif method == "POST" and path.endswith("/actions"):
        kwargs["json"] = {"action": "accept"}
    elif method == "POST" and path.endswith("/orders"):
        kwargs["json"] = {"units": ["WC-YY-SZ"], "note": "请到场"}
    elif method == "POST" and path.endswith("/council"):
        kwargs["json"] = {
            "body": "居民议事会",
            "meeting_date": "2026-01-01",
            "decision": "同意",
            "votes": {"for": 1, "against": 0, "abstain": 0},
        }
    elif method == "POST" and path.endswith(("/supervise", "/commission", "/relay")):
        kwargs["json"] = {"note": "请尽快处置"}
    elif method == "POST" and (path.endswith("/reclassify") or path.startswith("/triage/")):
        kwargs["json"] = {"category": "sanitation"}  # the case's own: nothing changes
    elif method == "POST":
        kwargs["data"] = {"service_code": "sanitation", "description": "楼道灯坏了"}
    resp = await client.request(method, url, **kwargs)
    return resp.status_code


async def test_every_operation_answers_each_caller_as_the_rules_say(stack: Stack) -> None:
    case_id, _ = await open_a_case(stack)
    failures: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    async with httpx.AsyncClient(timeout=30) as client:
        for service, base in stack.urls.items():
            doc = (await client.get(f"{base}/openapi.json")).json()
            for path, ops in doc["paths"].items():
                for method in (m.upper() for m in ops):
                    op = (service, method, path)
                    if path.startswith(CAPABILITY_PREFIXES) or path in CAPABILITY_PATHS:
                        seen.add(op)
                        continue  # test_capability_links
                    expect = MATRIX.get(op)
                    if expect is None:
                        failures.append(f"{service} {method} {path}: not in the matrix")
                        continue
                    seen.add(op)
                    url = base + fill(path, case_id)
                    # the acting caller goes last: an accept changes the case
                    for caller in sorted(CALLERS, key=lambda c: c.handler_id == "h-0001"):
                        got = await call(client, method, url, caller, stack, path)
                        if got not in expect(caller):
                            failures.append(
                                f"{service} {method} {path} as {caller.label}: {got}, "
                                f"expected {sorted(expect(caller))}"
                            )
    missing = set(MATRIX) - seen
    assert not missing, f"in the matrix, not in any document: {sorted(missing)}"
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("prefix", CAPABILITY_PREFIXES)
async def test_a_made_up_link_is_unknown_whoever_asks(stack: Stack, prefix: str) -> None:
    base = stack.urls["feedback"]
    async with httpx.AsyncClient(timeout=30) as client:
        paths = (await client.get(f"{base}/openapi.json")).json()["paths"]
        assert any(p.startswith(prefix) for p in paths), f"no {prefix} link in the document"
        statuses = await asyncio.gather(
            *(client.get(f"{base}{prefix}made-up-link", headers=c.headers(stack)) for c in CALLERS)
        )
    assert {r.status_code for r in statuses} == {404}
