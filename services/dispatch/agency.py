"""三代 agency (pure): an agent beside the handler, the resident's commission, the agent's relays.

三代 are the three ways a community acts for its residents, one per category in the taxonomy
(``agency_mode``): 诉求代理 (``proxy_petition``: the agent carries the resident's demand to whoever
must act), 意愿代言 (``voice_advocacy``: the agent speaks for residents' shared wishes) and 事务代办
(``errand_service``: the agent runs the errand for the resident). A category whose taxonomy entry
says ``agent: true`` gets, at its case's first dispatch (or when a correction puts the case in
it), an **agent** (代理人/代办员) beside the handler:

- who: an on-duty ``community_staff`` or ``party_volunteer`` handler of the case's community (the
  registry's), the one with the fewest open cases as an agent (ties by id), **never the case's
  handler** (``pick_agent``); none: the case has no agent (and says why in the log);
- the agent records the resident's **commission** (委托: what the resident asked the agent to do
  for them, and when), once (``commission_refusal``, ``plan_commission``);
- follows the case (their ``GET /me/cases`` lists it, ``GET /cases/{id}`` reaches it wherever it
  goes, up to the district's departments) and **relays** progress to the resident
  (``plan_relay``), which feedback tells every reporter (``cases.notified`` kind ``relayed``).

Each is a timeline step of the case (``agent_assigned``, ``commission``, ``relay``) and an event
(``cases.agent_assigned``, ``cases.commissioned``, ``cases.relayed``). None changes the case's
state, handler or deadlines. ``agency_store`` is the SQL, ``agency_api`` the routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shared.contract.events import (
    AgencyMode,
    CaseAgentAssigned,
    CaseCommissioned,
    CaseRelayed,
    HandlerRole,
)
from shared.contract.taxonomy import Taxonomy

from .model import Case, Step

AGENT_ROLES: Final[tuple[HandlerRole, ...]] = ("community_staff", "party_volunteer")
MAX_NOTE: Final = 2000
MODE_NAMES: Final[dict[AgencyMode, str]] = {
    "proxy_petition": "诉求代理",
    "voice_advocacy": "意愿代言",
    "errand_service": "事务代办",
}


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """A possible agent: a handler of the community, and their open cases as an agent."""

    id: str
    role: str
    on_duty: bool
    agencies: int


@dataclass(frozen=True, slots=True)
class Agency:
    """A case's agent (a row of ``case_agents``) and its commission, once recorded."""

    case_id: str
    agency_mode: AgencyMode
    agent_id: str
    agent_role: str
    community: str
    assigned_at: datetime
    commissioned_at: datetime | None = None
    commission_note: str | None = None
    relays: int = 0


class Refused(Exception):
    """What an agent asks cannot be done: ``status`` 403 (not the case's agent), 409 (the case
    or its commission does not allow it) or 422 (``field`` wrong)."""

    def __init__(self, reason: str, status: int, field: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.field = field


def agency_mode_of(taxonomy: Taxonomy, case: Case) -> AgencyMode | None:
    """The agency mode the case gets an agent in: its category's, when the taxonomy asks for an
    agent (``agent: true``) and the case has a community to find one in; else None."""
    cat = taxonomy.get(case.category)
    if cat is None or not cat.agent or not case.community:
        return None
    return cat.agency_mode


def pick_agent(candidates: Iterable[AgentLoad], *, handler_id: str | None) -> AgentLoad | None:
    """The agent of a case among its community's handlers: on duty, community staff or a party
    volunteer, not the case's handler (``handler_id``), the fewest open agencies first, ties by
    id; None when nobody is left."""
    fit = [c for c in candidates if c.on_duty and c.role in AGENT_ROLES and c.id != handler_id]
    return min(fit, key=lambda c: (c.agencies, c.id), default=None)


def plan_assignment(
    case: Case, mode: AgencyMode, agent: AgentLoad, now: datetime
) -> tuple[Agency, Step, CaseAgentAssigned]:
    """``agent`` assigned to ``case`` at ``now``: its row, timeline step and event."""
    assert case.community is not None
    agency = Agency(case.case_id, mode, agent.id, agent.role, case.community, now)
    step = Step(
        case.case_id,
        now,
        "agent_assigned",
        from_state=case.state,
        to_state=case.state,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        detail={"agency_mode": mode, "agent_id": agent.id, "agent_role": agent.role},
    )
    event = CaseAgentAssigned(
        case_id=case.case_id,
        agency_mode=mode,
        agent_id=agent.id,
        agent_role=agent.role,
        community=case.community,
        category=case.category,
        tier=case.tier,
        unit=case.unit,
        handler_id=case.handler_id,
        assigned_at=now,
    )
    return agency, step, event


def _not_the_agent(agency: Agency | None, agent_id: str | None) -> Refused | None:
    if agency is None:
        return Refused("the case has no agent (三代 agency is not for its category)", 409)
    if agent_id != agency.agent_id:
        return Refused("only the case's agent may do this", 403)
    return None


def _blank(note: str) -> bool:
    return not note.strip()


def commission_refusal(
    agency: Agency | None,
    case: Case,
    agent_id: str | None,
    note: str,
    commissioned_at: datetime,
    now: datetime,
) -> Refused | None:
    """Why ``agent_id`` cannot record the resident's commission of ``case`` now, or None."""
    why = _not_the_agent(agency, agent_id)
    if why is not None:
        return why
    assert agency is not None
    if agency.commissioned_at is not None:
        return Refused("the resident's commission is already recorded", 409)
    if case.state == "resolved":
        return Refused("the case is resolved: there is nothing left to commission", 409)
    if _blank(note):
        return Refused("say what the resident commissioned: note is required", 422, "note")
    if commissioned_at > now:
        return Refused("commissioned_at may not be in the future", 422, "commissioned_at")
    if commissioned_at < case.opened_at:
        return Refused(
            "commissioned_at may not be before the case was opened", 422, "commissioned_at"
        )
    return None


def plan_commission(
    agency: Agency, case: Case, note: str, commissioned_at: datetime, now: datetime
) -> tuple[Step, CaseCommissioned]:
    """The commission recorded (``commission_refusal`` was None): its step and event."""
    step = Step(
        case.case_id,
        now,
        "commission",
        from_state=case.state,
        to_state=case.state,
        tier=case.tier,
        unit=case.unit,
        handler_id=agency.agent_id,
        detail={
            "agency_mode": agency.agency_mode,
            "note": note,
            "commissioned_at": commissioned_at.isoformat(),
        },
    )
    event = CaseCommissioned(
        case_id=case.case_id,
        agency_mode=agency.agency_mode,
        agent_id=agency.agent_id,
        community=agency.community,
        note=note,
        commissioned_at=commissioned_at,
        recorded_at=now,
    )
    return step, event


def relay_refusal(agency: Agency | None, agent_id: str | None, note: str) -> Refused | None:
    """Why ``agent_id`` cannot relay progress of the case, or None (any state: the agent tells
    the resident of the resolution too)."""
    why = _not_the_agent(agency, agent_id)
    if why is not None:
        return why
    if _blank(note):
        return Refused("say what the resident is told: note is required", 422, "note")
    return None


def plan_relay(
    agency: Agency, case: Case, note: str, number: int, now: datetime
) -> tuple[Step, CaseRelayed]:
    """The case's ``number``-th relay (``relay_refusal`` was None): its step and event."""
    step = Step(
        case.case_id,
        now,
        "relay",
        from_state=case.state,
        to_state=case.state,
        tier=case.tier,
        unit=case.unit,
        handler_id=agency.agent_id,
        detail={"agency_mode": agency.agency_mode, "note": note, "relay": number},
    )
    event = CaseRelayed(
        case_id=case.case_id,
        agency_mode=agency.agency_mode,
        agent_id=agency.agent_id,
        relay=number,
        tier=case.tier,
        unit=case.unit,
        note=note,
        relayed_at=now,
    )
    return step, event
