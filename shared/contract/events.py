"""The event contract: one pydantic model per topic, the only place where payloads are defined.

Upstream systems code against these names and fields; fields may be added, none removed or renamed.
Every published message also carries CloudEvents binary-mode headers (see
``shared.contract.cloudevents``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

Tier = Literal["grid", "community", "street", "district"]
TIERS: tuple[Tier, ...] = ("grid", "community", "street", "district")
UnitLevel = Literal["district", "street", "community", "grid", "building"]
HandlerRole = Literal[
    "grid_worker",
    "neighbour_head",
    "building_head",
    "community_staff",
    "party_volunteer",
    "property_staff",
    "department_staff",
]
AgencyMode = Literal["proxy_petition", "voice_advocacy", "errand_service"]
Source = Literal[
    "weixin_grid_group",
    "hotline_12345",
    "door_knock",
    "app",
    "visit",
    "suggestion_box",
    "other",
    "open311",  # an upstream system over Open311 GeoReport v2 (services/intake/open311)
    # 未诉先办: a task intake opens itself for a burst of reports (services/intake/hotspots.py)
    "proactive",
]
ActionKind = Literal[
    "accept",
    "progress",
    "resolve",
    "escalate",
    "return",
    "transfer",
    "deliberate",
    # 缓办/延期: the handler asks for a later resolution deadline; the unit one tier up decides
    "request_extension",
    "approve_extension",
    "refuse_extension",
    # 挂起: waiting for the resident, the clock paused; until resume (or resume_by)
    "suspend",
    "resume",
    # 核查结案: after a resolve, a verifier other than the resolving handler confirms it on site
    # (verify) or sends it back to be done again (send_back)
    "verify",
    "send_back",
]
Satisfaction = Literal["satisfied", "basically_satisfied", "unsatisfied"]

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_PHONE_SEPARATORS = re.compile(r"[\s-]")
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
# A photo's id: the SHA-256 (hex) of its bytes as stored, metadata stripped (shared/media)
PhotoId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MAX_PHOTOS = 9  # photos on one report or one action
Text = Annotated[str, Field(max_length=5000)]


class Event(BaseModel):
    """Base of every payload: strict about types, tolerant of fields added by newer producers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Message(Event):
    """An event that is a record of its own topic. The class declares the topic and what keys
    its records (``key_field``, whose value is also the CloudEvents ``ce_subject``), so that a
    publisher names only the event (``UnitOfWork.emit``) and ``shared.contract.topics`` and the
    AsyncAPI document are generated from these declarations. ``version`` is the payload's
    version, in the CloudEvents ``ce_type`` (``org.wangge.<topic>.v<version>``): a breaking
    change is a new class with the next version, published beside the old one for a
    transition."""

    topic: ClassVar[str]
    key_field: ClassVar[str] = "case_id"
    version: ClassVar[int] = 1

    def record_key(self) -> str | None:
        value = getattr(self, self.key_field)
        return value if isinstance(value, str) else None

    def record_subject(self) -> str | None:
        return self.record_key()


# --- registry.units (compacted, keyed by unit code / department code / handler id) -----------


class Unit(Event):
    kind: Literal["unit"] = "unit"
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    level: UnitLevel
    parent: Code | None = None
    area: list[tuple[float, float]] | None = None
    aliases: list[str] = Field(default_factory=list)
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    # 插花地: a building or grid served by a community other than its administrative parent
    # (the code of that community, possibly of another street or district). Its cases are
    # dispatched to the serving community and its grids, and counted there; the administrative
    # chain sees them (docs/integration.md, "The registry").
    served_by: Code | None = None


class Department(Event):
    kind: Literal["department"] = "department"
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    parent: Code
    categories: list[str] = Field(default_factory=list)


class Handler(Event):
    kind: Literal["handler"] = "handler"
    id: Code
    name: Annotated[str, Field(min_length=1, max_length=200)]
    unit: Code
    role: HandlerRole
    on_duty: bool = True


RegistryRecord = Annotated[Unit | Department | Handler, Field(discriminator="kind")]


class RegistryEntry(BaseModel):
    """Wrapper used to parse one ``registry.units`` value."""

    record: RegistryRecord


def registry_key(record: Unit | Department | Handler) -> str:
    return record.id if isinstance(record, Handler) else record.code


# --- reports.submitted / reports.rejected -----------------------------------------------------


class Reporter(Event):
    name: Annotated[str, Field(max_length=100)] | None = None
    phone: str | None = None
    resident_id: Annotated[str, Field(max_length=64)] | None = None
    anonymous: bool = False

    @field_validator("phone")
    @classmethod
    def _mainland_mobile(cls, v: str | None) -> str | None:
        if v is None:
            return v
        digits = _PHONE_SEPARATORS.sub("", v)
        if digits.startswith("+86"):
            digits = digits[3:]
        if not MOBILE_RE.match(digits):
            raise ValueError("not a mainland China mobile number (11 digits starting 13-19)")
        return digits


class ReportLocation(Event):
    building_code: Code | None = None
    grid_code: Code | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    # The reference system of lon/lat: WGS-84 (GPS), or GCJ-02 (AMap, Tencent Maps, WeChat) or
    # BD-09 (Baidu Maps) as those SDKs return them; intake converts to WGS-84.
    crs: Literal["wgs84", "gcj02", "bd09"] = "wgs84"

    @model_validator(mode="after")
    def _at_least_one(self) -> ReportLocation:
        if not (self.building_code or self.grid_code or self.address) and (
            self.lon is None or self.lat is None
        ):
            raise ValueError("give at least one of building_code, grid_code, address, lon+lat")
        return self


class ReportSubmitted(Message):
    topic = "reports.submitted"
    key_field = "report_id"

    report_id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Source
    submitted_at: AwareDatetime
    reporter: Reporter = Field(default_factory=Reporter)
    location: ReportLocation
    category: Code | None = None
    title: Annotated[str, Field(max_length=100)] | None = None
    description: Annotated[str, Field(min_length=1, max_length=5000)]
    photos: list[Annotated[str, Field(max_length=2000, pattern=r"^https?://")]] = Field(
        default_factory=list, max_length=20
    )
    households_affected: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    urgent: bool | None = None
    # Photos intake stores (an upload with an Open311 POST, field ``media``), by id; an id intake
    # does not hold is dropped. The case's events reference them (CasePhoto).
    photo_ids: list[PhotoId] = Field(default_factory=list, max_length=MAX_PHOTOS)


class FieldError(Event):
    field: str
    message: str


class ReportRejected(Message):
    topic = "reports.rejected"

    source: str | None = None
    report_id: str | None = None
    errors: list[FieldError]
    reason: str = "invalid"

    def record_key(self) -> str | None:
        return f"{self.source}:{self.report_id}"  # as the report it answers

    def record_subject(self) -> str | None:
        return None


# --- cases.* -----------------------------------------------------------------------------------


class Suggestion(Event):
    """One of the classifier's best categories for a case, with its calibrated probability."""

    category: str
    probability: float = Field(ge=0, le=1)


class Classification(Event):
    """How intake chose the case's category. ``method`` "given" when the channel named it;
    otherwise the classifier's ``model`` version, the ``terms`` that decided (words a clerk can
    read), ``confidence`` (the calibrated probability of the category) and ``suggestions`` (its
    best three categories, best first: the second is the runner-up)."""

    method: str
    terms: list[str] = Field(default_factory=list)
    confidence: float = Field(ge=0, le=1)
    model: str | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)


class CasePhoto(Event):
    """A report's photo, stored by intake (its bytes are on no topic): those who may see the case
    fetch it through dispatch (``GET /cases/{case_id}/photos/{photo_id}``), which sends them to
    intake with a short-lived signed link (docs/integration.md, "Photos")."""

    photo_id: PhotoId
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None


class AdministrativeLocation(Event):
    """The administrative chain (行政隶属) of a place served by another community (插花地)."""

    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None


class CaseLocation(Event):
    """Where a case is, as the chain that serves the place: dispatch routes to these units and
    the figures count the case under them. For a building or grid the registry says is served by
    another community (``served_by``, 插花地) they are the serving community's (its grid holding
    the building's point, if any), and ``administrative`` names the place's own chain; for
    every other place ``administrative`` is absent."""

    district: str | None = None
    street: str | None = None
    community: str | None = None
    grid: str | None = None
    building: str | None = None
    administrative: AdministrativeLocation | None = None

    @model_serializer(mode="wrap")
    def _administrative_only_when_present(self, handler: SerializerFunctionWrapHandler) -> Any:
        """An ordinary place's location is written exactly as before the field existed."""
        data = handler(self)
        if isinstance(data, dict) and data.get("administrative") is None:
            data.pop("administrative", None)
        return data


class CaseOpened(Message):
    topic = "cases.opened"

    case_id: str
    report_ids: list[str]
    source: Source
    opened_at: datetime
    category: str
    category_name: str
    agency_mode: AgencyMode
    classification: Classification
    location: CaseLocation
    title: str | None = None
    description: str
    households_affected: int | None = None
    urgent: bool = False
    reporter_ref: str
    reporter_phone_masked: str | None = None  # absent for an anonymous reporter
    # The reporter asked to stay anonymous (匿名): no follow-up (回访) request, no phone published.
    anonymous: bool = False
    default_tier: Tier | None = None
    # Which location rule found the unit (building_code | grid_code | point | address |
    # description, "+address"/"+description" when a building named in the text refined it).
    located_by: str | None = None
    # 人工分拨 (triage): intake holds the case for the command centre instead of dispatching it
    # on its guess; why ("low_confidence": below WANGGE_TRIAGE_MIN_CONFIDENCE, "moderation":
    # flagged words). The command centre's decision is a cases.reclassified.
    needs_triage: bool = False
    triage_reasons: list[str] = Field(default_factory=list)
    # Moderation flags (审核) found in the free text: categories of abusive words (insult,
    # threat, self_harm), never the words; empty when none. docs/intake.md, Redaction.
    moderation: list[str] = Field(default_factory=list)
    # The report's photos intake stores (an upload); empty when none
    photos: list[CasePhoto] = Field(default_factory=list)


class CaseMerged(Message):
    topic = "cases.merged"

    case_id: str
    report_id: str
    source: Source
    merged_at: datetime
    supporter_count: int
    reporter_ref: str
    reporter_phone_masked: str | None = None  # absent for an anonymous reporter
    anonymous: bool = False  # as on CaseOpened: this supporter is not followed up
    households_affected: int | None = None
    urgent: bool = False
    # Why the report joined the case: "place" (same category and building, or grid, or place)
    # or "nearby" (a point within the radius and a similar text: services/intake/similarity.py);
    # absent from events published before this field existed (all "place").
    merged_by: Literal["place", "nearby"] | None = None
    # This report's photos intake stores (an upload); empty when none
    photos: list[CasePhoto] = Field(default_factory=list)


class CaseDispatched(Message):
    topic = "cases.dispatched"

    case_id: str
    tier: Tier
    unit: str
    handler_id: str | None = None
    respond_by: datetime
    resolve_by: datetime
    tier_reasons: list[str] = Field(default_factory=list)
    attempt: int = 1
    category: str | None = None
    dispatched_at: datetime | None = None


class CaseEscalated(Message):
    topic = "cases.escalated"

    case_id: str
    from_tier: Tier
    to_tier: Tier
    unit: str
    reason: str
    # when the case went up (the time of its new dispatch); absent from events published before
    # this field existed, whose time is their ce_time header
    escalated_at: datetime | None = None


# accept (the response deadline), resolve, verify (核查: a resolved case's verification deadline)
Stage = Literal["respond", "resolve", "verify"]


class CaseOverdue(Message):
    """A stage's limit reached (红牌, red card): the response or resolution deadline missed."""

    topic = "cases.overdue"

    case_id: str
    deadline: Stage
    unit: str
    handler_id: str | None = None
    # additive, absent from events published before they existed (their time is ce_time)
    tier: Tier | None = None
    due_at: datetime | None = None  # the deadline missed
    overdue_at: datetime | None = None  # when dispatch found it missed
    # 吹哨报到: an assisting work order's report (accept) limit missed; ``deadline`` is then
    # ``respond`` and ``unit`` the order's (absent: the case's own deadline)
    order_id: str | None = None


class CaseWarned(Message):
    """A stage's warning threshold crossed (黄牌, yellow card): ``elapsed_share`` of the stage's
    span (dispatch to deadline) has passed, e.g. 0.8, and its deadline has not. Once per stage per
    dispatch attempt."""

    topic = "cases.warned"

    case_id: str
    stage: Stage
    tier: Tier
    unit: str
    handler_id: str | None = None
    due_at: datetime  # the stage's deadline (respond_by or resolve_by)
    warned_at: datetime
    elapsed_share: Annotated[float, Field(ge=0)]  # of the stage's span, when warned
    attempt: int = 1  # the dispatch attempt warned


class CaseAccepted(Message):
    """Published by dispatch when a handler accepts a case (feeds the response rate)."""

    topic = "cases.accepted"

    case_id: str
    tier: Tier
    unit: str
    handler_id: str
    accepted_at: datetime  # when dispatch applied the accept (its clock), which on_time judges
    on_time: bool
    reported_at: datetime | None = None  # the handler app's own time (the action's ``at``)


class CaseResolved(Message):
    topic = "cases.resolved"

    case_id: str
    resolved_at: datetime  # when dispatch applied the resolve (its clock), which on_time judges
    tier: Tier
    unit: str
    handler_id: str | None = None
    note: str
    on_time: bool
    reported_at: datetime | None = None  # the handler app's own time (the action's ``at``)
    # 核查结案: the unit that verifies the resolution and by when; absent (None) when the
    # district does not verify resolutions (the resident's follow-up starts at once). With a
    # verifier, the follow-up waits for ``cases.verified``; ``cases.sent_back`` withdraws the
    # resolution (the case is handled again).
    verifier_unit: str | None = None
    verify_by: datetime | None = None


class CaseVerified(Message):
    """A resolution confirmed on site (核查结案) by a verifier other than the resolving handler
    (the community's staff for a case its grid resolved, the grid worker for one the community or
    a street or district department resolved): the case goes to the resident's follow-up (回访).
    Published by dispatch."""

    topic = "cases.verified"

    case_id: str
    tier: Tier  # where it was resolved
    unit: str
    handler_id: str | None = None  # who resolved it
    resolved_at: datetime
    verifier_id: str
    verifier_unit: str
    note: str | None = None
    verify_by: datetime | None = None
    verified_at: datetime  # when dispatch applied the verification (its clock)
    on_time: bool  # verified before verify_by


class CaseReturned(Message):
    """退单: the unit a case was dispatched to says it is not theirs (``reason``); the case goes to
    its district's command centre's triage queue (人工分拨), which decides its category and
    dispatches it again (``cases.reclassified`` with origin ``return``, then
    ``cases.dispatched``), never back to a unit that returned it while its category stays.
    Published by dispatch; feedback counts it (退单率)."""

    topic = "cases.returned"

    case_id: str
    tier: Tier
    unit: str  # the unit that returned it
    handler_id: str  # who returned it
    category: str  # the category it had
    attempt: int  # the dispatch attempt returned
    reason: str
    held_by: str  # the unit whose command centre decides now
    returned_at: datetime  # dispatch's clock


class CaseSentBack(Message):
    """A resolution the verifier did not confirm (核查不通过): the resolution is withdrawn and the
    case goes back to its handler to be done again, its resolution deadline moved back by the
    time it spent in verification. Published by dispatch."""

    topic = "cases.sent_back"

    case_id: str
    tier: Tier
    unit: str
    handler_id: str | None = None  # who resolved it, who has it again
    resolved_at: datetime  # the resolution withdrawn
    verifier_id: str
    verifier_unit: str
    reason: str
    sent_back_at: datetime  # dispatch's clock
    resolve_by: datetime | None = None  # the resolution deadline now


class CaseClosed(Message):
    topic = "cases.closed"

    case_id: str
    outcome: Literal["satisfied", "unrated"]
    closed_at: datetime


class CaseReopened(Message):
    topic = "cases.reopened"

    case_id: str
    reason: str
    reopen_count: int


ReclassifiedFrom = Literal["triage", "correction", "return"]


class DecidedBy(Event):
    """Who decided, from their bearer token (``shared.runtime.identity.Principal``)."""

    role: str
    unit: str | None = None
    handler_id: str | None = None
    subject: str | None = None


class CaseReclassified(Message):
    """A person put a case in another category (dispatch publishes it): the command centre's
    triage decision (人工分拨, ``origin`` "triage"), its correction of a dispatched case
    ("correction"), later a handler's return (退单, "return"). Intake keeps it as a labelled
    example; the case is dispatched again by the new category's tier rules."""

    topic = "cases.reclassified"

    case_id: str
    from_category: str
    from_category_name: str
    to_category: str
    to_category_name: str
    by: DecidedBy
    reclassified_at: datetime  # dispatch's clock
    origin: ReclassifiedFrom
    note: str | None = None
    # The new category's default tier (the taxonomy's), which 大事不出社区率 reads; absent from
    # events published before it existed.
    to_default_tier: Tier | None = None


class CaseExtended(Message):
    """An extension (缓办/延期) approved: the case's resolution deadline is now ``resolve_by``,
    which judges it on time (按期办结率). Published by dispatch when the unit one tier up
    approves a handler's request."""

    topic = "cases.extended"

    case_id: str
    tier: Tier
    unit: str
    handler_id: str | None = None  # who asked (the case's handler)
    previous_resolve_by: datetime
    resolve_by: datetime  # the approved deadline
    reason: str  # the handler's reason
    approved_by: str  # the approver's handler id
    requested_at: datetime
    extended_at: datetime  # when dispatch applied the approval (its clock)


class CaseSupervised(Message):
    """A supervision (督办) sent by the command centre on an open case to the unit that has it:
    a note (what to do, why it is watched) and optionally when to report back (``report_by``).
    Published by dispatch; the case's handler sees it on their list, feedback counts it per unit
    and period. Who sent it is the command centre's token (``by``), never a field of a request;
    ``supervision`` numbers the case's supervisions (1, 2, ...)."""

    topic = "cases.supervised"

    case_id: str
    supervision: int  # the case's n-th supervision
    tier: Tier
    unit: str  # the unit supervised: the case's unit when it was sent
    handler_id: str | None = None  # its handler then (null: the unit as a whole)
    attempt: int  # the dispatch attempt supervised
    note: str
    report_by: datetime | None = None  # when the unit is to report back
    by: DecidedBy
    supervised_at: datetime  # dispatch's clock


# --- work orders (派单/协办, 吹哨报到) and councils (议事会/联席会) ---------------------------

OrderState = Literal["issued", "reported", "done", "returned", "cancelled"]
OrderOrigin = Literal["whistle", "council"]


class OrderIssued(Message):
    """An assisting work order (协办) issued on a case beside its lead (the case's own dispatch):
    吹哨报到, a community or street blowing the whistle for the named units (``origin``
    "whistle"), or a measure of a council's decision (议事会/联席会, "council"). The unit must
    report (报到, accept) by ``report_by``; a ``required`` order must be done before the lead may
    resolve the case. Published by dispatch, one per order."""

    topic = "cases.order_issued"

    order_id: str
    case_id: str
    unit: str  # the unit ordered: a department, 物业 or a utility (a department record), a unit
    handler_id: str | None = None  # the unit's least busy handler (null: the unit as a whole)
    required: bool
    origin: OrderOrigin = "whistle"
    report_by: datetime
    resolve_by: datetime
    issued_by: str  # the handler who blew the whistle (or recorded the council's decision)
    issued_by_unit: str | None = None
    note: str | None = None
    council_id: str | None = None  # the council decision whose measure it is
    issued_at: datetime  # dispatch's clock


class OrderUpdated(Message):
    """An assisting work order's step: reported (报到: the unit took it), done, returned (not the
    unit's), cancelled (by the unit that issued it). ``on_time``: a report by ``report_by``, a
    done by ``resolve_by``. Published by dispatch."""

    topic = "cases.order_updated"

    order_id: str
    case_id: str
    unit: str
    handler_id: str | None = None  # who acted
    state: OrderState  # the order's state after the step
    note: str | None = None
    on_time: bool | None = None  # reported and done; null for the others
    at: datetime  # dispatch's clock


class CouncilMeasure(Event):
    """A measure of a council's decision and who carries it; it became a work order."""

    text: str
    unit: str
    order_id: str


class CouncilDecided(Message):
    """A council's decision on a case at deliberation (议事会, 联席会 ...): the body, the meeting
    date, the decision's text, the votes, the measures and who carries them (each became a
    required assisting work order, ``cases.order_issued`` origin "council"). The deliberation
    ends with it (the case is ``accepted`` again). Published by dispatch."""

    topic = "cases.council_decided"

    council_id: str
    case_id: str
    body: Annotated[str, Field(min_length=1, max_length=100)]  # 居民议事会, 联席会议 ...
    meeting_date: date
    decision: str
    votes_for: Annotated[int, Field(ge=0)]
    votes_against: Annotated[int, Field(ge=0)]
    votes_abstain: Annotated[int, Field(ge=0)]
    measures: list[CouncilMeasure] = Field(default_factory=list)
    tier: Tier
    unit: str  # the case's unit (the lead's)
    decided_by: str  # the handler who recorded it
    decided_at: datetime  # dispatch's clock


# --- 三代 agency (诉求代理 / 意愿代言 / 事务代办) -------------------------------------------


class CaseAgentAssigned(Message):
    """An agent (代理人/代办员) assigned to a case beside its handler (三代 agency), for a category
    whose taxonomy asks for one (``agent: true``), in its ``agency_mode``: a community staff member
    or a party volunteer (党员志愿者) of the case's community, never the case's handler. The agent
    records the resident's commission (委托, ``cases.commissioned``), follows the case and relays
    its progress to the resident (``cases.relayed``). Published by dispatch, once per case, at its
    first dispatch (or when a correction puts it in such a category)."""

    topic = "cases.agent_assigned"

    case_id: str
    agency_mode: AgencyMode
    agent_id: str
    agent_role: HandlerRole
    community: str  # the agent's unit: the case's community
    category: str
    tier: Tier  # where the case is when the agent is assigned
    unit: str
    handler_id: str | None = None  # its handler then
    assigned_at: datetime  # dispatch's clock


class CaseCommissioned(Message):
    """The resident's commission (委托) recorded by the case's agent: the resident asked the agent
    to act for them in the case's agency mode (诉求代理: carry the demand; 意愿代言: speak for their
    wishes; 事务代办: run the errand). Once per case. Published by dispatch."""

    topic = "cases.commissioned"

    case_id: str
    agency_mode: AgencyMode
    agent_id: str
    community: str
    note: str  # what the resident commissioned, in the agent's words
    commissioned_at: datetime  # when the resident commissioned (as the agent records it)
    recorded_at: datetime  # dispatch's clock


class CaseRelayed(Message):
    """Progress the case's agent relays to the resident (三代: the agent follows the case and
    tells the resident). Feedback tells every reporter (``cases.notified``, kind ``relayed``).
    Numbered per case (``relay``). Published by dispatch."""

    topic = "cases.relayed"

    case_id: str
    agency_mode: AgencyMode
    agent_id: str
    relay: int  # the case's n-th relay
    tier: Tier  # where the case is
    unit: str
    note: str  # what the resident is told
    relayed_at: datetime  # dispatch's clock


# --- handler.actions ----------------------------------------------------------------------------


# the actions whose note is their reason, so required
NOTE_REQUIRED: tuple[ActionKind, ...] = (
    "resolve",
    "escalate",
    "return",
    "request_extension",
    "refuse_extension",
    "suspend",
    "send_back",
)


class HandlerAction(Message):
    topic = "handler.actions"

    action_id: Annotated[str, Field(min_length=1, max_length=128)]
    case_id: Annotated[str, Field(min_length=1, max_length=128)]
    handler_id: Code
    action: ActionKind
    at: AwareDatetime
    note: Annotated[str, Field(max_length=2000)] | None = None
    target_unit: Code | None = None
    decide_by: AwareDatetime | None = None
    # request_extension: the resolution deadline asked for (缓办/延期)
    extend_to: AwareDatetime | None = None
    # suspend: when the case resumes by itself at the latest (挂起)
    resume_by: AwareDatetime | None = None
    # Photos of the action (any kind), by id: each uploaded for this case to dispatch first
    # (``POST /cases/{case_id}/photos``); on the timeline step the action records
    photos: list[PhotoId] = Field(default_factory=list, max_length=MAX_PHOTOS)

    @model_validator(mode="after")
    def _required_per_action(self) -> HandlerAction:
        if self.action in NOTE_REQUIRED and not (self.note or "").strip():
            raise ValueError(f"note is required for {self.action}")
        if self.action == "transfer" and not self.target_unit:
            raise ValueError("target_unit is required for transfer")
        if self.action == "deliberate" and self.decide_by is None:
            raise ValueError("decide_by is required for deliberate")
        if self.action == "request_extension" and self.extend_to is None:
            raise ValueError("extend_to is required for request_extension")
        if self.action == "suspend" and self.resume_by is None:
            raise ValueError("resume_by is required for suspend")
        return self


class HandlerActionRejected(Message):
    topic = "handler.actions.rejected"

    action_id: str | None = None
    case_id: str | None = None
    reason: str


# --- feedback.* ---------------------------------------------------------------------------------


class FeedbackRequested(Message):
    """Follow-up request, version 1 (deprecated): the rating token in clear. Published only
    when the operator opts in (``WANGGE_FEEDBACK_REQUESTED_V1``), beside version 2."""

    topic = "feedback.requested"

    case_id: str
    reporter_ref: str
    channel: str
    rating_token: str
    expires_at: datetime
    round: int = 1  # 1 for the first resolution, 2 after one reopen, ...


class FeedbackRequestedV2(Message):
    """Follow-up request (回访), version 2: the resident's tokens sealed for the notifier.

    ``sealed_links`` opens with ``WANGGE_NOTIFY_KEY`` only (``shared.contract.notify``: the
    format, and ``open_request`` for Python adapters) and holds the rating token and the case's
    status token; ``rating_url`` and ``status_url`` are the links with ``{rating_token}`` and
    ``{status_token}`` to fill in."""

    topic = "feedback.requested"
    version = 2

    case_id: str
    reporter_ref: str
    channel: str
    expires_at: datetime
    round: int = 1  # 1 for the first resolution, 2 after one reopen, ...
    sealed_links: str
    rating_url: str = Field(examples=["https://wangge.example.gov.cn/feedback/r/{rating_token}"])
    status_url: str | None = Field(
        None, examples=["https://wangge.example.gov.cn/feedback/s/{status_token}"]
    )


class FeedbackSubmitted(Message):
    topic = "feedback.submitted"

    case_id: Annotated[str, Field(min_length=1, max_length=128)]
    rating_token: Annotated[str, Field(min_length=1, max_length=256)]
    resolved: bool
    satisfaction: Satisfaction
    comment: Annotated[str, Field(max_length=2000)] | None = None
    at: AwareDatetime


class FeedbackRejected(Message):
    topic = "feedback.rejected"

    case_id: str | None = None
    reason: str
    # The request the rating's token belongs to, when the token is a real one (its reporter's
    # pseudonym and round: a channel adapter can tell its resident; never the token itself)
    reporter_ref: str | None = None
    round: int | None = None


# --- cases.notified -----------------------------------------------------------------------------

# The milestones of a case its residents hear of (cases.notified): assigned (派单, every
# cases.dispatched, re-dispatches included), accepted (接单, cases.accepted), extended (缓办/延期,
# cases.extended), resolved (办结, cases.resolved with the answer 答复), verified (核查结案,
# cases.verified: confirmed on site; the follow-up request comes after it), relayed (三代: the
# case's agent relays its progress, cases.relayed).
NoticeKind = Literal["assigned", "accepted", "extended", "resolved", "verified", "relayed"]


class CaseNotified(Message):
    """A milestone of a case told to one of its reporters, for the notifier (the channel adapter
    that relays follow-up requests) to tell the resident, routed as ``feedback.requested`` is:
    by ``reporter_ref`` over ``channel``. Published by feedback, one per reporter and milestone,
    every reporter of a merged case (附议) included, an anonymous (匿名) one never.
    ``notice_id`` is the same however often the same notice is published: deliver each once."""

    topic = "cases.notified"

    notice_id: str
    case_id: str
    kind: NoticeKind  # a kind an adapter does not know yet: tell ``text`` as it is
    reporter_ref: str  # the reporter's pseudonym, as in cases.opened / cases.merged
    channel: str  # the channel the reporter's report came by (where to reach them)
    text: str  # what to tell the resident, in Chinese (resolved: with the answer 答复)
    at: datetime  # when the milestone happened
    deadline: datetime | None = None  # assigned, extended: the resolution deadline
