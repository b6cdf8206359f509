"""Dispatch's HTTP API for handlers and the command centre (the handler API).

- ``GET /me/cases?state=open|due_soon|overdue&limit=&offset=``: the caller's work, nearest
  deadline first, each case with its deadlines and due status (``due``);
- ``GET /cases/{case_id}``: a case's state, assignment, deadlines, what the caller may do now and
  its timeline;
- ``POST /cases/{case_id}/actions``: an action (accept, progress, resolve, escalate, return,
  transfer, deliberate).

A unit a case has a work order for (协办, ``orders_api.py``) reads the case (its orders shown)
and acts only on its order.

Every route needs a bearer token of a handler role (``HANDLER_ROLES``) or of the command centre
(who reaches every case of its area and may transfer them: 改派). Who acts is the token's
``handler_id`` (the command centre acts as ``command_centre.<unit>``), when is the server's clock:
a body naming a ``handler_id`` or an ``at`` is refused (extra fields are not allowed). An action
becomes a ``HandlerAction`` applied through exactly the path of ``handler.actions``
(``Subscription.apply_now``: the same inbox, checks, events); its ``action_id`` is made of the
handler and the ``Idempotency-Key`` header, so a retried request is a duplicate that changes
nothing and is answered what the first one got (``action_outcomes``). A case outside the
caller's reach is a 404, as an unknown one; how refusals map to status codes: ``REFUSAL_STATUS``
and docs/dispatch.md.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from shared.contract.events import (
    MAX_PHOTOS,
    NOTE_REQUIRED,
    ActionKind,
    Code,
    HandlerAction,
    PhotoId,
    Tier,
)
from shared.registry.store import reach_codes
from shared.runtime.db import Connection
from shared.runtime.http import invalid_input, problems
from shared.runtime.identity import HANDLER_ROLES, Principal, Role, in_scope, require
from shared.runtime.logging import get_logger

from . import agency_store, orders_store, photo_store, store
from .agency import Agency
from .due import (
    DUE_SOON_FRACTION,
    DeadlineKind,
    Due,
    case_deadlines,
    due_status,
    nearest_first,
)
from .model import ActionOutcome, Case, RefusalKind
from .orders import Order, allowed_order_actions, blocking
from .photos import PhotoInfo, photo_info
from .planning import Policy
from .states import Actor, State, allowed_actions, command_centre_actor

if TYPE_CHECKING:
    from .app import DispatchService

log = get_logger(component="dispatch-api")

MAX_LIMIT: Final = 200
MAX_OFFSET: Final = 100_000
# What a refused action answers, by the kind of refusal (``actions.Refusal``)
REFUSAL_STATUS: Final[dict[RefusalKind, int]] = {
    "unknown_case": 404,  # the case went away (not in practice: cases are never deleted)
    "not_permitted": 403,  # not the assigned handler nor of the assigned unit; a volunteer's limits
    "conflict": 409,  # not allowed in the case's state, or its place (top tier, no other unit)
    "invalid": 422,  # a field wrong for this case (a transfer's target_unit, decide_by)
}
_CODE: Final = TypeAdapter(Code)

CaseId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The case id (as in `cases.opened`)",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes a retry safe: the same key from the same handler is the same action, "
        "applied once and answered the same (visible ASCII, up to 128 characters; a UUID)",
    ),
]
Caller = Annotated[Principal, Depends(require(*HANDLER_ROLES, Role.COMMAND_CENTRE))]
ListFilter = Literal["open", "due_soon", "overdue"]


# --- the answers ---------------------------------------------------------------------------------


class NextDeadline(BaseModel):
    kind: DeadlineKind = Field(
        description="respond (accept by), resolve (resolve by) or verify (核查: verify by)"
    )
    at: datetime


class CaseSummary(BaseModel):
    """A case as a handler's list shows it (dispatch holds no personal data: no reporter, no
    description)."""

    case_id: str
    category: str
    state: State
    tier: Tier
    unit: str = Field(description="The unit the case is assigned to")
    handler_id: str | None = Field(description="Its handler (null: the unit as a whole)")
    assigned_to_me: bool = Field(description="The caller is its handler")
    community: str | None
    grid: str | None
    urgent: bool
    supervised: bool = Field(description="督办 (after a second reopen)")
    dispatched_at: datetime
    respond_by: datetime | None = Field(description="Accept by (while unaccepted)")
    resolve_by: datetime | None
    paused_until: datetime | None = Field(
        description="A pause's end: the residents' council's decision (议事会), a suspension's "
        "resume_by (挂起), an extension request's decision limit (缓办/延期)"
    )
    due: Due | None = Field(description="on_track, due_soon or overdue; null once resolved")
    next_deadline: NextDeadline | None = Field(description="The nearest running deadline")
    my_agency: bool = Field(
        False, description="The caller is the case's agent (三代: 代理人/代办员), not its handler"
    )


class DueCounts(BaseModel):
    open: int
    due_soon: int
    overdue: int


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int = Field(description="Cases matching the filter (items is one page of them)")
    limit: int
    offset: int
    counts: DueCounts = Field(description="All the caller's open cases, by due status")
    now: datetime = Field(description="The server's time the due status is computed at")


class TimelineStep(BaseModel):
    at: datetime
    event: str = Field(description="An action, a system event (respond_timeout, ...), merged")
    from_state: str | None
    to_state: str | None
    tier: str | None
    unit: str | None
    handler_id: str | None = Field(description="Who acted (or the handler after the step)")
    detail: dict[str, Any]


class ExtensionRequest(BaseModel):
    extend_to: datetime = Field(description="The resolution deadline asked for")
    requested_at: datetime
    reason: str | None
    approver: str = Field(description="The unit that decides: the one a tier up")


class Verification(BaseModel):
    verifier_unit: str = Field(description="The unit whose staff verify it (核查结案)")
    verify_by: datetime | None = Field(description="Its verification deadline")
    verify_missed_at: datetime | None = Field(description="When the deadline was found missed")


class AgencyView(BaseModel):
    """The case's agent (三代 agency) and the resident's commission (委托), once recorded."""

    agency_mode: str = Field(
        description="proxy_petition (诉求代理), voice_advocacy (意愿代言), "
        "errand_service (事务代办)"
    )
    agent_id: str
    agent_role: str = Field(description="community_staff or party_volunteer")
    community: str
    assigned_at: datetime
    commissioned_at: datetime | None = Field(description="When the resident commissioned (委托)")
    commission_note: str | None
    relays: int = Field(description="Progress relayed to the resident so far")


class AdministrativePlace(BaseModel):
    """插花地: the administrative chain of a place another community serves."""

    district: str | None
    street: str | None
    community: str | None
    grid: str | None


class OrderView(BaseModel):
    """An assisting work order (协办, 吹哨报到) of a case: its unit, handler, deadlines, state."""

    order_id: str
    case_id: str
    unit: str = Field(description="The unit ordered (a department, 物业, a utility, a unit)")
    handler_id: str | None = Field(description="Its handler (null: the unit as a whole)")
    required: bool = Field(description="The lead's resolve waits for it")
    origin: Literal["whistle", "council"] = Field(
        description="whistle (吹哨报到) or council (a measure of a council's decision)"
    )
    state: Literal["issued", "reported", "done", "returned", "cancelled"]
    report_by: datetime = Field(description="Report (报到, accept) by")
    resolve_by: datetime = Field(description="Done by")
    report_missed_at: datetime | None = Field(description="When its report was found late")
    issued_by: str
    issued_by_unit: str | None
    note: str | None = Field(description="What the issuer asked (a measure's text)")
    council_id: str | None
    issued_at: datetime
    reported_at: datetime | None
    done_at: datetime | None
    closed_at: datetime | None = Field(description="Returned or cancelled at")
    last_note: str | None = Field(description="The note of its latest step")
    actions: list[Literal["report", "progress", "done", "return", "cancel"]] = Field(
        default_factory=list,
        description="What the caller may do on it now (POST /orders/{order_id}/actions)",
    )


def order_view(o: Order, actor: Actor | None) -> OrderView:
    return OrderView(
        order_id=o.order_id,
        case_id=o.case_id,
        unit=o.unit,
        handler_id=o.handler_id,
        required=o.required,
        origin=o.origin,
        state=o.state,
        report_by=o.report_by,
        resolve_by=o.resolve_by,
        report_missed_at=o.report_missed_at,
        issued_by=o.issued_by,
        issued_by_unit=o.issued_by_unit,
        note=o.note,
        council_id=o.council_id,
        issued_at=o.issued_at,
        reported_at=o.reported_at,
        done_at=o.done_at,
        closed_at=o.closed_at,
        last_note=o.last_note,
        actions=allowed_order_actions(actor, o),
    )


class CaseDetail(CaseSummary):
    district: str | None
    street: str | None
    building: str | None
    administrative: AdministrativePlace | None = Field(
        None,
        description="插花地: the place's own chain when another community serves it (the codes "
        "above are the serving chain's, which handles the case); null for every other place",
    )
    start_tier: Tier
    tier_reasons: list[str]
    attempt: int = Field(description="Dispatches so far (1: the first)")
    reopen_count: int
    supporters: int = Field(description="Reports on the case (附议 included)")
    households: int | None
    supervisor_unit: str | None
    excluded_units: list[str] = Field(description="Units that returned it (退单)")
    opened_at: datetime
    accepted_at: datetime | None
    resolved_at: datetime | None
    resolved_tier: Tier | None
    resolved_unit: str | None
    resolve_missed_at: datetime | None = Field(description="Missed at the top tier")
    paused_at: datetime | None = Field(description="Since when its clock is paused (null: running)")
    extension: ExtensionRequest | None = Field(
        description="The extension awaiting a decision (缓办/延期), while extension_requested"
    )
    extensions: int = Field(description="Extensions approved so far")
    verification: Verification | None = Field(
        None, description="The verification its resolution awaits (核查结案), while verifying"
    )
    actions: list[ActionKind] = Field(
        description="What the caller may do now (the state and who may act; an action's own "
        "checks, such as a transfer's target, come when it is taken)"
    )
    agency: AgencyView | None = Field(
        None, description="Its agent (三代), for a category that gets one; null otherwise"
    )
    agency_actions: list[Literal["commission", "relay"]] = Field(
        default_factory=list,
        description="What the caller may do as the case's agent: record the resident's "
        "commission (POST /cases/{case_id}/commission), relay progress (POST .../relay)",
    )
    orders: list[OrderView] = Field(
        default_factory=list,
        description="Its assisting work orders (协办, 吹哨报到; the lead is the case itself)",
    )
    resolve_waits_for: list[str] = Field(
        default_factory=list,
        description="The required work orders still open (their ids): until they are done the "
        "lead may not resolve (resolve is then not among actions)",
    )
    timeline: list[TimelineStep]
    photos: list[PhotoInfo] = Field(
        default_factory=list,
        description="Every photo of the case: the reports' and the actions' (a step's "
        "detail.photos names those of its action)",
    )


def _unencodable(text: str) -> bool:
    """Whether ``text`` has a lone surrogate (valid JSON, not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class ActionRequest(BaseModel):
    """An action on the case, by the caller, now. ``note`` is required for resolve, escalate,
    return, request_extension, refuse_extension and suspend (it is their reason);
    ``target_unit`` is for transfer only (and required), ``decide_by`` for deliberate only,
    ``extend_to`` for request_extension only, ``resume_by`` for suspend only (each required
    there). Who and when are not fields: they come from the token and the clock."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "accept"},
                {"action": "resolve", "note": "已联系物业清运，楼道已消杀"},
                {"action": "transfer", "target_unit": "WC-YY-OJY-G02", "note": "属第二网格"},
                {
                    "action": "request_extension",
                    "extend_to": "2026-10-15T17:30:00+08:00",
                    "note": "需等待配件到货",
                },
                {"action": "suspend", "resume_by": "2026-10-20T12:00:00+08:00", "note": "居民外出"},
            ]
        },
    )

    action: ActionKind
    note: Annotated[str, Field(max_length=2000)] | None = None
    target_unit: Code | None = Field(None, description="transfer (转办, 改派): the unit to take it")
    decide_by: AwareDatetime | None = Field(
        None, description="deliberate (议事会): when the council decides"
    )
    extend_to: AwareDatetime | None = Field(
        None, description="request_extension (缓办/延期): the resolution deadline asked for"
    )
    resume_by: AwareDatetime | None = Field(
        None, description="suspend (挂起): when the case resumes by itself at the latest"
    )
    photos: list[PhotoId] | None = Field(
        None,
        max_length=MAX_PHOTOS,
        description="Any action: photos uploaded for this case first (POST "
        "/cases/{case_id}/photos), by id; on the action's timeline step",
    )

    @field_validator("note")
    @classmethod
    def _storable(cls, note: str | None) -> str | None:
        """Text PostgreSQL can keep (the note goes to the timeline): no NUL, no lone surrogate."""
        if note is not None and ("\x00" in note or _unencodable(note)):
            raise ValueError("note must be text without NUL characters or lone surrogates")
        return note


class ActionResult(BaseModel):
    action_id: str
    action: ActionKind
    handler_id: str = Field(description="Who acted: from the token")
    at: datetime = Field(description="When: the server's time")
    duplicate: bool = Field(description="A retry of an action applied before: nothing was done")
    case: CaseSummary = Field(description="The case now")


# --- pure helpers --------------------------------------------------------------------------------


def acting_id(caller: Principal) -> str | None:
    """Who the caller acts as: their handler id, or the command centre of their unit."""
    if caller.role == Role.COMMAND_CENTRE:
        return command_centre_actor(caller.unit) if caller.unit else None
    return caller.handler_id


def action_id_for(handler_id: str, key: str) -> str:
    """The ``action_id`` of a request: the handler's own key space, so one handler's key never
    collides with another's (a key too long for 128 characters is hashed)."""
    readable = f"http:{handler_id}:{key}"
    if len(readable) <= 128:
        return readable
    return "http:" + hashlib.sha256(f"{handler_id}\n{key}".encode()).hexdigest()


def request_errors(body: ActionRequest) -> list[tuple[str, str]]:
    """(field, message) for what the action needs and what it may not carry."""
    errors = []
    if body.action in NOTE_REQUIRED and not (body.note or "").strip():
        errors.append(("note", f"note is required for {body.action}"))
    if body.action == "transfer" and body.target_unit is None:
        errors.append(("target_unit", "target_unit is required for transfer"))
    if body.action != "transfer" and body.target_unit is not None:
        errors.append(("target_unit", "target_unit is only for transfer"))
    if body.action == "deliberate" and body.decide_by is None:
        errors.append(("decide_by", "decide_by is required for deliberate"))
    if body.action != "deliberate" and body.decide_by is not None:
        errors.append(("decide_by", "decide_by is only for deliberate"))
    for name, action in (("extend_to", "request_extension"), ("resume_by", "suspend")):
        given = getattr(body, name) is not None
        if body.action == action and not given:
            errors.append((name, f"{name} is required for {action}"))
        if body.action != action and given:
            errors.append((name, f"{name} is only for {action}"))
    return errors


def verification_of(case: Case) -> Verification | None:
    if case.state != "verifying" or case.verifier_unit is None:
        return None
    return Verification(
        verifier_unit=case.verifier_unit,
        verify_by=case.verify_by,
        verify_missed_at=case.verify_missed_at,
    )


def extension_of(case: Case) -> ExtensionRequest | None:
    if case.state != "extension_requested" or case.extension_to is None:
        return None
    assert case.extension_requested_at is not None and case.extension_approver is not None
    return ExtensionRequest(
        extend_to=case.extension_to,
        requested_at=case.extension_requested_at,
        reason=case.extension_reason,
        approver=case.extension_approver,
    )


def body_errors(errors: list[tuple[str, str]]) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", name), "msg": msg, "type": "value_error"} for name, msg in errors]
    )


def matches(cases: list[CaseSummary], which: ListFilter) -> list[CaseSummary]:
    if which == "open":
        return cases
    return [c for c in cases if c.due == which]


class Views:
    """Cases as the API shows them, at one moment, for one caller."""

    def __init__(
        self,
        policy: Policy,
        now: datetime,
        me: str | None,
        fraction: float,
        agent_of: frozenset[str] = frozenset(),
    ) -> None:
        self.policy = policy
        self.now = now
        self.me = me
        self.fraction = fraction
        self.agent_of = agent_of  # the cases the caller is the agent of (三代)

    def summary_fields(self, case: Case) -> dict[str, Any]:
        deadlines = case_deadlines(self.policy, case)
        nearest = deadlines[0] if deadlines else None
        return {
            "case_id": case.case_id,
            "category": case.category,
            "state": case.state,
            "tier": case.tier,
            "unit": case.unit,
            "handler_id": case.handler_id,
            "assigned_to_me": self.me is not None and case.handler_id == self.me,
            "community": case.community,
            "grid": case.grid,
            "urgent": case.urgent,
            "supervised": case.supervised,
            "dispatched_at": case.dispatched_at,
            "respond_by": case.respond_by,
            "resolve_by": case.resolve_by,
            "paused_until": case.paused_until,
            "due": due_status(case, deadlines, self.now, self.fraction),
            "next_deadline": None if nearest is None else {"kind": nearest.kind, "at": nearest.at},
            "my_agency": case.case_id in self.agent_of,
        }

    def summary(self, case: Case) -> CaseSummary:
        return CaseSummary(**self.summary_fields(case))

    def listing(self, cases: list[Case]) -> list[CaseSummary]:
        """Nearest deadline first."""
        keyed = []
        for case in cases:
            deadlines = case_deadlines(self.policy, case)
            keyed.append((nearest_first(case, deadlines), case))
        keyed.sort(key=lambda kc: kc[0])
        return [self.summary(case) for _, case in keyed]


def timeline_step(row: Any) -> TimelineStep:
    detail = row["detail"]
    return TimelineStep(
        at=row["at"],
        event=row["event"],
        from_state=row["from_state"],
        to_state=row["to_state"],
        tier=row["tier"],
        unit=row["unit"],
        handler_id=row["handler_id"],
        detail=detail if isinstance(detail, dict) else {},
    )


# --- the routes ----------------------------------------------------------------------------------


def administrative_of(case: Case) -> AdministrativePlace | None:
    if not case.administrative:
        return None
    return AdministrativePlace(
        district=case.admin_district,
        street=case.admin_street,
        community=case.admin_community,
        grid=case.admin_grid,
    )


def register_routes(svc: DispatchService, *, due_soon_fraction: float = DUE_SOON_FRACTION) -> None:
    svc.app.include_router(build_router(svc, due_soon_fraction=due_soon_fraction))


async def _reaches(conn: Connection, caller: Principal, case: Case) -> bool:
    """Whether the case is within the caller's reach: its unit in the caller's subtree, or the
    caller is its handler; while its resolution awaits verification (核查), also its verifier
    unit in the caller's subtree (a grid worker verifies what a department resolved)."""
    me = acting_id(caller)
    if me is not None and case.handler_id == me:
        return True
    if in_scope(caller, await reach_codes(conn, case.unit)):
        return True
    verifier = case.verifier_unit if case.state == "verifying" else None
    if verifier is not None and in_scope(caller, await reach_codes(conn, verifier)):
        return True
    # 三代: the case's agent follows it wherever it goes
    return me is not None and await agency_store.is_agent(conn, me, case.case_id)


def replay_on(used_on: str, case_id: str) -> None:
    """An Idempotency-Key replays its request only on the case it was first used on (409
    otherwise): the routes that record something of a case keep their keys per request."""
    if used_on != case_id:
        raise HTTPException(409, "this Idempotency-Key was used on another case")


async def case_in_reach(conn: Connection, caller: Principal, case_id: str) -> Case:
    case = await store.load_case(conn, case_id)
    if case is None or not await _reaches(conn, caller, case):
        raise HTTPException(404, "unknown case")
    return case


async def _reaches_an_order(conn: Connection, caller: Principal, case_id: str) -> bool:
    """Whether the caller's unit reaches a unit the case has a work order for (协办: the
    ordered unit reads the case it assists)."""
    for unit in await orders_store.order_units(conn, case_id):
        if in_scope(caller, await reach_codes(conn, unit)):
            return True
    return False


async def case_readable(conn: Connection, caller: Principal, case_id: str) -> Case:
    """A case the caller may read (``GET /cases/{id}``, its photos): one within reach, or one
    whose place is served by another community (插花地) and whose administrative chain holds the
    caller's unit: that community, grid, street and district (their command centres included)
    see the case, and act on none of it (every acting route checks ``case_in_reach``)."""
    case = await store.load_case(conn, case_id)
    if case is not None and in_scope(caller, case.administrative):
        return case
    if case is not None and await _reaches_an_order(conn, caller, case_id):
        return case
    if case is None or not await _reaches(conn, caller, case):
        raise HTTPException(404, "unknown case")
    return case


async def _work(conn: Connection, caller: Principal) -> list[Case]:
    """The caller's open cases: the command centre's are every case of its area; a party
    volunteer's those they took and those they may take (接单); a handler's those assigned to
    them, those of their unit that nobody accepted yet, the extension requests their unit
    decides (缓办/延期) and the resolutions it verifies (核查); and, for a handler, the cases they
    are the agent of (三代)."""
    unit = caller.unit
    assert unit is not None  # every role of this API holds one (identity.principal_of)
    if caller.role == Role.COMMAND_CENTRE:
        return await store.open_cases_of_units(conn, await store.area_units(conn, unit))
    me = caller.handler_id
    assert me is not None  # the handler roles always have one (identity.principal_of)
    if caller.role == Role.PARTY_VOLUNTEER:
        work = await store.work_of_volunteer(conn, me, unit, await store.area_units(conn, unit))
    else:
        work = await store.work_of_handler(conn, me, unit)
    known = {c.case_id for c in work}
    return work + [c for c in await agency_store.cases_of_agent(conn, me) if c.case_id not in known]


async def agent_cases(conn: Connection, caller: Principal, cases: list[Case]) -> frozenset[str]:
    """Which of ``cases`` the caller is the agent of (三代)."""
    me = acting_id(caller)
    if me is None or not cases:
        return frozenset()
    found = await agency_store.agencies(conn, [c.case_id for c in cases])
    return frozenset(cid for cid, a in found.items() if a.agent_id == me)


def agency_view(a: Agency | None) -> AgencyView | None:
    if a is None:
        return None
    return AgencyView(
        agency_mode=a.agency_mode,
        agent_id=a.agent_id,
        agent_role=a.agent_role,
        community=a.community,
        assigned_at=a.assigned_at,
        commissioned_at=a.commissioned_at,
        commission_note=a.commission_note,
        relays=a.relays,
    )


def agency_actions(a: Agency | None, case: Case, me: str | None) -> list[Any]:
    """What ``me`` may do as the case's agent now (``agency``'s refusals, by state)."""
    if a is None or me is None or a.agent_id != me:
        return []
    can = [] if a.commissioned_at is not None or case.state == "resolved" else ["commission"]
    return [*can, "relay"]


def _refused(outcome: ActionOutcome) -> Exception:
    assert outcome.refusal is not None
    why = outcome.refusal
    if why.kind == "invalid":
        return invalid_input("body", why.field or "action", why.reason)
    return HTTPException(REFUSAL_STATUS[why.kind], why.reason)


def build_router(
    svc: DispatchService, *, due_soon_fraction: float = DUE_SOON_FRACTION
) -> APIRouter:
    router = APIRouter(tags=["handler API"])
    policy = svc.dispatch.policy

    def views(caller: Principal, agent_of: frozenset[str] = frozenset()) -> Views:
        return Views(policy, svc.dispatch.clock(), acting_id(caller), due_soon_fraction, agent_of)

    @router.get("/me/cases", response_model=CaseList, responses=problems(401, 403, 422))
    async def my_cases(
        caller: Caller,
        state: Annotated[
            ListFilter,
            Query(description="open: every open case; due_soon or overdue: only those"),
        ] = "open",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> Any:
        """The caller's open cases, nearest deadline first (a handler: assigned to them, and
        their unit's that nobody accepted yet; a party volunteer: taken, and those they may take;
        the command centre: every open case of its area)."""
        async with svc.pool.acquire() as conn:
            cases = await _work(conn, caller)
            v = views(caller, await agent_cases(conn, caller, cases))
        everything = v.listing(cases)
        chosen = matches(everything, state)
        counts = DueCounts(
            open=len(everything),
            due_soon=len(matches(everything, "due_soon")),
            overdue=len(matches(everything, "overdue")),
        )
        return CaseList(
            items=chosen[offset : offset + limit],
            total=len(chosen),
            limit=limit,
            offset=offset,
            counts=counts,
            now=v.now,
        )

    @router.get(
        "/cases/{case_id}", response_model=CaseDetail, responses=problems(401, 403, 404, 422)
    )
    async def get_case(case_id: CaseId, caller: Caller) -> Any:
        """A case within the caller's reach: where it is, its deadlines, what the caller may do
        now, its timeline (no personal data: dispatch holds none)."""
        me = acting_id(caller)
        async with svc.pool.acquire() as conn:
            case = await case_readable(conn, caller, case_id)
            actor = await store.actor(conn, me) if me is not None else None
            steps = await store.timeline(conn, case_id)
            photos = await photo_store.photos_of(conn, case_id)
            agency = await agency_store.agency(conn, case_id)
            work_orders = await orders_store.orders_of(conn, case_id)
        waiting = blocking(work_orders)  # the lead's resolve waits for these (协办)
        mine = agency is not None and me is not None and agency.agent_id == me
        v = views(caller, frozenset({case_id}) if mine else frozenset())
        return CaseDetail(
            **v.summary_fields(case),
            district=case.district,
            street=case.street,
            building=case.building,
            administrative=administrative_of(case),
            start_tier=case.start_tier,
            tier_reasons=list(case.tier_reasons),
            attempt=case.attempt,
            reopen_count=case.reopen_count,
            supporters=case.supporters,
            households=case.households,
            supervisor_unit=case.supervisor_unit,
            excluded_units=list(case.excluded_units),
            opened_at=case.opened_at,
            accepted_at=case.accepted_at,
            resolved_at=case.resolved_at,
            resolved_tier=case.resolved_tier,
            resolved_unit=case.resolved_unit,
            resolve_missed_at=case.resolve_missed_at,
            paused_at=case.paused_at,
            extension=extension_of(case),
            extensions=case.extensions,
            verification=verification_of(case),
            actions=[a for a in allowed_actions(actor, case.view) if a != "resolve" or not waiting],
            agency=agency_view(agency),
            agency_actions=agency_actions(agency, case, me),
            orders=[order_view(o, actor) for o in work_orders],
            resolve_waits_for=[o.order_id for o in waiting],
            timeline=[timeline_step(r) for r in steps],
            photos=[photo_info(p) for p in photos],
        )

    @router.post(
        "/cases/{case_id}/actions",
        response_model=ActionResult,
        responses=problems(401, 403, 404, 409, 422),
    )
    async def act(
        case_id: CaseId, body: ActionRequest, caller: Caller, key: IdempotencyKey = None
    ) -> Any:
        """Take an action on a case, as the token's handler, at the server's time, through the
        same checks as ``handler.actions``. 200: applied (or a retry of one applied before);
        403: the caller may not take it; 404: no such case within reach; 409: the case's state
        does not allow it; 422: invalid input (a field, or one wrong for this case)."""
        errors = request_errors(body)
        if errors:
            raise body_errors(errors)
        me = acting_id(caller)
        try:
            handler_id = _CODE.validate_python(me)
        except ValidationError:
            raise HTTPException(403, "unknown handler") from None
        async with svc.pool.acquire() as conn:
            await case_in_reach(conn, caller, case_id)
        action_id = action_id_for(handler_id, key or uuid.uuid4().hex)
        try:
            action = HandlerAction(
                action_id=action_id,
                case_id=case_id,
                handler_id=handler_id,
                action=body.action,
                at=svc.dispatch.clock(),
                note=body.note,
                target_unit=body.target_unit,
                decide_by=body.decide_by,
                extend_to=body.extend_to,
                resume_by=body.resume_by,
                photos=body.photos or [],
            )
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
            ) from None
        applied = await svc.subscription("handler.actions").apply_now(action)
        async with svc.pool.acquire() as conn:
            outcome = await store.action_outcome(conn, action_id)
            if outcome is None:  # claimed before outcomes were recorded
                raise HTTPException(409, "this Idempotency-Key was used before")
            if outcome.case_id != case_id or outcome.action != body.action:
                raise invalid_input(
                    "header", "Idempotency-Key", "this Idempotency-Key was used for another action"
                )
            log.info(
                "handler action over HTTP",
                case_id=case_id,
                action=body.action,
                handler_id=handler_id,
                duplicate=applied.duplicate,
                refused=outcome.refusal.kind if outcome.refusal else None,
            )
            if outcome.refusal is not None:
                raise _refused(outcome)
            case = await store.load_case(conn, case_id)
        assert case is not None  # it was there before the action; cases are never deleted
        return ActionResult(
            action_id=action_id,
            action=body.action,
            handler_id=handler_id,
            at=outcome.at,
            duplicate=applied.duplicate,
            case=views(caller).summary(case),
        )

    return router
