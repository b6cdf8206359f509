"""``wangge ops``: what operators run against a live deployment.

- ``wangge ops topics``: create every missing topic of ``shared.contract.topics`` and verify the
  existing ones (partitions, replication, ``min.insync.replicas``, retention, compaction); exits
  1 on drift.
- ``wangge ops lag``: consumer lag of every wangge consumer group, per partition.
- ``wangge ops status``: each service's health, readiness, lag, outbox backlog and dead letters.

Kafka settings come from the environment (``KAFKA_*``, ``WANGGE_TOPIC_PREFIX``); the services'
URLs from ``INTAKE_URL`` / ``DISPATCH_URL`` / ``FEEDBACK_URL`` (written by ``make up`` to .run/env).
docs/operations.md tells what to do with what these print.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from cli.common import console, err_console, run, settings
from shared.contract.acls import topics_of
from shared.contract.topics import ALL_TOPICS, TopicSpec, topic_config
from shared.runtime.db import KIT_MIGRATIONS, connect, ident, migrate, provision_service
from shared.runtime.kafka import client_security_kwargs
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client

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
    """What ``shared.contract.topics`` asks for; ``partitions`` overrides every multi-partition
    topic (single-partition topics stay single: their order is global), as ``ensure_topics``
    does; ``min.insync.replicas`` follows the replication factor (``min_insync_replicas``)."""
    return [
        WantedTopic(
            s.topic(t.name),
            t.partitions if t.partitions == 1 else (partitions or t.partitions),
            replication,
            topic_config(t, replication),
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


def service_migrations(service: str) -> dict[str, Path]:
    """The migration folders a service applies to its own schema (as ``Service`` does at start)."""
    folder = Path(str(importlib.resources.files(f"services.{service}") / "migrations"))
    return {"shared": KIT_MIGRATIONS, service: folder}


def role_password(service: str) -> str:
    """The password ``wangge ops setup`` gives role ``wangge_<service>``: the one in the
    service's own DSN ``WANGGE_<SERVICE>_DATABASE_URL`` when that is set (on Kubernetes the Job
    reads the Secret the service reads, so the two cannot differ), else
    ``WANGGE_DB_ROLE_PASSWORD``. ValueError (naming variables, never values) otherwise."""
    var = f"WANGGE_{service.upper()}_DATABASE_URL"
    role = f"wangge_{service}"
    if dsn := os.environ.get(var):
        parts = urlsplit(dsn)
        if parts.username != role:
            raise ValueError(f"{var} must connect as {role}")
        if not parts.password:
            raise ValueError(f"{var} has no password")
        return unquote(parts.password)
    if password := os.environ.get("WANGGE_DB_ROLE_PASSWORD"):
        return password
    raise ValueError(f"set {var} (the service's own DSN) or WANGGE_DB_ROLE_PASSWORD")


@app.command("setup")
def setup(
    partitions: int = typer.Option(None, help="partitions of multi-partition topics (default 6)"),
    replication: int = typer.Option(1, help="replication factor (3 in production)"),
    with_topics: bool = typer.Option(
        True,
        "--topics/--no-topics",
        help="create and verify the topics; --no-topics where Strimzi's Topic Operator makes "
        "them from KafkaTopic resources",
    ),
) -> None:
    """One-shot set-up (the compose ``setup`` job, the Kubernetes ``wangge-setup`` Job): each
    service's database role and schema (admin ``DATABASE_URL``) with the migrations of this
    release, applied as the service's role, then the topics. Each role's password comes from
    ``WANGGE_<SERVICE>_DATABASE_URL`` (the service's DSN), else ``WANGGE_DB_ROLE_PASSWORD``.
    Idempotent: run it for every release (``wangge ops wait`` tells the services it has)."""
    try:
        passwords = {svc: role_password(svc) for svc in SERVICES}
    except ValueError as exc:
        err_console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    s = settings()

    async def _roles() -> None:
        for svc in SERVICES:
            dsn = await provision_service(s.database_url.get_secret_value(), svc, passwords[svc])
            conn = await connect(os.environ.get(f"WANGGE_{svc.upper()}_DATABASE_URL") or dsn)
            try:
                applied = await migrate(conn, svc, service_migrations(svc))
            finally:
                await conn.close()
            done = ("applied " + ", ".join(applied)) if applied else "migrations up to date"
            console.print(f"role wangge_{svc} and schema {svc}: ready ({done})", soft_wrap=True)

    run(_roles())
    if with_topics:
        topics(partitions=partitions, replication=replication, check_only=False)
    else:
        console.print("topics: left to the Topic Operator (--no-topics)")


# --- wait ------------------------------------------------------------------------------------

PROBE_TIMEOUT_S = 15.0


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    """An exception as one line, with any secret it might quote replaced by ***."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _secrets(s: Settings) -> list[str]:
    dsn = s.database_url.get_secret_value()
    password = urlsplit(dsn).password or ""
    kafka = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
    return [dsn, password, unquote(password), kafka]


async def _database_problems(s: Settings, service: str) -> list[str]:
    schema = ident(service)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            conn = await connect(s.database_url.get_secret_value())
    except Exception as exc:  # every failure means "not yet": reported, and tried again
        return [f"database: cannot log in: {_describe(exc, _secrets(s))}"]
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            row = await conn.fetchrow(
                "SELECT current_user AS me, (SELECT pg_get_userbyid(nspowner) FROM pg_namespace"
                " WHERE nspname = $1) AS owner",
                schema,
            )
            me, owner = (row["me"], row["owner"]) if row else (None, None)
            if owner is None:
                return [f"database: schema {schema} does not exist"]
            if owner != me:
                return [f"database: schema {schema} belongs to {owner}, not to {me}"]
            done: set[tuple[str, int]] = set()
            if await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{schema}.schema_migrations"
            ):
                rows = await conn.fetch(f"SELECT source, version FROM {schema}.schema_migrations")
                done = {(r["source"], r["version"]) for r in rows}
    except Exception as exc:
        return [f"database: {_describe(exc, _secrets(s))}"]
    finally:
        await conn.close()
    missing = [
        f"{source}/{path.name}"
        for source, folder in service_migrations(service).items()
        for path in sorted(folder.glob("*.sql"))
        if (source, int(path.name.split("_", 1)[0])) not in done
    ]
    return [f"database: migrations not applied: {', '.join(missing)}"] if missing else []


async def _kafka_problems(s: Settings, service: str) -> list[str]:
    """The topics ``service`` reads or writes that do not exist. Only those: where ACLs are
    enforced a principal is shown the topics it may use and no other (shared.contract.acls)."""
    admin = admin_client(s)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await admin.start()
            existing = set(await admin.list_topics())
    except Exception as exc:
        return [f"kafka: {_describe(exc, _secrets(s))}"]
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    needed = topics_of(service)
    missing = [s.topic(t) for t in needed if s.topic(t) not in existing]
    if not missing:
        return []
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return [f"kafka: {len(missing)} of the {len(needed)} topics of {service} missing: {shown}"]


async def setup_problems(s: Settings, service: str) -> list[str]:
    """What keeps ``service`` from starting, seen with its own credentials (empty: nothing): its
    role logs in, its schema is its own and has every migration this release ships, and every
    topic it reads or writes exists. No RBAC needed: the database and Kafka are asked, not the
    Job."""
    return [*await _database_problems(s, service), *await _kafka_problems(s, service)]


async def wait_for_setup(
    s: Settings,
    service: str,
    *,
    timeout: float,
    interval: float = 2.0,
    report: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """Check until nothing is missing or ``timeout`` seconds have passed; returns what is still
    missing (empty: ready). ``report`` is called whenever that changes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: list[str] | None = None
    while True:
        problems = await setup_problems(s, service)
        if report is not None and problems != last:
            report(problems)
        last = problems
        left = deadline - loop.time()
        if not problems or left <= 0:
            return problems
        await asyncio.sleep(min(interval, left))


@app.command("wait")
def wait(
    service: str = typer.Argument(..., help="intake, dispatch or feedback"),
    timeout: float = typer.Option(300.0, help="give up after this many seconds (exit 1)"),
    interval: float = typer.Option(2.0, help="seconds between checks"),
) -> None:
    """Wait until ``wangge ops setup`` has been applied for SERVICE, checked with the service's
    own ``DATABASE_URL`` and Kafka settings: its role logs in, its schema has every migration of
    this release, every topic it reads or writes exists. The Kubernetes Deployments run it as an
    initContainer."""
    if service not in SERVICES:
        raise typer.BadParameter(f"{service!r}: one of {', '.join(SERVICES)}")

    def report(problems: list[str]) -> None:
        for line in problems:
            err_console.print(
                f"waiting for the set-up: {line}", markup=False, highlight=False, soft_wrap=True
            )

    problems = run(
        wait_for_setup(settings(), service, timeout=timeout, interval=interval, report=report)
    )
    if problems:
        err_console.print(
            f"{service}: the set-up is not applied after {timeout:g} s (is the wangge-setup Job "
            "done? docs/operations.md, Kubernetes)",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    console.print(f"{service}: set-up applied (role, schema, migrations, topics)")


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
