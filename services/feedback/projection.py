"""The facts feedback keeps of dispatch's case events (pure): ONE table, event -> fact row.

Each event below becomes one row of its fact table (the metrics and the case timeline are
computed from them): ``case_id``, then each column from the event's field of that name (or the
field ``renamed`` names); the time column (``when``) falls back to the event's CloudEvents
``ce_time`` when the field is absent (events published before the field existed). Adding an
event is one row here; ``app`` subscribes ``Feedback.record`` to every topic of the table. An
event that is also an input of the lifecycle (``lifecycle.Input``) says so in ``input``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from shared.contract.events import (
    CaseAccepted,
    CaseAgentAssigned,
    CaseCommissioned,
    CaseDispatched,
    CaseEscalated,
    CaseOverdue,
    CaseRelayed,
    CaseResolved,
    CaseReturned,
    CaseSentBack,
    CaseSupervised,
    CaseVerified,
    CaseWarned,
    CouncilDecided,
    OrderIssued,
    OrderUpdated,
)
from shared.runtime.consumer import Meta

from .lifecycle import Input

FactEvent = (
    CaseDispatched
    | CaseAccepted
    | CaseEscalated
    | CaseResolved
    | CaseVerified
    | CaseSentBack
    | CaseReturned
    | CaseWarned
    | CaseOverdue
    | CaseSupervised
    | CaseAgentAssigned
    | CaseCommissioned
    | CaseRelayed
    | OrderIssued
    | OrderUpdated
    | CouncilDecided
)


@dataclass(frozen=True)
class Fact:
    topic: str
    model: type[FactEvent]
    table: str
    columns: tuple[str, ...]
    when: str  # the column of when it happened
    renamed: dict[str, str] = field(default_factory=dict)  # column -> the event's field
    input: Input | None = None


FACTS: tuple[Fact, ...] = (
    Fact(
        "cases.dispatched",
        CaseDispatched,
        "dispatches",
        ("attempt", "tier", "unit", "respond_by", "resolve_by", "dispatched_at"),
        when="dispatched_at",
    ),
    Fact(
        "cases.accepted",
        CaseAccepted,
        "accepts",
        ("tier", "unit", "accepted_at", "on_time"),
        when="accepted_at",
    ),
    Fact(
        "cases.escalated",
        CaseEscalated,
        "escalations",
        ("from_tier", "to_tier", "unit", "reason", "at"),
        when="at",
        renamed={"at": "escalated_at"},
    ),
    Fact(
        "cases.resolved",
        CaseResolved,
        "resolutions",
        ("tier", "unit", "resolved_at", "on_time"),
        when="resolved_at",
        input="resolution",  # unless it awaits its verification (``input_of``)
    ),
    Fact(
        "cases.verified",
        CaseVerified,
        "verifications",
        ("tier", "unit", "verifier_unit", "resolved_at", "verified_at", "on_time"),
        when="verified_at",
        input="resolution",
    ),
    Fact(
        "cases.returned",
        CaseReturned,
        "returns",
        ("tier", "unit", "attempt", "returned_at"),
        when="returned_at",
    ),
    Fact(
        "cases.sent_back",
        CaseSentBack,
        "send_backs",
        ("tier", "unit", "verifier_unit", "resolved_at", "sent_back_at"),
        when="sent_back_at",
    ),
    Fact(
        "cases.warned",
        CaseWarned,
        "warnings",
        ("stage", "tier", "unit", "attempt", "due_at", "elapsed_share", "warned_at"),
        when="warned_at",
    ),
    Fact(
        "cases.overdue",
        CaseOverdue,
        "overdues",
        ("deadline", "tier", "unit", "due_at", "at", "order_id"),
        when="at",
        renamed={"at": "overdue_at"},
    ),
    # 督办: the command centre's supervisions, counted per unit and period
    Fact(
        "cases.supervised",
        CaseSupervised,
        "supervisions",
        ("supervision", "tier", "unit", "attempt", "supervised_at"),
        when="supervised_at",
    ),
    # 三代 agency: counted per agency mode; a relay is also a milestone the reporters hear of
    Fact(
        "cases.agent_assigned",
        CaseAgentAssigned,
        "agent_assignments",
        ("agency_mode", "community", "tier", "unit", "assigned_at"),
        when="assigned_at",
    ),
    Fact(
        "cases.commissioned",
        CaseCommissioned,
        "commissions",
        ("agency_mode", "community", "commissioned_at", "recorded_at"),
        when="recorded_at",
    ),
    Fact(
        "cases.relayed",
        CaseRelayed,
        "relays",
        ("agency_mode", "relay", "tier", "unit", "relayed_at"),
        when="relayed_at",
    ),
    # 派单/协办 (吹哨报到): the orders each unit was issued and what it did with them; councils
    Fact(
        "cases.order_issued",
        OrderIssued,
        "work_orders",
        ("order_id", "unit", "required", "origin", "report_by", "resolve_by", "issued_at"),
        when="issued_at",
    ),
    Fact(
        "cases.order_updated",
        OrderUpdated,
        "order_updates",
        ("order_id", "unit", "state", "on_time", "at"),
        when="at",
    ),
    Fact(
        "cases.council_decided",
        CouncilDecided,
        "council_decisions",
        (
            "council_id",
            "body",
            "votes_for",
            "votes_against",
            "votes_abstain",
            "measures",
            "tier",
            "unit",
            "decided_at",
        ),
        when="decided_at",
    ),
)
BY_MODEL: dict[type[FactEvent], Fact] = {f.model: f for f in FACTS}


def fact_of(ev: FactEvent) -> Fact:
    return BY_MODEL[type(ev)]


def input_of(fact: Fact, ev: FactEvent) -> Input | None:
    """The lifecycle's input ``ev`` is: its fact's, except a ``cases.resolved`` that awaits its
    verification (核查结案: a verifier named), whose ``cases.verified`` is the resolution the
    resident's follow-up starts from."""
    if isinstance(ev, CaseResolved) and ev.verifier_unit is not None:
        return None
    return fact.input


def fact_row(fact: Fact, ev: FactEvent, meta: Meta) -> dict[str, Any]:
    """The row of ``fact.table`` that ``ev`` becomes."""
    row: dict[str, Any] = {"case_id": ev.case_id}
    for column in fact.columns:
        value = getattr(ev, fact.renamed.get(column, column))
        if isinstance(value, list):  # a list of records (a council's measures): a jsonb column
            value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        row[column] = event_time(meta) if value is None and column == fact.when else value
    return row


def event_time(meta: Meta) -> datetime:
    """When the event happened, by its CloudEvents ``ce_time`` (else when it was received)."""
    raw = meta.headers.get("ce_time")
    if raw:
        try:
            at = datetime.fromisoformat(raw)
            if at.tzinfo is not None:
                return at
        except ValueError:
            pass
    return meta.received_at


def markdown_table() -> str:
    """The table as markdown (docs/feedback.md embeds it; a test keeps the two equal)."""
    lines = ["| consumed | fact table | columns (← the event's field) |", "|---|---|---|"]
    for f in FACTS:
        cols = ["case_id", *(_column(f, c) for c in f.columns)]
        also = f" (and the lifecycle's `{f.input}`)" if f.input else ""
        if f.model is CaseResolved:
            also = f" (and the lifecycle's `{f.input}` when it names no verifier)"
        lines.append(f"| `{f.topic}`{also} | `{f.table}` | {', '.join(cols)} |")
    return "\n".join(lines)


def _column(f: Fact, column: str) -> str:
    source = f.renamed.get(column)
    text = f"{column} ← {source}" if source else column
    return f"{text} (else ce_time)" if column == f.when and _optional(f, column) else text


def _optional(f: Fact, column: str) -> bool:
    return not f.model.model_fields[f.renamed.get(column, column)].is_required()
