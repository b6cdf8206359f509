"""W3C trace context (``traceparent`` / ``tracestate``) carried in Kafka headers.

Each message a service processes is one hop (one span) of a trace: the events it causes carry the
incoming trace id with a new span id, so one report is one trace from intake to closing. A message
that arrives without a valid ``traceparent`` starts a new trace. Pure functions, no SDK: an
OpenTelemetry collector or any W3C-aware tool reads the headers as they are.

Format (version 00): ``00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
SAMPLED = "01"


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    span_id: str
    flags: str = SAMPLED

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The parent of a ``traceparent`` header, or None when it is missing or invalid."""
    if not value:
        return None
    m = _RE.match(value.strip())
    if not m:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(trace_id, span_id, flags)


# Trace and span ids need to be unique, not secret (W3C Trace Context): the fast PRNG, not a
# system call per id (os.urandom was a measurable share of a report's consumer work).
def new_trace_id() -> str:
    while (v := f"{random.getrandbits(128):032x}") == _ZERO_TRACE:  # pragma: no cover - 2**-128
        pass
    return v


def new_span_id() -> str:
    while (v := f"{random.getrandbits(64):016x}") == _ZERO_SPAN:  # pragma: no cover - 2**-64
        pass
    return v


def child_headers(incoming: Mapping[str, str]) -> dict[str, str]:
    """The trace headers of a hop caused by a message with ``incoming`` headers: the same trace id
    and flags with a new span id, or a new sampled trace when there is no valid parent."""
    parent = parse_traceparent(incoming.get(TRACEPARENT))
    if parent is None:
        return {TRACEPARENT: TraceParent(new_trace_id(), new_span_id()).header()}
    out = {TRACEPARENT: TraceParent(parent.trace_id, new_span_id(), parent.flags).header()}
    if incoming.get(TRACESTATE):
        out[TRACESTATE] = incoming[TRACESTATE]
    return out


def new_root() -> dict[str, str]:
    """Trace headers of work no message caused (a timer sweep): a new sampled trace."""
    return child_headers({})
