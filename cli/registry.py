"""``wangge registry load FILE``: validate the whole file, then publish it to ``registry.units``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.progress import Progress

from cli.client import Publisher, TopicReader
from cli.common import console, err_console, run, settings
from shared.contract.events import Department, Handler, Unit, registry_key
from shared.contract.taxonomy import load_taxonomy
from shared.registry.file import RegistryInvalid, load_registry_file
from shared.runtime.settings import Settings

Record = Unit | Department | Handler


async def current_keys(settings: Settings) -> set[str]:
    """Keys with a live (non-tombstone) value in the compacted topic, as of now."""
    async with TopicReader(settings, "registry.units") as reader:
        records = await reader.read_to_end()
    live: dict[str, bool] = {}
    for r in records:
        if r.key is not None:
            live[r.key] = r.value is not None
    return {k for k, alive in live.items() if alive}


async def publish_registry(
    settings: Settings,
    records: list[Record],
    *,
    prune: bool = True,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Publish one record per unit/department/handler; tombstones for keys no longer in the file.
    Returns (records published, tombstones published)."""
    keys = {registry_key(r) for r in records}
    removed = (await current_keys(settings)) - keys if prune else set()
    async with Publisher(settings, source="wangge/registry") as pub:
        futures = []
        for r in records:
            futures.append(await pub.send("registry.units", r, key=registry_key(r), wait=False))
            if progress:
                progress(1)
        for key in sorted(removed):
            futures.append(await pub.send("registry.units", None, key=key, wait=False))
        for f in futures:
            await f
    return len(records), len(removed)


app = typer.Typer(help="The unit registry (units, departments, handlers).", no_args_is_help=True)


@app.command("load")
def load(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="registry YAML file"),
    prune: bool = typer.Option(True, help="publish tombstones for units no longer in the file"),
) -> None:
    """Validate the whole file, then publish one record per unit to registry.units."""
    cfg = settings()
    try:
        records = load_registry_file(file, load_taxonomy(cfg.taxonomy_file))
    except RegistryInvalid as exc:
        err_console.print(f"[red]{file}: {len(exc.errors)} error(s); nothing published[/red]")
        for e in exc.errors:
            err_console.print(f"  {e}")
        raise typer.Exit(1) from None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("publishing", total=len(records))
        sent, removed = run(
            publish_registry(
                cfg, records, prune=prune, progress=lambda n: progress.advance(task, n)
            )
        )
    console.print(
        f"published {sent} records, {removed} tombstones to {cfg.topic('registry.units')}"
    )
