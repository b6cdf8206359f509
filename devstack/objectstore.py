"""An S3-compatible object store as a local process, for the tests of the photos' object store
(``shared.media.blobs.S3Blobs``): moto's S3 server (``python -m moto.server``, from the test
extra), on a free port, its log in the run directory. It speaks the S3 API over HTTP as MinIO
does (path-style addressing, SigV4), accepts any access key, and starts in about a second, with
no container engine and nothing to build. Compose and Kubernetes run MinIO itself."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devstack.paths import free_port
from devstack.wait import wait_until

ACCESS_KEY = "wangge-test"
SECRET_KEY = "wangge-test-secret-key"


@dataclass
class LocalObjectStore:
    endpoint: str
    process: subprocess.Popen[bytes]
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = "us-east-1"
    log: Path | None = field(default=None)

    def settings(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The ``WANGGE_S3_*`` settings of a service using it."""
        return {
            "WANGGE_S3_ENDPOINT": self.endpoint,
            "WANGGE_S3_BUCKET": bucket,
            "WANGGE_S3_REGION": self.region,
            "WANGGE_S3_PREFIX": prefix,
            "WANGGE_S3_ACCESS_KEY": self.access_key,
            "WANGGE_S3_SECRET_KEY": self.secret_key,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (S3 says what it thinks of an anonymous list)
    except OSError:
        return False


def start_object_store(run_dir: Path, *, timeout: float = 60) -> LocalObjectStore:
    run_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = run_dir / "objectstore.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    store = LocalObjectStore(f"http://127.0.0.1:{port}", process, log=log)
    try:
        wait_until(
            lambda: process.poll() is not None or _answers(store.endpoint),
            timeout=timeout,
            what="the local object store to answer",
        )
    except BaseException:
        store.stop()
        raise
    if process.poll() is not None:
        raise RuntimeError(f"the local object store exited ({process.returncode}): see {log}")
    return store
