"""Prometheus metrics of one service instance (its own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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
        self.outbox_backlog = Gauge(
            "wangge_outbox_backlog", "Rows waiting in the outbox", registry=reg
        )
        self.service = service

    def observe_consumed(self, topic: str, seconds: float) -> None:
        self.consumed.labels(topic).inc()
        self.latency.labels(topic).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
