"""Kafka identity: every principal of a deployment and exactly what it may do, from the topic table.

Each service, the operators' tools and each upstream system is its own principal (a SCRAM user),
and its ACLs are derived here from ``shared.contract.topics`` and what each party reads and
writes, so that a new topic changes the ACLs with it (``make ops-files`` writes them as Strimzi
``KafkaUser`` resources; ``devstack`` applies them to the local broker):

- a service (``wangge-<service>``) reads the topics it consumes, in its own consumer groups
  ``wangge-<service>.<topic>`` (``Service.subscribe``), and writes the topics it publishes plus the
  dead letters of what it consumes (``<topic>.dlq``);
- ``wangge-ops`` (``wangge ops setup``, ``ops topics|lag|status``, ``registry load|show``,
  ``dlq list|replay``) creates and describes every topic, reads ``registry.units`` and the dead
  letters, writes ``registry.units`` and, replaying dead letters, the topics they came from, and
  describes the services' groups (lag);
- ``wangge-watcher`` (dashboards, ``wangge ops lag|status``) describes topics and groups: offsets
  and lag, never a message;
- an upstream system is one of the kinds of ``UPSTREAM_KINDS`` (a report source, a handler app, the
  follow-up / rating page): it writes its input topic and reads what comes back for it, in consumer
  groups named ``<principal>.<anything>``.

Every name gets the deployment's ``WANGGE_TOPIC_PREFIX`` (topics and groups alike). Kafka implies
Describe by Read and Write, and an idempotent producer needs only Write on the topic (Kafka ≥ 3.0,
KIP-679), so only Read and Write are listed for them. Pure: nothing here opens a connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shared.contract.topics import ALL_TOPICS, CONSUMED, DLQ_TOPICS


class Resource(StrEnum):
    """Kafka resource types, spelled as Strimzi's ``KafkaUser`` spells them."""

    TOPIC = "topic"
    GROUP = "group"
    CLUSTER = "cluster"
    TRANSACTIONAL_ID = "transactionalId"


class Pattern(StrEnum):
    LITERAL = "literal"
    PREFIX = "prefix"


class Operation(StrEnum):
    READ = "Read"
    WRITE = "Write"
    CREATE = "Create"
    DESCRIBE = "Describe"
    DESCRIBE_CONFIGS = "DescribeConfigs"


@dataclass(frozen=True, order=True)
class Acl:
    """One allowed operation of a principal on a resource (from any host)."""

    resource: Resource
    name: str  # physical: the prefix is applied
    pattern: Pattern
    operation: Operation


@dataclass(frozen=True)
class ServiceTopics:
    """What a service consumes and publishes (its code's subscriptions and the event classes it
    builds: ``tests/shared/test_acls.py`` and ``make ops-files`` check the two agree)."""

    consumes: tuple[str, ...]
    publishes: tuple[str, ...]


SERVICE_TOPICS: dict[str, ServiceTopics] = {
    "intake": ServiceTopics(
        consumes=(
            "registry.units",
            "reports.submitted",
            "cases.closed",
            # the Open311 status of a case (services/intake/open311/projection.py)
            "cases.dispatched",
            "cases.accepted",
            "cases.escalated",
            "cases.resolved",
            "cases.verified",  # 核查结案: the resolution confirmed, the rating awaited
            "cases.sent_back",  # 核查不通过: handled again
            "cases.reopened",
            # the command centre's categories: labelled examples, and intake's copy of the case
            "cases.reclassified",
        ),
        publishes=("cases.opened", "cases.merged", "reports.rejected"),
    ),
    "dispatch": ServiceTopics(
        consumes=(
            "registry.units",
            "cases.opened",
            "cases.merged",
            "cases.reopened",
            "handler.actions",
        ),
        publishes=(
            "cases.dispatched",
            "cases.accepted",
            "cases.escalated",
            "cases.overdue",
            "cases.warned",
            "cases.resolved",
            "cases.verified",  # 核查结案
            "cases.sent_back",  # 核查不通过: handled again
            "cases.returned",  # 退单: to the command centre's triage queue
            "cases.extended",  # 缓办/延期 approved
            "cases.supervised",  # 督办 sent by the command centre
            "cases.reclassified",
            "cases.agent_assigned",  # 三代: an agent beside the handler
            "cases.commissioned",  # 三代: the resident's commission (委托)
            "cases.relayed",  # 三代: progress the agent relays to the resident
            "cases.order_issued",  # 吹哨报到: an assisting work order (协办)
            "cases.order_updated",  # a work order reported (报到), done, returned, cancelled
            "cases.council_decided",  # 议事会/联席会: a decision, its measures work orders
            "handler.actions.rejected",
        ),
    ),
    "feedback": ServiceTopics(
        consumes=(
            "registry.units",
            "cases.opened",
            "cases.merged",
            "cases.dispatched",
            "cases.accepted",
            "cases.escalated",
            "cases.overdue",  # red cards (红牌), per unit and period
            "cases.warned",  # yellow cards (黄牌)
            "cases.resolved",
            "cases.verified",  # the follow-up starts once a resolution is verified
            "cases.sent_back",  # a withdrawn resolution counts as none
            "cases.returned",  # 退单率
            "cases.reclassified",  # the category its figures count the case under
            "cases.extended",  # a milestone residents hear of (cases.notified)
            "cases.supervised",  # 督办, counted per unit and period
            "cases.agent_assigned",  # 三代 agency, counted per mode
            "cases.commissioned",
            "cases.relayed",  # also a milestone residents hear of
            "cases.order_issued",  # work orders (协办), counted per unit they were issued to
            "cases.order_updated",
            "cases.council_decided",  # council decisions, counted per unit
            "feedback.submitted",
        ),
        publishes=(
            "feedback.requested",
            "feedback.rejected",
            "cases.closed",
            "cases.reopened",
            "cases.notified",  # the milestones each reporter hears of
        ),
    ),
}


@dataclass(frozen=True)
class UpstreamKind:
    """A kind of upstream system: the topic it writes and the topics it reads back
    (docs/integration.md)."""

    description: str
    writes: tuple[str, ...]
    reads: tuple[str, ...]


UPSTREAM_KINDS: dict[str, UpstreamKind] = {
    "report-source": UpstreamKind(
        "a reporting channel (诉求渠道: the 12345 hotline, a WeChat grid-group bot, an app)",
        writes=("reports.submitted",),
        reads=("reports.rejected", "cases.opened", "cases.merged", "cases.closed"),
    ),
    "handler-app": UpstreamKind(
        "a handler app (网格员 / 部门 app)",
        writes=("handler.actions",),
        reads=(
            "cases.dispatched",
            "cases.escalated",
            "cases.overdue",
            "cases.warned",
            "cases.supervised",  # 督办: shown to the case's handler
            "cases.agent_assigned",  # 三代: shown to the agent
            "cases.commissioned",
            "cases.relayed",
            "cases.extended",
            "cases.sent_back",
            "cases.order_issued",  # 吹哨报到: the ordered unit's work
            "cases.order_updated",
            "cases.council_decided",
            "handler.actions.rejected",
        ),
    ),
    "rating-page": UpstreamKind(
        "the follow-up (回访) notifier and rating page: it alone sees the rating tokens",
        writes=("feedback.submitted",),
        reads=(
            "feedback.requested",
            "feedback.rejected",
            "cases.closed",
            "cases.reopened",
            "cases.notified",
        ),
    ),
}


@dataclass(frozen=True)
class Principal:
    name: str  # the SCRAM user name (and the Strimzi KafkaUser's)
    kind: str  # "service", "ops", "watcher" or a key of UPSTREAM_KINDS
    description: str

    def acls(self, prefix: str = "") -> tuple[Acl, ...]:
        return acls_of(self, prefix)


SERVICES = tuple(SERVICE_TOPICS)
OPS = Principal("wangge-ops", "ops", "operators' tools: wangge ops, registry, dlq")
WATCHER = Principal("wangge-watcher", "watcher", "dashboards: offsets and lag, no message")

# The upstream systems of a deployment: one principal each. These are the local stack's and the
# example manifests' (deploy/k8s/users); a deployment adds its own here (one line) and runs
# `make ops-files`.
UPSTREAM: tuple[Principal, ...] = (
    Principal("hotline-12345", "report-source", "the 12345 hotline platform"),
    Principal("wechat-grid-bot", "report-source", "the WeChat grid-group bot"),
    Principal("handler-app", "handler-app", "the grid workers' and departments' app"),
    Principal("rating-page", "rating-page", "the follow-up (回访) notifier and rating page"),
)

PRINCIPALS: tuple[Principal, ...] = (
    *(Principal(f"wangge-{s}", "service", f"the {s} service") for s in SERVICES),
    OPS,
    WATCHER,
    *UPSTREAM,
)


def principal(name: str) -> Principal:
    for p in PRINCIPALS:
        if p.name == name:
            return p
    raise KeyError(name)


def service_principal(service: str) -> Principal:
    return principal(f"wangge-{service}")


def service_group(service: str, topic: str) -> str:
    """The consumer group of a service's subscription (``Service.subscribe``), unprefixed."""
    return f"wangge-{service}.{topic}"


def service_groups() -> list[str]:
    return [service_group(s, t) for s, st in SERVICE_TOPICS.items() for t in st.consumes]


def topics_of(service: str) -> tuple[str, ...]:
    """Every topic a service reads or writes (unprefixed): what must exist before it starts."""
    st = SERVICE_TOPICS[service]
    dlqs = tuple(f"{t}.dlq" for t in st.consumes)
    return tuple(dict.fromkeys((*st.consumes, *st.publishes, *dlqs)))


def _on(
    resource: Resource, names: Iterable[str], ops: Iterable[Operation], prefix: str
) -> list[Acl]:
    ops = tuple(ops)
    return [Acl(resource, prefix + n, Pattern.LITERAL, op) for n in names for op in ops]


def acls_of(p: Principal, prefix: str = "") -> tuple[Acl, ...]:
    """``p``'s ACLs, sorted, for a deployment whose names carry ``prefix``."""
    topic, group = Resource.TOPIC, Resource.GROUP
    r, w, d = Operation.READ, Operation.WRITE, Operation.DESCRIBE
    out: list[Acl] = []
    if p.kind == "service":
        service = p.name.removeprefix("wangge-")
        st = SERVICE_TOPICS[service]
        out += _on(topic, st.consumes, [r], prefix)
        out += _on(group, [service_group(service, t) for t in st.consumes], [r], prefix)
        out += _on(topic, [*st.publishes, *(f"{t}.dlq" for t in st.consumes)], [w], prefix)
    elif p.kind == "ops":
        every = [t.name for t in ALL_TOPICS]
        out += _on(topic, every, [Operation.CREATE, d, Operation.DESCRIBE_CONFIGS], prefix)
        out += _on(topic, ["registry.units", *(t.name for t in DLQ_TOPICS)], [r], prefix)
        out += _on(topic, CONSUMED, [w], prefix)  # registry load; dlq replay to the original
        out += _on(group, service_groups(), [d], prefix)
    elif p.kind == "watcher":
        out += _on(topic, [t.name for t in ALL_TOPICS], [d], prefix)
        out += _on(group, service_groups(), [d], prefix)
    else:
        kind = UPSTREAM_KINDS[p.kind]
        out += _on(topic, kind.writes, [w], prefix)
        out += _on(topic, kind.reads, [r], prefix)
        if kind.reads:  # its own consumer groups, <principal>.<anything>
            out.append(Acl(group, f"{prefix}{p.name}.", Pattern.PREFIX, r))
    return tuple(sorted(set(out)))


def acl_table(prefix: str = "") -> dict[str, tuple[Acl, ...]]:
    """Every principal's ACLs: principal name -> ACLs."""
    return {p.name: acls_of(p, prefix) for p in PRINCIPALS}


def writers() -> dict[str, list[str]]:
    """Topic -> the principals that may write it (unprefixed), from the ACLs."""
    out: dict[str, list[str]] = {t.name: [] for t in ALL_TOPICS}
    for name, acls in acl_table().items():
        for a in acls:
            if a.resource is Resource.TOPIC and a.operation is Operation.WRITE:
                out[a.name].append(name)
    return out
