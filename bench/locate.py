"""Micro-benchmark of intake's location index: microseconds per ``locate`` call.

    .venv/bin/python -m bench.locate                      # the index in the working tree
    .venv/bin/python -m bench.locate --baseline 7dd624b   # and the one at that git revision

The index is built from the default simulated district (``sim.territory``: 1,272 grids, about
25,000 buildings); the reports are drawn by the simulator's ``ReportFactory`` (its mix of
building codes, grid codes, points and addresses, with texts naming buildings), so this is the
work intake does per report. Each report is located once per round; the figure is the best
round's mean (the machine is shared). With ``--baseline``, both indexes run in the same process,
rounds interleaved, and the share of reports they locate identically is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.classify import load_source  # noqa: E402
from shared.contract.events import ReportLocation  # noqa: E402
from sim.territory import generate_territory  # noqa: E402
from sim.workload import Mix, ReportFactory  # noqa: E402


def index_of(module: Any, territory: Any) -> Any:
    units = [
        module.UnitInfo(
            code=u.code,
            name=u.name,
            level=u.level,
            parent=u.parent,
            aliases=tuple(u.aliases),
            area=tuple(u.area) if u.area else None,
        )
        for u in territory.units
    ]
    return module.RegistryIndex.build(units)


def _plain(located: Any) -> tuple[str, str, str] | None:
    return None if located is None else (located.code, located.level, located.by)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="git revision of locate.py to compare against")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (best is shown)")
    parser.add_argument("--reports", type=int, default=5000, help="number of reports")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    territory = generate_territory(seed=1)
    factory = ReportFactory(territory, seed=args.seed, mix=Mix.clean())
    reports = []
    for _ in range(args.reports):
        _, body = factory.next()
        text = f"{body.get('title') or ''}\n{body['description']}"
        reports.append((ReportLocation.model_validate(body["location"]), text))
    modules = {"working tree": load_source("services/intake/locate.py", None)}
    if args.baseline:
        modules = {
            args.baseline: load_source("services/intake/locate.py", args.baseline),
            **modules,
        }
    indexes = {}
    for name, module in modules.items():
        started = time.perf_counter()
        indexes[name] = index_of(module, territory)
        print(f"{name}: index built in {time.perf_counter() - started:.2f} s")

    timings: dict[str, list[float]] = {name: [] for name in indexes}
    for _ in range(args.rounds):
        for name, index in indexes.items():  # interleaved: both see the same load
            started = time.perf_counter()
            for loc, text in reports:
                index.locate(loc, text)
            timings[name].append((time.perf_counter() - started) / len(reports) * 1e6)
    print(f"python {sys.version.split()[0]}, {len(reports)} reports, best of {args.rounds} rounds")
    for name, runs in timings.items():
        print(
            f"{name:14s} µs per locate: best {min(runs):6.1f},",
            f"median {statistics.median(runs):6.1f}",
        )
    if len(indexes) == 2:
        a, b = indexes.values()
        same = sum(_plain(a.locate(loc, t)) == _plain(b.locate(loc, t)) for loc, t in reports)
        print(f"same result on {same / len(reports):.3f} of the reports")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
