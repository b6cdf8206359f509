"""The local broker's users in ``scram`` mode (``WANGGE_KAFKA_AUTH=scram``): one SCRAM user per
principal of ``shared.contract.acls`` with a password made here, and exactly its ACLs.

The passwords are kept in ``<run dir>/kafka/users.json`` (mode 0600) and each principal's client
settings in ``<run dir>/kafka/users/<principal>.env`` (``source`` it to act as that principal).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from devstack.kafka_local import LocalKafka
from shared.contract.acls import PRINCIPALS, acl_table
from shared.runtime.acl_admin import AclChanges, sync_acls, upsert_scram_users
from shared.runtime.settings import Settings

AUTH_ENV = "WANGGE_KAFKA_AUTH"


def auth_mode() -> str:
    """``none`` (plaintext, no ACLs: the default) or ``scram``, from ``WANGGE_KAFKA_AUTH``."""
    mode = (os.environ.get(AUTH_ENV) or "none").strip().lower()
    if mode not in ("none", "scram"):
        raise ValueError(f"{AUTH_ENV} must be none or scram")
    return mode


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


@dataclass
class KafkaUsers:
    """The principals' passwords on one local broker."""

    kafka: LocalKafka
    passwords: dict[str, str]

    @classmethod
    def load(cls, kafka: LocalKafka) -> KafkaUsers:
        """The stored passwords, with one made for every principal that has none yet."""
        path = kafka.dir / "users.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        passwords = {p.name: stored.get(p.name) or secrets.token_urlsafe(18) for p in PRINCIPALS}
        if passwords != stored:
            _write_private(path, json.dumps(passwords, indent=1, sort_keys=True))
        return cls(kafka, passwords)

    def env(self, principal: str) -> dict[str, str]:
        """The ``KAFKA_*`` variables of a client logging in as ``principal``."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            **self.kafka.client_env(principal, self.passwords[principal]),
        }

    def settings(self, principal: str, **values: object) -> Settings:
        return Settings(**{**self.env(principal), **{k.upper(): v for k, v in values.items()}})  # type: ignore[arg-type]

    def write_env_files(self) -> Path:
        folder = self.kafka.dir / "users"
        for name in self.passwords:
            env = self.env(name)
            _write_private(
                folder / f"{name}.env", "".join(f"export {k}='{v}'\n" for k, v in env.items())
            )
        return folder

    async def provision(self, prefix: str = "") -> AclChanges:
        """Each principal's SCRAM user (its password from here) and exactly its ACLs for topic
        prefix ``prefix``, as the broker's super user."""
        admin = self.kafka.admin_settings()
        await upsert_scram_users(admin, self.passwords)
        return await sync_acls(admin, acl_table(prefix))
