"""Every topic the system uses, with partitions and configuration, and the code creating them.

Keys: case events by case id; reports by the community they resolve to (see docs/architecture.md);
``registry.units`` by unit code, compacted; handler actions and ratings by case id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contract import events as ev


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[ev.BaseModel] | None
    description: str
    partitions: int = 6
    config: dict[str, str] = field(default_factory=dict)
    # Earlier versions of the payload still published during a transition (the contract rule:
    # a breaking change is a new ce_type version, and both are served for a while)
    older: tuple[type[ev.Message], ...] = ()

    @classmethod
    def of(
        cls,
        model: type[ev.Message],
        description: str,
        *,
        partitions: int = 6,
        config: dict[str, str] | None = None,
        older: tuple[type[ev.Message], ...] = (),
    ) -> TopicSpec:
        """The topic an event class declares (``shared.events.Message.topic``)."""
        assert all(o.topic == model.topic for o in older), model.topic
        return cls(model.topic, model, description, partitions, config or {}, older)

    @property
    def models(self) -> tuple[type[ev.BaseModel], ...]:
        """Every payload the topic carries, the current version first."""
        return (self.model, *self.older) if self.model is not None else ()


_DAYS = 24 * 3600 * 1000
_RETAIN_30D = {"retention.ms": str(30 * _DAYS)}
_RETAIN_7D = {"retention.ms": str(7 * _DAYS)}

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "registry.units",
        None,
        "Unit registry: units, departments, handlers (compacted; null value removes).",
        partitions=1,
        config={"cleanup.policy": "compact", "min.compaction.lag.ms": "0"},
    ),
    TopicSpec.of(
        ev.ReportSubmitted,
        "Resident reports from every channel.",
        config=_RETAIN_30D,
    ),
    TopicSpec.of(
        ev.ReportRejected,
        "Reports that intake could not accept.",
        config=_RETAIN_30D,
    ),
    TopicSpec.of(ev.CaseOpened, "A new case, located and classified."),
    TopicSpec.of(ev.CaseMerged, "A duplicate report attached to an open case (附议)."),
    TopicSpec.of(ev.CaseDispatched, "A case assigned to a unit and handler."),
    TopicSpec.of(ev.CaseAccepted, "A handler accepted a case."),
    TopicSpec.of(ev.CaseEscalated, "A case moved one tier up (吹哨/上报)."),
    TopicSpec.of(ev.CaseOverdue, "A response or resolution deadline was missed (红牌)."),
    TopicSpec.of(ev.CaseWarned, "A stage's warning threshold was crossed (黄牌)."),
    TopicSpec.of(ev.CaseResolved, "A handler resolved a case."),
    TopicSpec.of(
        ev.CaseVerified,
        "A resolution confirmed on site (核查结案): the case goes to the resident's follow-up.",
    ),
    TopicSpec.of(
        ev.CaseReturned,
        "A unit returned a case as not theirs (退单): to the command centre's triage queue.",
    ),
    TopicSpec.of(
        ev.CaseSentBack,
        "A resolution the verifier did not confirm (核查不通过): handled again.",
    ),
    TopicSpec.of(
        ev.CaseExtended,
        "An extension (缓办/延期) approved: the case's new resolution deadline.",
    ),
    TopicSpec.of(
        ev.CaseSupervised,
        "A supervision (督办) the command centre sent on an open case to the unit that has it.",
    ),
    TopicSpec.of(
        ev.CaseAgentAssigned,
        "An agent (代理人/代办员, 三代) assigned to a case beside its handler.",
    ),
    TopicSpec.of(
        ev.CaseCommissioned,
        "The resident's commission (委托) recorded by the case's agent (三代).",
    ),
    TopicSpec.of(
        ev.CaseRelayed,
        "Progress the case's agent relays to the resident (三代).",
    ),
    TopicSpec.of(
        ev.OrderIssued,
        "An assisting work order (协办, 吹哨报到) issued on a case to a unit that must report.",
    ),
    TopicSpec.of(
        ev.OrderUpdated,
        "A work order's step: reported (报到), done, returned or cancelled.",
    ),
    TopicSpec.of(
        ev.CouncilDecided,
        "A council's decision (议事会/联席会): votes and measures, each a work order.",
    ),
    TopicSpec.of(ev.CaseClosed, "The loop is closed: rated satisfied, or unrated."),
    TopicSpec.of(ev.CaseReopened, "The resident was not satisfied: handle again."),
    TopicSpec.of(
        ev.CaseReclassified,
        "A person put a case in another category (人工分拨 triage, a correction).",
    ),
    TopicSpec.of(ev.HandlerAction, "What handlers do, from their apps."),
    TopicSpec.of(
        ev.HandlerActionRejected,
        "Handler actions that broke the rules.",
    ),
    TopicSpec.of(
        ev.FeedbackRequestedV2,
        "Follow-up (回访) request, one per reporter: v2, the tokens sealed for the notifier "
        "(v1, the token in clear, only while WANGGE_FEEDBACK_REQUESTED_V1 is on).",
        older=(ev.FeedbackRequested,),
    ),
    TopicSpec.of(ev.FeedbackSubmitted, "A resident's rating."),
    TopicSpec.of(ev.FeedbackRejected, "Ratings that were not accepted."),
    TopicSpec.of(
        ev.CaseNotified,
        "A milestone of a case told to one of its reporters, for the notifier (居民告知).",
    ),
)

CONSUMED = (
    "registry.units",
    "reports.submitted",
    "cases.opened",
    "cases.merged",
    "cases.dispatched",
    "cases.accepted",
    "cases.escalated",
    "cases.overdue",
    "cases.warned",
    "cases.resolved",
    "cases.verified",
    "cases.sent_back",
    "cases.returned",
    "cases.extended",
    "cases.supervised",
    "cases.agent_assigned",
    "cases.commissioned",
    "cases.relayed",
    "cases.order_issued",
    "cases.order_updated",
    "cases.council_decided",
    "cases.closed",
    "cases.reopened",
    "cases.reclassified",
    "handler.actions",
    "feedback.submitted",
)

# A dead letter is its original record (up to the broker's 1 MiB by default) plus dlq_* headers
_DLQ_CONFIG = {**_RETAIN_30D, "max.message.bytes": str(2 * 1024 * 1024)}
DLQ_TOPICS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(f"{name}.dlq", None, f"Dead letters of {name}.", partitions=1, config=_DLQ_CONFIG)
    for name in CONSUMED
)

ALL_TOPICS: tuple[TopicSpec, ...] = TOPICS + DLQ_TOPICS


def min_insync_replicas(replication: int) -> int:
    """How many replicas must have a record before the broker acknowledges it (the producers
    send with ``acks=all``): 2 from a replication factor of 3 on, so that an acknowledged event
    survives the loss of a broker and writes go on while one is down; 1 below that (with two
    replicas, 2 would stop every write while either broker is away)."""
    return 2 if replication >= 3 else 1


def topic_config(spec: TopicSpec, replication: int) -> dict[str, str]:
    """A topic's configuration at a replication factor: its own and ``min.insync.replicas``."""
    return {"min.insync.replicas": str(min_insync_replicas(replication)), **spec.config}


def spec(name: str) -> TopicSpec:
    for t in ALL_TOPICS:
        if t.name == name:
            return t
    raise KeyError(name)
