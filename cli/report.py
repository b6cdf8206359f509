"""``wangge report show REPORT_ID --source S``: what became of a report."""

from __future__ import annotations

import typer

from cli.common import console, run, schema_connection

app = typer.Typer(help="Resident reports.", no_args_is_help=True)


async def _outcome(source: str, report_id: str) -> dict[str, object] | None:
    from services.intake.store import report_outcome

    conn = await schema_connection("intake")
    try:
        row = await report_outcome(conn, source, report_id)
    finally:
        await conn.close()
    return dict(row) if row else None


@app.command("show")
def show(
    report_id: str, source: str = typer.Option(..., "--source", help="the report's source")
) -> None:
    """Rejected with errors, or the case it opened or joined."""
    row = run(_outcome(source, report_id))
    if row is None:
        console.print(f"no report {report_id!r} from {source!r} (not received yet?)")
        raise typer.Exit(1)
    console.print(f"report {report_id} ({source}): [bold]{row['outcome']}[/bold]")
    if row["case_id"]:
        console.print(f"  case: {row['case_id']}")
    errors: list[dict[str, str]] = row["errors"] or []  # type: ignore[assignment]
    for err in errors:
        console.print(f"  error: {err['field']}: {err['message']}")
