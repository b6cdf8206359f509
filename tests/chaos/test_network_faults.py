"""Network faults between each service and Kafka and PostgreSQL: nothing lost, nothing doubled.

Every service reaches the broker and the database through a Toxiproxy proxy of its own (the
broker advertises a listener per service on that proxy's port, so that every connection of the
service goes through it; the test's own clients use the broker directly). While the crash suite's
workload runs (reports, handlers' actions, ratings), faults are injected one after the other:

- ``latency``: 300 ms (± 100 ms) added to every packet, both ways, for 10 s;
- ``reset``: every connection reset by peer as soon as it carries data, for 5 s;
- ``partition``: the proxy disabled for 20 s (open connections closed, new ones refused).

After each fault ends, every consumer lag must be back to 0 within 60 s. At the end the crash
suite's invariants hold (every report accounted for once, no effect doubled, every case in the
state its inputs imply, follow-ups and ratings once, metrics equal the event log's).

The default run (``make test``) injects four faults, each kind at least once and on both kinds of
dependency; ``make chaos`` (``WANGGE_FAULTS=all``) every kind on every link: 18 faults.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from devstack import toxiproxy
from devstack.kafka_local import LocalKafka
from devstack.paths import RUN, free_port
from devstack.postgres_local import LocalPostgres
from devstack.stack import SERVICES
from devstack.testbed import Testbed, create_testbed, destroy_testbed
from devstack.toxiproxy import Toxiproxy
from tests.chaos.test_crash_suite import (
    check_feedback,
    consumer_lags,
    run_workload,
    service_processes,
    start_all,
)

RECOVERY_S = 60.0
KINDS = ("latency", "reset", "partition")
DEPENDENCIES = ("kafka", "postgres")
HOLD_S = {"latency": 10.0, "reset": 5.0, "partition": 20.0}

pytestmark = [
    pytest.mark.skipif(
        toxiproxy.binary() is None,
        reason="Toxiproxy is not built: install Go, run `make toxiproxy`",
    ),
    # its own Kafka, PostgreSQL and Toxiproxy start in the first test: 230 s at load 12 here
    pytest.mark.watchdog(600),
]


@dataclass(frozen=True)
class Fault:
    service: str
    dependency: str
    kind: str

    @property
    def proxy(self) -> str:
        return f"{self.service}-{self.dependency}"


def plan() -> list[Fault]:
    if os.environ.get("WANGGE_FAULTS") == "all":
        return [Fault(s, d, k) for k in KINDS for d in DEPENDENCIES for s in SERVICES]
    return [
        Fault("intake", "kafka", "latency"),
        Fault("dispatch", "postgres", "reset"),
        Fault("feedback", "kafka", "partition"),
        Fault("intake", "postgres", "partition"),
    ]


@dataclass
class NetworkChaos:
    proxy: Toxiproxy
    bed: Testbed
    faults: list[Fault]
    log: list[str] = field(default_factory=list)
    recoveries: list[tuple[Fault, float]] = field(default_factory=list)
    _offering: asyncio.Event = field(default_factory=asyncio.Event)

    async def gate(self) -> None:
        """Reports are offered while a fault is on (they pile up behind it), so that the lag
        that must drain after it is real."""
        await self._offering.wait()

    async def run(self, window_s: float) -> None:
        start = time.monotonic()
        for fault in self.faults:
            self.log.append(f"{time.monotonic() - start:6.1f}s {fault}")
            await asyncio.to_thread(self.inject, fault)
            self._offering.set()
            await asyncio.sleep(HOLD_S[fault.kind])
            self._offering.clear()
            await asyncio.to_thread(self.proxy.reset)
            ended = time.monotonic()
            await self.lags_drain(fault, ended)
            self.recoveries.append((fault, time.monotonic() - ended))
        self._offering.set()  # whatever is left goes now

    def inject(self, fault: Fault) -> None:
        if fault.kind == "partition":
            self.proxy.enable(fault.proxy, False)
            return
        for stream in ("downstream", "upstream"):
            if fault.kind == "latency":
                self.proxy.toxic(fault.proxy, "latency", stream, latency=300, jitter=100)
            else:
                self.proxy.toxic(fault.proxy, "reset_peer", stream, timeout=0)

    async def lags_drain(self, fault: Fault, since: float) -> None:
        while True:
            try:
                lags = await consumer_lags(self.bed)
            except Exception as exc:  # the broker is fine; a probe may still time out
                lags = {"probe": repr(exc)}  # type: ignore[dict-item]
            if lags and not any(lags.values()):
                return
            if time.monotonic() - since > RECOVERY_S:
                raise AssertionError(f"lags not back to 0 {RECOVERY_S}s after {fault}: {lags}")
            await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
def fault_infra() -> Iterator[tuple[LocalKafka, LocalPostgres, Toxiproxy, dict[str, int]]]:
    run_dir = RUN / "faults"
    shutil.rmtree(run_dir / "kafka", ignore_errors=True)  # its listeners' ports are new each run
    ports = {f"{s}-{d}": free_port() for s in SERVICES for d in DEPENDENCIES}
    kafka = LocalKafka(run_dir, proxied={s: ports[f"{s}-kafka"] for s in SERVICES})
    pg = LocalPostgres(run_dir)
    proxy = Toxiproxy(run_dir)
    kafka.start()
    pg.start()
    proxy.start()
    upstream = {s.upper(): p for s, p in kafka.listener_ports.items()}
    for s in SERVICES:
        proxy.proxy(f"{s}-kafka", ports[f"{s}-kafka"], upstream[s.upper()])
        proxy.proxy(f"{s}-postgres", ports[f"{s}-postgres"], pg.port)
    yield kafka, pg, proxy, ports
    proxy.stop()
    kafka.stop()
    pg.stop()


def _via(dsn: str, port: int) -> str:
    p = urlsplit(dsn)
    netloc = f"{p.netloc.rpartition('@')[0]}@127.0.0.1:{port}"
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


async def test_network_faults_lose_and_double_nothing(
    fault_infra: tuple[LocalKafka, LocalPostgres, Toxiproxy, dict[str, int]], tmp_path: Path
) -> None:
    kafka, pg, proxy, ports = fault_infra
    bed = await create_testbed(kafka.bootstrap, pg.admin_dsn, partitions=3)
    procs = service_processes(
        bed,
        tmp_path,
        lambda name: {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports[f'{name}-kafka']}",
            "DATABASE_URL": _via(bed.service_dsns[name], ports[f"{name}-postgres"]),
        },
    )
    faults = plan()
    chaos = NetworkChaos(proxy, bed, faults)
    try:
        await start_all(procs)
        # about 8 reports a second while a fault is on (the pacing counts only open time)
        window = sum(HOLD_S[f.kind] for f in faults)
        await run_workload(
            bed, chaos, random.Random(20261201), tmp_path, reports_n=int(window * 7), window=window
        )
        await check_feedback(bed, procs["feedback"].url)
        # faults are not crashes: every service process lived through all of them
        assert all(p.proc is not None and p.proc.poll() is None for p in procs.values())
    finally:
        (tmp_path / "faults.log").write_text(
            "\n".join([*chaos.log, *(f"{f}: lags 0 after {s:.1f}s" for f, s in chaos.recoveries)])
        )
        for p in procs.values():
            p.terminate()
        await asyncio.to_thread(proxy.reset)
        await destroy_testbed(bed, pg.admin_dsn)
    assert [f for f, _ in chaos.recoveries] == faults
    assert all(s <= RECOVERY_S for _, s in chaos.recoveries)
