"""``wangge metrics UNIT --period P``: the governance rates of a unit, from feedback's HTTP API."""

from __future__ import annotations

import json
import os
import urllib.request

import typer
from rich.table import Table

from cli.common import console


def metrics(
    unit: str,
    period: str = typer.Option(..., "--period", help="2026-11, 2026-W47 or 2026-11-23"),
    url: str = typer.Option(None, "--url", help="feedback base URL (default $FEEDBACK_URL)"),
) -> None:
    """Print the metrics of UNIT for PERIOD as a table."""
    base = url or os.environ.get("FEEDBACK_URL", "http://127.0.0.1:8083")
    with urllib.request.urlopen(f"{base}/units/{unit}/metrics?period={period}", timeout=10) as r:
        data = json.load(r)
    table = Table(title=f"{unit} {period}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in data.get("metrics", data).items():
        table.add_row(key, str(value))
    console.print(table)
