"""Micro-benchmark of intake's classifier: microseconds per ``classify`` call on unique texts.

    .venv/bin/python -m bench.classify                      # the classifier in the working tree
    .venv/bin/python -m bench.classify --baseline a52b4f0   # and the one at that git revision

Two sets of texts: the shipped labelled reports (``services/intake/data/reports-labeled.jsonl``)
and reports drawn the way the simulator draws them (``sim.texts.report_text``: a labelled
example, sometimes prefixed with the building, or a per-category template naming the building),
formatted as intake formats them (title, newline, description). Each text is classified once per
round; the figure is the best round's mean (the machine is shared, the best round is the least
disturbed). The classifier keeps no cache of texts, so repeated texts cost the same as new ones.

Also printed: start-up (import and training), and the share of simulated template texts given
their intended category (templates are not in the training file, so this is a held-out check).
With ``--baseline``, both classifiers run in the same process, rounds interleaved, and their
agreement on the simulated texts is printed.
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sim.territory import TerritorySize, generate_territory  # noqa: E402
from sim.texts import report_text  # noqa: E402
from sim.workload import CATEGORY_WEIGHTS  # noqa: E402


@dataclass(frozen=True)
class Text:
    text: str
    category: str
    template: bool  # drawn from a sim template, not from the labelled file


def labelled_texts() -> list[Text]:
    from services.intake.classify import load_examples

    return [Text(ex.text, ex.category, False) for ex in load_examples()]


def simulated_texts(n: int, seed: int) -> list[Text]:
    rng = random.Random(seed)
    buildings = generate_territory(TerritorySize.small(), seed=seed).buildings
    codes, weights = list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values())
    out = []
    for _ in range(n):
        category = rng.choices(codes, weights=weights)[0]
        b = rng.choice(buildings)
        place = b.name.replace("小区", "") if rng.random() < 0.6 else b.name
        text, example = report_text(category, place, rng)
        out.append(Text(f"\n{text}", category, example is None))  # no title, as the simulator
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


@dataclass
class Candidate:
    name: str
    classify: Callable[[str], Any]
    startup_s: float


def startup_seconds(rev: str | None) -> float:
    """Import and training in a fresh interpreter, as a service starts (``--startup``)."""
    cmd = [sys.executable, "-m", "bench.classify", "--startup", rev or "-"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return float(out.strip())


def load(rev: str | None) -> ModuleType:
    return load_source("services/intake/classify.py", rev)


def candidate(rev: str | None) -> Candidate:
    model = load(rev).trained_classifier(None)
    return Candidate(rev or "working tree", model.classify, startup_seconds(rev))


def per_call_us(classify: Callable[[str], Any], texts: list[Text]) -> float:
    started = time.perf_counter()
    for t in texts:
        classify(t.text)
    return (time.perf_counter() - started) / len(texts) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision of classify.py to compare against")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per set (best is shown)")
    parser.add_argument("--sim", type=int, default=2000, help="number of simulated texts")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated texts")
    parser.add_argument("--startup", metavar="REV", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.startup:  # the child of startup_seconds: nothing imported yet but this module's
        started = time.perf_counter()
        load(None if args.startup == "-" else args.startup).trained_classifier(None)
        print(time.perf_counter() - started)
        return 0
    revisions = [args.baseline] if args.baseline else []
    candidates = [candidate(rev) for rev in [*revisions, None]]
    sets = {"labelled": labelled_texts(), "simulated": simulated_texts(args.sim, args.seed)}

    print(f"python {sys.version.split()[0]}, best of {args.rounds} rounds, µs per classify call")
    print(f"{'classifier':14s} {'start-up s':>10s}", end="")
    for name, texts in sets.items():
        print(f" {name + f' ({len(texts)})':>18s} {'median':>8s}", end="")
    print(f" {'templates ok':>13s}")
    timings: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for set_name, texts in sets.items():
            for c in candidates:  # interleaved: both see the same load
                timings.setdefault((c.name, set_name), []).append(per_call_us(c.classify, texts))
    templates = [t for t in sets["simulated"] if t.template]
    for c in candidates:
        print(f"{c.name:14s} {c.startup_s:10.2f}", end="")
        for set_name in sets:
            runs = timings[(c.name, set_name)]
            print(f" {min(runs):18.1f} {statistics.median(runs):8.1f}", end="")
        ok = sum(c.classify(t.text).category == t.category for t in templates)
        print(f" {ok / len(templates):13.3f}")
    if len(candidates) == 2:
        a, b = candidates
        same = sum(
            a.classify(t.text).category == b.classify(t.text).category for t in sets["simulated"]
        )
        print(f"same category on simulated texts: {same / len(sets['simulated']):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
