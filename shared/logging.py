"""structlog JSON logging, configured once per process.

Every line is one JSON object. Phone numbers are masked by a processor before rendering, so even a
careless ``log.info("x", phone=...)`` never writes a full mainland mobile number.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_configured = False


def mask_phone(text: str) -> str:
    """138****5678 for every mainland mobile number inside ``text``."""
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if any(s in key.lower() for s in ("password", "secret", "token", "pii_key")):
            event_dict[key] = "***"
        else:
            event_dict[key] = _mask_value(value)
    return event_dict


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Configure structlog (and the stdlib root logger) to write JSON lines to stderr."""
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
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    if not _configured:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processor=structlog.processors.JSONRenderer(ensure_ascii=False),
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
