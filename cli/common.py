"""What every command shares: settings, a console, running a coroutine, reading a schema."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from cli.failures import explain
from services.feedback.periods import parse_period
from shared.contract.topics import DLQ_TOPICS
from shared.runtime.db import Connection, connect
from shared.runtime.settings import Settings

T = TypeVar("T")
# aiokafka logs each failed connection attempt; the CLI says it once (cli.failures)
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; an unreachable broker or database is one line on stderr and
    exit code 1 (``cli.failures``), anything else keeps its traceback."""
    try:
        return asyncio.run(coro)
    except Exception as exc:
        try:
            cfg: Settings | None = settings()
        except ValueError:
            cfg = None
        line = explain(exc, cfg)
        if line is None:
            raise
        typer.echo(line, err=True)
        raise typer.Exit(1) from None


async def schema_connection(schema: str) -> Connection:
    """A connection to ``DATABASE_URL`` reading ``schema`` (an operator's admin or read role)."""
    return await connect(settings().database_url.get_secret_value(), schema)


def dlq_topic(topic: str) -> str:
    """A TOPIC argument of the ``dlq`` commands: an original topic that has a dead-letter topic
    (checked before anything is contacted)."""
    known = sorted(t.name.removesuffix(".dlq") for t in DLQ_TOPICS)
    if topic in known:
        return topic
    hint = (
        f"give the original topic ({topic.removesuffix('.dlq')})"
        if topic.endswith(".dlq")
        else "known: " + ", ".join(known)
    )
    raise typer.BadParameter(f"{topic!r} is not a topic with a dead-letter topic; {hint}")


def period(text: str) -> str:
    """A ``--period`` option, checked before anything is contacted (2026-11, 2026-W47, …)."""
    try:
        parse_period(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return text.strip()
