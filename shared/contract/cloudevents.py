"""CloudEvents 1.0 binary mode on Kafka: attributes as ``ce_*`` headers, the data as the body."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


def event_type(topic: str, version: int = 1) -> str:
    """``cases.opened`` -> ``org.wangge.cases.opened.v1``; a later version of a payload
    (``shared.contract.events.Message.version``) -> ``...v2``."""
    return f"org.wangge.{topic}.v{version}"


def make_headers(
    *,
    source: str,
    topic: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    extra: Mapping[str, str] | None = None,
    version: int = 1,
) -> dict[str, str]:
    headers = {
        "ce_specversion": SPECVERSION,
        "ce_id": event_id or str(uuid.uuid4()),
        "ce_source": source,
        "ce_type": event_type(topic, version),
        "ce_time": (time or datetime.now(UTC)).isoformat(),
        "content-type": CONTENT_TYPE,
    }
    if subject:
        headers["ce_subject"] = subject
    if extra:
        headers.update(extra)
    return headers


def decode_headers(
    raw: Sequence[tuple[str, bytes]] | Mapping[str, object] | None,
) -> dict[str, str]:
    """Kafka headers (name, bytes) as a str -> str dict; undecodable values are dropped."""
    out: dict[str, str] = {}
    items = raw.items() if isinstance(raw, Mapping) else (raw or ())
    for name, value in items:
        if isinstance(value, bytes):
            try:
                out[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                continue
        elif isinstance(value, str):
            out[name] = value
    return out
