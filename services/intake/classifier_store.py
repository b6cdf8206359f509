"""Intake's installed classifier models (table ``classifier_models``, migration 004) and the
labelled examples of corrections, decrypted (the decisions themselves are kept by
``store.record_reclassification``, from ``cases.reclassified``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.runtime.db import Connection

from . import store
from .classify import Example, ModelParameters, Recipe
from .privacy import Pii


@dataclass(frozen=True)
class Correction:
    """A case's text and the category a person decided for it (its latest decision)."""

    case_id: str
    decided_at: datetime
    example: Example

    @property
    def key(self) -> tuple[str, str]:
        return self.case_id, self.decided_at.isoformat()


async def corrections(conn: Connection, pii: Pii) -> list[Correction]:
    """Every reclassified case whose text intake kept, as a labelled example (oldest first)."""
    out = []
    for row in await store.labelled_examples(conn):
        text = pii.decrypt(row.text_enc)
        if text:
            out.append(Correction(row.case_id, row.decided_at, Example(text, row.category)))
    return sorted(out, key=lambda c: (c.decided_at, c.case_id))


@dataclass(frozen=True)
class InstalledModel:
    version: str
    installed_at: datetime
    recipe: Recipe
    corrections: frozenset[tuple[str, str]]  # Correction.key of each it learnt from
    metrics: dict[str, Any]
    parameters: ModelParameters


async def latest_model(conn: Connection) -> InstalledModel | None:
    """The model installed last, or None (intake then uses the one trained from shipped data)."""
    row = await conn.fetchrow(
        """SELECT version, installed_at, recipe, corrections, metrics, parameters
           FROM classifier_models ORDER BY installed_at DESC, version LIMIT 1"""
    )
    if row is None:
        return None
    return InstalledModel(
        version=row["version"],
        installed_at=row["installed_at"],
        recipe=Recipe.from_stored(_json(row["recipe"])),
        corrections=frozenset((c, d) for c, d in _json(row["corrections"])),
        metrics=_json(row["metrics"]),
        parameters=ModelParameters.from_bytes(row["parameters"]),
    )


async def install_model(
    conn: Connection,
    params: ModelParameters,
    recipe: Recipe,
    learnt: list[Correction],
    metrics: dict[str, Any],
) -> None:
    """Install ``params``: the latest model from now on (intake replicas use it at start)."""
    await conn.execute(
        """INSERT INTO classifier_models (version, method, recipe, corrections, metrics,
                                          parameters)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (version) DO UPDATE SET installed_at = now(), metrics = EXCLUDED.metrics""",
        params.version,
        params.version.rsplit("-", 1)[0],
        recipe.__dict__,
        [list(c.key) for c in learnt],
        metrics,
        params.to_bytes(),
    )


def _json(value: Any) -> Any:
    """A jsonb value: decoded by the connection's codec (shared.runtime.db), else here."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value
