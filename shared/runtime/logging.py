"""structlog JSON logging, configured once per process.

Every line is one JSON object. Phone, ID card and bank card numbers are masked as the line is
rendered (``shared.runtime.redaction``), so even a careless ``log.info("x", phone=...)`` or a
logged exception never writes one in full.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

from shared.runtime.redaction import redact_numbers

_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_configured = False


def mask_phone(text: str) -> str:
    """138****5678 for every mainland mobile number inside ``text``."""
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


_SECRET_PARTS = ("password", "secret", "token", "pii_key", "pii_old_keys", "pseudonym_key")


@functools.cache
def _is_secret(key: str) -> bool:
    """Whether a log field named ``key`` holds a secret (field names are a small fixed set)."""
    return any(s in key.lower() for s in _SECRET_PARTS)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in event_dict:
        if _is_secret(key):
            event_dict[key] = "***"
    return event_dict


def _json(obj: Any, **_: Any) -> str:
    """The JSON line, with every phone, ID card and bank card number in it masked (one pass over
    the whole line catches numbers in any field, nested value or formatted exception)."""
    try:
        line = orjson.dumps(obj, default=str).decode()
    except orjson.JSONEncodeError:  # a lone surrogate (bytes that were not UTF-8): escaped
        line = json.dumps(obj, default=str, ensure_ascii=True)
    return redact_numbers(line) if _MAYBE_NUMBER.search(line) else line


# A cheap pre-check: 10 digits, one separator at most between two (no personal number is
# shorter; a timestamp's 2026-12-02 is)
_MAYBE_NUMBER = re.compile(r"[0-9\uff10-\uff19](?:[ \-\uff0d()\uff08\uff09]?[0-9\uff10-\uff19]){9}")


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(service: str, level: str = "INFO", *, once: bool = False) -> None:
    """Configure structlog (and the stdlib root logger) to write JSON lines to stderr.

    ``once``: this process configures logging once and for all (a service's entry point), so each
    logger is built on its first use and kept, instead of at every call; tests reconfigure (to
    capture logs) and leave it off."""
    global _configured
    lvl = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=once,
    )
    structlog.contextvars.bind_contextvars(service=service)
    if not _configured:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(serializer=_json),
                foreign_pre_chain=shared_processors,
            )
        )
        root = logging.getLogger()
        root.handlers = [handler]
        root.setLevel(max(lvl, logging.INFO))
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        _configured = True


def get_logger(**bound: Any) -> Any:
    """A lazy logger: it follows ``configure_logging`` even when created before it (module-level
    loggers are created at import, before the service configures logging)."""
    return structlog.get_logger(**bound)
