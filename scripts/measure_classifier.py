"""Cross-validated accuracy of intake's classifier on the shipped labelled reports.

    .venv/bin/python scripts/measure_classifier.py            # 6-fold, 5 shuffles
    .venv/bin/python scripts/measure_classifier.py --k 12 --repeats 1 --confusions 10
    .venv/bin/python scripts/measure_classifier.py --first-seed 100 --alpha 2 --keyword-weight 4

Accuracy on the file the model was trained on says little; every number printed here comes from
reports held out of training (stratified k-fold, repeated with different shuffles).

The model's defaults (alpha, keyword weight) were chosen on shuffles 100-104 (``--first-seed
100``) among alpha 2, 3, 4, 6 and keyword weight 4, 6, 8, 12; the default shuffles 0-4 are the ones
reported. The folds still hold the same 252 reports, so treat a difference of 0.01 as noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collections.abc import Callable, Sequence

from services.intake.classify import (
    LABELLED_FILE,
    METHOD,
    Example,
    NaiveBayesClassifier,
    TermExtractor,
    load_examples,
)
from services.intake.evaluation import (
    Classifier,
    Score,
    cross_validate,
    keyword_trainer,
    naive_bayes_trainer,
)
from shared.contract.taxonomy import load_taxonomy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(LABELLED_FILE), help="labelled JSON lines")
    parser.add_argument("--taxonomy", default=None, help="taxonomy YAML (default: shipped)")
    parser.add_argument("--k", type=int, default=6, help="number of folds")
    parser.add_argument("--repeats", type=int, default=5, help="shuffles (seeds 0..n-1)")
    parser.add_argument("--first-seed", type=int, default=0, help="first shuffle's seed")
    parser.add_argument("--alpha", type=float, help="Laplace smoothing (default: the model's)")
    parser.add_argument("--keyword-weight", type=float, help="taxonomy keyword prior counts")
    parser.add_argument("--confusions", type=int, default=0, help="print the N commonest errors")
    args = parser.parse_args(argv)

    taxonomy = load_taxonomy(args.taxonomy)
    examples = load_examples(args.data)
    started = time.perf_counter()
    extractor = TermExtractor({w for c in taxonomy.categories for w in c.keywords})
    categories = len({ex.category for ex in examples})
    print(f"{len(examples)} labelled reports, {categories} categories,", end=" ")
    print(f"{args.k}-fold cross-validation x {args.repeats} shuffles")
    trainer: Callable[[Sequence[Example]], Classifier] = naive_bayes_trainer(taxonomy, extractor)
    tuned = {
        name: value
        for name, value in (("alpha", args.alpha), ("keyword_weight", args.keyword_weight))
        if value is not None
    }
    if tuned:

        def trainer(training: Sequence[Example]) -> Classifier:
            return NaiveBayesClassifier(taxonomy, training, extractor=extractor, **tuned).classify

    seeds = range(args.first_seed, args.first_seed + args.repeats)
    for name, train in (
        ("keywords-v1 (baseline)", keyword_trainer(taxonomy, extractor)),
        (METHOD + "".join(f" {k}={v:g}" for k, v in tuned.items()), trainer),
    ):
        scores: list[Score] = [
            cross_validate(examples, train, k=args.k, seed=seed) for seed in seeds
        ]
        accs = [s.accuracy for s in scores]
        spread = f" (min {min(accs):.3f}, max {max(accs):.3f})" if len(accs) > 1 else ""
        print(f"{name:38s} accuracy {statistics.mean(accs):.3f}{spread}")
        if args.confusions:
            total = sum((s.confusions for s in scores), start=scores[0].confusions.__class__())
            for (truth, predicted), n in total.most_common(args.confusions):
                print(f"    {truth:20s} -> {predicted:20s} {n}")
    print(f"took {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
