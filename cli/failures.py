"""What the CLI says when Kafka or PostgreSQL cannot be reached: one line, never a traceback.

``explain`` looks at an exception (its chain and any exception group) and, if it is a failure
to reach or log in to the broker or the database, returns the line to print; anything else is a
bug and keeps its traceback. The line names the address from the settings without credentials.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NoBrokersAvailable

from shared.runtime.settings import Settings

# asyncpg's errors for "the server answered but will not let us in" (and what connect raises).
_DB_LOGIN = (
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.ConnectionDoesNotExistError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        if isinstance(e, BaseExceptionGroup):
            todo.extend(e.exceptions)
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)


def _raised_in(exc: BaseException, package: str) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if f"/{package}/" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def database_address(dsn: str) -> str:
    """``host:port/database`` of a DSN, without user or password."""
    p = urlsplit(dsn)
    host = p.hostname or "localhost"
    return f"{host}:{p.port or 5432}{p.path or '/'}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def explain(exc: BaseException, settings: Settings | None) -> str | None:
    """The one line for a connectivity failure, or None when ``exc`` is something else."""
    for e in _chain(exc):
        if isinstance(e, KafkaConnectionError | NoBrokersAvailable | KafkaTimeoutError):
            where = settings.kafka_bootstrap_servers if settings else "KAFKA_BOOTSTRAP_SERVERS"
            return (
                f"wangge: cannot reach Kafka at {where} (KAFKA_BOOTSTRAP_SERVERS): "
                f"{_reason(e) if not isinstance(e, KafkaConnectionError) else 'no broker answered'}"
            )
        if isinstance(e, _DB_LOGIN) or (
            isinstance(e, OSError | TimeoutError) and _raised_in(e, "asyncpg")
        ):
            where = (
                database_address(settings.database_url.get_secret_value())
                if settings
                else "DATABASE_URL"
            )
            return f"wangge: cannot connect to PostgreSQL at {where} (DATABASE_URL): {_reason(e)}"
    return None
