"""``wangge``: the operators' command line. One module per command group."""

from __future__ import annotations

from importlib.metadata import version as package_version

import typer

from cli import (
    apikey,
    case,
    classifier,
    dlq,
    metrics,
    ops,
    pii,
    registry,
    report,
    simulate,
    token,
)

app = typer.Typer(
    name="wangge",
    help="wangge (网格): community grid governance on Kafka and PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wangge {package_version('wangge')}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """wangge (网格): community grid governance on Kafka and PostgreSQL."""


app.add_typer(registry.app, name="registry")
app.add_typer(report.app, name="report")
app.add_typer(case.app, name="case")
app.add_typer(dlq.app, name="dlq")
app.command("metrics")(metrics.metrics)
app.add_typer(simulate.app, name="simulate")
app.add_typer(ops.app, name="ops")
app.add_typer(pii.app, name="pii")
app.add_typer(token.app, name="token")
app.add_typer(apikey.app, name="apikey")
app.add_typer(classifier.app, name="classifier")

if __name__ == "__main__":
    app()
