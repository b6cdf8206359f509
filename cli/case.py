"""``wangge case show CASE_ID``: where a case is in dispatch, and its timeline."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from cli.common import console, run, schema_connection

app = typer.Typer(help="Cases.", no_args_is_help=True)

Row = dict[str, Any]


async def _load(case_id: str) -> tuple[Row | None, list[Row], list[Row]]:
    from services.dispatch.orders_store import orders_of
    from services.dispatch.store import get_case, timeline

    conn = await schema_connection("dispatch")
    try:
        case = await get_case(conn, case_id)
        steps = [dict(r) for r in await timeline(conn, case_id)]
        orders = [vars_of(o) for o in await orders_of(conn, case_id)]
        return (dict(case) if case else None), steps, orders
    finally:
        await conn.close()


def vars_of(order: Any) -> Row:
    return {k: getattr(order, k) for k in order.__slots__}


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value is not None else "-"


def _detail(detail: Any) -> str:
    if not detail:
        return ""
    if isinstance(detail, dict):
        detail = {k: v for k, v in detail.items() if v not in (None, "", [])}
    return json.dumps(detail, ensure_ascii=False, sort_keys=True)


def render(
    case_id: str, case: Row | None, rows: list[Row], orders: list[Row] | None = None
) -> Group:
    """The case's current place and deadlines, its assisting work orders (协办, 吹哨报到), then
    every state change in order."""
    parts: list[Any] = []
    if case is not None:
        handler = case["handler_id"] or "(the unit as a whole)"
        parts.append(
            Text.from_markup(
                f"[bold]{case_id}[/bold]  {case['category']}  state [bold]{case['state']}[/bold]"
                f"  tier {case['tier']}  unit {case['unit']}  handler {handler}"
                f"  attempt {case['attempt']}"
            )
        )
        parts.append(
            Text(
                f"respond by {_when(case['respond_by'])}  resolve by {_when(case['resolve_by'])}"
                + (f"  reopened {case['reopen_count']}x" if case["reopen_count"] else "")
                + (f"  督办 supervised by {case['supervisor_unit']}" if case["supervised"] else "")
            )
        )
        if case["tier_reasons"]:
            parts.append(Text("tier reasons: " + "; ".join(case["tier_reasons"])))
        admin = [case.get(f"admin_{lvl}") for lvl in ("district", "street", "community", "grid")]
        if any(admin):
            served = case["community"] or "-"
            chain = " / ".join(c for c in admin if c)
            parts.append(Text(f"插花地: served by {served}; administratively {chain}"))
    if orders:
        work = Table(title="work orders (协办)")
        for col in ("order", "unit", "handler", "required", "state", "report by", "resolve by"):
            work.add_column(col)
        for o in orders:
            late = "  (late)" if o["report_missed_at"] is not None else ""
            work.add_row(
                str(o["order_id"]),
                str(o["unit"]),
                str(o["handler_id"] or "(the unit)"),
                "yes" if o["required"] else "no",
                str(o["state"]),
                _when(o["report_by"]) + late,
                _when(o["resolve_by"]),
            )
        parts.append(work)
    table = Table(title=f"timeline of {case_id}")
    for col in ("at", "event", "from", "to", "tier", "unit", "handler", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            _when(r["at"]),
            str(r["event"]),
            str(r["from_state"] or ""),
            str(r["to_state"] or ""),
            str(r["tier"] or ""),
            str(r["unit"] or ""),
            str(r["handler_id"] or ""),
            _detail(r["detail"]),
        )
    parts.append(table)
    return Group(*parts)


@app.command("show")
def show(case_id: str) -> None:
    """Where the case is (state, tier, unit, handler, deadlines) and its timeline."""
    case, rows, orders = run(_load(case_id))
    if case is None and not rows:
        console.print(f"no case {case_id!r} in dispatch")
        raise typer.Exit(1)
    console.print(render(case_id, case, rows, orders))
