"""Toxiproxy (github.com/Shopify/toxiproxy/v2) as a local process: TCP proxies that add network
faults (latency, connections reset, a partition) between a service and Kafka or PostgreSQL.

``make toxiproxy`` builds the server from the Go module proxy into ``.cache/toxiproxy/`` (nothing
is downloaded from anywhere else); ``binary()`` finds it. Its HTTP API is small, so it is driven
here with the standard library: proxies are created with ``proxy``, faults added with ``toxic``,
a proxy disabled (every connection closed, new ones refused) with ``enable(name, False)``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devstack.paths import CACHE, free_port, pid_alive, port_open
from devstack.wait import wait_until

BINARY = CACHE / "toxiproxy" / "server"


def binary() -> Path | None:
    return BINARY if BINARY.exists() else None


class Toxiproxy:
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "toxiproxy"
        self.log = self.dir / "toxiproxy.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = binary()
        if exe is None:
            raise RuntimeError(f"Toxiproxy is not built ({BINARY}): run `make toxiproxy`")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "-host", "127.0.0.1", "-port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(lambda: port_open(self.port), timeout=20, interval=0.1, what="Toxiproxy")

    def stop(self) -> None:
        if self.proc is not None and pid_alive(self.proc.pid):
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.api}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:  # its body says why (e.g. the listen port is taken)
            reason = e.read().decode(errors="replace")[:500]
            raise RuntimeError(f"Toxiproxy {method} {path}: {e.code} {reason}") from e
        return json.loads(raw) if raw else None

    def proxy(self, name: str, listen_port: int, upstream_port: int) -> None:
        self._call(
            "POST",
            "/proxies",
            {
                "name": name,
                "listen": f"127.0.0.1:{listen_port}",
                "upstream": f"127.0.0.1:{upstream_port}",
                "enabled": True,
            },
        )

    def toxic(self, proxy: str, kind: str, stream: str = "downstream", **attributes: int) -> str:
        """Add a toxic (``latency`` with ``latency``/``jitter`` ms, ``reset_peer`` with
        ``timeout`` ms...) to one direction of ``proxy``; returns its name."""
        name = f"{kind}_{stream}"
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            },
        )
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def enable(self, proxy: str, enabled: bool) -> None:
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._call("POST", "/reset")
