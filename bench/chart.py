"""The benchmark's chart: throughput against the limit, latency percentiles, completions per
second during the throughput run, and memory over the run (matplotlib, the bench extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def draw(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    m = r.get("machine", {})
    fig.suptitle(
        f"wangge bench {r.get('started_at', '')} - {m.get('cores')} cores, {m.get('memory_mb')} MB"
    )

    ax = axes[0][0]
    targets = r.get("targets", {})
    names = ["bare hop", "2 hops chained", "plumbing", "pipeline", "target"]
    keys = ("limit", "limit_chain", "limit_plumbing", "pipeline")
    values = [r.get(f"{k}_reports_per_s") or 0 for k in keys]
    values.append(targets.get("pipeline_reports_per_s", 0))
    ax.bar(names, values, color=["#999999", "#777777", "#555555", "#1f77b4", "#2ca02c"])
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom")
    ax.set_ylabel("reports/s")
    ax.set_title(f"throughput (ratio to the chained limit {r.get('ratio_to_chain_limit')})")

    ax = axes[0][1]
    lat = r.get("latency_ms", {})
    loads = sorted(lat, key=float)
    width = 0.25
    for j, q in enumerate(("p50", "p95", "p99")):
        xs = [i + (j - 1) * width for i in range(len(loads))]
        ax.bar(xs, [lat[k].get(q) or 0 for k in loads], width, label=q)
    p99_target = targets.get("latency_p99_ms_at_200", 50)
    ax.axhline(p99_target, color="red", linestyle="--", label="p99 target at 200/s")
    ax.set_xticks(range(len(loads)), [f"{k}/s offered" for k in loads])
    ax.set_yscale("log")
    ax.set_ylabel("ms, publish -> cases.dispatched")
    ax.set_title("latency")
    ax.legend()

    ax = axes[1][0]
    per_s = r.get("pipeline", {}).get("per_second", [])
    ax.plot(range(len(per_s)), per_s)
    ax.axhline(r.get("limit_reports_per_s") or 0, color="#999999", linestyle="--", label="limit")
    ax.set_xlabel("s since first completion")
    ax.set_ylabel("reports completed per second")
    ax.set_title("throughput run (backlog drain)")
    ax.legend()

    ax = axes[1][1]
    for label, samples in r.get("rss_samples", {}).items():
        if samples:
            ax.plot([t for t, _ in samples], [mb for _, mb in samples], label=label)
    ax.set_xlabel("s since start")
    ax.set_ylabel("RSS MiB")
    sweep = r.get("sweep_ms_1m_open")
    ax.set_title(f"memory (sweep over 1M open cases: {sweep} ms)")
    ax.legend()

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
