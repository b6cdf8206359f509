"""``wangge simulate``: a simulated city (territory as a registry file) and its workload.

``wangge simulate territory city.yaml`` writes the registry file (load it with
``wangge registry load city.yaml``); ``wangge simulate run --rate 200 --duration 60`` offers
reports for the same territory (same sizes and seed) and plays its handlers and residents.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli.common import console, run, settings
from sim.driver import Driver
from sim.territory import Territory, TerritorySize, generate_territory
from sim.workload import HandlerModel, Mix, ReportFactory, ResidentModel

app = typer.Typer(help="A simulated city and its workload (territory, reports, actions, ratings).")

_STREETS = typer.Option(14, help="streets (街道)")
_COMMUNITIES = typer.Option(140, help="communities (社区)")
_GRIDS = typer.Option(1272, help="grids (网格)")
_BUILDINGS = typer.Option(25_000, help="buildings (楼栋)")
_SEED = typer.Option(1, help="seed of the territory (the same seed gives the same city)")


def _territory(streets: int, communities: int, grids: int, buildings: int, seed: int) -> Territory:
    size = TerritorySize(streets=streets, communities=communities, grids=grids, buildings=buildings)
    return generate_territory(size, seed=seed)


@app.command("territory")
def territory(
    out: Path = typer.Argument(..., dir_okay=False, help="registry YAML file to write"),
    streets: int = _STREETS,
    communities: int = _COMMUNITIES,
    grids: int = _GRIDS,
    buildings: int = _BUILDINGS,
    seed: int = _SEED,
) -> None:
    """Write a simulated district as a registry file for ``wangge registry load``."""
    t = _territory(streets, communities, grids, buildings, seed)
    t.write(out)
    table = Table(title=f"{t.district.name} ({t.district.code}) -> {out}")
    table.add_column("records")
    table.add_column("count", justify="right")
    for level in ("street", "community", "grid", "building"):
        table.add_row(level, str(t.count(level)))
    table.add_row("departments", str(len(t.departments)))
    table.add_row("handlers", str(len(t.handlers)))
    console.print(table)


@app.command("run")
def run_workload(
    rate: float = typer.Option(0, help="reports per second; 0: as fast as possible"),
    duration: float = typer.Option(0, help="seconds to offer reports (or give --count)"),
    count: int = typer.Option(0, help="number of reports (or give --duration)"),
    time_scale: float = typer.Option(
        0.001, help="real seconds per simulated second of handler and resident delays"
    ),
    tail: float = typer.Option(10, help="seconds to keep reacting after the last report"),
    react: bool = typer.Option(True, help="play handlers and residents"),
    clean: bool = typer.Option(False, help="no duplicates and no invalid reports"),
    workload_seed: int = typer.Option(7, help="seed of the workload"),
    streets: int = _STREETS,
    communities: int = _COMMUNITIES,
    grids: int = _GRIDS,
    buildings: int = _BUILDINGS,
    seed: int = _SEED,
) -> None:
    """Offer reports for the simulated territory (loaded before with ``wangge registry load``)."""
    if not duration and not count:
        raise typer.BadParameter("give --duration or --count")
    t = _territory(streets, communities, grids, buildings, seed)
    driver = Driver(
        settings(),
        ReportFactory(t, seed=workload_seed, mix=Mix.clean() if clean else Mix()),
        handlers=HandlerModel(t, seed=workload_seed + 1) if react else None,
        residents=ResidentModel(seed=workload_seed + 2) if react else None,
        rate=rate or None,
        duration_s=duration or None,
        count=count or None,
        time_scale=time_scale,
        tail_s=tail if react else 0,
    )
    stats = run(driver.run())
    console.print(
        f"offered {stats.offered} reports in {stats.elapsed_s:.1f} s "
        f"({stats.offered_rate:.0f}/s); kinds {dict(driver.reports.kinds)}"
    )
    console.print(f"sent {dict(stats.sent)}; seen {dict(stats.seen)}")
    if stats.send_errors:
        console.print(f"[red]{stats.send_errors} messages not sent[/red]")
        raise typer.Exit(1)
