"""``wangge classifier``: intake's category classifier (docs/intake.md, "Classification").

- ``wangge classifier retrain [--folds 5] [--seed 0]``: a model from the labelled reports shipped
  with intake plus every correction the command centre made (``cases.reclassified``: triage
  decisions, corrections, 退单 returns), compared with the current model on the same folds and
  installed only if it is not worse; prints both scores. Intake replicas use the latest installed
  model from their next start; its version is ``classification.model`` on every ``cases.opened``.
- ``wangge classifier status``: the model in use (installed, or trained from the shipped data)
  and the corrections recorded.

The database is ``DATABASE_URL`` (intake's role or an admin); corrections' texts are decrypted
with ``WANGGE_PII_KEY`` (and ``WANGGE_PII_OLD_KEYS``), as intake does.
"""

from __future__ import annotations

import asyncpg
import typer

from cli.common import run, schema_connection, settings
from cli.pii import keyring
from services.intake import classifier_store
from services.intake.evaluation import Scores
from services.intake.privacy import Pii
from services.intake.retraining import Retrained, retrain
from shared.contract.taxonomy import load_taxonomy

app = typer.Typer(help="Intake's category classifier: retrain, status.", no_args_is_help=True)

SCHEMA = "intake"
NOT_MIGRATED = (
    "wangge classifier: intake's schema has no classifier_models table: start intake once (it "
    "applies its migrations), then try again"
)


async def _retrain(pii: Pii, folds: int, seed: int) -> Retrained:
    conn = await schema_connection(SCHEMA)
    try:
        async with conn.transaction():
            return await retrain(
                conn, pii, load_taxonomy(settings().taxonomy_file), k=folds, seed=seed
            )
    finally:
        await conn.close()


def _line(name: str, version: str, s: Scores) -> str:
    return (
        f"{name:9s} {version}: top-1 {s.top1:.3f}, top-3 {s.top3:.3f}, "
        f"macro-F1 {s.macro_f1:.3f} ({s.n} reports)"
    )


@app.command("retrain")
def retrain_command(
    folds: int = typer.Option(5, "--folds", min=2, max=20, help="cross-validation folds"),
    seed: int = typer.Option(0, "--seed", help="the folds' shuffle"),
) -> None:
    """Train on the shipped reports plus the corrections; install if not worse than current."""
    pii = keyring()
    try:
        done = run(_retrain(pii, folds, seed))
    except asyncpg.UndefinedTableError:
        typer.echo(NOT_MIGRATED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"corrections: {done.corrections} ({done.new_corrections} new to the current model)")
    if done.comparison is None:
        typer.echo(f"current model {done.current} already learnt from all of them: nothing to do")
        return
    typer.echo(f"on the same {folds} folds:")
    typer.echo(_line("current", done.current, done.comparison.current))
    typer.echo(_line("candidate", done.candidate, done.comparison.candidate))
    if done.installed:
        typer.echo(f"installed {done.candidate}: intake uses it from its next start")
    else:
        typer.echo("not installed: the candidate is worse than the current model")


async def _status() -> tuple[classifier_store.InstalledModel | None, int]:
    conn = await schema_connection(SCHEMA)
    try:
        model = await classifier_store.latest_model(conn)
        count = await conn.fetchval("SELECT count(DISTINCT case_id) FROM reclassifications")
        return model, int(count or 0)
    finally:
        await conn.close()


@app.command("status")
def status() -> None:
    """The installed model (if any) and how many cases were reclassified."""
    try:
        model, corrected = run(_status())
    except asyncpg.UndefinedTableError:
        typer.echo(NOT_MIGRATED, err=True)
        raise typer.Exit(1) from None
    if model is None:
        typer.echo("no model installed: intake trains one from the shipped labelled reports")
    else:
        typer.echo(
            f"installed {model.version} at {model.installed_at:%Y-%m-%d %H:%M:%S%z}, "
            f"learnt from {len(model.corrections)} correction(s)"
        )
    typer.echo(f"cases reclassified: {corrected}")
