"""What every command shares: settings, a console, running a coroutine, reading a schema."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
from rich.console import Console

from shared.db import connect
from shared.settings import Settings

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return Settings()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def schema_connection(schema: str) -> asyncpg.Connection:
    """A connection to ``DATABASE_URL`` reading ``schema`` (an operator's admin or read role)."""
    return await connect(settings().database_url.get_secret_value(), schema)
