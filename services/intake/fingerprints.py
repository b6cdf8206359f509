"""What tells two versions of one report apart (pure functions, no I/O).

A report rejected for what it says (``invalid``, ``unlocatable``) may come back corrected under
the same ``(source, report_id)``: the upstream system keeps its own id for its ticket. Intake
records the rejected version's fingerprint; the same version again is a duplicate (no second
rejection), another version is handled afresh and its outcome replaces the rejection.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from shared.contract.events import ReportSubmitted

_SIZE = 16


def report_fingerprint(report: ReportSubmitted) -> bytes:
    """Of a valid report: its fields as the contract reads them (the upstream's key order and
    spacing do not count)."""
    return hashlib.blake2b(report.model_dump_json().encode(), digest_size=_SIZE).digest()


def payload_fingerprint(obj: Any) -> bytes:
    """Of a JSON object that failed validation: its content with keys sorted."""
    data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=_SIZE).digest()
