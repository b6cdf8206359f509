"""``wangge report show REPORT_ID --source S``: what became of a report."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import console, run, schema_connection

app = typer.Typer(help="Resident reports.", no_args_is_help=True)


async def _outcome(source: str, report_id: str) -> dict[str, Any] | None:
    from services.intake.store import report_outcome

    conn = await schema_connection("intake")
    try:
        row = await report_outcome(conn, source, report_id)
    finally:
        await conn.close()
    return dict(row) if row else None


def describe(row: dict[str, Any]) -> list[str]:
    """The lines ``report show`` prints for one report's row (pure, for tests)."""
    head = f"report {row['report_id']} ({row['source']}): "
    outcome = row["outcome"]
    if outcome == "rejected":
        lines = [head + f"[bold]rejected[/bold] ({row.get('reason') or 'invalid'})"]
        lines += [f"  error: {e['field']}: {e['message']}" for e in row.get("errors") or []]
        return lines
    case = (
        f"case {row['case_id']}: {row.get('category')} at {row.get('place')}, "
        f"{row.get('status')}, {row.get('supporter_count')} supporter(s)"
    )
    if outcome == "opened":
        return [head + f"[bold]opened[/bold] case {row['case_id']}", "  " + case]
    if outcome == "merged":
        return [head + f"[bold]merged[/bold] into case {row['case_id']} (附议)", "  " + case]
    return [head + outcome]


@app.command("show")
def show(
    report_id: str, source: str = typer.Option(..., "--source", help="the report's source")
) -> None:
    """Rejected with errors, or the case it opened, or the case it was merged into."""
    row = run(_outcome(source, report_id))
    if row is None:
        console.print(f"no report {report_id!r} from {source!r} (not received yet?)")
        raise typer.Exit(1)
    for line in describe(row):
        console.print(line)
