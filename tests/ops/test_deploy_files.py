"""The deploy files agree with the code: the AsyncAPI document and the Strimzi topics are up to
date, every service's command is the same in the Dockerfile, compose and Kubernetes, and compose
waits for its set-up job (tests/ops/test_compose.py resolves it as compose does)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from shared.topics import ALL_TOPICS

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
    docs = list(yaml.safe_load_all((DEPLOY / "k8s/base/topics.yaml").read_text()))
    got = {d["spec"]["topicName"]: d["spec"] for d in docs}
    assert set(got) == {t.name for t in ALL_TOPICS}
    for t in ALL_TOPICS:
        spec = got[t.name]
        assert spec["partitions"] == t.partitions, t.name
        assert {k: spec["config"][k] for k in t.config} == t.config, t.name
    assert got["registry.units"]["config"]["cleanup.policy"] == "compact"
    kustomization = yaml.safe_load((DEPLOY / "k8s/base/kustomization.yaml").read_text())
    assert "topics.yaml" in kustomization["resources"]


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
    from shared.metrics import ServiceMetrics

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
