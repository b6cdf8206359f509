"""``wangge classifier retrain``: a model from the shipped labelled reports plus every correction,
installed only if it is not worse than the current one on the same folds.

The current model is the latest installed (``classifier_models``), else the one intake trains
from the shipped reports. Both are judged by stratified k-fold cross-validation over the same
examples (shipped + corrections, split into the same folds): in each fold the current model's
recipe learns from the training examples it learnt from when it was made (the shipped reports
and the corrections it had), the candidate from all of them, and both are scored on the same
held-out reports (``evaluation.compare``). The candidate is installed when its top-1 and top-3
accuracy are at least the current model's.

A model installed by an earlier version of the method (``char-lr-v3``) is the current model like
any other: its recipe reads with that version's settings (``Recipe.from_stored``), so in the
folds it is retrained as it was made; a candidate of the current method has another version even
with no new correction, so the first retrain after an upgrade compares the two and installs the
new one if it is not worse.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.contract.taxonomy import Taxonomy
from shared.runtime.db import Connection

from . import classifier_store
from .classify import (
    OTHER,
    Example,
    ModelParameters,
    Recipe,
    load_examples,
    train,
    training_set,
)
from .evaluation import Comparison, compare, linear_trainer
from .privacy import Pii


@dataclass(frozen=True)
class Retrained:
    current: str  # the current model's version
    candidate: str
    corrections: int  # labelled examples from corrections the candidate learnt from
    new_corrections: int  # of which the current model had not learnt
    comparison: Comparison | None  # None: nothing new to learn, nothing compared
    installed: bool


async def retrain(
    conn: Connection, pii: Pii, taxonomy: Taxonomy, *, k: int = 5, seed: int = 0
) -> Retrained:
    shipped = load_examples()
    found = [
        c
        for c in await classifier_store.corrections(conn, pii)
        if c.example.category != OTHER and taxonomy.get(c.example.category) is not None
    ]
    current = await classifier_store.latest_model(conn)
    current_recipe = current.recipe if current is not None else Recipe()
    knows = current.corrections if current is not None else frozenset()
    current_version = (
        current.version
        if current is not None
        else training_set(shipped, taxonomy, current_recipe).version
    )
    recipe = Recipe()
    examples: list[Example] = shipped + [c.example for c in found]
    new = sum(c.key not in knows for c in found)
    candidate_version = training_set(examples, taxonomy, recipe).version
    if candidate_version == current_version:
        return Retrained(current_version, candidate_version, len(found), new, None, False)
    current_knows = [True] * len(shipped) + [c.key in knows for c in found]

    def work() -> tuple[Comparison, ModelParameters | None]:
        comparison = compare(
            examples,
            current_knows,
            linear_trainer(taxonomy, current_recipe),
            linear_trainer(taxonomy, recipe),
            k=k,
            seed=seed,
        )
        return comparison, (train(examples, taxonomy, recipe) if comparison.not_worse else None)

    comparison, params = await asyncio.to_thread(work)
    if params is not None:
        metrics = {
            "folds": k,
            "seed": seed,
            "candidate": comparison.candidate.as_dict(),
            "replaced": {"version": current_version, **comparison.current.as_dict()},
        }
        await classifier_store.install_model(conn, params, recipe, found, metrics)
    return Retrained(
        current_version, candidate_version, len(found), new, comparison, params is not None
    )
