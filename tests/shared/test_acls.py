"""The ACL table (shared/contract/acls.py): derived from the topic table, agreeing with what the
services' code consumes and publishes, and giving each principal exactly its topics and groups."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from shared.contract import acls
from shared.contract.acls import Acl, Operation, Pattern, Resource
from shared.contract.topics import ALL_TOPICS, CONSUMED, DLQ_TOPICS

ROOT = Path(__file__).resolve().parents[2]
R, W, D = Operation.READ, Operation.WRITE, Operation.DESCRIBE


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_ops_files", ROOT / "scripts" / "generate_ops_files.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_ops_files", module)
    spec.loader.exec_module(module)
    return module


def topic_ops(name: str, prefix: str = "") -> dict[str, set[Operation]]:
    out: dict[str, set[Operation]] = {}
    for a in acls.principal(name).acls(prefix):
        if a.resource is Resource.TOPIC:
            assert a.pattern is Pattern.LITERAL
            out.setdefault(a.name, set()).add(a.operation)
    return out


def test_the_table_agrees_with_the_services_code() -> None:
    gen = _generator()
    services = gen._services()
    for name, svc in services.items():
        declared = acls.SERVICE_TOPICS[name]
        consumed = [sub.topic for sub in svc.subscriptions]
        assert sorted(consumed) == sorted(declared.consumes), name
        assert [sub.group for sub in svc.subscriptions] == [
            acls.service_group(name, t) for t in consumed
        ]
        built = [t for t in gen.published_topics(name) if t not in consumed]  # applies the rest
        assert built == sorted(declared.publishes), name
    assert gen.acl_table_problems(services) == []
    assert sorted({t for st in acls.SERVICE_TOPICS.values() for t in st.consumes}) == sorted(
        CONSUMED
    )


def test_every_topic_has_exactly_one_kind_of_writer() -> None:
    """A topic is written by one service, one kind of upstream system, or (registry.units) the
    operators; a dead-letter topic by the services consuming its topic, and by nobody else."""
    writers = acls.writers()
    assert set(writers) == {t.name for t in ALL_TOPICS}
    consumers = {
        t: {f"wangge-{s}" for s, st in acls.SERVICE_TOPICS.items() if t in st.consumes}
        for t in CONSUMED
    }
    for t in ALL_TOPICS:
        got = set(writers[t.name]) - {"wangge-ops"}  # replays dead letters to their topic
        if t in DLQ_TOPICS:
            assert got == consumers[t.name.removesuffix(".dlq")], t.name
            continue
        kinds = {acls.principal(n).kind for n in got}
        assert len(kinds) == 1 or t.name == "registry.units", (t.name, got)
        if t.name == "registry.units":
            assert got == set()  # only `wangge registry load`
        if kinds == {"service"}:
            assert len(got) == 1, (t.name, got)


@pytest.mark.parametrize("service", acls.SERVICES)
def test_a_service_reads_its_inputs_in_its_own_groups_and_writes_its_outputs(
    service: str,
) -> None:
    st = acls.SERVICE_TOPICS[service]
    p = acls.service_principal(service)
    want = {f"p1.{t}": {R} for t in st.consumes}
    want |= {f"p1.{t}": {W} for t in [*st.publishes, *(f"{t}.dlq" for t in st.consumes)]}
    assert topic_ops(p.name, "p1.") == want
    groups = [a for a in p.acls("p1.") if a.resource is Resource.GROUP]
    assert sorted(a.name for a in groups) == sorted(f"p1.wangge-{service}.{t}" for t in st.consumes)
    assert {(a.pattern, a.operation) for a in groups} == {(Pattern.LITERAL, R)}
    assert set(acls.topics_of(service)) == {n.removeprefix("p1.") for n in want}


def test_intake_for_example() -> None:
    got = topic_ops("wangge-intake", "p1.")
    assert got["p1.reports.submitted"] == {R} and got["p1.reports.submitted.dlq"] == {W}
    assert got["p1.cases.opened"] == {W} and got["p1.reports.rejected"] == {W}
    assert "p1.handler.actions" not in got and "p1.feedback.requested" not in got
    groups = {a.name for a in acls.principal("wangge-intake").acls("p1.")}
    assert "p1.wangge-intake.reports.submitted" in groups


def test_a_report_source_writes_reports_and_reads_only_what_comes_back() -> None:
    got = topic_ops("hotline-12345")
    assert got["reports.submitted"] == {W}
    assert got["reports.rejected"] == {R}
    for forbidden in ("handler.actions", "feedback.submitted", "feedback.requested"):
        assert forbidden not in got  # no right at all, not even Describe
    group = [a for a in acls.principal("hotline-12345").acls("x.") if a.resource is Resource.GROUP]
    assert group == [Acl(Resource.GROUP, "x.hotline-12345.", Pattern.PREFIX, R)]


def test_only_the_rating_page_sees_the_rating_tokens() -> None:
    readers = {
        p.name for p in acls.PRINCIPALS if R in topic_ops(p.name).get("feedback.requested", set())
    }
    assert readers == {"rating-page"}


def test_ops_creates_every_topic_and_the_watcher_reads_no_message() -> None:
    ops = topic_ops("wangge-ops")
    assert set(ops) == {t.name for t in ALL_TOPICS}
    assert all({Operation.CREATE, D} <= o for o in ops.values())
    assert all(R in ops[t.name] for t in DLQ_TOPICS)
    assert all(W in ops[t] for t in CONSUMED)
    assert W not in ops["feedback.requested"] and R not in ops["feedback.requested"]
    watcher = acls.principal("wangge-watcher").acls()
    assert {a.operation for a in watcher} == {D}
    assert {a.name for a in watcher if a.resource is Resource.GROUP} == set(acls.service_groups())


@pytest.mark.parametrize("p", acls.PRINCIPALS, ids=lambda p: p.name)
def test_every_principal_is_confined_to_the_deployments_names(p: acls.Principal) -> None:
    got = p.acls("env7.")
    assert got and all(a.name.startswith("env7.") for a in got)
    assert all(a.resource in (Resource.TOPIC, Resource.GROUP) for a in got)  # no cluster rights
    assert list(got) == sorted(set(got))
    assert len({p.name for p in acls.PRINCIPALS}) == len(acls.PRINCIPALS)
