"""Intake's classifier measured: stratified cross-validation on every labelled report, the
triage threshold, and CPU per report.

    .venv/bin/python -m bench.classify              # writes bench/results/<date>classify.json
    .venv/bin/python -m bench.classify --repeats 1 --no-write

Every accuracy figure comes from reports held out of training: stratified k-fold (default 5)
over all the shipped labelled reports (``services/intake/data/*.jsonl``), repeated over
``--repeats`` shuffles (seeds 0..n-1). Printed and written: top-1, top-3 and macro-F1 (mean,
min, max over shuffles) beside the keyword baseline; the confusion matrix and the calibration
(expected calibration error, reliability bins) of the pooled held-out predictions; the lowest
confidence threshold at which automatic dispatch reaches ``--precision`` (default 0.95) on all
held-out predictions of the first shuffle, the value to set for WANGGE_TRIAGE_MIN_CONFIDENCE,
and on held-back data: the threshold chosen on one half of the reports (split within each
category) and applied to the other half, both ways round, with the share dispatched
automatically and its precision; CPU time (``time.process_time``) per report as intake calls
the model, in batches (``classify_many``) of 1, 10, 100 and 500 texts, on the labelled reports
and on reports drawn the way the simulator draws them (the best of ``--rounds``); and start-up
(training on every labelled report).
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sim.territory import TerritorySize, generate_territory  # noqa: E402
from sim.texts import report_text  # noqa: E402
from sim.workload import CATEGORY_WEIGHTS  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BATCHES = (1, 10, 100, 500)


def simulated_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    buildings = generate_territory(TerritorySize.small(), seed=seed).buildings
    codes, weights = list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values())
    out = []
    for _ in range(n):
        category = rng.choices(codes, weights=weights)[0]
        b = rng.choice(buildings)
        place = b.name.replace("小区", "") if rng.random() < 0.6 else b.name
        text, _ = report_text(category, place, rng)
        out.append(f"\n{text}")  # no title, as the simulator
    return out


def load_source(path: str, rev: str | None) -> ModuleType:
    """The module at ``path`` (e.g. ``services/intake/classify.py``): imported as usual for the
    working tree (``rev`` None), else as it was at git revision ``rev``, as a separate module
    that sits beside the current one (so it finds the data files next to it)."""
    name = path.removesuffix(".py").replace("/", ".")
    if rev is None:
        return importlib.import_module(name)
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    module = ModuleType(f"{name.rsplit('.', 1)[-1]}_{rev}")
    module.__file__ = str(ROOT / path.replace(".py", f"_{rev}.py"))
    sys.modules[module.__name__] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def cpu_us_per_report(classify_many: Any, texts: list[str], batch: int, rounds: int) -> float:
    """The best round's CPU time per report, classifying ``texts`` in batches of ``batch``."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for i in range(0, len(texts), batch):
            classify_many(texts[i : i + batch])
        best = min(best, (time.process_time() - started) / len(texts) * 1e6)
    return best


def spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.mean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def main(argv: list[str] | None = None) -> int:
    from services.intake.classify import METHOD, LinearClassifier, Recipe, load_examples, train
    from services.intake.evaluation import (
        at_threshold,
        choose_threshold,
        confusion,
        cross_validate,
        held_back_dispatch,
        keyword_trainer,
        linear_trainer,
        reliability,
        scores,
    )
    from shared.contract.taxonomy import default_taxonomy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=5, help="folds")
    parser.add_argument("--repeats", type=int, default=3, help="shuffles (seeds 0..n-1)")
    parser.add_argument("--precision", type=float, default=0.95, help="of automatic dispatch")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (best is shown)")
    parser.add_argument("--sim", type=int, default=2000, help="simulated texts timed")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--out", type=Path, help="JSON file (default bench/results/<date>classify.json)"
    )
    args = parser.parse_args(argv)

    taxonomy = default_taxonomy()
    examples = load_examples()
    labels = sorted({ex.category for ex in examples})
    print(
        f"{len(examples)} labelled reports, {len(labels)} categories, "
        f"{args.k}-fold x {args.repeats}"
    )
    started = time.perf_counter()
    runs = [
        cross_validate(examples, linear_trainer(taxonomy), k=args.k, seed=s)
        for s in range(args.repeats)
    ]
    cv_s = time.perf_counter() - started
    per_seed = [scores(r) for r in runs]
    baseline = scores(cross_validate(examples, keyword_trainer(taxonomy), k=args.k, seed=0))
    pooled = [p for r in runs for p in r]
    ece, bins = reliability(pooled)
    threshold = choose_threshold(runs[0], args.precision)
    everything = at_threshold(runs[0], threshold)
    held_back = held_back_dispatch(runs[0], args.precision)

    started = time.perf_counter()
    model = LinearClassifier(train(examples, taxonomy, Recipe()), taxonomy)
    startup_s = time.perf_counter() - started
    texts = [ex.text for ex in examples]
    sim = simulated_texts(args.sim, 7)
    cpu = {
        name: {
            str(b): round(cpu_us_per_report(model.classify_many, ts, b, args.rounds), 1)
            for b in BATCHES
        }
        for name, ts in (("labelled", texts), ("simulated", sim))
    }
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "method": METHOD,
        "model": model.version,
        "reports": len(examples),
        "categories": len(labels),
        "folds": args.k,
        "repeats": args.repeats,
        "top1": spread([s.top1 for s in per_seed]),
        "top3": spread([s.top3 for s in per_seed]),
        "macro_f1": spread([s.macro_f1 for s in per_seed]),
        "baseline_keywords_v1": baseline.as_dict(),
        "calibration": {
            "ece": round(ece, 4),
            "bins": [b.__dict__ for b in bins],
            "inverse_temperature": round(model.params.inverse_temperature, 4),
        },
        "triage": {
            "precision_target": args.precision,
            "threshold": threshold,
            "all_held_out": {
                "share_auto": round(everything.share, 4),
                "precision": round(everything.precision, 4),
            },
            "held_back": [
                {
                    "threshold": d.threshold,
                    "share_auto": round(d.share, 4),
                    "precision": round(d.precision, 4),
                    "n": d.n,
                }
                for d in held_back
            ],
        },
        "cpu_us_per_report": cpu,
        "startup_s": round(startup_s, 2),
        "cross_validation_s": round(cv_s, 1),
        "labels": labels,
        "confusion": confusion(pooled, labels),
        "python": sys.version.split()[0],
    }
    top1, top3, f1 = result["top1"], result["top3"], result["macro_f1"]
    print(
        f"{METHOD}: top-1 {top1['mean']:.3f} ({top1['min']:.3f}-{top1['max']:.3f}), "
        f"top-3 {top3['mean']:.3f} ({top3['min']:.3f}-{top3['max']:.3f}), macro-F1 {f1['mean']:.3f}"
    )
    print(
        f"keywords-v1 (baseline): top-1 {baseline.top1:.3f}, top-3 {baseline.top3:.3f}, "
        f"macro-F1 {baseline.macro_f1:.3f}"
    )
    print(f"calibration: ECE {ece:.3f}; bins (confidence -> accuracy, n):")
    for b in bins:
        print(f"    {b.low:.1f}-{b.high:.1f}: {b.confidence:.3f} -> {b.accuracy:.3f} ({b.n})")
    print(
        f"triage threshold for precision >= {args.precision}: {threshold} "
        f"(all held-out: {everything.share:.3f} dispatched automatically, "
        f"precision {everything.precision:.3f})"
    )
    for d in held_back:
        print(
            f"    held back: threshold {d.threshold} -> {d.share:.3f} automatic, "
            f"precision {d.precision:.3f} (n {d.n})"
        )
    print("CPU µs per report by batch size:", cpu)
    print(f"start-up (training on {len(examples)}): {startup_s:.2f}s; cross-validation {cv_s:.0f}s")
    errors: dict[tuple[str, str], int] = {}
    for p in pooled:
        if p.truth != p.found.category:
            errors[(p.truth, p.found.category)] = errors.get((p.truth, p.found.category), 0) + 1
    print("commonest confusions:", sorted(errors.items(), key=lambda kv: -kv[1])[:8])
    if not args.no_write:
        out = args.out or RESULTS / f"{result['date']}classify.json"
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
