"""The image, checked without a container engine: deploy/Dockerfile's build stage is rebuilt
line by line (devstack/image.py) from the build context .dockerignore leaves, and what it
installs runs from that virtual environment, outside the repository, against the real Kafka and
PostgreSQL: ``wangge --version``/``--help``, ``wangge ops setup`` on a fresh database, every
per-service CMD answering ``/readyz`` and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from cli.ops import gather_status
from devstack.image import (
    DOCKERFILE,
    BuiltImage,
    ImageBuildError,
    build,
    build_stage,
    context_files,
    top_level_packages,
    unresolved_imports,
)
from devstack.paths import free_port
from devstack.stack import ready as ready_url
from devstack.testbed import (
    ROLE_PASSWORD,
    Testbed,
    destroy_testbed,
    link_key_for_tests,
    notify_key_for_tests,
    pii_key_for_tests,
    with_database,
)
from devstack.wait import eventually
from shared.runtime.db import with_credentials
from tests.ops.test_deploy_files import dockerfile_commands

ROOT = Path(__file__).resolve().parents[2]
BEFORE_14 = Path(__file__).parent / "data" / "Dockerfile.before-14"
# What the production image must not carry (test and development tooling).
NOT_IN_IMAGE = ("devstack", "tests", "testcontainers", "docker", "requests", "pytest", "hypothesis")


@pytest.fixture(scope="module")
def image() -> Iterator[BuiltImage]:
    root = Path(tempfile.mkdtemp(prefix="wangge-image-"))
    try:
        yield build(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _outside_env(**extra: str) -> dict[str, str]:
    """The environment of a command run from the image's venv: nothing of the repository's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


def _run(image: BuiltImage, *cmd: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    exe = image.bin(cmd[0])
    return subprocess.run(
        [str(exe), *cmd[1:]],
        cwd=cwd,
        env=_outside_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_build_context_leaves_local_state_out(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text((ROOT / ".dockerignore").read_text())
    for rel in (
        ".run/pii-key",
        ".run/postgres/PG_VERSION",
        ".venv/bin/python",
        ".cache/toxiproxy/server",
        ".git/HEAD",
        "shared/__pycache__/x.cpython-311.pyc",
        "shared/contract/events.py",
        "pyproject.toml",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert context_files(tmp_path, tmp_path / "Dockerfile") == {
        "shared/contract/events.py",
        "pyproject.toml",
        ".dockerignore",  # docker sends it too
    }


def test_a_copy_of_something_the_context_lacks_fails_as_docker_build_would(
    tmp_path: Path,
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:3.11 AS build\nWORKDIR /src\nCOPY .run/pii-key ./\n")
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run/pii-key").write_text("secret")
    (tmp_path / ".dockerignore").write_text(".run\n")
    with pytest.raises(ImageBuildError, match=r"excluded by \.dockerignore"):
        build(tmp_path / "root", context=tmp_path, dockerfile=dockerfile)


def test_the_runtime_stage_takes_only_the_venv_runs_as_non_root_on_a_pinned_base() -> None:
    text = DOCKERFILE.read_text()
    runtime = build_stage(text, "runtime")
    copies = [v for i, v in runtime if i == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"]
    users = [v for i, v in runtime if i == "USER"]
    assert users and users[-1].split(":")[0] == "10001"
    base = next(line for line in text.splitlines() if line.startswith("ARG PYTHON_IMAGE="))
    tag = base.split("=", 1)[1].split(":", 1)[1]
    assert tag.split("-")[0].count(".") == 2, f"base not pinned to a patch release: {base}"


def test_the_dockerfile_of_0_1_0_is_caught(tmp_path: Path) -> None:
    """The Dockerfile before #14 copied no sim/: its image's `wangge` could not start."""
    old = build(tmp_path / "root", dockerfile=BEFORE_14)
    assert not old.wheels  # it installed from the source tree, building no wheel to check
    done = _run(old, "wangge", "--help", cwd=tmp_path)
    assert done.returncode != 0 and "No module named 'sim'" in done.stderr


def test_the_wheel_holds_the_runtime_and_nothing_else(image: BuiltImage) -> None:
    [wheel] = image.wheels
    assert top_level_packages(wheel) == {"shared", "services", "cli", "sim"}
    assert unresolved_imports(wheel) == {}
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    done = _run(image, "python", "-c", probe, *NOT_IN_IMAGE, cwd=image.root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_the_image_sets_up_and_runs_every_service(image: BuiltImage, infra) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wangge-app-"))  # the image's WORKDIR /app
    tag = uuid.uuid4().hex[:10]
    database, prefix = f"wg_img_{tag}", f"img{tag}."
    conn = await asyncpg.connect(infra.admin_dsn)
    await conn.execute(f'CREATE DATABASE "{database}"')
    await conn.close()
    admin_dsn = with_database(infra.admin_dsn, database)
    bed = Testbed(infra.bootstrap, admin_dsn, prefix, database)
    common = {"KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap, "WANGGE_TOPIC_PREFIX": prefix}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        version = _run(image, "wangge", "--version", cwd=workdir)
        assert version.returncode == 0 and version.stdout.strip() == "wangge 0.1.0", version
        usage = _run(image, "wangge", "--help", cwd=workdir)
        assert usage.returncode == 0 and "ops" in usage.stdout, usage.stderr

        setup = await asyncio.to_thread(
            _run,
            image,
            "wangge",
            "ops",
            "setup",
            cwd=workdir,
            DATABASE_URL=admin_dsn,
            WANGGE_DB_ROLE_PASSWORD=ROLE_PASSWORD,
            **common,
        )
        assert setup.returncode == 0, setup.stdout + setup.stderr
        for svc in ("intake", "dispatch", "feedback"):
            assert f"role wangge_{svc} and schema {svc}: ready" in setup.stdout

        urls: dict[str, str] = {}
        for svc, cmd in dockerfile_commands().items():
            assert cmd[0] == "python"
            port = free_port()
            env = _outside_env(
                **common,
                DATABASE_URL=with_credentials(admin_dsn, f"wangge_{svc}", ROLE_PASSWORD),
                WANGGE_PII_KEY=pii_key_for_tests(),
                WANGGE_NOTIFY_KEY=notify_key_for_tests(),  # feedback's (docs/feedback.md)
                WANGGE_LINK_KEY=link_key_for_tests(),
                WANGGE_HTTP_HOST="127.0.0.1",
                WANGGE_HTTP_PORT=str(port),
            )
            procs[svc] = _start([str(image.bin("python")), *cmd[1:]], env, workdir, svc)
            urls[svc] = f"http://127.0.0.1:{port}"
        for svc, url in urls.items():

            async def ready(url: str = url, svc: str = svc) -> bool:
                assert procs[svc].poll() is None, (workdir / f"{svc}.log").read_text()
                return await asyncio.to_thread(ready_url, url)

            await eventually(ready, timeout=60, interval=0.2, what=f"{svc} ready ({workdir})")

        statuses, _ = await gather_status(bed.settings(), urls)
        assert {st.service: st.state for st in statuses} == dict.fromkeys(urls, "ready")
        for st in statuses:
            assert st.checks == {"started": True, "database": True, "kafka": True}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {svc: await asyncio.to_thread(proc.wait, 45) for svc, proc in procs.items()}
        await destroy_testbed(bed, infra.admin_dsn)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -SIGTERM).
    for svc, code in codes.items():
        assert code in (0, -signal.SIGTERM), f"{svc} exit code {code}; logs in {workdir}"
        assert "Application shutdown complete." in (workdir / f"{svc}.log").read_text()
    shutil.rmtree(workdir, ignore_errors=True)


def _start(cmd: list[str], env: dict[str, str], cwd: Path, svc: str) -> subprocess.Popen[bytes]:
    with open(cwd / f"{svc}.log", "wb") as log:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
