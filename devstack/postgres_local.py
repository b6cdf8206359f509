"""PostgreSQL as a local process from Debian's ``postgresql`` package, with its own data directory.

When no server binaries are found, ``apt-get install postgresql`` installs them (root only). As
root, the server runs as the ``postgres`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

from devstack.paths import free_port, port_open
from devstack.wait import wait_until

ADMIN_USER = "postgres"


def find_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for c in candidates:
        if (c / "postgres").exists() and (c / "initdb").exists():
            return c
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def ensure_installed() -> Path:
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL server binaries not found; install Debian's 'postgresql'")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        check=True,
        env=env,
    )
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("apt-get installed postgresql but its binaries were not found")
    return bindir


class LocalPostgres:
    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir / "postgres"
        self.data = self.dir / "data"
        self.port_file = self.dir / "port"
        self.pw_file = self.dir / "admin-password"
        self.log = self.dir / "postgres.log"

    @property
    def port(self) -> int:
        return int(self.port_file.read_text())

    @property
    def admin_dsn(self) -> str:
        pw = self.pw_file.read_text().strip()
        return f"postgresql://{ADMIN_USER}:{pw}@127.0.0.1:{self.port}/wangge"

    def _as_owner(self, cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done: subprocess.CompletedProcess[bytes] = subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]
        return done

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in [path, *path.rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def running(self) -> bool:
        return (
            (self.data / "postmaster.pid").exists()
            and self.port_file.exists()
            and port_open(self.port)
        )

    def start(self, timeout: float = 60) -> str:
        if self.running():
            return self.admin_dsn
        bindir = ensure_installed()
        self.dir.mkdir(parents=True, exist_ok=True)
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            shutil.rmtree(self.data, ignore_errors=True)
            self.port_file.write_text(str(free_port()))
            self.pw_file.write_text(secrets.token_urlsafe(16))
            self.pw_file.chmod(0o600)
            pwfile = self.dir / "pwfile"
            pwfile.write_text(self.pw_file.read_text())
            self._chown(self.dir)
            self._as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    ADMIN_USER,
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ],
                stdout=subprocess.DEVNULL,
            )
            pwfile.unlink()
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(
                    "\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.dir}'\n"
                    "max_connections = 300\nshared_buffers = 256MB\n"
                    "fsync = on\nsynchronous_commit = on\n"
                )
        elif port_open(self.port):
            raise RuntimeError(f"port {self.port} of the local PostgreSQL is taken")
        self._chown(self.dir)
        self._as_owner(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                f"-p {self.port}",
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self.healthy, timeout=timeout, what="PostgreSQL SELECT 1")
        if fresh:
            self._psql("postgres", "CREATE DATABASE wangge")
        return self.admin_dsn

    def _psql(self, db: str, sql: str) -> str:
        bindir = ensure_installed()
        out = self._as_owner(
            [
                str(bindir / "psql"),
                "-h",
                str(self.dir),
                "-p",
                str(self.port),
                "-U",
                ADMIN_USER,
                "-d",
                db,
                "-tAc",
                sql,
            ],
            capture_output=True,
        )
        return out.stdout.decode().strip()

    def healthy(self) -> bool:
        """SELECT 1 answers."""
        try:
            return self._psql("postgres", "SELECT 1") == "1"
        except (subprocess.CalledProcessError, OSError):
            return False

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` is a crash (recovery from WAL at next start)."""
        if not (self.data / "postmaster.pid").exists():
            return
        bindir = ensure_installed()
        self._as_owner(
            [str(bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            stdout=subprocess.DEVNULL,
        )
