"""Drive HTTP load with vegeta (github.com/tsenart/vegeta, built from the Go module proxy into
``.cache/go-bin`` by ``make vegeta``): a constant rate for latency, or as fast as it goes with a
bounded number of workers for throughput. Its JSON report gives the latencies (ns) and the
status codes."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.paths import ROOT

VEGETA = ROOT / ".cache" / "go-bin" / "vegeta"


@dataclass(frozen=True)
class Target:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def json_line(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "url": self.url,
                "header": {k: [v] for k, v in self.headers.items()},
                "body": base64.b64encode(self.body).decode(),
            }
        )


def available() -> bool:
    return VEGETA.exists()


def attack(targets: list[Target], *, rate: int, duration_s: float, workers: int = 64) -> Any:
    """``vegeta attack`` over ``targets`` (in turn, looping) then ``vegeta report -type=json``.
    ``rate`` 0: as fast as ``workers`` connections go."""
    with tempfile.TemporaryDirectory() as tmp:
        tfile = Path(tmp) / "targets.jsonl"
        tfile.write_text("\n".join(t.json_line() for t in targets) + "\n")
        results = Path(tmp) / "results.bin"
        cmd = [
            str(VEGETA),
            "attack",
            "-format=json",
            f"-targets={tfile}",
            f"-duration={duration_s}s",
            f"-rate={rate}/s" if rate else "-rate=0",
            "-timeout=10s",
            "-keepalive=true",
            f"-output={results}",
        ]
        cmd += [f"-max-workers={workers}", f"-workers={workers}"] if not rate else []
        subprocess.run(cmd, check=True, capture_output=True)
        out = subprocess.run(
            [str(VEGETA), "report", "-type=json", str(results)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout)


def summary(report: Any) -> dict[str, Any]:
    """The figures the bench keeps: rate of successful answers, latency quantiles in ms."""
    lat = report["latencies"]
    ok = sum(n for code, n in report["status_codes"].items() if code.startswith("2"))
    return {
        "requests": report["requests"],
        "ok": ok,
        "status_codes": report["status_codes"],
        "ok_per_s": round(ok / (report["duration"] / 1e9), 1) if report["duration"] else 0.0,
        "offered_per_s": round(report["rate"], 1),
        "p50_ms": round(lat["50th"] / 1e6, 2),
        "p90_ms": round(lat["90th"] / 1e6, 2),
        "p99_ms": round(lat["99th"] / 1e6, 2),
        "max_ms": round(lat["max"] / 1e6, 2),
        "errors": report.get("errors", [])[:5],
    }
