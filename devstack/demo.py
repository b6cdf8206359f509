"""``make demo``: the whole loop on a sample city, on real Kafka and PostgreSQL, across the
National Day holiday of 2026.

Starts the stack (as ``make up`` does, in its own run folder) on a demonstration clock
(``shared.runtime.clock.DemoClock``): every service's time starts at Wednesday 30 September 2026,
15:00 in Shanghai, the eve of the holiday, and runs 5,760 times as fast (a minute is four days),
with the dispatch limits in working time (``deploy/samples/tier_rules_working.yaml``: a grid case
dispatched then is to be resolved by the close of Thursday 8 October, the first working day after
the holiday). It loads the sample registry, replays sample resident reports through intake ->
dispatch -> feedback, plays the handlers (accept, resolve) and the residents (ratings: most
satisfied, some not, which reopens the case), and plays three cases apart: one whose handler asks
for an extension (缓办/延期) that the community approves, resolved after its first deadline and on
time by the approved one; one accepted and left, warned (黄牌) and then overdue (红牌), which
escalates to the community; one returned by its grid as not theirs (退单), which the district's
command centre decides (its category kept) and which is dispatched past the grid. Every
resolution is verified on site (核查结案) before its follow-up; the first case given an agent (三代)
has its commission recorded and its progress relayed; a report from a building another
community serves (插花地) goes to the serving community. September's figures freeze half a day
after the month closed (the grace, ``WANGGE_METRICS_FREEZE_GRACE``). It prints what happened,
September's official figures and October's provisional ones, then the command-centre board's
address (``CONSOLE_URL``) with a sign-in link for the district's command centre and one for a
grid worker's phone page, and keeps the city running (the services, on the demonstration clock)
until interrupted (Ctrl-C); ``--exit`` stops everything at the end instead (tests and CI).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import orjson
from rich.console import Console
from rich.table import Table

from cli.client import Publisher, TopicReader
from cli.metrics import metric_rows
from cli.registry import publish_registry
from devstack import stack
from devstack.actors import Actors, stable_fraction, unit_handler
from devstack.paths import ROOT, RUN
from shared.contract.taxonomy import default_taxonomy
from shared.registry.file import load_registry_file
from shared.runtime.clock import DemoClock
from shared.runtime.identity import issue_token
from shared.runtime.settings import Settings
from shared.runtime.signin import issue_signin_token, signin_url

SAMPLES = ROOT / "deploy" / "samples"
console = Console()
TOPICS = (
    "cases.opened",
    "cases.merged",
    "reports.rejected",
    "cases.dispatched",
    "cases.escalated",
    "cases.warned",
    "cases.overdue",
    "cases.extended",
    "cases.accepted",
    "cases.resolved",
    "cases.verified",
    "cases.returned",
    "cases.reclassified",
    "cases.agent_assigned",
    "cases.commissioned",
    "cases.relayed",
    "cases.order_issued",
    "cases.order_updated",
    "cases.council_decided",
    "feedback.requested",
    "cases.closed",
    "cases.reopened",
    "handler.actions.rejected",
)


SHANGHAI = ZoneInfo("Asia/Shanghai")
# The demo's time: the eve of the National Day holiday, a minute of it four days
START = datetime(2026, 9, 30, 15, 0, tzinfo=SHANGHAI)
SPEED = 5760.0
STARTUP_S = 30.0  # the clock stands at START until the stack is up (the anchor)
UNTIL = datetime(2026, 10, 9, 12, 0, tzinfo=SHANGHAI)  # what the story needs
EXTEND_TO = datetime(2026, 10, 12, 17, 30, tzinfo=SHANGHAI)
RESOLVE_EXTENDED_AT = datetime(2026, 10, 9, 10, 0, tzinfo=SHANGHAI)
APPROVER = "h-0010"  # 欧景苑社区's staff: the unit one tier up of its grids
STORY_UNIT = "WC-YY-OJY-G01"
CLOCK = DemoClock(START, time.time() + STARTUP_S, SPEED)  # main() sets it anew


def now() -> str:
    return CLOCK().isoformat()


def local(iso: str | datetime) -> str:
    t = datetime.fromisoformat(iso) if isinstance(iso, str) else iso
    return t.astimezone(SHANGHAI).strftime("%m-%d %H:%M")


async def wait_registry(admin_dsn: str, timeout: float = 60) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        deadline = time.monotonic() + timeout
        for schema in stack.SERVICES:
            while not await conn.fetchval(
                f"SELECT count(*) FROM {schema}.handlers WHERE id = 'h-0030'"
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{schema} did not read the registry")
                await asyncio.sleep(0.2)
    finally:
        await conn.close()


def demo_rating(case_id: str, round_: int) -> dict[str, Any] | None:
    """1 in 10 unsatisfied at first (the case is reopened), 1 in 10 never rated, the rest
    satisfied or basically satisfied."""
    f = stable_fraction(case_id, "demo")
    if round_ == 1 and f < 0.1:
        return {"resolved": False, "satisfaction": "unsatisfied", "comment": "问题没有解决"}
    if f < 0.2:
        return None
    return {"resolved": True, "satisfaction": "satisfied" if f < 0.85 else "basically_satisfied"}


def load_reports() -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate((SAMPLES / "reports.jsonl").read_text(encoding="utf-8").splitlines()):
        r = orjson.loads(line)
        r.update(
            report_id=f"demo-{i:03d}",
            submitted_at=now(),
            reporter={"name": "居民", "phone": f"1380000{i:04d}"},
        )
        out.append(r)
    out.append(
        {
            "report_id": "demo-bad",
            "source": "app",
            "submitted_at": now(),
            "location": {"building_code": "NOWHERE"},
            "description": "无效位置的测试报事",
        }
    )
    return out


# What the story tells of each event of its cases: (when, case, what)
TOLD: dict[str, Callable[[dict[str, Any]], tuple[str, str, str]]] = {
    "cases.returned": lambda ev: (
        ev["returned_at"],
        ev["case_id"],
        f"returned by {ev['unit']} (退单): {ev['reason']}",
    ),
    "cases.reclassified": lambda ev: (
        ev["reclassified_at"],
        ev["case_id"],
        f"the command centre decides: {ev['to_category_name']} (origin {ev['origin']})",
    ),
    "cases.extended": lambda ev: (
        ev["extended_at"],
        ev["case_id"],
        f"extension approved by {ev['approved_by']}: resolve by {local(ev['resolve_by'])}"
        f" (was {local(ev['previous_resolve_by'])})",
    ),
    "cases.warned": lambda ev: (
        ev["warned_at"],
        ev["case_id"],
        f"yellow card (黄牌): {ev['stage']} stage",
    ),
    "cases.overdue": lambda ev: (
        ev["overdue_at"],
        ev["case_id"],
        f"red card (红牌): {ev['deadline']} overdue",
    ),
    "cases.escalated": lambda ev: (
        ev["escalated_at"],
        ev["case_id"],
        f"escalated to {ev['to_tier']} ({ev['reason']})",
    ),
    "cases.resolved": lambda ev: (
        ev["resolved_at"],
        ev["case_id"],
        f"resolved at {ev['tier']} tier, {'on time' if ev['on_time'] else 'late'}",
    ),
    "cases.verified": lambda ev: (
        ev["verified_at"],
        ev["case_id"],
        f"verified on site (核查结案) by {ev['verifier_id']} of {ev['verifier_unit']}",
    ),
    "cases.commissioned": lambda ev: (
        ev["recorded_at"],
        ev["case_id"],
        "the resident's commission (委托) recorded",
    ),
    "cases.relayed": lambda ev: (
        ev["relayed_at"],
        ev["case_id"],
        f"the agent relays: {ev['note']}",
    ),
}
Decide = Callable[[str, str], Awaitable[None]]  # (case id, category): the command centre's
# (path, body, role, unit, handler id): a staff member's POST to dispatch
Post = Callable[[str, dict[str, Any], str, str, str | None], Awaitable[bool]]
# the command centre deciding its triage queue (人工分拨): the (case, category) decided
Triage = Callable[[], Awaitable[list[tuple[str, str]]]]


class Story:
    """The cases played apart (on the first three grid cases of ``STORY_UNIT``): one asks for
    an extension, which the community approves, and is resolved between its first deadline and
    the approved one; one is accepted and left, so it is warned, then overdue, and escalates;
    one is returned by its grid as not theirs (退单), and the district's command centre decides
    it (``decide``: its category kept), so that it is dispatched past the grid. And two kinds
    told as they come: the first case given an agent (三代 agency), whose agent records the
    resident's commission (委托) and relays its progress (``post``); a report from 钢都花园8栋, a
    building of 青山区 served by 和平苑社区 (插花地), which goes to the serving community's grid."""

    def __init__(self, actors: Actors, decide: Decide, post: Post, triage: Triage) -> None:
        self.actors = actors
        self.decide = decide
        self.post = post
        self.triage = triage
        self.triaged: str | None = None  # the first case the command centre decided
        self.agency: dict[str, Any] | None = None  # the first cases.agent_assigned
        self.commissioned = False
        self.relayed = False
        self.served: str | None = None  # the 插花地 case
        self.extended: str | None = None
        self.left: str | None = None
        self.returned: str | None = None
        self.to_decide: tuple[str, str] | None = None  # (case, its category) once returned
        self.decided = False
        self.steps: list[tuple[str, str, str]] = []  # (when, case, what)
        self.approved = False
        self.extended_resolved = False

    def note(self, when: str | datetime, case_id: str, what: str) -> None:
        self.steps.append((local(when), case_id, what))

    async def on_dispatched(self, ev: dict[str, Any]) -> bool:
        """Whether the story plays this dispatch (else the actors do)."""
        case_id = ev["case_id"]
        first = ev["attempt"] == 1 and ev["unit"] == STORY_UNIT and ev["tier"] == "grid"
        if first and self.extended is None:
            self.extended = case_id
        elif first and self.left is None and case_id != self.extended:
            self.left = case_id
        elif first and self.returned is None and case_id not in (self.extended, self.left):
            self.returned = case_id
        if case_id not in (self.extended, self.left, self.returned) or ev["attempt"] != 1:
            return False
        handler = ev["handler_id"] or STORY_UNIT
        if case_id == self.returned:
            note = "该问题属于物业管理范围，不属于本网格"
            await self.actors.act(case_id, handler, "return", f"{case_id}:story:return", note=note)
            return True
        self.note(
            ev["dispatched_at"],
            case_id,
            f"dispatched: accept by {local(ev['respond_by'])}, resolve by "
            f"{local(ev['resolve_by'])} (working time, over the holiday)",
        )
        await self.actors.act(case_id, handler, "accept", f"{case_id}:story:accept")
        if case_id == self.extended:
            await self.actors.act(
                case_id,
                handler,
                "request_extension",
                f"{case_id}:story:extension",
                note="节后配件才能到货，申请延期",
                extend_to=EXTEND_TO.isoformat(),
            )
            self.note(now(), case_id, f"extension asked for, to {local(EXTEND_TO)}")
        return True

    async def tick(self, admin_dsn: str) -> None:
        """What the story does as time passes: the command centre decides the returned case; the
        community approves the request once dispatch holds it; the extended case is resolved
        after its first deadline."""
        if self.to_decide is not None and not self.decided:
            await self.decide(*self.to_decide)
            self.decided = True
        for triaged, category in await self.triage():
            if self.triaged is None:
                self.triaged = triaged
                what = f"人工分拨: the classifier was not sure; the command centre says {category}"
                self.note(now(), triaged, what)
        a = self.agency
        if a is not None and not self.commissioned:
            who = (a["agent_role"], a["community"], a["agent_id"])
            body = {"note": "居民委托代为办理，材料已收齐"}
            await self.post(f"/cases/{a['case_id']}/commission", body, *who)
            self.commissioned = True
        elif a is not None and not self.relayed:
            who = (a["agent_role"], a["community"], a["agent_id"])
            body = {"note": "已代您向承办单位提交材料，正在办理中"}
            await self.post(f"/cases/{a['case_id']}/relay", body, *who)
            self.relayed = True
        case_id = self.extended
        if case_id is None:
            return
        if not self.approved:
            conn = await asyncpg.connect(admin_dsn)
            try:
                state = await conn.fetchval(
                    "SELECT state FROM dispatch.cases WHERE case_id = $1", case_id
                )
            finally:
                await conn.close()
            if state == "extension_requested":
                await self.actors.act(
                    case_id, APPROVER, "approve_extension", f"{case_id}:story:approve", note="同意"
                )
                self.approved = True
        elif not self.extended_resolved and CLOCK() >= RESOLVE_EXTENDED_AT:
            await self.actors.act(
                case_id,
                "h-0001",
                "resolve",
                f"{case_id}:story:resolve",
                note="配件到货，已更换",
            )
            self.extended_resolved = True

    def record(self, rec: Any) -> None:
        ev = rec.json()
        case_id = ev.get("case_id")
        if self.meets(rec.topic, ev):
            return
        agency_case = self.agency["case_id"] if self.agency else None
        if case_id not in (self.extended, self.left, self.returned, agency_case, self.served):
            return
        if rec.topic == "cases.returned":
            self.to_decide = (case_id, ev["category"])
        if rec.topic == "cases.dispatched":
            again = case_id == self.returned and ev["attempt"] > 1
            first_served = case_id == self.served and ev["attempt"] == 1
            if again or first_served:
                self.note(ev["dispatched_at"], case_id, f"dispatched to {ev['unit']}")
        told = TOLD.get(rec.topic)
        if told is not None:
            self.note(*told(ev))

    def meets(self, topic: str, ev: dict[str, Any]) -> bool:
        """Whether ``ev`` introduces a case told as it comes: the first given an agent, the
        first from a served building (插花地)."""
        if topic == "cases.agent_assigned" and self.agency is None:
            self.agency = ev
            what = f"三代 {ev['agency_mode']}: agent {ev['agent_id']} ({ev['agent_role']}) assigned"
            self.note(ev["assigned_at"], ev["case_id"], what)
            return True
        served = (ev.get("location") or {}).get("administrative")
        if topic == "cases.opened" and served and self.served is None:
            self.served = ev["case_id"]
            what = (
                f"插花地: a building of {served.get('district')} served by "
                f"{ev['location']['community']}"
            )
            self.note(ev["opened_at"], ev["case_id"], what)
            return True
        return False

    @property
    def done(self) -> bool:
        return (
            self.extended_resolved and CLOCK() >= UNTIL and (self.returned is None or self.decided)
        )


async def staff_post(
    settings: Settings,
    dispatch_url: str,
    path: str,
    body: dict[str, Any],
    role: str,
    unit: str,
    handler_id: str | None,
) -> bool:
    """A staff member's POST to dispatch's API, signed in as themselves: whether it was taken."""
    token = issue_token(settings, role=role, unit=unit, handler_id=handler_id)
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(
            f"{dispatch_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    if resp.status_code >= 300:
        console.print(f"[yellow]{path} was refused: {resp.text}[/yellow]")
    return resp.status_code < 300


COMMUNITY_STAFF = ("community_staff", "WC-YY-OJY", "h-0010")  # 欧景苑社区's 刘洋


class OrderStory:
    """Two community cases of 欧景苑社区 played apart: on one the community blows the whistle
    (吹哨报到) and the street's municipal office reports and does its work order (协办) before the
    community resolves it; the other goes to the residents' council (议事会), whose decision
    (votes, a measure) becomes a work order to the grid, done before the community resolves it."""

    def __init__(self, actors: Actors, post: Post, admin_dsn: str) -> None:
        self.actors = actors
        self.post = post
        self.admin_dsn = admin_dsn
        self.whistled: str | None = None
        self.councilled: str | None = None
        self.issued = False
        self.decided = False
        # order id -> (case, unit, handler, state: issued, reported or done)
        self.orders: dict[str, list[str]] = {}
        self.resolved: set[str] = set()

    def plays(self, ev: dict[str, Any]) -> bool:
        """Whether this dispatch is one of its cases (the first two community-tier ones)."""
        case_id = ev["case_id"]
        first = ev["attempt"] == 1 and ev["tier"] == "community" and ev["unit"] == "WC-YY-OJY"
        if first and self.whistled is None:
            self.whistled = case_id
        elif first and self.councilled is None and case_id != self.whistled:
            self.councilled = case_id
        return case_id in (self.whistled, self.councilled)

    async def on_dispatched(self, ev: dict[str, Any], note: Callable[..., None]) -> None:
        case_id = ev["case_id"]
        handler = COMMUNITY_STAFF[2]
        if ev["attempt"] != 1:
            return
        await self.actors.act(case_id, handler, "accept", f"{case_id}:orders:accept")
        if case_id == self.councilled:
            decide_by = (CLOCK() + timedelta(days=7)).isoformat()
            await self.actors.act(
                case_id,
                handler,
                "deliberate",
                f"{case_id}:orders:deliberate",
                note="提交居民议事会讨论",
                decide_by=decide_by,
            )
            note(now(), case_id, "to the residents' council (议事会)")

    async def tick(self) -> None:
        if self.whistled is not None and not self.issued:
            body = {"units": ["WC-YY-SZ"], "required": True, "note": "请市政所到场处置"}
            self.issued = await self.post(f"/cases/{self.whistled}/orders", body, *COMMUNITY_STAFF)
        if self.councilled is not None and not self.decided:
            body = {
                "body": "欧景苑社区居民议事会",
                "meeting_date": CLOCK().date().isoformat(),
                "decision": "同意由网格员组织清理楼道堆物",
                "votes": {"for": 9, "against": 1, "abstain": 2},
                "measures": [{"text": "组织清理楼道堆物", "unit": "WC-YY-OJY-G01"}],
            }
            self.decided = await self.post(
                f"/cases/{self.councilled}/council", body, *COMMUNITY_STAFF
            )
        for order_id, (_case, unit, handler, state) in list(self.orders.items()):
            step = {"issued": ("report", None), "reported": ("done", "已完成协办事项")}.get(state)
            if step is None or not handler:
                continue
            role = await handler_role(self.admin_dsn, handler)
            body = {"action": step[0], **({"note": step[1]} if step[1] else {})}
            if await self.post(f"/orders/{order_id}/actions", body, role, unit, handler):
                self.orders[order_id][3] = "sent"  # until its cases.order_updated comes
        for played in (self.whistled, self.councilled):
            mine = [o for o in self.orders.values() if o[0] == played]
            ready = mine and all(o[3] == "done" for o in mine)
            if played is not None and ready and played not in self.resolved:
                self.resolved.add(played)
                await self.actors.act(
                    played,
                    COMMUNITY_STAFF[2],
                    "resolve",
                    f"{played}:orders:resolve",
                    note="协办单位已完成，问题已解决",
                )

    def record(self, topic: str, ev: dict[str, Any], note: Callable[..., None]) -> None:
        case_id = str(ev.get("case_id"))
        if case_id not in (self.whistled, self.councilled):
            return
        if topic == "cases.order_issued":
            self.orders[ev["order_id"]] = [case_id, ev["unit"], ev["handler_id"] or "", "issued"]
            what = "吹哨报到" if ev["origin"] == "whistle" else "the council's measure"
            note(ev["issued_at"], case_id, f"{what}: a work order (协办) to {ev['unit']}")
        elif topic == "cases.order_updated" and ev["order_id"] in self.orders:
            self.orders[ev["order_id"]][3] = ev["state"]
            note(ev["at"], case_id, f"work order of {ev['unit']}: {ev['state']}")
        elif topic == "cases.council_decided":
            votes = f"{ev['votes_for']} for, {ev['votes_against']} against"
            note(ev["decided_at"], case_id, f"{ev['body']} decides ({votes}): {ev['decision']}")
        elif topic in ("cases.resolved", "cases.verified"):
            note(*TOLD[topic](ev))

    @property
    def done(self) -> bool:
        return all(c is None or c in self.resolved for c in (self.whistled, self.councilled))


async def handler_role(admin_dsn: str, handler_id: str) -> str:
    """A handler's role in dispatch's copy of the registry (read with an admin connection)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        role = await conn.fetchval("SELECT role FROM dispatch.handlers WHERE id = $1", handler_id)
    finally:
        await conn.close()
    return str(role or "department_staff")


async def decide_queue(dispatch_url: str, token: str) -> list[tuple[str, str]]:
    """The district's command centre decides every case in its triage queue (人工分拨) that was
    opened there (the classifier not sure: below WANGGE_TRIAGE_MIN_CONFIDENCE, or flagged words)
    by the classifier's first suggestion; a returned case is the story's. The decisions made."""
    auth = {"Authorization": f"Bearer {token}"}
    decided: list[tuple[str, str]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(f"{dispatch_url}/triage", params={"limit": 100}, headers=auth)
        if resp.status_code != 200:
            return decided
        for item in resp.json()["items"]:
            if "returned" in item["reasons"]:
                continue
            category = (item["suggestions"] or [{"category": item["category"]}])[0]["category"]
            body = {"category": category, "note": "人工分拨：按分类建议派单"}
            path = f"{dispatch_url}/triage/{item['case_id']}"
            if (await client.post(path, json=body, headers=auth)).status_code == 200:
                decided.append((item["case_id"], category))
    return decided


async def triage_decision(dispatch_url: str, token: str, case_id: str, category: str) -> None:
    """The district's command centre decides a case in its queue (``POST /triage/{case_id}``)."""
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.post(
            f"{dispatch_url}/triage/{case_id}",
            json={"category": category, "note": "核实后仍按原类别，派往其他承办单位"},
            headers={"Authorization": f"Bearer {token}"},
        )
    if resp.status_code != 200:
        console.print(f"[yellow]the triage decision was refused: {resp.text}[/yellow]")


async def play(settings: Settings, admin_dsn: str, feedback_url: str, dispatch_url: str) -> int:
    records = load_registry_file(SAMPLES / "registry.yaml", default_taxonomy())
    await publish_registry(settings, records)
    await wait_registry(admin_dsn)
    wait = CLOCK.anchor - time.time()
    if wait > 0:
        console.print(f"the stack is up; the demo's clock starts in {wait:.0f} s")
        await asyncio.sleep(wait)  # the clock stands at START until its anchor
    else:
        console.print(f"[yellow]the stack took {-wait:.0f} s more than allowed to start[/yellow]")
    reports = load_reports()
    console.print(
        f"[bold]registry loaded[/bold] ({len(records)} records); replaying {len(reports)} reports"
        f" at {local(CLOCK())} (Shanghai), a minute of the demo being four days"
    )
    async with (
        Publisher(settings, source="demo/upstream") as pub,
        TopicReader(settings, *TOPICS) as reader,
    ):
        actors = Actors(pub, partial(unit_handler, admin_dsn), rating=demo_rating, clock=CLOCK)
        centre = issue_token(settings, role="command_centre", unit="WC")
        post = partial(staff_post, settings, dispatch_url)
        orders = OrderStory(actors, post, admin_dsn)
        story = Story(
            actors,
            partial(triage_decision, dispatch_url, centre),
            post,
            partial(decide_queue, dispatch_url, centre),
        )
        for r in reports:
            await pub.send("reports.submitted", r, key=r["report_id"])
        deadline = time.monotonic() + 360
        frozen_seen: dict[str, Any] | None = None
        token = issue_token(settings, role="command_centre", unit="WC")
        while time.monotonic() < deadline:
            for rec in await reader.poll(200):
                story.record(rec)
                orders.record(rec.topic, rec.json(), story.note)
                if rec.topic == "cases.dispatched" and orders.plays(rec.json()):
                    await orders.on_dispatched(rec.json(), story.note)
                    continue
                if rec.topic == "cases.dispatched" and await story.on_dispatched(rec.json()):
                    continue
                await actors.react(rec)
            await story.tick(admin_dsn)
            await orders.tick()
            if frozen_seen is None:
                frozen_seen = frozen_september(feedback_url, token)
                if frozen_seen is not None:
                    story.note(frozen_seen["frozen_at"], "WC", "September's figures frozen")
            opened = {x.json()["case_id"] for x in reader.of("cases.opened")}
            closed = {x.json()["case_id"] for x in reader.of("cases.closed")}
            answered = (
                len(reader.of("cases.opened"))
                + len(reader.of("cases.merged"))
                + len(reader.of("reports.rejected"))
            )
            # done when every report is answered, every case closed (rated satisfied, or unrated
            # once the rating window, a day here, has passed) and the story told
            done = story.done and orders.done
            if answered >= len(reports) and opened and opened <= closed and done:
                break
        else:
            console.print("[yellow]not every case closed within 6 minutes[/yellow]")
        summary(reader, len(reports))
        tell(story)
    for period in ("2026-09", "2026-10"):
        show_metrics(feedback_url, token, period)
    return 0


def frozen_september(feedback_url: str, token: str) -> dict[str, Any] | None:
    """September's figures of the district once frozen (None before)."""
    data = metrics_of(feedback_url, token, "2026-09")
    return data if data is not None and data.get("status") == "frozen" else None


def tell(story: Story) -> None:
    table = Table(title="across the National Day holiday (Shanghai time)")
    for col in ("when", "case", "what"):
        table.add_column(col)
    for when, case_id, what in sorted(story.steps):
        table.add_row(when, case_id, what)
    console.print(table)


def summary(reader: TopicReader, n_reports: int) -> None:
    def count(topic: str) -> int:
        return len(reader.of(topic))

    console.print()
    console.rule("[bold]what happened")
    for rec in reader.of("cases.opened")[:8]:
        ev = rec.json()
        console.print(
            f"  {ev['case_id']}  [cyan]{ev['category_name']}[/cyan]  "
            f"{ev['location']['grid'] or ev['location']['community']}  "
            f"{ev['description'][:28]}…"
        )
    table = Table(title="the loop 收集 → 处置 → 反馈 → 评价")
    table.add_column("step")
    table.add_column("count", justify="right")
    tiers = Counter(
        x.json()["tier"] for x in reader.of("cases.dispatched") if x.json()["attempt"] == 1
    )
    outcomes = Counter(x.json()["outcome"] for x in reader.of("cases.closed"))
    rows = [
        ("reports submitted", n_reports),
        ("rejected", count("reports.rejected")),
        ("cases opened", count("cases.opened")),
        ("merged into open cases (附议)", count("cases.merged")),
        *[(f"first dispatched at {t} tier", n) for t, n in sorted(tiers.items())],
        ("escalated", count("cases.escalated")),
        ("resolved (incl. after reopen)", count("cases.resolved")),
        ("verified on site (核查结案)", count("cases.verified")),
        ("follow-up requests (回访)", count("feedback.requested")),
        ("reopened (unsatisfied)", count("cases.reopened")),
        *[(f"closed: {o}", n) for o, n in sorted(outcomes.items())],
        ("handler actions rejected", count("handler.actions.rejected")),
    ]
    for step, n in rows:
        table.add_row(step, str(n))
    console.print(table)


def metrics_of(feedback_url: str, token: str, period: str) -> dict[str, Any] | None:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{feedback_url}/units/WC/metrics?period={period}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            data: dict[str, Any] = json.load(r)
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return data


def show_metrics(feedback_url: str, token: str, period: str) -> None:
    """The district's figures for ``period`` (a Shanghai month, as every period is) as the
    command centre reads them (its bearer token): frozen or provisional."""
    data = metrics_of(feedback_url, token, period)
    if data is None:
        console.print(f"(metrics of {period} not available)")
        return
    status = data.get("status", "provisional")
    when = data.get("frozen_at") or data.get("freezes_at")
    title = f"{data['unit']['name']} (WC), {period}: {status}" + (
        f" ({'frozen at' if status == 'frozen' else 'freezes at'} {local(when)})" if when else ""
    )
    table = Table(title=title)
    for col in ("metric", "value", ""):
        table.add_column(col)
    for row in metric_rows(data["metrics"]):
        table.add_row(*row)
    console.print(table)
    adjustments = data.get("adjustments") or []
    if adjustments:
        console.print(f"  {len(adjustments)} adjustments recorded beside the frozen figures")


DEMO_PROJECT = "wangge-demo"
LINK_TTL_S = 3600  # the demo's sign-in links: an hour, each good once
DEMO_WORKER = ("grid_worker", STORY_UNIT, "h-0001")  # 张忻欣, 欧景苑第一网格's grid worker


def sign_in_links(settings: Settings, console_url: str) -> list[tuple[str, str]]:
    """The pages to look at while the city runs: the board (the district's command centre) and
    a grid worker's phone page, each a single-use sign-in link (``wangge token login-url``)."""
    role, unit, handler = DEMO_WORKER
    centre = issue_signin_token(settings, role="command_centre", unit="WC", ttl_s=LINK_TTL_S)
    worker = issue_signin_token(
        settings, role=role, unit=unit, handler_id=handler, ttl_s=LINK_TTL_S
    )
    return [
        ("指挥调度中心 (command centre, WC)", signin_url(console_url, centre)),
        (f"处置人手机页 (grid worker {handler}, {unit})", signin_url(console_url, worker)),
    ]


def stay(settings: Settings, env: dict[str, str], run_dir: Path) -> None:
    """Print where the pages are and keep the city running until Ctrl-C (or SIGTERM)."""
    console.print()
    say = partial(console.print, soft_wrap=True)  # links are not wrapped: they are copied
    say(f"[bold]the board[/bold]: {env['CONSOLE_URL']}")
    for what, url in sign_in_links(settings, env["CONSOLE_URL"]):
        say(f"[bold]{what}[/bold], sign in once within an hour:\n  {url}")
    say(
        f"more links: source {run_dir / 'env'} && .venv/bin/wangge token login-url --role "
        "command_centre --unit WC\n"
        f"the city keeps running, its clock at {SPEED:.0f} times real time (now {local(CLOCK())} "
        "in Shanghai); Ctrl-C stops it"
    )
    signal.signal(signal.SIGTERM, _interrupted)  # a SIGTERM stops it as Ctrl-C does
    while True:
        time.sleep(3600)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--exit",
        action="store_true",
        help="stop everything once the story is told (default: keep the city running until "
        "interrupted)",
    )
    args = parser.parse_args(argv)
    run_dir = RUN / "demo"
    # Each demo starts from nothing: its own Kafka and PostgreSQL data are made anew (the sample
    # reports keep their ids, so a second run on old data would be ignored as duplicates).
    # On compose: a project of its own ("wangge-demo", never `make up`'s data), its volume dropped.
    stack.down(str(run_dir), project=DEMO_PROJECT, volumes=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    # The demo's clock, the same in every service; working-time limits; a rating window of a day
    # (15 s here), so the demo also shows unrated closing; September frozen at noon on 1
    # October; sweeps every second (96 minutes of the demo).
    global CLOCK
    CLOCK = DemoClock(START, time.time() + STARTUP_S, SPEED)
    os.environ["WANGGE_DEMO_CLOCK_START"] = START.isoformat()
    os.environ["WANGGE_DEMO_CLOCK_ANCHOR"] = repr(CLOCK.anchor)
    os.environ["WANGGE_DEMO_CLOCK_SPEED"] = repr(SPEED)
    if not (stack.COMPOSE.exists() and stack.docker_engine_answers()):
        # local processes read the sample's rules file; in the image it is not there, so on
        # compose the demo keeps the default (natural-time) limits
        os.environ.setdefault("WANGGE_TIER_RULES_FILE", str(SAMPLES / "tier_rules_working.yaml"))
    os.environ.setdefault("WANGGE_FEEDBACK_WINDOW", "P1D")
    os.environ.setdefault("WANGGE_METRICS_FREEZE_GRACE", "PT12H")
    os.environ.setdefault("WANGGE_FREEZE_SWEEP_INTERVAL_S", "1")
    os.environ.setdefault("WANGGE_SWEEP_INTERVAL_S", "1")
    try:
        stack.up(str(run_dir), project=DEMO_PROJECT)
        env = stack.read_env(Path(run_dir) / "env")
        settings = Settings(  # the residents open the follow-up requests with the notify key
            KAFKA_BOOTSTRAP_SERVERS=env["KAFKA_BOOTSTRAP_SERVERS"],
            WANGGE_NOTIFY_KEY=env["WANGGE_NOTIFY_KEY"],
            WANGGE_AUTH_JWT_SECRET=env["WANGGE_AUTH_JWT_SECRET"],  # the command centre's token
        )
        code = asyncio.run(
            play(settings, env["DATABASE_URL"], env["FEEDBACK_URL"], env["DISPATCH_URL"])
        )
        if code == 0 and not args.exit:
            stay(settings, env, run_dir)
        return code
    except KeyboardInterrupt:
        console.print("interrupted: stopping the city")
        return 0
    finally:
        stack.down(str(run_dir), project=DEMO_PROJECT, volumes=True)


if __name__ == "__main__":
    sys.exit(main())
