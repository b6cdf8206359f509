"""Precision and recall of intake's rule for duplicates across channels on labelled pairs.

    .venv/bin/python -m bench.duplicates              # the rule, its default thresholds
    .venv/bin/python -m bench.duplicates --radius 200 --similarity 0.45
    .venv/bin/python -m bench.duplicates --sweep      # and a table of other thresholds

Each line of ``services/intake/data/duplicate-pairs.jsonl`` (built by
``scripts/build_duplicate_pairs.py``) is a report that opened a case (``a``) and a later report
(``b``), labelled the same matter or not, each with its channel, category, point in the system
its channel sends (``crs``) and time. The rule sees what intake sees: both points converted to
WGS-84 (``services.intake.coords``), the texts as ``matter_text`` and the categories; a pair is
predicted the same matter when ``NearbyRule.match`` says so. Printed: precision, recall, the
confusion counts, the result per kind of pair, and the mean cost of one comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from services.intake.coords import to_wgs84  # noqa: E402
from services.intake.similarity import NearbyCase, NearbyRule, Sketch, matter_text  # noqa: E402

PAIRS = ROOT / "services" / "intake" / "data" / "duplicate-pairs.jsonl"


def sketch(r: dict[str, Any]) -> Sketch:
    lon, lat = to_wgs84(r["lon"], r["lat"], r["crs"])
    return Sketch(r["category"], lon, lat, matter_text(r["text"]))


def load(path: Path = PAIRS) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(pairs: list[dict[str, Any]], rule: NearbyRule) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    for p in pairs:
        case = NearbyCase("case", sketch(p["a"]))
        predicted = rule.match(sketch(p["b"]), case) is not None
        outcome = ("t" if predicted == p["same"] else "f") + ("p" if predicted else "n")
        counts[outcome] += 1
        by_kind.setdefault(p["kind"], Counter())[outcome] += 1
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "pairs": len(pairs),
        "same_matter": tp + fn,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "counts": dict(counts),
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
    }


def cost_us(pairs: list[dict[str, Any]], rule: NearbyRule, rounds: int = 5) -> float:
    """Microseconds per comparison of a report with a case (conversion included), best round."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for p in pairs:
            rule.match(sketch(p["b"]), NearbyCase("case", sketch(p["a"])))
        best = min(best, (time.perf_counter() - start) / len(pairs))
    return best * 1e6


def main(argv: list[str] | None = None) -> None:
    default = NearbyRule()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, default=PAIRS)
    ap.add_argument("--radius", type=float, default=default.radius_m, help="metres")
    ap.add_argument("--similarity", type=float, default=default.min_similarity, help="0..1")
    ap.add_argument("--sweep", action="store_true", help="also other thresholds")
    ap.add_argument("--json", action="store_true", help="the result as JSON")
    args = ap.parse_args(argv)
    pairs = load(args.pairs)
    rule = NearbyRule(args.radius, args.similarity)
    result = evaluate(pairs, rule)
    result["rule"] = {"radius_m": rule.radius_m, "min_similarity": rule.min_similarity}
    result["cost_us_per_comparison"] = round(cost_us(pairs, rule), 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    c = result["counts"]
    print(f"{result['pairs']} pairs, {result['same_matter']} the same matter ({args.pairs.name})")
    print(f"rule: same category, within {rule.radius_m:g} m, similarity >= {rule.min_similarity}")
    print(f"precision {result['precision']:.3f}  recall {result['recall']:.3f}")
    print(f"tp {c.get('tp', 0)}  fp {c.get('fp', 0)}  fn {c.get('fn', 0)}  tn {c.get('tn', 0)}")
    for kind, k in result["by_kind"].items():
        print(f"  {kind:24} " + "  ".join(f"{o} {n}" for o, n in sorted(k.items())))
    print(f"{result['cost_us_per_comparison']} µs per comparison")
    if args.sweep:
        print("\nradius_m  similarity  precision  recall")
        for radius in (100, 150, 200, 300):
            for sim in (0.4, 0.45, 0.5, 0.55, 0.6):
                r = evaluate(pairs, NearbyRule(radius, sim))
                print(f"{radius:8}  {sim:10}  {r['precision']:9.3f}  {r['recall']:6.3f}")


if __name__ == "__main__":
    main()
