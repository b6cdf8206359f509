"""``wangge case show CASE_ID``: the dispatch timeline of a case."""

from __future__ import annotations

import typer
from rich.table import Table

from cli.common import console, run, schema_connection

app = typer.Typer(help="Cases.", no_args_is_help=True)


async def _timeline(case_id: str) -> list[dict[str, object]]:
    from services.dispatch.store import timeline

    conn = await schema_connection("dispatch")
    try:
        return [dict(r) for r in await timeline(conn, case_id)]
    finally:
        await conn.close()


@app.command("show")
def show(case_id: str) -> None:
    """Every state change of the case, in order."""
    rows = run(_timeline(case_id))
    if not rows:
        console.print(f"no case {case_id!r} in dispatch")
        raise typer.Exit(1)
    table = Table(title=f"case {case_id}")
    for col in ("at", "event", "from", "to", "tier", "unit", "handler", "detail"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r['at']:%Y-%m-%d %H:%M:%S}",
            str(r["event"]),
            str(r["from_state"] or ""),
            str(r["to_state"] or ""),
            str(r["tier"] or ""),
            str(r["unit"] or ""),
            str(r["handler_id"] or ""),
            str(r["detail"] or ""),
        )
    console.print(table)
