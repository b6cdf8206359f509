"""Prometheus metrics of one service instance (its own registry, so tests can run several).

Besides the pipeline's own metrics, a service may add its own gauges and counters and refresh
them when ``/metrics`` is scraped (values that live in the database, such as open cases)::

    open_cases = svc.metrics.gauge("wangge_open_cases", "Open cases by tier", ["tier"])

    @svc.metrics.on_scrape
    async def _count_open() -> None:
        for r in await svc.pool.fetch("SELECT tier, count(*) AS n FROM cases ... GROUP BY tier"):
            open_cases.labels(r["tier"]).set(r["n"])

A hook that fails or takes longer than ``SCRAPE_HOOK_TIMEOUT_S`` is counted in
``wangge_scrape_hook_failures_total`` and leaves its metrics at their previous values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ScrapeHook = Callable[[], Awaitable[None]]
SCRAPE_HOOK_TIMEOUT_S = 5.0


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.consumed = Counter(
            "wangge_messages_consumed_total", "Messages consumed", ["topic"], registry=reg
        )
        self.published = Counter(
            "wangge_messages_published_total",
            "Messages published by the outbox relay",
            ["topic"],
            registry=reg,
        )
        self.latency = Histogram(
            "wangge_processing_seconds",
            "Time to process one input message",
            ["topic"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=reg,
        )
        self.batch_size = Histogram(
            "wangge_consumed_batch_messages",
            "Messages in one polled batch (applied in one transaction and one offset commit)",
            ["topic"],
            buckets=(1, 5, 20, 50, 100, 200, 350, 500, 1000),
            registry=reg,
        )
        self.failures = Counter(
            "wangge_processing_failures_total",
            "Processing failures",
            ["topic", "kind"],
            registry=reg,
        )
        self.dead_letters = Counter(
            "wangge_dead_letters_total",
            "Messages sent to a dead-letter topic",
            ["topic"],
            registry=reg,
        )
        self.outbox_parked = Counter(
            "wangge_outbox_parked_total",
            "Events the broker refused for good, kept in the table outbox_parked",
            registry=reg,
        )
        self.outbox_backlog = Gauge(
            "wangge_outbox_backlog", "Rows waiting in the outbox", registry=reg
        )
        self.scrape_hook_failures = Counter(
            "wangge_scrape_hook_failures_total",
            "Scrape-time refresh hooks that failed or timed out",
            ["hook"],
            registry=reg,
        )
        self.service = service
        self._scrape_hooks: list[ScrapeHook] = []

    def observe_consumed(self, topic: str, seconds: float, count: int = 1) -> None:
        """``count`` messages of ``topic`` consumed, each in ``seconds`` (a batch's share)."""
        self.consumed.labels(topic).inc(count)
        self.batch_size.labels(topic).observe(count)
        latency = self.latency.labels(topic)
        for _ in range(count):
            latency.observe(seconds)

    def observe_published(self, topic: str, count: int = 1) -> None:
        self.published.labels(topic).inc(count)

    # --- a service's own metrics --------------------------------------------------------------

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Gauge:
        """A gauge in this instance's registry (set it from an ``on_scrape`` hook or directly)."""
        return Gauge(name, documentation, list(labelnames), registry=self.registry)

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """A counter in this instance's registry (``name`` without the ``_total`` suffix)."""
        return Counter(name, documentation, list(labelnames), registry=self.registry)

    def on_scrape(self, hook: ScrapeHook) -> ScrapeHook:
        """Run ``hook`` before each ``/metrics`` rendering (usable as a decorator)."""
        self._scrape_hooks.append(hook)
        return hook

    async def refresh(self) -> None:
        """Run every scrape hook; a failing or slow hook is counted, never raised."""
        for hook in self._scrape_hooks:
            try:
                async with asyncio.timeout(SCRAPE_HOOK_TIMEOUT_S):
                    await hook()
            except Exception:
                self.scrape_hook_failures.labels(getattr(hook, "__name__", "hook")).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
