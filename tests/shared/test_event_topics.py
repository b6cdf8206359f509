"""Each event class declares its topic and key (shared.events.Message): the topic list is built
from those declarations, and emitting an event keys and labels its record as declared."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.contract import events as ev
from shared.contract.topics import TOPICS
from shared.runtime.uow import UnitOfWork


def _messages() -> list[type[ev.Message]]:
    """The contract's message classes (the benchmark's plumbing hops, bench/plumbing.py, define
    messages of their own that are no part of it)."""
    found, todo = [], list(ev.Message.__subclasses__())
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("shared.contract."):
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_message_class_is_the_model_of_its_topic() -> None:
    by_model = {m: t for t in TOPICS for m in t.models}  # every version a topic carries
    messages = _messages()
    assert len(messages) == len(by_model) == 31
    for cls in messages:
        assert by_model[cls].name == cls.topic
        assert "topic" not in cls.model_fields and "topic" not in cls.model_json_schema()


@pytest.mark.parametrize(
    ("event", "key", "subject"),
    [
        (
            ev.CaseClosed(case_id="C-1", outcome="satisfied", closed_at=datetime.now(UTC)),
            "C-1",
            "C-1",
        ),
        (ev.ReportRejected(source="app", report_id="r-1", errors=[]), "app:r-1", None),
        (ev.HandlerActionRejected(action_id="a-1", reason="invalid"), None, None),
    ],
)
def test_emit_keys_and_labels_the_record_as_the_class_declares(
    event: ev.Message, key: str | None, subject: str | None
) -> None:
    uow = UnitOfWork(conn=None, source="wangge/test", topic_prefix="p.")  # type: ignore[arg-type]
    uow.emit(event)
    [out] = uow.pending
    assert out.topic == f"p.{event.topic}" and out.key == key
    assert out.headers.get("ce_subject") == subject
    assert out.headers["ce_type"]
