"""Unit of work: one PostgreSQL transaction around a handler's reads, writes and outgoing events.

Outgoing events are rows in the service's outbox table, written in the same transaction as the
state change they describe; ``shared.outbox.OutboxRelay`` publishes them after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.contract.cloudevents import make_headers
from shared.contract.events import Message
from shared.runtime.bulk import insert_rows
from shared.runtime.db import Connection
from shared.runtime.tracing import TRACEPARENT, new_root

OUTBOX_COLUMNS = (
    ("topic", "text"),
    ("key", "text"),
    ("headers", "jsonb"),
    ("payload", "bytea"),
    ("raw", "jsonb"),
)


@dataclass
class OutgoingEvent:
    topic: str
    key: str | None
    headers: dict[str, str]
    payload: bytes | None
    # A dead letter's original key and headers (shared.record_bytes.encode_raw), published in
    # place of ``key`` and before ``headers``
    raw: dict[str, Any] | None = None


@dataclass
class UnitOfWork:
    """What a handler gets: the open connection and a way to emit events.

    ``emit`` only records the event; ``flush`` (called by the consumer pipeline before commit)
    writes them to the outbox with one statement, in the order emitted.
    """

    conn: Connection
    source: str
    topic_prefix: str = ""
    trace_headers: Mapping[str, str] = field(default_factory=dict)
    pending: list[OutgoingEvent] = field(default_factory=list)
    # Every event emitted, as objects (what an HTTP request applied in-process answers from)
    emitted: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Work no message caused (a timer sweep) starts its own trace (shared.runtime.tracing).
        if TRACEPARENT not in self.trace_headers:
            self.trace_headers = {**self.trace_headers, **new_root()}

    def emit(self, event: Message, *, time: datetime | None = None) -> None:
        """Emit ``event`` on the topic its class declares, keyed (and with the subject) as the
        class says (``shared.events.Message``); it reaches Kafka after the commit."""
        headers = make_headers(
            source=self.source,
            topic=event.topic,
            subject=event.record_subject(),
            time=time or datetime.now(UTC),
            extra=self.trace_headers,
            version=event.version,
        )
        self.emitted.append(event)
        self.pending.append(
            OutgoingEvent(
                f"{self.topic_prefix}{event.topic}",
                event.record_key(),
                headers,
                event.model_dump_json().encode(),
            )
        )

    async def flush(self) -> int:
        if not self.pending:
            return 0
        await insert_rows(
            self.conn,
            "outbox",
            OUTBOX_COLUMNS,
            [(e.topic, e.key, e.headers, e.payload, e.raw) for e in self.pending],
            then="SELECT pg_notify(current_schema() || '_outbox', '')",  # delivered at commit
        )
        n = len(self.pending)
        self.pending.clear()
        return n
