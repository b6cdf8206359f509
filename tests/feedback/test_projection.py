"""Which case event becomes which fact row (pure), and that the service records every one."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from services.feedback import store
from services.feedback.projection import (
    FACTS,
    FactEvent,
    fact_of,
    fact_row,
    input_of,
    markdown_table,
)
from shared.contract.events import (
    CaseAccepted,
    CaseDispatched,
    CaseEscalated,
    CaseResolved,
    CaseSentBack,
    CaseVerified,
)
from shared.runtime.consumer import Meta

T0 = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)
CE_TIME = datetime(2026, 10, 12, 3, 0, tzinfo=UTC)
META = Meta("t", 0, 0, "c-1", {"ce_time": CE_TIME.isoformat()}, datetime(2026, 10, 13, tzinfo=UTC))
WHERE = {"tier": "grid", "unit": "WC-YY-OJY-G01"}


def row(ev: FactEvent) -> tuple[str, dict]:
    fact = fact_of(ev)
    return fact.table, fact_row(fact, ev, META)


def test_dispatched() -> None:
    ev = CaseDispatched(case_id="c-1", **WHERE, respond_by=T0, resolve_by=T0, attempt=2)
    assert row(ev) == (
        "dispatches",
        {
            "case_id": "c-1",
            "attempt": 2,
            **WHERE,
            "respond_by": T0,
            "resolve_by": T0,
            "dispatched_at": CE_TIME,  # absent from the event: its ce_time
        },
    )
    timed = ev.model_copy(update={"dispatched_at": T0})
    assert row(timed)[1]["dispatched_at"] == T0


def test_accepted() -> None:
    ev = CaseAccepted(case_id="c-1", **WHERE, handler_id="h-1", accepted_at=T0, on_time=True)
    assert row(ev) == ("accepts", {"case_id": "c-1", **WHERE, "accepted_at": T0, "on_time": True})


def test_escalated() -> None:
    ev = CaseEscalated(
        case_id="c-1", from_tier="grid", to_tier="community", unit="WC-YY-OJY", reason="handler: x"
    )
    expected = {
        "case_id": "c-1",
        "from_tier": "grid",
        "to_tier": "community",
        "unit": "WC-YY-OJY",
        "reason": "handler: x",
        "at": CE_TIME,
    }
    assert row(ev) == ("escalations", expected)
    assert row(ev.model_copy(update={"escalated_at": T0}))[1]["at"] == T0


def test_a_ce_time_without_zone_or_absent_is_when_it_was_received() -> None:
    ev = CaseEscalated(case_id="c-1", from_tier="grid", to_tier="street", unit="u", reason="r")
    for headers in ({}, {"ce_time": "2026-10-12T03:00:00"}, {"ce_time": "soon"}):
        meta = Meta("t", 0, 0, None, headers, META.received_at)
        assert fact_row(fact_of(ev), ev, meta)["at"] == META.received_at


def test_resolved_is_also_the_lifecycles_resolution() -> None:
    ev = CaseResolved(case_id="c-1", resolved_at=T0, **WHERE, note="done", on_time=False)
    assert row(ev) == (
        "resolutions",
        {"case_id": "c-1", **WHERE, "resolved_at": T0, "on_time": False},
    )
    assert fact_of(ev).input == "resolution" and input_of(fact_of(ev), ev) == "resolution"
    assert [f.topic for f in FACTS if f.input] == ["cases.resolved", "cases.verified"]


def test_a_resolution_awaiting_its_verification_starts_no_round_its_verification_does() -> None:
    ev = CaseResolved(
        case_id="c-1",
        resolved_at=T0,
        **WHERE,
        note="done",
        on_time=True,
        verifier_unit="WC-YY-OJY",
        verify_by=T0,
    )
    assert input_of(fact_of(ev), ev) is None
    verified = CaseVerified(
        case_id="c-1",
        **WHERE,
        resolved_at=T0,
        verifier_id="h-0010",
        verifier_unit="WC-YY-OJY",
        verified_at=T0,
        on_time=True,
    )
    assert input_of(fact_of(verified), verified) == "resolution"
    assert row(verified)[0] == "verifications"
    back = CaseSentBack(
        case_id="c-1",
        **WHERE,
        resolved_at=T0,
        verifier_id="h-0010",
        verifier_unit="WC-YY-OJY",
        reason="垃圾仍在",
        sent_back_at=T0,
    )
    assert input_of(fact_of(back), back) is None and row(back)[0] == "send_backs"


def test_the_table() -> None:
    assert len({f.topic for f in FACTS}) == len({f.model for f in FACTS}) == len(FACTS)
    assert {f.table for f in FACTS} <= set(store.FACT_TABLES)
    for f in FACTS:
        assert f.when in f.columns
        for column in f.columns:
            assert f.renamed.get(column, column) in f.model.model_fields


def test_every_fact_table_column_exists_in_the_migration() -> None:
    folder = Path(store.__file__).parent / "migrations"
    sql = "\n".join(p.read_text("utf-8") for p in sorted(folder.glob("*.sql")))
    for f in FACTS:
        body = sql.split(f"CREATE TABLE {f.table} (", 1)[1].split(");", 1)[0]
        columns = {line.split()[0] for line in body.strip().splitlines()}
        added = re.findall(rf"ALTER TABLE {f.table} ADD COLUMN (\w+)", sql)  # later migrations
        assert {"case_id", *f.columns} <= columns | set(added), f.table


def test_the_service_records_every_fact() -> None:
    from devstack.testbed import link_key_for_tests, notify_key_for_tests
    from services.feedback.app import create_service
    from shared.runtime.settings import Settings

    svc = create_service(
        Settings(WANGGE_NOTIFY_KEY=notify_key_for_tests(), WANGGE_LINK_KEY=link_key_for_tests())
    )
    topics = {s.topic for s in svc.subscriptions}
    assert {f.topic for f in FACTS} <= topics


def test_the_docs_show_the_table_of_the_code() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "feedback.md").read_text("utf-8")
    assert markdown_table() in docs
