"""Measuring the classifier honestly (pure, no I/O): stratified k-fold cross-validation, the
measures the bench reports, the triage threshold, and the comparison ``wangge classifier
retrain`` makes before it installs a model.

Every fold trains a fresh model on the other folds and is scored on reports it never saw.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold

from shared.contract.taxonomy import Taxonomy

from .classify import (
    Classified,
    Example,
    KeywordClassifier,
    LinearClassifier,
    Recipe,
    train,
)

# A trainer: labelled examples in, a batch classifier out.
Trainer = Callable[[Sequence[Example]], Callable[[Sequence[str]], list[Classified]]]


@dataclass(frozen=True)
class Prediction:
    """A held-out report: its true category and what a model trained without it said."""

    truth: str
    found: Classified

    @property
    def top(self) -> list[str]:
        return [s.category for s in self.found.suggestions] or [self.found.category]


def folds(examples: Sequence[Example], k: int, seed: int) -> list[np.ndarray]:
    """The held-out indices of each of ``k`` stratified folds (deterministic per seed)."""
    split = StratifiedKFold(k, shuffle=True, random_state=seed)
    labels = [ex.category for ex in examples]
    return [held for _, held in split.split(np.zeros(len(labels)), labels)]


def cross_validate(
    examples: Sequence[Example],
    train: Trainer,
    *,
    k: int = 5,
    seed: int = 0,
    trains_on: Callable[[int], bool] | None = None,
) -> list[Prediction]:
    """Every example's prediction by a model trained on the other folds. ``trains_on(i)``
    False keeps example ``i`` out of every training set (it is still scored): how the current
    model is scored on folds that hold corrections it never learnt from."""
    out: list[Prediction | None] = [None] * len(examples)
    for held in folds(examples, k, seed):
        held_set = set(held.tolist())
        training = [
            ex
            for i, ex in enumerate(examples)
            if i not in held_set and (trains_on is None or trains_on(i))
        ]
        classify = train(training)
        found = classify([examples[i].text for i in held])
        for i, f in zip(held, found, strict=True):
            out[i] = Prediction(examples[i].category, f)
    return [p for p in out if p is not None]


@dataclass(frozen=True)
class Scores:
    top1: float
    top3: float
    macro_f1: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "top1": round(self.top1, 4),
            "top3": round(self.top3, 4),
            "macro_f1": round(self.macro_f1, 4),
            "n": self.n,
        }


def scores(predictions: Sequence[Prediction]) -> Scores:
    truth = [p.truth for p in predictions]
    guess = [p.found.category for p in predictions]
    n = len(predictions)
    return Scores(
        top1=sum(t == g for t, g in zip(truth, guess, strict=True)) / n,
        top3=sum(p.truth in p.top[:3] for p in predictions) / n,
        macro_f1=float(f1_score(truth, guess, average="macro", zero_division=0)),
        n=n,
    )


def confusion(predictions: Sequence[Prediction], labels: Sequence[str]) -> list[list[int]]:
    """Rows: the true category (in ``labels`` order), columns: the predicted one."""
    truth = [p.truth for p in predictions]
    guess = [p.found.category for p in predictions]
    return confusion_matrix(truth, guess, labels=list(labels)).tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    n: int
    confidence: float  # mean confidence of the predictions in the bin
    accuracy: float  # the share of them that were right


def reliability(predictions: Sequence[Prediction], bins: int = 10) -> tuple[float, list[Bin]]:
    """Expected calibration error (top label: the mean |accuracy - confidence| over equal-width
    confidence bins, weighted by their size) and the bins themselves."""
    out = []
    ece = 0.0
    n = len(predictions)
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [
            p
            for p in predictions
            if low < p.found.confidence <= high or (b == 0 and p.found.confidence == 0)
        ]
        if not inside:
            continue
        conf = sum(p.found.confidence for p in inside) / len(inside)
        acc = sum(p.truth == p.found.category for p in inside) / len(inside)
        ece += len(inside) / n * abs(acc - conf)
        out.append(Bin(low, high, len(inside), round(conf, 4), round(acc, 4)))
    return ece, out


@dataclass(frozen=True)
class Dispatch:
    """Automatic dispatch at a threshold: the share of reports at or above it, and how many of
    those had the right category."""

    threshold: float
    share: float
    precision: float
    n: int


def at_threshold(predictions: Sequence[Prediction], threshold: float) -> Dispatch:
    auto = [p for p in predictions if p.found.confidence >= threshold]
    right = sum(p.truth == p.found.category for p in auto)
    return Dispatch(
        threshold,
        len(auto) / len(predictions) if predictions else 0.0,
        right / len(auto) if auto else 1.0,
        len(predictions),
    )


def choose_threshold(predictions: Sequence[Prediction], precision: float = 0.95) -> float:
    """The lowest confidence threshold at which the reports at or above it reach ``precision``
    (the most reports dispatched automatically at that precision); 1.0 when none does."""
    best = 1.0
    for t in sorted({p.found.confidence for p in predictions}, reverse=True):
        if at_threshold(predictions, t).precision >= precision:
            best = t
    return best


def held_back_dispatch(
    predictions: Sequence[Prediction], precision: float = 0.95, seed: int = 0
) -> list[Dispatch]:
    """The threshold chosen on one half of the reports (split at random within each category)
    and measured on the other half, both ways round: precision on data the choice never saw."""
    rng = random.Random(seed)
    halves: tuple[list[Prediction], list[Prediction]] = ([], [])
    by_category: dict[str, list[Prediction]] = {}
    for p in predictions:
        by_category.setdefault(p.truth, []).append(p)
    for category in sorted(by_category):
        items = by_category[category][:]
        rng.shuffle(items)
        for i, p in enumerate(items):
            halves[i % 2].append(p)
    a, b = halves
    return [
        at_threshold(b, choose_threshold(a, precision)),
        at_threshold(a, choose_threshold(b, precision)),
    ]


@dataclass(frozen=True)
class Comparison:
    current: Scores
    candidate: Scores

    @property
    def not_worse(self) -> bool:
        """The candidate is installed when its top-1 accuracy is at least the current model's
        and its top-3 accuracy is not lower either (both on the same folds)."""
        return self.candidate.top1 >= self.current.top1 and self.candidate.top3 >= self.current.top3


def compare(
    examples: Sequence[Example],
    current_knows: Sequence[bool],
    train_current: Trainer,
    train_candidate: Trainer,
    *,
    k: int = 5,
    seed: int = 0,
) -> Comparison:
    """The current model against a candidate on the same folds of ``examples`` (the shipped
    reports and every correction): in each fold the current model's recipe learns only from
    the training examples it learnt from when it was made (``current_knows``), the candidate
    from all of them; both are scored on the same held-out reports."""
    current = cross_validate(
        examples, train_current, k=k, seed=seed, trains_on=current_knows.__getitem__
    )
    candidate = cross_validate(examples, train_candidate, k=k, seed=seed)
    return Comparison(scores(current), scores(candidate))


def linear_trainer(taxonomy: Taxonomy, recipe: Recipe | None = None) -> Trainer:
    """Train the linear model (``classify.train``) with ``recipe`` on each fold's training
    examples and the taxonomy's keywords."""

    def fit(training: Sequence[Example]) -> Callable[[Sequence[str]], list[Classified]]:
        return LinearClassifier(train(training, taxonomy, recipe), taxonomy).classify_many

    return fit


def keyword_trainer(taxonomy: Taxonomy) -> Trainer:
    """The keyword baseline learns nothing; it is scored the same way for comparison."""
    return lambda _: KeywordClassifier(taxonomy).classify_many
