"""``make up`` as operators run it: the three services as real processes, reached by a client
outside the repo that only sources ``.run/env``; ``make down`` leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import asyncpg

from devstack.paths import ROOT, pid_alive
from devstack.stack import SERVICES, read_env
from devstack.testbed import Testbed
from devstack.wait import eventually

OUTSIDE_CLIENT = textwrap.dedent("""
    import asyncio, json, os, uuid
    from datetime import datetime, timezone
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def main():
        bs, prefix = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["WANGGE_TOPIC_PREFIX"]
        rid = "outside-" + uuid.uuid4().hex[:8]
        consumer = AIOKafkaConsumer(prefix + "cases.opened", bootstrap_servers=bs,
                                    auto_offset_reset="earliest", group_id="outside-" + rid)
        await consumer.start()
        producer = AIOKafkaProducer(bootstrap_servers=bs)
        await producer.start()
        report = {"report_id": rid, "source": "app",
                  "submitted_at": datetime.now(timezone.utc).isoformat(),
                  "location": {"building_code": "WC-YY-OJY-G01-B05"},
                  "description": "5栋门口的路灯坏了，晚上很黑"}
        await producer.send_and_wait(prefix + "reports.submitted", json.dumps(report).encode())
        await producer.stop()
        try:
            async with asyncio.timeout(60):
                async for msg in consumer:
                    case = json.loads(msg.value)
                    if rid in case["report_ids"]:
                        print("CASE", case["case_id"], case["location"]["grid"])
                        return
        finally:
            await consumer.stop()

    asyncio.run(main())
""")


def _devstack(cmd: str, run_dir: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "devstack", cmd, "--run-dir", str(run_dir)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=180,
    )


async def test_up_outside_client_down(bed: Testbed, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bed.bootstrap,
        "DATABASE_URL": bed.admin_dsn,
        "WANGGE_TOPIC_PREFIX": bed.prefix,
    }
    await asyncio.to_thread(_devstack, "up", tmp_path, env)
    try:
        stack_env = read_env(tmp_path / "env")
        assert {
            "KAFKA_BOOTSTRAP_SERVERS",
            "DATABASE_URL",
            "INTAKE_URL",
            "DISPATCH_URL",
            "FEEDBACK_URL",
        } <= stack_env.keys()
        pids = [int((tmp_path / f"{svc}.pid").read_text()) for svc in SERVICES]
        assert all(pid_alive(p) for p in pids)
        await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "cli.main",
                "registry",
                "load",
                str(ROOT / "deploy" / "samples" / "registry.yaml"),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
        )
        conn = await asyncpg.connect(bed.admin_dsn)
        try:
            await eventually(
                partial(conn.fetchval, "SELECT 1 FROM intake.handlers WHERE id = 'h-0030'"),
                timeout=30,
                what="intake to read the registry",
            )
        finally:
            await conn.close()
        # The outside client knows nothing of the repo: it sources .run/env and uses aiokafka.
        script = tmp_path / "client.py"
        script.write_text(OUTSIDE_CLIENT)
        out = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", f"source {tmp_path / 'env'} && exec {sys.executable} {script}"],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"], "WANGGE_TOPIC_PREFIX": bed.prefix},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert "CASE " in out.stdout and "WC-YY-OJY-G01" in out.stdout
    finally:
        await asyncio.to_thread(_devstack, "down", tmp_path, env)
    assert not any(pid_alive(p) for p in pids)
    assert not (tmp_path / "env").exists()
