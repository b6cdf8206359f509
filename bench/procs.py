"""Services as processes (``python -m services.<name>``, as ``make up`` runs them) against a
testbed, with their memory (RSS) and their own /metrics; and the machine they run on."""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack.paths import ROOT
from devstack.testbed import Testbed
from devstack.wait import wait_until


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) ``pid`` has used, in seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_program(*programs: str) -> dict[str, float]:
    """CPU seconds used so far by every process whose command name (``/proc/PID/comm``) is one
    of ``programs`` (``java`` for Kafka, ``postgres`` for PostgreSQL's server and backends), summed
    per name. Processes that ended since the last call are missing from the next: compare
    snapshots taken while the same processes live (the bench's pipeline step)."""
    out = dict.fromkeys(programs, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm in out:
                out[comm] += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue  # ended while we looked
    return out


def machine_cpu_seconds() -> tuple[float, float, float]:
    """(busy, stolen, total) CPU seconds of the whole machine since boot, all cores (from
    /proc/stat). Stolen is the time the hypervisor gave this virtual machine's cores to others:
    not busy here, but not available either (a noisy neighbour)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]  # guest is within user
    hz = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / hz, steal / hz, (busy + idle + iowait + steal) / hz


def machine() -> dict[str, object]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "memory_mb": mem_kb // 1024,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": list(os.getloadavg()),
    }


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    rss_start_mb: float = 0.0
    rss_samples: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); log: {self.log}")
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def rss(self) -> float:
        mb = rss_mb(self.proc.pid)
        self.rss_samples.append(mb)
        return mb

    def metric(self, name: str, topic: str) -> float:
        """``name{topic=...}`` from the process's own /metrics (0 when absent)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as r:
            text = r.read().decode()
        m = re.search(r"^" + name + r'\{topic="' + re.escape(topic) + r'"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    def consumed(self, topic: str) -> float:
        """``wangge_messages_consumed_total{topic=...}``."""
        return self.metric("wangge_messages_consumed_total", topic)

    def batches(self, topic: str) -> dict[str, float]:
        """How many batches of ``topic`` the process applied so far, and their mean size."""
        n = self.metric("wangge_consumed_batch_messages_count", topic)
        total = self.metric("wangge_consumed_batch_messages_sum", topic)
        return {"batches": n, "mean_messages": round(total / n, 1) if n else 0.0}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_service(
    bed: Testbed,
    name: str,
    logs: Path,
    *,
    tag: str = "",
    profile_to: Path | None = None,
    env_over: dict[str, str] | None = None,
) -> ServiceProcess:
    """``python -m services.<name>`` with the testbed's Kafka, prefix and the service's own DSN;
    under pyinstrument when ``profile_to`` is given (the profile is written at SIGINT)."""
    env = bed.process_env(name, **(env_over or {}))
    port = int(env["WANGGE_HTTP_PORT"])
    cmd = [sys.executable, "-m", f"services.{name}"]
    if profile_to is not None:
        cmd = [
            sys.executable,
            "-m",
            "pyinstrument",
            "--renderer",
            os.environ.get("WANGGE_PROFILE_RENDERER", "text"),
            "--outfile",
            str(profile_to),
            "-m",
            f"services.{name}",
        ]
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}{tag}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServiceProcess(name, proc, port, log)


def wait_ready(*procs: ServiceProcess, timeout: float = 90) -> None:
    for p in procs:
        wait_until(p.ready, timeout=timeout, interval=0.2, what=f"{p.name} /readyz ({p.log})")
        p.rss_start_mb = p.rss()


REST_PROGRAMS = {"java": "kafka", "postgres": "postgresql"}


def cpu_snapshot(*procs: ServiceProcess) -> dict[str, float]:
    busy, stolen, total = machine_cpu_seconds()
    by_program = cpu_seconds_by_program(*REST_PROGRAMS)
    return {
        "machine": busy,
        "stolen": stolen,
        "wall": total,
        **{p.name: cpu_seconds(p.proc.pid) for p in procs},
        **{f"rest:{name}": by_program[comm] for comm, name in REST_PROGRAMS.items()},
        "rest:bench": cpu_seconds(os.getpid()),
    }


def cpu_per_report(
    start: dict[str, float], end: dict[str, float], reports: int
) -> dict[str, float]:
    used = {k: end[k] - start[k] for k in start}
    machine = ("machine", "stolen", "wall")
    services = {k: v for k, v in used.items() if k not in machine and ":" not in k}
    per = max(1, reports)
    out: dict[str, float] = {k: round(v / per * 1e6) for k, v in services.items()}
    rest = used["machine"] - sum(services.values())
    out["rest_of_machine"] = round(rest / per * 1e6)
    # the rest split: Kafka's JVM, PostgreSQL's processes, the benchmark's own process (its
    # reader), and what is left (other processes, the kernel's own work)
    parts = {k.split(":", 1)[1]: v for k, v in used.items() if k.startswith("rest:")}
    out.update({f"rest_{k}": round(v / per * 1e6) for k, v in parts.items()})
    out["rest_other"] = round((rest - sum(parts.values())) / per * 1e6)
    wall = used["wall"] or 1
    out["machine_busy_pct"] = round(100 * used["machine"] / wall)
    out["machine_stolen_pct"] = round(100 * used["stolen"] / wall)
    return out
