"""The case state machine (pure): ONE transition table, and who may act on a case.

States (``cases.state``):

- ``dispatched``: assigned to a unit (and a handler, or the unit as a whole), not yet accepted;
- ``escalated`` / ``transferred``: the same, after a move to another unit (上报/吹哨, 转办): the
  state says how the case got where it is; ``returned`` is that of cases returned (退单) before
  returns went to the command centre (they are never entered now);
- ``accepted``: a handler took it; ``deliberating``: at the community's residents' council
  (议事会), its deadline paused until ``decide_by``; ``resolved``: done (feedback may reopen it);
- ``extension_requested``: its handler asked for a later resolution deadline (缓办/延期); the unit
  one tier up approves or refuses it (``approve_extension``/``refuse_extension``, back to
  ``accepted``), or the request lapses unanswered (``extension_lapsed``, at ``paused_until``);
  the resolution clock pauses meanwhile when the tier's rules say so (``pause_while_pending``);
- ``suspended``: 挂起, waiting for the resident, the resolution clock paused, until the handler
  resumes it (``resume``) or ``resume_by`` comes (``suspension_ended``, the sweeper);
- ``verifying``: resolved by its handler and awaiting verification (核查结案): a verifier other
  than the resolving handler, of ``verifier_unit`` (``verifier_of``), confirms it (``verify``:
  ``resolved``) or sends it back (``send_back``: ``accepted`` again, with the same handler), by
  ``verify_by`` (else ``verify_timeout``, a red card: it still waits); the resolution clock is
  stopped meanwhile. Where the district does not verify, ``verification_waived`` follows the
  resolve at once;
- ``triage``: opened with ``needs_triage`` (人工分拨): held by the command centre of its district,
  dispatched to nobody and with no deadline running, until the command centre decides its
  category (``reclassify``, then a first dispatch by that category's tier rules); and a case its
  unit returned as not theirs (``return``, 退单: ``returns.py``), until the command centre
  decides it again (its category, or the same one: routed past the units that returned it).

Events are the handler actions of ``handler.actions`` and the system's own: ``respond_timeout``
``resolve_timeout`` and ``verify_timeout`` (the sweeper), ``verification_waived`` (the
district does not verify), ``deliberation_ended`` (the sweeper, at ``decide_by``),
``suspension_ended`` and ``extension_lapsed`` (the sweeper, at ``paused_until``),
``rules_raised`` (merged reports raised the tier) and ``reopen`` (``cases.reopened``); a
council's decision (``council_decision``: the deliberation ends, its measures become work orders,
``councils.py``); and the command centre's ``reclassify`` (its triage decision, or its correction
of a dispatched case's category, which dispatches the case afresh: ``triage.py``).
A pair missing from the table is not allowed; the action is rejected and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from shared.contract.events import ActionKind

State = Literal[
    "dispatched",
    "escalated",
    "returned",
    "transferred",
    "accepted",
    "deliberating",
    "extension_requested",
    "suspended",
    "verifying",
    "resolved",
    "triage",
]
SystemEvent = Literal[
    "respond_timeout",
    "resolve_timeout",
    "verify_timeout",
    "verification_waived",
    "deliberation_ended",
    "suspension_ended",
    "extension_lapsed",
    "rules_raised",
    "reopen",
]
# What the command centre decides over HTTP (not a handler action: ``triage.py``), and a
# council's decision recorded over HTTP (议事会/联席会: ``councils.py``), ending a deliberation
CommandEvent = Literal["reclassify", "council_decision"]
CaseEvent = ActionKind | SystemEvent | CommandEvent

STATES: tuple[State, ...] = get_args(State)
AWAITING: tuple[State, ...] = ("dispatched", "escalated", "returned", "transferred")
OPEN: tuple[State, ...] = (
    *AWAITING,
    "accepted",
    "deliberating",
    "extension_requested",
    "suspended",
    "verifying",
    "triage",
)
# Where the resolution deadline runs (unless paused: ``paused_at``), so the sweeps look for it
RESOLVE_RUNNING: tuple[State, ...] = (*AWAITING, "accepted", "extension_requested")
# Pauses that move the deadline when they end, their end not known when they begin (pauses.py)
OPEN_ENDED: tuple[State, ...] = ("suspended", "extension_requested", "verifying")
# Pauses that end at ``paused_until``: the sweeper's event for each
PAUSE_ENDS: dict[State, SystemEvent] = {
    "deliberating": "deliberation_ended",
    "suspended": "suspension_ended",
    "extension_requested": "extension_lapsed",
}

# (state, event) -> next state. The single source of truth of what may happen to a case.
TRANSITIONS: dict[tuple[State, CaseEvent], State] = {
    # awaiting acceptance: take it, pass it on, or let the clock run out
    ("dispatched", "accept"): "accepted",
    ("dispatched", "escalate"): "escalated",
    ("dispatched", "return"): "triage",
    ("dispatched", "transfer"): "transferred",
    ("dispatched", "respond_timeout"): "dispatched",
    ("dispatched", "resolve_timeout"): "escalated",
    ("dispatched", "rules_raised"): "escalated",
    ("escalated", "accept"): "accepted",
    ("escalated", "escalate"): "escalated",
    ("escalated", "return"): "triage",
    ("escalated", "transfer"): "transferred",
    ("escalated", "respond_timeout"): "escalated",
    ("escalated", "resolve_timeout"): "escalated",
    ("escalated", "rules_raised"): "escalated",
    ("returned", "accept"): "accepted",
    ("returned", "escalate"): "escalated",
    ("returned", "return"): "triage",
    ("returned", "transfer"): "transferred",
    ("returned", "respond_timeout"): "returned",
    ("returned", "resolve_timeout"): "escalated",
    ("returned", "rules_raised"): "escalated",
    ("transferred", "accept"): "accepted",
    ("transferred", "escalate"): "escalated",
    ("transferred", "return"): "triage",
    ("transferred", "transfer"): "transferred",
    ("transferred", "respond_timeout"): "transferred",
    ("transferred", "resolve_timeout"): "escalated",
    ("transferred", "rules_raised"): "escalated",
    # accepted: work on it, finish it, or hand it on
    ("accepted", "progress"): "accepted",
    ("accepted", "resolve"): "verifying",
    ("accepted", "escalate"): "escalated",
    ("accepted", "return"): "triage",
    ("accepted", "transfer"): "transferred",
    ("accepted", "deliberate"): "deliberating",
    ("accepted", "request_extension"): "extension_requested",
    ("accepted", "suspend"): "suspended",
    ("accepted", "resolve_timeout"): "escalated",
    ("accepted", "rules_raised"): "escalated",
    # at the residents' council: the deadline is paused (no resolve_timeout)
    ("deliberating", "progress"): "deliberating",
    ("deliberating", "resolve"): "verifying",
    ("deliberating", "escalate"): "escalated",
    ("deliberating", "deliberation_ended"): "accepted",
    ("deliberating", "council_decision"): "accepted",
    ("deliberating", "rules_raised"): "escalated",
    # an extension (缓办/延期) awaiting the unit one tier up: work goes on meanwhile
    ("extension_requested", "approve_extension"): "accepted",
    ("extension_requested", "refuse_extension"): "accepted",
    ("extension_requested", "extension_lapsed"): "accepted",
    ("extension_requested", "progress"): "extension_requested",
    ("extension_requested", "resolve"): "verifying",
    ("extension_requested", "resolve_timeout"): "escalated",
    ("extension_requested", "rules_raised"): "escalated",
    # suspended (挂起), waiting for the resident: the deadline is paused (no resolve_timeout)
    ("suspended", "resume"): "accepted",
    ("suspended", "suspension_ended"): "accepted",
    ("suspended", "progress"): "suspended",
    ("suspended", "rules_raised"): "escalated",
    # resolved, awaiting verification (核查结案): confirmed, sent back, or late (a red card)
    ("verifying", "verify"): "resolved",
    ("verifying", "send_back"): "accepted",
    ("verifying", "verify_timeout"): "verifying",
    ("verifying", "verification_waived"): "resolved",
    # resolved: only the resident can bring it back
    ("resolved", "reopen"): "dispatched",
    # the command centre's category (人工分拨): a triage decision is the case's first dispatch;
    # a correction of an unfinished case dispatches it again by its new category
    ("triage", "reclassify"): "dispatched",
    ("dispatched", "reclassify"): "dispatched",
    ("escalated", "reclassify"): "dispatched",
    ("returned", "reclassify"): "dispatched",
    ("transferred", "reclassify"): "dispatched",
    ("accepted", "reclassify"): "dispatched",
    ("extension_requested", "reclassify"): "dispatched",
    ("suspended", "reclassify"): "dispatched",
}

_HINTS: dict[CaseEvent, str] = {
    "resolve": "resolve needs an accepted case",
    "progress": "progress needs an accepted case",
    "deliberate": "deliberate needs an accepted case",
    "accept": "the case is already accepted",
    "request_extension": "request_extension needs an accepted case",
    "approve_extension": "no extension is awaiting a decision",
    "refuse_extension": "no extension is awaiting a decision",
    "suspend": "suspend needs an accepted case",
    "resume": "resume needs a suspended case",
    "verify": "no resolution awaits verification",
    "send_back": "no resolution awaits verification",
}


def next_state(state: State, event: CaseEvent) -> State | None:
    """The state after ``event``, or None when the table does not allow it."""
    return TRANSITIONS.get((state, event))


@dataclass(frozen=True, slots=True)
class Transition:
    """An allowed pair of the table and where it leads: decided once per step, then applied."""

    event: CaseEvent
    from_state: State
    to_state: State


_TRANSITIONS: dict[tuple[State, CaseEvent], Transition] = {
    (state, event): Transition(event, state, to) for (state, event), to in TRANSITIONS.items()
}


def transition(state: State, event: CaseEvent) -> Transition | None:
    """The transition ``event`` makes from ``state``, or None when the table does not allow it."""
    return _TRANSITIONS.get((state, event))


def refusal(state: State, event: CaseEvent) -> str:
    """Why ``event`` is not allowed in ``state`` (for handler.actions.rejected)."""
    if state == "resolved":
        return f"{event} is not allowed: the case is resolved"
    if state == "triage":
        return f"{event} is not allowed: the case awaits the command centre's triage (人工分拨)"
    hint = _HINTS.get(event)
    return f"{event} is not allowed in state {state}" + (f" ({hint})" if hint else "")


# --- who may act ---------------------------------------------------------------------------------

VOLUNTEER_TIERS = ("grid", "community")
VOLUNTEER_ACTIONS: tuple[ActionKind, ...] = ("accept", "progress", "resolve")
ALREADY_ACCEPTED = "the case is already accepted"
# The command centre (指挥调度中心) reassigns (改派): it transfers open cases of its area, nothing
# else. It acts as ``command_centre.<unit>`` (``command_centre_actor``), not as a registry handler.
COMMAND_CENTRE = "command_centre"
COMMAND_CENTRE_ACTIONS: tuple[ActionKind, ...] = ("transfer",)
# An extension is decided by the unit one tier up (``CaseView.approver``), never the case's own
EXTENSION_DECISIONS: tuple[ActionKind, ...] = ("approve_extension", "refuse_extension")
# A resolution is verified (核查) by the staff of ``verifier_unit``, never its resolving handler
VERIFICATIONS: tuple[ActionKind, ...] = ("verify", "send_back")
_COMMAND_CENTRE_PREFIX = COMMAND_CENTRE + "."


@dataclass(frozen=True)
class Actor:
    id: str
    unit: str
    role: str


@dataclass(frozen=True)
class CaseView:
    state: State
    tier: str
    unit: str
    handler_id: str | None
    community: str | None
    place: tuple[str, ...] = ()  # the codes of its location: district, street, community, grid
    # who decides its extensions: the unit one tier up (``approver_of``)
    approver: str | None = None
    # who verifies its resolution (``verifier_of``, set when it was resolved)
    verifier: str | None = None


def command_centre_actor(unit: str) -> str:
    """The handler id the command centre of ``unit`` acts as (in ``handler.actions`` and the
    timeline)."""
    return _COMMAND_CENTRE_PREFIX + unit


def command_centre_unit(actor_id: str) -> str | None:
    """The unit of a command-centre actor id (None: not one)."""
    if actor_id.startswith(_COMMAND_CENTRE_PREFIX):
        return actor_id[len(_COMMAND_CENTRE_PREFIX) :] or None
    return None


def approver_of(tier: str, place: dict[str, str | None]) -> str | None:
    """The unit that decides a case's extensions (缓办/延期): the one a tier above the case's,
    on its own location: a grid-tier case's community, a community-tier case's street, a
    street-tier case's district; a district-tier case's is its district's command centre (the
    district's own handlers are the case's). ``place``: the case's code per level."""
    above = {"grid": "community", "community": "street", "street": "district"}
    return place.get(above.get(tier, "district"))


def verifier_of(tier: str, place: dict[str, str | None]) -> str | None:
    """The unit whose staff verify a case's resolution on site (核查结案), never the unit that
    resolved it: for a case resolved at the grid, its community; for one the community, a street
    or a district department resolved, the grid worker of its grid (its community when it has no
    grid). ``place``: the case's code per level; None when it has neither."""
    if tier == "grid":
        return place.get("community")
    return place.get("grid") or place.get("community")


def authorization_refusal(actor: Actor | None, case: CaseView, action: ActionKind) -> str | None:
    """Why ``actor`` may not perform ``action`` on the case (None: they may).

    The assigned handler and every handler of the assigned unit may act. A party volunteer
    (党员志愿者) is never assigned automatically: they may ``accept`` an unaccepted grid- or
    community-tier case of their own community (接单), and once it is theirs, report progress
    and resolve it; escalating, returning, transferring and deliberating stay with the staff.
    The command centre may transfer (改派) any case located in its area (its unit is one of the
    case's location codes), and do nothing else but decide the extensions of its district's
    district-tier cases. An extension is decided by the staff of the unit one tier up
    (``approver_of``) and by nobody of the case's own unit. A resolution is verified by the
    staff of its verifier unit (``verifier_of``), never by the handler who resolved it.
    """
    if actor is None:
        return "unknown handler"
    if action in EXTENSION_DECISIONS:
        return _decision_refusal(actor, case)
    if action in VERIFICATIONS:
        return _verification_refusal(actor, case)
    if actor.role == COMMAND_CENTRE:
        return _command_centre_refusal(actor, case, action)
    if actor.role == "party_volunteer":
        return _volunteer_refusal(actor, case, action)
    if actor.id == case.handler_id or actor.unit == case.unit:
        return None
    return "handler is neither the assigned handler nor of the assigned unit"


def _decision_refusal(actor: Actor, case: CaseView) -> str | None:
    at_top = case.tier == "district"
    if case.approver is None or actor.unit != case.approver:
        return f"only the unit one tier up ({case.approver or 'none'}) decides extensions"
    if at_top != (actor.role == COMMAND_CENTRE) or actor.role == "party_volunteer":
        who = "the district's command centre" if at_top else "its staff"
        return f"extensions of a {case.tier}-tier case are decided by {who}"
    return None


def _verification_refusal(actor: Actor, case: CaseView) -> str | None:
    if case.verifier is None:
        return "no resolution of the case awaits verification"
    if actor.unit != case.verifier:
        return f"only the staff of {case.verifier} verify the case's resolution"
    if actor.role in (COMMAND_CENTRE, "party_volunteer"):
        return "resolutions are verified by staff"
    if actor.id == case.handler_id:
        return "the handler who resolved the case may not verify it"
    return None


def _command_centre_refusal(actor: Actor, case: CaseView, action: ActionKind) -> str | None:
    if action not in COMMAND_CENTRE_ACTIONS:
        return f"the command centre may only transfer (改派) cases, not {action}"
    if actor.unit not in case.place:
        return "the case is outside the command centre's area"
    return None


def _volunteer_refusal(actor: Actor, case: CaseView, action: ActionKind) -> str | None:
    if actor.id == case.handler_id:
        if action in VOLUNTEER_ACTIONS:
            return None
        return f"party volunteers may not {action}"
    if action != "accept":
        return "party volunteers may only accept (接单) cases of their community"
    if case.community != actor.unit:
        return "party volunteers may only accept cases of their own community"
    if case.tier not in VOLUNTEER_TIERS:
        return f"party volunteers may not accept a {case.tier}-tier case"
    if case.state not in AWAITING:
        return ALREADY_ACCEPTED
    return None


def allowed_actions(actor: Actor | None, case: CaseView) -> list[ActionKind]:
    """The actions ``actor`` may take on the case now: allowed in its state and to them (an
    action's own checks, such as a transfer's target, come when it is taken)."""
    return [
        a
        for a in get_args(ActionKind)
        if transition(case.state, a) is not None and authorization_refusal(actor, case, a) is None
    ]


def markdown_table() -> str:
    """The transition table as a markdown matrix (docs/dispatch.md embeds it; a test keeps the
    two equal)."""
    events: tuple[CaseEvent, ...] = (
        *get_args(ActionKind),
        *get_args(SystemEvent),
        *get_args(CommandEvent),
    )
    lines = [
        "| state \\ event | " + " | ".join(events) + " |",
        "|---|" + "---|" * len(events),
    ]
    for state in STATES:
        cells = [TRANSITIONS.get((state, e), "—") for e in events]
        lines.append(f"| **{state}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)
