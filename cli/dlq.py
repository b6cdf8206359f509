"""``wangge dlq list TOPIC`` and ``wangge dlq replay TOPIC [--id ...]``: dead letters.

A dead letter keeps the original bytes, key and CloudEvents headers, plus ``dlq_*`` headers naming
the error class, the error, the original topic/partition/offset, the service and the time. Replay
re-publishes the original bytes, key and headers to the original topic; since ``ce_id`` is kept,
a message that was in fact applied once is not applied again (the services' inboxes).
"""

from __future__ import annotations

from dataclasses import dataclass

import typer
from rich.table import Table

from cli.client import Publisher, Record, TopicReader
from cli.common import console, dlq_topic, run, settings
from shared.runtime.settings import Settings

app = typer.Typer(help="Dead-letter topics (<topic>.dlq).", no_args_is_help=True)


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    record: Record

    @property
    def ident(self) -> str:
        return self.record.headers.get("ce_id") or f"offset:{self.offset}"

    def header(self, name: str) -> str:
        return self.record.headers.get(name, "")


async def read_dead_letters(cfg: Settings, topic: str) -> list[DeadLetter]:
    async with TopicReader(cfg, f"{topic}.dlq") as reader:
        records = await reader.read_to_end()
    return [DeadLetter(r.offset, r) for r in records]


async def replay(cfg: Settings, topic: str, ids: list[str] | None) -> list[str]:
    """Re-publish the selected dead letters (all when ``ids`` is empty); returns their ids."""
    letters = await read_dead_letters(cfg, topic)
    chosen = [d for d in letters if not ids or d.ident in ids or str(d.offset) in ids]
    prefix = cfg.topic_prefix
    async with Publisher(cfg, source="wangge/dlq-replay") as pub:
        for d in chosen:
            original = d.header("dlq_original_topic") or cfg.topic(topic)
            logical = original[len(prefix) :] if original.startswith(prefix) else original
            headers = {k: v for k, v in d.record.headers.items() if not k.startswith("dlq_")}
            headers["wangge_replayed_from"] = f"{cfg.topic(topic)}.dlq:{d.offset}"
            await pub.send(logical, d.record.value, key=d.record.key, headers=headers)
    return [d.ident for d in chosen]


@app.command("list")
def list_cmd(
    topic: str = typer.Argument(
        ..., help="the original topic, e.g. reports.submitted", callback=dlq_topic
    ),
) -> None:
    """Show the dead letters of TOPIC with their reasons."""
    letters = run(read_dead_letters(settings(), topic))
    table = Table(title=f"{topic}.dlq: {len(letters)} dead letters")
    for col in ("offset", "id", "time", "service", "error class", "error", "original"):
        table.add_column(col)
    for d in letters:
        table.add_row(
            str(d.offset),
            d.ident,
            d.header("dlq_time")[:19],
            d.header("dlq_service"),
            d.header("dlq_error_class"),
            d.header("dlq_error")[:60],
            f"{d.header('dlq_original_partition')}:{d.header('dlq_original_offset')}",
        )
    console.print(table)


@app.command("replay")
def replay_cmd(
    topic: str = typer.Argument(
        ..., help="the original topic, e.g. reports.submitted", callback=dlq_topic
    ),
    ids: list[str] = typer.Option([], "--id", help="ce_id or DLQ offset; repeat; all if none"),
) -> None:
    """Re-publish dead letters of TOPIC to TOPIC (after fixing what made them fail)."""
    done = run(replay(settings(), topic, ids or None))
    console.print(f"replayed {len(done)} message(s) to {settings().topic(topic)}")
