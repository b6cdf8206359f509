"""Measuring the classifier honestly: stratified k-fold cross-validation (pure, no I/O).

Every fold trains a fresh classifier on the other folds and is scored on reports it never saw;
the taxonomy's keywords are part of the model in every fold (they are not learnt from the file).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.contract.taxonomy import Taxonomy

from .classify import Classified, Example, KeywordClassifier, NaiveBayesClassifier, TermExtractor


@dataclass
class Score:
    correct: int = 0
    total: int = 0
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def add(self, truth: str, predicted: str) -> None:
        self.total += 1
        if truth == predicted:
            self.correct += 1
        else:
            self.confusions[(truth, predicted)] += 1


def stratified_folds(examples: Sequence[Example], k: int, seed: int) -> list[list[Example]]:
    """``k`` folds with each category spread as evenly as possible (deterministic per seed)."""
    rng = random.Random(seed)
    by_category: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        by_category[ex.category].append(ex)
    folds: list[list[Example]] = [[] for _ in range(k)]
    offset = 0
    for category in sorted(by_category):
        items = by_category[category][:]
        rng.shuffle(items)
        for i, ex in enumerate(items):
            folds[(i + offset) % k].append(ex)
        offset += len(items)
    return folds


Classifier = Callable[[str], Classified]


def cross_validate(
    examples: Sequence[Example],
    train: Callable[[Sequence[Example]], Classifier],
    *,
    k: int = 6,
    seed: int = 0,
) -> Score:
    score = Score()
    folds = stratified_folds(examples, k, seed)
    for i, held_out in enumerate(folds):
        training = [ex for j, fold in enumerate(folds) if j != i for ex in fold]
        classify = train(training)
        for ex in held_out:
            score.add(ex.category, classify(ex.text).category)
    return score


def naive_bayes_trainer(
    taxonomy: Taxonomy, extractor: TermExtractor
) -> Callable[[Sequence[Example]], Classifier]:
    def train(training: Sequence[Example]) -> Classifier:
        return NaiveBayesClassifier(taxonomy, training, extractor=extractor).classify

    return train


def keyword_trainer(
    taxonomy: Taxonomy, extractor: TermExtractor
) -> Callable[[Sequence[Example]], Classifier]:
    """The keyword baseline learns nothing; it is scored the same way for comparison."""

    def train(_: Sequence[Example]) -> Classifier:
        return KeywordClassifier(taxonomy, extractor).classify

    return train
