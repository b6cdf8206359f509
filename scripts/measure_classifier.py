"""Cross-validated accuracy of intake's classifier on the shipped labelled reports.

    .venv/bin/python scripts/measure_classifier.py            # 6-fold, 5 shuffles
    .venv/bin/python scripts/measure_classifier.py --k 12 --repeats 1 --confusions 10

Accuracy on the file the model was trained on says little; every number printed here comes from
reports held out of training (stratified k-fold, repeated with different shuffles).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.intake.classify import (
    LABELLED_FILE,
    TermExtractor,
    load_examples,
)
from services.intake.evaluation import (
    Score,
    cross_validate,
    keyword_trainer,
    naive_bayes_trainer,
)
from shared.taxonomy import load_taxonomy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(LABELLED_FILE), help="labelled JSON lines")
    parser.add_argument("--taxonomy", default=None, help="taxonomy YAML (default: shipped)")
    parser.add_argument("--k", type=int, default=6, help="number of folds")
    parser.add_argument("--repeats", type=int, default=5, help="shuffles (seeds 0..n-1)")
    parser.add_argument("--confusions", type=int, default=0, help="print the N commonest errors")
    args = parser.parse_args(argv)

    taxonomy = load_taxonomy(args.taxonomy)
    examples = load_examples(args.data)
    started = time.perf_counter()
    extractor = TermExtractor({w for c in taxonomy.categories for w in c.keywords})
    categories = len({ex.category for ex in examples})
    print(f"{len(examples)} labelled reports, {categories} categories,", end=" ")
    print(f"{args.k}-fold cross-validation x {args.repeats} shuffles")
    for name, trainer in (
        ("keywords-v1 (baseline)", keyword_trainer(taxonomy, extractor)),
        ("jieba-nb-v1", naive_bayes_trainer(taxonomy, extractor)),
    ):
        scores: list[Score] = [
            cross_validate(examples, trainer, k=args.k, seed=seed) for seed in range(args.repeats)
        ]
        accs = [s.accuracy for s in scores]
        spread = f" (min {min(accs):.3f}, max {max(accs):.3f})" if len(accs) > 1 else ""
        print(f"{name:24s} accuracy {statistics.mean(accs):.3f}{spread}")
        if args.confusions:
            total = sum((s.confusions for s in scores), start=scores[0].confusions.__class__())
            for (truth, predicted), n in total.most_common(args.confusions):
                print(f"    {truth:20s} -> {predicted:20s} {n}")
    print(f"took {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
