"""``wangge metrics UNIT --period P``: the governance metrics of a unit, from feedback's HTTP API
(``GET /units/{code}/metrics``); ``--hot-issues`` and ``--ranking`` add the other two views.

The API wants a staff bearer token within reach of UNIT: ``--token`` or ``WANGGE_TOKEN`` (one
from the identity provider or ``wangge token issue``); without one, an operator who holds
``WANGGE_AUTH_JWT_SECRET`` (``make up`` writes it to ``.run/env``) gets a five-minute
``command_centre`` token for UNIT signed on the spot."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import typer
from rich.table import Table

from cli.common import console, err_console, settings
from cli.common import period as period_option
from shared.runtime.identity import issue_token
from shared.runtime.settings import ConfigurationError

# The JSON keys of docs/feedback.md, in the order operators read them, with their Chinese names.
LABELS: dict[str, str] = {
    "received": "受理量 received",
    "resolved": "办结量 resolved",
    "ratings": "评价数 ratings",
    "response_rate": "响应率 response rate",
    "on_time_resolution_rate": "按期办结率 on-time resolution",
    "resolution_rate": "解决率 resolution rate",
    "satisfaction_rate": "满意率 satisfaction rate",
    "reopen_rate": "重办率 reopen rate",
    "kept_in_grid_rate": "小事不出网格率 kept in the grid",
    "kept_in_community_rate": "大事不出社区率 kept in the community",
    "escalation_rate": "上报率 escalation rate",
    "time_to_resolve_hours": "办结用时(小时) time to resolve (h)",
    "warned": "黄牌/红牌 warnings (yellow/red)",
    "supervised": "督办 supervised",
    "orders": "协办 work orders (吹哨报到)",
    "councils": "议事会 council decisions",
}


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def figures_status(data: dict[str, Any]) -> str:
    """Whether the figures are the month's official (frozen) ones or still provisional."""
    if data.get("status") == "frozen":
        return f"正式数据 frozen at {data.get('frozen_at')}"
    if data.get("freezes_at"):
        return f"临时数据 provisional, freezes at {data['freezes_at']}"
    return "临时数据 provisional"


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, value, detail) for each metric of a ``/units/{code}/metrics`` answer."""
    rows = []
    for key, label in LABELS.items():
        if key not in metrics:
            continue
        v = metrics[key]
        if key == "time_to_resolve_hours":
            med, p90 = v.get("median"), v.get("p90")
            value = "-" if med is None else f"median {med:g}"
            rows.append((label, value, "-" if p90 is None else f"p90 {p90:g}, {v['cases']} cases"))
        elif key == "warned":
            stages = ", ".join(
                f"{s} {v[s]['yellow']}/{v[s]['red']}"
                for s in ("respond", "resolve", "verify")
                if s in v
            )
            rows.append((label, f"{v['yellow']}/{v['red']}", f"{stages}; {v['cases']} cases"))
        elif key == "supervised":
            rows.append((label, str(v["supervisions"]), f"{v['cases']} cases"))
        elif key == "orders":
            detail = (
                f"reported {v['reported']} ({v['reported_on_time']} on time), "
                f"late {v['report_missed']}, done {v['done']} ({v['done_on_time']} on time), "
                f"returned {v['returned']}, cancelled {v['cancelled']}"
            )
            rows.append((label, str(v["issued"]), detail))
        elif key == "councils":
            rows.append((label, str(v["decisions"]), f"{v['measures']} measures"))
        elif isinstance(v, dict):
            rows.append((label, _pct(v["rate"]), f"{v['numerator']}/{v['denominator']}"))
        else:
            rows.append((label, str(v), ""))
    return rows


def served_apart_lines(data: dict[str, Any]) -> list[str]:
    """插花地: the lines telling, under the official table, which of the unit's cases another
    community serves and which it counts for another (none when neither)."""

    def names(refs: list[dict[str, Any]]) -> str:
        return ", ".join(f"{r.get('name') or r['code']} ({r['code']})" for r in refs)

    lines = []
    others = data.get("served_for_others")
    if others:
        lines.append(
            f"插花地: of these, {others['received']} received, {others['resolved']} resolved, "
            f"{others['ratings']} ratings are administratively {names(others['administrative'])}'s"
        )
    elsewhere = data.get("served_elsewhere")
    if elsewhere:
        lines.append(
            f"插花地: served by {names(elsewhere['serving'])}, counted there and shown below "
            "apart (not in the figures above)"
        )
    return lines


def print_served_apart(data: dict[str, Any]) -> None:
    """The 插花地 lines, and the figures of the cases served elsewhere in a table of their own."""
    for line in served_apart_lines(data):
        console.print(line)
    if data.get("served_elsewhere"):
        t = Table(title="插花地 served elsewhere (administratively here; not in the figures above)")
        for col, justify in (("metric", "left"), ("value", "right"), ("detail", "right")):
            t.add_column(col, justify=justify)  # type: ignore[arg-type]
        for row in metric_rows(data["served_elsewhere"]["metrics"]):
            t.add_row(*row)
        console.print(t)


def bearer_token(unit: str, token: str | None) -> str:
    """The token to send: the one given, else a short one for UNIT signed with the secret."""
    if token:
        return token
    try:
        return issue_token(settings(), role="command_centre", unit=unit, ttl_s=300)
    except ConfigurationError:
        err_console.print(
            "wangge metrics: feedback wants a bearer token: --token or WANGGE_TOKEN "
            "(wangge token issue), or WANGGE_AUTH_JWT_SECRET to sign one"
        )
        raise typer.Exit(2) from None


def _get(base: str, path: str, period: str, token: str) -> Any:
    url = f"{base}{path}?period={urllib.parse.quote(period)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("detail") or exc.reason  # problem+json (RFC 9457)
        except ValueError:
            message = exc.reason
        err_console.print(f"[red]{exc.code}: {message}[/red]")
        raise typer.Exit(1) from None
    except OSError as exc:  # URLError and socket errors: the service is not there
        reason = getattr(exc, "reason", exc)
        typer.echo(
            f"wangge: cannot reach feedback at {base} (--url, FEEDBACK_URL): {reason}", err=True
        )
        raise typer.Exit(1) from None


def metrics(
    unit: str,
    period: str = typer.Option(
        ..., "--period", help="2026-11, 2026-W47 or 2026-11-23", callback=period_option
    ),
    hot_issues: bool = typer.Option(False, "--hot-issues", help="also the top categories"),
    ranking: bool = typer.Option(False, "--ranking", help="also rank the units below UNIT"),
    url: str = typer.Option(None, "--url", help="feedback base URL (default $FEEDBACK_URL)"),
    token: str = typer.Option(
        None, "--token", envvar="WANGGE_TOKEN", help="a staff bearer token within reach of UNIT"
    ),
) -> None:
    """Print the metrics of UNIT (rolled up from its grids) for PERIOD as a table."""
    base = (url or os.environ.get("FEEDBACK_URL", "http://127.0.0.1:8083")).rstrip("/")
    code = urllib.parse.quote(unit, safe="")
    bearer = bearer_token(unit, token)
    data = _get(base, f"/units/{code}/metrics", period, bearer)
    p = data["period"]
    table = Table(
        title=f"{data['unit']['name']} ({unit}) {p['label']} [{p['time_zone']}]",
        caption=figures_status(data),
    )
    for col, justify in (("metric", "left"), ("value", "right"), ("detail", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in metric_rows(data["metrics"]):
        table.add_row(*row)
    console.print(table)
    if data.get("adjustments"):
        t = Table(title="调整 adjustments (later events; the frozen figures above stay)")
        for col in ("metric", "frozen", "now"):
            t.add_column(col)
        for a in data["adjustments"]:
            was = metric_rows({a["figure"]: a["frozen"]})[0]
            now = metric_rows({a["figure"]: a["current"]})[0]
            t.add_row(was[0], " ".join(was[1:]), " ".join(now[1:]))
        console.print(t)
    print_served_apart(data)
    if hot_issues:
        hot = _get(base, f"/units/{code}/hot-issues", period, bearer)
        t = Table(title=f"高频问题 hot issues (vs {hot['previous_period']})")
        for col in ("category", "count", "previous", "change"):
            t.add_column(col)
        for i in hot["hot_issues"]:
            t.add_row(
                f"{i['category_name']} ({i['category']})",
                str(i["count"]),
                str(i["previous"]),
                f"{i['change']:+d}",
            )
        console.print(t)
    if ranking:
        ranked = _get(base, f"/units/{code}/ranking", period, bearer)
        t = Table(title="排名 ranking (composite score)")
        for col in ("rank", "unit", "score", "received", "satisfaction", "on time"):
            t.add_column(col)
        for r in ranked["ranking"]:
            t.add_row(
                str(r["rank"]),
                f"{r['name']} ({r['code']})",
                "-" if r["score"] is None else f"{r['score']:.1f}",
                str(r["received"]),
                _pct(r["satisfaction_rate"]),
                _pct(r["on_time_resolution_rate"]),
            )
        console.print(t)
