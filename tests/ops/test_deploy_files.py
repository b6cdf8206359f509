"""The deploy files agree with the code: the AsyncAPI document, the Strimzi topics and users are
up to date, every service's command is the same in the Dockerfile, compose and Kubernetes, the
Kubernetes set-up Job and initContainers run commands the CLI has, and compose
waits for its set-up job (tests/ops/test_compose.py resolves it as compose does)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from shared.contract.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("intake", "dispatch", "feedback")


def dockerfile_commands() -> dict[str, list[str]]:
    """The CMD of each per-service target (``FROM runtime AS <service>``) of deploy/Dockerfile."""
    out: dict[str, list[str]] = {}
    stage = None
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if m := re.match(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            stage = m.group(1)
        elif stage in SERVICES and line.startswith("CMD "):
            out[stage] = json.loads(line[4:])
    return out


def test_asyncapi_and_k8s_topics_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/generate_ops_files.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + "\nrun `make ops-files` and commit the result"


def test_k8s_topics_agree_with_shared_topics() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s/topics/topics.yaml").read_text()))
    got = {d["spec"]["topicName"]: d["spec"] for d in docs}
    assert set(got) == {t.name for t in ALL_TOPICS}
    for t in ALL_TOPICS:
        spec = got[t.name]
        assert spec["partitions"] == t.partitions, t.name
        assert {k: spec["config"][k] for k in t.config} == t.config, t.name
    assert got["registry.units"]["config"]["cleanup.policy"] == "compact"
    assert all(d["metadata"]["labels"]["strimzi.io/cluster"] == "wangge" for d in docs)
    assert all("namespace" not in d["metadata"] for d in docs)  # the overlays place them
    kustomization = yaml.safe_load((DEPLOY / "k8s/topics/kustomization.yaml").read_text())
    assert kustomization["resources"] == ["topics.yaml"] and "namespace" not in kustomization


def kustomization(path: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "k8s" / path / "kustomization.yaml").read_text())
    return doc


def test_k8s_layouts_put_the_topics_where_the_topic_operator_watches() -> None:
    """(a) overlays/example: topics in the Kafka cluster's namespace, services in their own (each
    part sets its namespace, the top sets none: it would override both); (b) single-namespace.
    make deploy-check renders them and checks the result (scripts/validate_k8s.py)."""
    assert "topics" not in str(kustomization("base")["resources"])
    example = kustomization("overlays/example")
    assert "namespace" not in example and sorted(example["resources"]) == ["services", "topics"]
    assert kustomization("overlays/example/topics")["namespace"] == "kafka"
    assert kustomization("overlays/example/topics")["resources"] == [
        "../../../topics",
        "../../../users",  # the User Operator watches the same namespace by default
    ]
    assert kustomization("overlays/example/services")["namespace"] == "wangge"
    single = kustomization("overlays/single-namespace")
    assert single["namespace"] == "wangge"
    assert {"../../base", "../../topics", "../../users"} <= set(single["resources"])
    makefile = (ROOT / "Makefile").read_text()
    for path in ("base", "topics", "users", "overlays/example", "overlays/single-namespace"):
        assert re.search(rf"validate_k8s\.py[^\n]*(\\\n[^\n]*)*deploy/k8s/{path}\b", makefile), path


def k8s_commands() -> dict[str, list[str]]:
    """What the base's containers run (command + args), and the arguments the overlays add."""
    out: dict[str, list[str]] = {}
    for name in ("intake", "dispatch", "feedback", "setup"):
        for doc in yaml.safe_load_all((DEPLOY / f"k8s/base/{name}.yaml").read_text()):
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            spec = doc["spec"]["template"]["spec"]
            for c in [*spec.get("initContainers", []), *spec["containers"]]:
                out[f"{name}/{c['name']}"] = [*c["command"], *c.get("args", [])]
    return out


def overlay_job_args(path: str) -> list[str]:
    """Arguments an overlay's patches append to the set-up Job's container."""
    added = []
    for patch in kustomization(path).get("patches", []):
        if patch.get("target", {}).get("kind") != "Job":
            continue
        for op in yaml.safe_load(patch["patch"]):
            if op["path"] == "/spec/template/spec/containers/0/args/-":
                added.append(op["value"])
    return added


def test_k8s_job_and_init_containers_run_commands_the_cli_has() -> None:
    """The set-up Job runs `wangge ops setup` (as compose's setup job does) and each Deployment
    waits for it with `wangge ops wait <service>`; the CLI parses every one of those command lines
    (an option the CLI does not have fails here, not in a cluster)."""
    import typer

    from cli.main import app

    commands = k8s_commands()
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert commands["setup/setup"][:3] == compose["services"]["setup"]["command"]
    lines = [commands["setup/setup"]]
    for overlay in ("overlays/example/services", "overlays/single-namespace"):
        assert overlay_job_args(overlay) == ["--no-topics"]  # the Topic Operator makes them
        lines.append(commands["setup/setup"] + overlay_job_args(overlay))
    for svc in SERVICES:
        assert commands[f"{svc}/wait-for-setup"][:4] == ["wangge", "ops", "wait", svc]
        lines.append(commands[f"{svc}/wait-for-setup"])
    root = typer.main.get_command(app)
    for line in lines:
        assert line[0] == "wangge"
        assert isinstance(root, typer.core.TyperGroup)
        group = root.commands[line[1]]
        assert isinstance(group, typer.core.TyperGroup), line
        command = group.commands[line[2]]
        command.make_context(line[2], list(line[3:]))  # raises on an unknown option or argument


def test_k8s_users_are_the_acl_table() -> None:
    """deploy/k8s/users: one Strimzi KafkaUser per principal of shared/contract/acls.py, with
    SCRAM-SHA-512 and exactly its ACLs; every workload logs in as its own."""
    from shared.contract.acls import PRINCIPALS

    docs = list(yaml.safe_load_all((DEPLOY / "k8s/users/users.yaml").read_text()))
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert list(by_name) == [p.name for p in PRINCIPALS]
    for p in PRINCIPALS:
        spec = by_name[p.name]["spec"]
        assert spec["authentication"] == {"type": "scram-sha-512"}
        got = {
            (r["resource"]["type"], r["resource"]["name"], r["resource"]["patternType"], op)
            for r in spec["authorization"]["acls"]
            for op in r["operations"]
        }
        want = {(a.resource, a.name, a.pattern, a.operation) for a in p.acls()}
        assert got == want, p.name
    assert all(d["metadata"]["labels"]["strimzi.io/cluster"] == "wangge" for d in docs)
    kustomization = yaml.safe_load((DEPLOY / "k8s/users/kustomization.yaml").read_text())
    assert kustomization["resources"] == ["users.yaml"] and "namespace" not in kustomization
    for name, user in [
        *((f"k8s/base/{s}.yaml", f"wangge-{s}") for s in SERVICES),
        ("k8s/base/setup.yaml", "wangge-ops"),
    ]:
        workload = next(
            d
            for d in yaml.safe_load_all((DEPLOY / name).read_text())
            if d["kind"] in ("Deployment", "Job")
        )
        spec = workload["spec"]["template"]["spec"]
        for c in [*spec.get("initContainers", []), *spec["containers"]]:
            env = {e["name"]: e for e in c["env"]}
            assert env["KAFKA_SASL_USERNAME"]["value"] == user, name
            ref = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (user, "password"), name
            assert user in by_name


def test_asyncapi_describes_every_topic_with_its_payload() -> None:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docs/asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["channels"]) == {t.name for t in ALL_TOPICS}
    schemas = doc["components"]["schemas"]
    report = schemas["ReportSubmitted"]
    assert {"report_id", "source", "description"} <= set(report["properties"])
    senders = {
        op["channel"]["$ref"].rsplit("/", 1)[-1]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    upstream = {"reports.submitted", "handler.actions", "feedback.submitted", "registry.units"}
    # Everything but the upstream inputs is published by some service.
    assert senders | upstream >= {t.name for t in ALL_TOPICS}
    assert "wangge-intake.reports.submitted" in doc["operations"]


def test_every_service_runs_the_same_command_everywhere() -> None:
    docker = dockerfile_commands()
    assert set(docker) == set(SERVICES)
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for svc in SERVICES:
        assert docker[svc] == ["python", "-m", f"services.{svc}"]
        assert compose["services"][svc]["command"] == docker[svc]
        deployment = yaml.safe_load_all((DEPLOY / f"k8s/base/{svc}.yaml").read_text())
        dep = next(d for d in deployment if d["kind"] == "Deployment")
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == docker[svc]
        init = dep["spec"]["template"]["spec"]["initContainers"][0]
        assert init["image"] == container["image"] and init["envFrom"] == container["envFrom"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert re.search(r"^USER\s+10001", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)


def test_compose_services_wait_for_the_setup_job() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for svc in SERVICES:
        assert services[svc]["depends_on"]["setup"]["condition"] == (
            "service_completed_successfully"
        )
        assert "healthcheck" in services[svc]
    assert services["setup"]["command"] == ["wangge", "ops", "setup"]


def test_dashboard_uses_metrics_that_exist() -> None:
    """Every wangge_* metric on the Grafana dashboard is one a service exports, or one of the two
    dispatch is asked to register (docs/operations.md)."""
    from shared.runtime.metrics import ServiceMetrics

    dashboard = json.loads((DEPLOY / "grafana/wangge-overview.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b(wangge_[a-z_]+)", e)}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {
        fam.name + suffix
        for fam in ServiceMetrics("x").registry.collect()
        for suffix in suffixes[fam.type]
    }
    asked_of_dispatch = {"wangge_open_cases", "wangge_deadline_breaches_total"}
    assert used - exported <= asked_of_dispatch, used - exported
    assert {"wangge_messages_consumed_total", "wangge_processing_seconds_bucket"} <= used
    operations = (ROOT / "docs/operations.md").read_text()
    assert all(name.removesuffix("_total") in operations for name in asked_of_dispatch)
