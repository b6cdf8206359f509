"""The compose path, checked without a container engine.

``make up`` and ``make demo`` run ``docker compose`` where an engine answers. Here a stand-in
``docker`` on PATH records each invocation and the environment it was given, and the compose
file is resolved for that environment by compose-go (``tools/compose-config``, the Compose
Specification's loader, as ``docker compose config`` would): so what each container would
receive is read from the real compose semantics, not from the YAML text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack import demo, stack
from shared.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_CONFIG = ROOT / ".cache" / "go-bin" / "compose-config"
SERVICES = ("intake", "dispatch", "feedback")
# Fixed by the image and compose (every container listens on 8000), not passed from the shell.
FIXED = {"WANGGE_HTTP_HOST", "WANGGE_HTTP_PORT"}
INTAKE_ONLY = {
    "WANGGE_PII_KEY",
    "WANGGE_PII_OLD_KEYS",
    "WANGGE_PII_PSEUDONYM_KEY",
    "WANGGE_OPEN311_JURISDICTION",
}
# The keys only some services hold (docs/feedback.md: the residents' links)
HELD_BY = {
    **{name: {"intake"} for name in INTAKE_ONLY},
    "WANGGE_NOTIFY_KEY": {"feedback"},
    "WANGGE_LINK_KEY": {"intake", "feedback"},
    # the photos' object store and links (docs/operations.md, "Photos")
    **{
        name: {"intake", "dispatch"}
        for name in (
            "WANGGE_MEDIA_LINK_KEY",
            "WANGGE_S3_ENDPOINT",
            "WANGGE_S3_BUCKET",
            "WANGGE_S3_REGION",
            "WANGGE_S3_PREFIX",
            "WANGGE_S3_ACCESS_KEY",
            "WANGGE_S3_SECRET_KEY",
        )
    },
}

FAKE_DOCKER = """#!{python}
import json, os, sys
with open({log!r}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
"""

pytestmark = pytest.mark.skipif(
    not COMPOSE_CONFIG.exists(), reason="tools/compose-config not built (make deploy-check)"
)


def resolved(env: dict[str, str], project: str = "wangge") -> dict[str, Any]:
    """The compose project as Docker Compose resolves it in ``env``."""
    done = subprocess.run(
        [str(COMPOSE_CONFIG), "-f", str(ROOT / "deploy/docker-compose.yml"), "-p", project],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


def container_env(project: dict[str, Any], service: str) -> dict[str, str]:
    """What the container's process sees: an entry the shell left unset is not set at all."""
    env = project["services"][service].get("environment") or {}
    return {k: v for k, v in env.items() if v is not None}


def wangge_settings() -> list[str]:
    names = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        for choice in getattr(alias, "choices", [alias]):
            if isinstance(choice, str) and choice.startswith("WANGGE_"):
                names.append(choice)
    return sorted(set(names))


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "docker.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "docker"
    exe.write_text(FAKE_DOCKER.format(python=sys.executable, log=str(log)))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(stack, "docker_engine_answers", lambda: True)
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", *wangge_settings()):
        monkeypatch.setenv(var, "")  # so that teardown restores the variable as it was,
        monkeypatch.delenv(var)  # also when the demo sets it

    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_wangge_setting_reaches_the_services_under_compose() -> None:
    names = wangge_settings()
    assert "WANGGE_FEEDBACK_WINDOW" in names and "WANGGE_PII_KEY" in names  # the list is real
    shell = {"PATH": os.environ["PATH"], **{n: f"set-{n.lower()}" for n in names}}
    project = resolved(shell)
    for svc in SERVICES:
        got = container_env(project, svc)
        for name in names:
            if name in FIXED:
                continue
            if svc not in HELD_BY.get(name, {svc}):
                assert name not in got, f"{svc} gets {name}: only {HELD_BY[name]} may hold it"
            else:
                assert got.get(name) == shell[name], f"{name} does not reach {svc}"
        assert got["WANGGE_HTTP_PORT"] == "8000" and got["WANGGE_HTTP_HOST"] == "0.0.0.0"
    setup = container_env(project, "setup")
    assert setup["WANGGE_TOPIC_PREFIX"] == shell["WANGGE_TOPIC_PREFIX"]  # the topics it creates


def test_an_unset_setting_is_left_to_the_service_default() -> None:
    project = resolved({"PATH": os.environ["PATH"]})
    for svc in SERVICES:
        got = container_env(project, svc)
        assert "WANGGE_FEEDBACK_WINDOW" not in got and "WANGGE_TOPIC_PREFIX" not in got
        assert got["WANGGE_LOG_LEVEL"] == "INFO"
    assert len(container_env(project, "intake")["WANGGE_PII_KEY"]) == 44  # the development key
    feedback = container_env(project, "feedback")
    assert len(feedback["WANGGE_NOTIFY_KEY"]) == len(feedback["WANGGE_LINK_KEY"]) == 44


def test_ports_are_configurable_and_make_up_uses_them(
    fake_docker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = {
        "KAFKA_PORT": "19092",
        "POSTGRES_PORT": "15432",
        "INTAKE_PORT": "18081",
        "DISPATCH_PORT": "18082",
        "FEEDBACK_PORT": "18083",
    }
    for k, v in ports.items():
        monkeypatch.setenv(k, v)
    assert stack.up(str(tmp_path / "run")) == 0
    [up] = calls(fake_docker)
    assert up["argv"] == ["compose", "-f", str(stack.COMPOSE), "-p", "wangge", "up", "-d", "--wait"]
    project = resolved(up["env"])
    published = {
        name: {p["target"]: p["published"] for p in svc.get("ports", [])}
        for name, svc in project["services"].items()
    }
    assert published["kafka"] == {9092: "19092"}
    assert published["postgres"] == {5432: "15432"}
    for svc in SERVICES:
        assert published[svc] == {8000: ports[f"{svc.upper()}_PORT"]}
    advertised = project["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "EXTERNAL://127.0.0.1:19092" in advertised  # clients are told the published port
    env = stack.read_env(tmp_path / "run" / "env")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    pg = project["services"]["postgres"]["environment"]
    assert env["DATABASE_URL"] == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@127.0.0.1:15432/"
        f"{pg['POSTGRES_DB']}"
    )
    assert env["FEEDBACK_URL"] == "http://127.0.0.1:18083"


def test_the_demo_on_compose_has_its_short_windows_and_a_fresh_volume(
    fake_docker: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    played: list[str] = []

    async def play(settings: Settings, dsn: str, feedback_url: str, dispatch_url: str) -> int:
        played.extend((feedback_url, dispatch_url))
        return 0

    monkeypatch.setattr(demo, "play", play)
    monkeypatch.setattr(demo, "RUN", tmp_path)
    assert demo.main(["--exit"]) == 0  # without it the demo keeps the city running
    assert played == ["http://127.0.0.1:8083", "http://127.0.0.1:8082"]
    argv = [c["argv"][5:] for c in calls(fake_docker)]
    assert [c["argv"][4] for c in calls(fake_docker)] == ["wangge-demo"] * 3  # never make up's
    assert argv == [["down", "--volumes"], ["up", "-d", "--wait"], ["down", "--volumes"]]
    up_env = calls(fake_docker)[1]["env"]
    project = resolved(up_env, "wangge-demo")
    assert project["volumes"]["postgres-data"]["name"] == "wangge-demo_postgres-data"
    for svc in SERVICES:
        got = container_env(project, svc)
        # the same windows as the demo on local processes (devstack/demo.py)
        assert got["WANGGE_FEEDBACK_WINDOW"] == "P1D"
        assert got["WANGGE_SWEEP_INTERVAL_S"] == "1"
        # its clock: the eve of the National Day holiday, four days a minute, one anchor
        assert got["WANGGE_DEMO_CLOCK_START"] == demo.START.isoformat()
        assert float(got["WANGGE_DEMO_CLOCK_SPEED"]) == demo.SPEED
        assert float(got["WANGGE_DEMO_CLOCK_ANCHOR"]) == demo.CLOCK.anchor
