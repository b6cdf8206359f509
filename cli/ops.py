"""``wangge ops``: what operators run against a live deployment.

- ``wangge ops topics``: create every missing topic of ``shared.topics`` and verify the existing
  ones (partitions, replication, retention, compaction); exits 1 on drift.
- ``wangge ops lag``: consumer lag of every wangge consumer group, per partition.
- ``wangge ops status``: each service's health, readiness, lag, outbox backlog and dead letters.

Kafka settings come from the environment (``KAFKA_*``, ``WANGGE_TOPIC_PREFIX``); the services'
URLs from ``INTAKE_URL`` / ``DISPATCH_URL`` / ``FEEDBACK_URL`` (written by ``make up`` to .run/env).
docs/operations.md tells what to do with what these print.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from cli.common import console, run, settings
from shared.db import provision_service
from shared.kafka import client_security_kwargs
from shared.settings import Settings
from shared.topics import ALL_TOPICS, TopicSpec, admin_client

app = typer.Typer(help="Operations: topics, consumer lag, service status.", no_args_is_help=True)

SERVICES = ("intake", "dispatch", "feedback")
GROUP_PREFIX = "wangge-"


# --- topics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WantedTopic:
    name: str  # physical
    partitions: int
    replication: int
    config: dict[str, str]


@dataclass
class TopicCheck:
    name: str
    state: str  # "created", "ok" or "drift"
    partitions: int
    replication: int
    problems: list[str] = field(default_factory=list)


def wanted_topics(
    s: Settings, *, partitions: int | None = None, replication: int = 1
) -> list[WantedTopic]:
    """What ``shared.topics`` asks for; ``partitions`` overrides every multi-partition topic
    (single-partition topics stay single: their order is global), as ``ensure_topics`` does."""
    return [
        WantedTopic(
            s.topic(t.name),
            t.partitions if t.partitions == 1 else (partitions or t.partitions),
            replication,
            dict(t.config),
        )
        for t in ALL_TOPICS
    ]


def topic_problems(
    want: WantedTopic, partitions: int, replication: int, config: dict[str, str]
) -> list[str]:
    """How an existing topic differs from what is wanted (empty when it agrees)."""
    problems = []
    if partitions < want.partitions:  # more partitions than asked is fine (never reduced)
        problems.append(f"partitions {partitions} < {want.partitions}")
    if replication < want.replication:
        problems.append(f"replication {replication} < {want.replication}")
    for key, value in sorted(want.config.items()):
        if config.get(key) != value:
            problems.append(f"{key}={config.get(key)} (want {value})")
    return problems


async def check_topics(
    s: Settings, *, partitions: int | None = None, replication: int = 1, create: bool = True
) -> list[TopicCheck]:
    """Create the missing topics (unless ``create`` is false) and compare the others.
    Existing topics are never changed: drift is reported (docs/operations.md says how to fix)."""
    wanted = wanted_topics(s, partitions=partitions, replication=replication)
    admin = admin_client(s)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [w for w in wanted if w.name not in existing]
        out: list[TopicCheck] = []
        if missing and create:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(w.name, w.partitions, w.replication, topic_configs=w.config)
                        for w in missing
                    ]
                )
            out += [TopicCheck(w.name, "created", w.partitions, w.replication) for w in missing]
        elif missing:
            out += [TopicCheck(w.name, "missing", 0, 0, ["does not exist"]) for w in missing]
        present = [w for w in wanted if w.name in existing]
        if present:
            described = {
                t["topic"]: t for t in await admin.describe_topics([w.name for w in present])
            }
            configs = await _topic_configs(admin, [w.name for w in present])
            for w in present:
                parts = described[w.name].get("partitions") or []
                n_parts = len(parts)
                repl = min((len(p.get("replicas", [])) for p in parts), default=0)
                problems = topic_problems(w, n_parts, repl, configs.get(w.name, {}))
                out.append(
                    TopicCheck(w.name, "drift" if problems else "ok", n_parts, repl, problems)
                )
        order = {w.name: i for i, w in enumerate(wanted)}
        return sorted(out, key=lambda c: order[c.name])
    finally:
        await admin.close()


async def _topic_configs(admin: Any, names: list[str]) -> dict[str, dict[str, str]]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n, configs=None) for n in names]
    )
    out: dict[str, dict[str, str]] = {}
    for resp in responses:
        for res in resp.to_object()["resources"]:
            out[res["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in res["config_entries"]
            }
    return out


@app.command("topics")
def topics(
    partitions: int = typer.Option(None, help="partitions of multi-partition topics (default 6)"),
    replication: int = typer.Option(1, help="replication factor (3 in production)"),
    check_only: bool = typer.Option(False, "--check", help="only verify; create nothing"),
) -> None:
    """Create every missing topic and verify partitions, replication, retention, compaction."""
    checks = run(
        check_topics(
            settings(), partitions=partitions, replication=replication, create=not check_only
        )
    )
    table = Table(title="topics")
    for col in ("topic", "state", "partitions", "replication", "problems"):
        table.add_column(col)
    colour = {"ok": "green", "created": "cyan", "drift": "red", "missing": "red"}
    for c in checks:
        table.add_row(
            c.name,
            f"[{colour[c.state]}]{c.state}[/]",
            str(c.partitions),
            str(c.replication),
            "; ".join(c.problems),
        )
    console.print(table)
    if any(c.state in ("drift", "missing") for c in checks):
        raise typer.Exit(1)


@app.command("setup")
def setup(
    partitions: int = typer.Option(None, help="partitions of multi-partition topics (default 6)"),
    replication: int = typer.Option(1, help="replication factor (3 in production)"),
) -> None:
    """One-shot set-up (the compose ``setup`` job): each service's database role and schema
    (admin ``DATABASE_URL``, password ``WANGGE_DB_ROLE_PASSWORD``), then the topics."""
    password = os.environ.get("WANGGE_DB_ROLE_PASSWORD")
    if not password:
        console.print("[red]WANGGE_DB_ROLE_PASSWORD is not set[/red]")
        raise typer.Exit(2)
    s = settings()

    async def _roles() -> None:
        for svc in SERVICES:
            await provision_service(s.database_url.get_secret_value(), svc, password)
            console.print(f"role wangge_{svc} and schema {svc}: ready")

    run(_roles())
    topics(partitions=partitions, replication=replication, check_only=False)


# --- lag -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LagRow:
    group: str  # without the topic prefix
    service: str
    topic: str  # logical
    partition: int
    committed: int | None
    end: int
    lag: int


def group_topic(group: str) -> tuple[str, str] | None:
    """``wangge-dispatch.cases.opened`` -> (``dispatch``, ``cases.opened``); None for groups
    that are not a wangge subscription (see ``Service.subscribe``)."""
    if not group.startswith(GROUP_PREFIX) or "." not in group:
        return None
    service, topic = group[len(GROUP_PREFIX) :].split(".", 1)
    return service, topic


def lag_of(committed: int | None, beginning: int, end: int) -> int:
    """Messages the group has still to read; with no commit it starts at the beginning
    (``auto_offset_reset=earliest``)."""
    start = beginning if committed is None or committed < beginning else committed
    return max(end - start, 0)


async def consumer_lag(s: Settings) -> list[LagRow]:
    """Lag of every wangge consumer group under this topic prefix, per partition."""
    admin = admin_client(s)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **client_security_kwargs(s),
    )
    try:
        await admin.start()
        await consumer.start()
        prefix = s.topic_prefix
        groups = sorted(
            g[0][len(prefix) :]
            for g in await admin.list_consumer_groups()
            if g[0].startswith(prefix) and group_topic(g[0][len(prefix) :])
        )
        rows: list[LagRow] = []
        for group in groups:
            parsed = group_topic(group)
            assert parsed is not None
            service, topic = parsed
            physical = s.topic(topic)
            parts = consumer.partitions_for_topic(physical)
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(physical) or set()
            tps = [TopicPartition(physical, p) for p in sorted(parts)]
            if not tps:
                continue
            committed = await admin.list_consumer_group_offsets(prefix + group)
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            for tp in tps:
                meta = committed.get(tp)
                off = meta.offset if meta is not None and meta.offset >= 0 else None
                rows.append(
                    LagRow(
                        group,
                        service,
                        topic,
                        tp.partition,
                        off,
                        end[tp],
                        lag_of(off, begin[tp], end[tp]),
                    )
                )
        return rows
    finally:
        await consumer.stop()
        await admin.close()


@app.command("lag")
def lag(
    group: str = typer.Option(None, help="only groups containing this text"),
    nonzero: bool = typer.Option(False, "--nonzero", help="only partitions with lag"),
) -> None:
    """Consumer lag per group and partition (committed offset vs end of the partition)."""
    rows = run(consumer_lag(settings()))
    rows = [r for r in rows if (not group or group in r.group) and (not nonzero or r.lag)]
    table = Table(title="consumer lag")
    for col, justify in (
        ("group", "left"),
        ("partition", "right"),
        ("committed", "right"),
        ("end", "right"),
        ("lag", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.group,
            str(r.partition),
            "-" if r.committed is None else str(r.committed),
            str(r.end),
            f"[red]{r.lag}[/]" if r.lag else "0",
        )
    console.print(table)
    console.print(f"total lag: {sum(r.lag for r in rows)}")


# --- status ----------------------------------------------------------------------------------


@dataclass
class ServiceStatus:
    service: str
    url: str
    healthy: bool = False
    ready: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    lag: int | None = None
    outbox_backlog: float | None = None
    dead_letters: float | None = None

    @property
    def state(self) -> str:
        return "ready" if self.ready else ("not ready" if self.healthy else "down")


def _http_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, orjson.loads(exc.read())
        except orjson.JSONDecodeError:
            return exc.code, None
    except (OSError, orjson.JSONDecodeError):
        return 0, None


def metric_totals(text: str) -> dict[str, float]:
    """Every sample of a Prometheus text exposition summed over its labels, by sample name."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


def probe(service: str, url: str) -> ServiceStatus:
    st = ServiceStatus(service, url)
    if not url:
        return st
    code, _ = _http_json(f"{url}/healthz")
    st.healthy = code == 200
    code, body = _http_json(f"{url}/readyz")
    st.ready = code == 200
    if isinstance(body, dict):
        st.checks = body.get("checks", {})
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
            totals = metric_totals(resp.read().decode())
        st.outbox_backlog = totals.get("wangge_outbox_backlog")
        st.dead_letters = totals.get("wangge_dead_letters_total", 0.0)
    except (OSError, ValueError):
        pass
    return st


def service_urls(overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    overrides = overrides or {}
    return {
        svc: (overrides.get(svc) or os.environ.get(f"{svc.upper()}_URL", "")).rstrip("/")
        for svc in SERVICES
    }


def lag_by_service(rows: Iterable[LagRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.service] = out.get(r.service, 0) + r.lag
    return out


async def dlq_depths(s: Settings) -> dict[str, int]:
    """Messages held in each dead-letter topic (end minus beginning offsets)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=s.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **client_security_kwargs(s),
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(s.topic(t.name), p)
            for t in _dlq_specs()
            for p in sorted(consumer.partitions_for_topic(s.topic(t.name)) or ())
        ]
        if not tps:
            return {}
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        out: dict[str, int] = {}
        for tp in tps:
            name = tp.topic[len(s.topic_prefix) :]
            out[name] = out.get(name, 0) + end[tp] - begin[tp]
        return out
    finally:
        await consumer.stop()


def _dlq_specs() -> list[TopicSpec]:
    return [t for t in ALL_TOPICS if t.name.endswith(".dlq")]


async def gather_status(
    s: Settings, urls: dict[str, str]
) -> tuple[list[ServiceStatus], dict[str, int]]:
    statuses = await asyncio.gather(
        *(asyncio.to_thread(probe, svc, urls.get(svc, "")) for svc in SERVICES)
    )
    lags = lag_by_service(await consumer_lag(s))
    for st in statuses:
        st.lag = lags.get(st.service, 0)
    return list(statuses), await dlq_depths(s)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


@app.command("status")
def status(
    intake_url: str = typer.Option(None, help="default $INTAKE_URL"),
    dispatch_url: str = typer.Option(None, help="default $DISPATCH_URL"),
    feedback_url: str = typer.Option(None, help="default $FEEDBACK_URL"),
) -> None:
    """Each service's health, lag, outbox backlog and dead letters in one table."""
    urls = service_urls({"intake": intake_url, "dispatch": dispatch_url, "feedback": feedback_url})
    statuses, dlq = run(gather_status(settings(), urls))
    table = Table(
        title="wangge status",
        caption="lag: all the service's groups; outbox: rows not yet published; "
        "dead letters: by this instance since it started",
    )
    for col, justify in (
        ("service", "left"),
        ("state", "left"),
        ("checks", "left"),
        ("lag", "right"),
        ("outbox", "right"),
        ("dead letters", "right"),
        ("url", "left"),
    ):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    colour = {"ready": "green", "not ready": "yellow", "down": "red"}
    for st in statuses:
        failing = [k for k, ok in st.checks.items() if not ok]
        table.add_row(
            st.service,
            f"[{colour[st.state]}]{st.state}[/]",
            ("failing: " + ", ".join(failing)) if failing else ("ok" if st.checks else "-"),
            _num(st.lag),
            _num(st.outbox_backlog),
            _num(st.dead_letters),
            st.url or "(no URL)",
        )
    console.print(table)
    held = {k: v for k, v in sorted(dlq.items()) if v}
    console.print(
        "dead-letter topics: "
        + (", ".join(f"{k} {v}" for k, v in held.items()) if held else "all empty")
    )
    if not all(st.ready for st in statuses):
        raise typer.Exit(1)
