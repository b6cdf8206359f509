"""Applying ``shared.contract.acls`` to a broker: SCRAM credentials and ACLs, with the Kafka admin
protocol (aiokafka's client has neither call).

Where Strimzi runs Kafka its User Operator does this from the ``KafkaUser`` resources
(``deploy/k8s/users``); this module is for brokers without it (the local stack, the tests, a
cluster managed by hand). The caller must be allowed to alter SCRAM credentials and ACLs (a
super user, or ``Alter`` on the cluster).

- ``upsert_scram_users``: AlterUserScramCredentials (KIP-554) with the salted password computed
  here (RFC 5802: PBKDF2-HMAC over the password, a random salt and the iteration count);
- ``sync_acls``: a principal's ACLs made exactly the wanted ones (DescribeAcls, then CreateAcls for
  the missing and DeleteAcls for the extra: running it again changes nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from shared.contract.acls import Acl, Operation, Pattern, Resource
from shared.runtime.settings import Settings
from shared.runtime.topic_admin import admin_client

# The protocol's codes (org.apache.kafka.common.resource / acl)
RESOURCE_CODE = {
    Resource.TOPIC: 2,
    Resource.GROUP: 3,
    Resource.CLUSTER: 4,
    Resource.TRANSACTIONAL_ID: 5,
}
PATTERN_CODE = {Pattern.LITERAL: 3, Pattern.PREFIX: 4}
OPERATION_CODE = {
    Operation.READ: 3,
    Operation.WRITE: 4,
    Operation.CREATE: 5,
    Operation.DESCRIBE: 8,
    Operation.DESCRIBE_CONFIGS: 10,
}
ANY, ALLOW = 1, 3
ANY_HOST = "*"
SCRAM_MECHANISM_CODE = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
SCRAM_HASH = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
SCRAM_ITERATIONS = 8192  # Kafka's minimum is 4096


def kafka_principal(name: str) -> str:
    """The principal a SASL user authenticates as."""
    return f"User:{name}"


# --- SCRAM credentials -----------------------------------------------------------------------


class AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user_name", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("tags", TaggedFields),
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterUserScramCredentialsRequest(Request[AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]]):
        self.upsertions = upsertions

    def build(
        self, request_struct_class: type[AlterUserScramCredentialsRequest_v0]
    ) -> AlterUserScramCredentialsRequest_v0:
        return request_struct_class([], self.upsertions, {})


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """SCRAM's SaltedPassword, Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC."""
    return hashlib.pbkdf2_hmac(SCRAM_HASH[mechanism], password.encode(), salt, iterations)


async def upsert_scram_users(
    settings: Settings,
    passwords: Mapping[str, str],
    *,
    mechanism: str = "SCRAM-SHA-512",
    iterations: int = SCRAM_ITERATIONS,
) -> None:
    """Create each user, or give it this password (its other mechanisms are left alone)."""
    if not passwords:
        return
    code = SCRAM_MECHANISM_CODE[mechanism]
    upsertions: list[tuple[str, int, int, bytes, bytes, dict[int, bytes]]] = []
    for name, password in sorted(passwords.items()):
        salt = os.urandom(32)
        salted = salted_password(mechanism, password, salt, iterations)
        upsertions.append((name, code, iterations, salt, salted, {}))
    async with _admin(settings) as admin:
        response = await admin._send_request(AlterUserScramCredentialsRequest(upsertions))
    failed = [
        f"{user}: {for_code(error).__name__} {message or ''}".strip()
        for user, error, message, _ in response.results
        if error
    ]
    if failed:
        raise RuntimeError("SCRAM credentials refused: " + "; ".join(failed))


# --- ACLs ------------------------------------------------------------------------------------

Binding: TypeAlias = tuple[str, Acl]  # (principal name, ACL)
_RESOURCE_OF = {v: k for k, v in RESOURCE_CODE.items()}
_PATTERN_OF = {v: k for k, v in PATTERN_CODE.items()}
_OPERATION_OF = {v: k for k, v in OPERATION_CODE.items()}


@dataclass(frozen=True)
class AclChanges:
    created: list[Binding]
    deleted: list[Binding]


class _Struct(Request[Any]):
    """A request already built for one version (the broker's support is checked at send)."""

    API_KEY = 0

    def __init__(self, struct: RequestStruct) -> None:
        self.struct = struct
        self.API_KEY = struct.API_KEY

    def build(self, request_struct_class: type[Any]) -> Any:
        return self.struct

    def prepare(self, versions: dict[int, tuple[int, int]]) -> Any:
        low, high = versions.get(self.struct.API_KEY, (0, -1))
        if not low <= self.struct.API_VERSION <= high:
            raise RuntimeError(
                f"the broker does not speak {type(self.struct).__name__} (versions {low}-{high})"
            )
        return self.struct


def _check(error_code: int, message: str | None, what: str) -> None:
    if error_code:
        raise for_code(error_code)(f"{what}: {message or ''}")


async def describe_acls(settings: Settings, principal: str | None = None) -> set[Binding]:
    """The ALLOW ACLs on topics and groups, of one principal (a user name) or of everyone."""
    found: set[Binding] = set()
    async with _admin(settings) as admin:
        request = DescribeAclsRequest_v1(
            ANY, None, ANY, kafka_principal(principal) if principal else None, None, ANY, ANY
        )
        response = await admin._send_request(_Struct(request))
    _check(response.error_code, response.error_message, "DescribeAcls")
    for r_type, r_name, r_pattern, entries in response.resources:
        for who, _host, op, permission in entries:
            if (
                permission != ALLOW
                or r_type not in _RESOURCE_OF
                or r_pattern not in _PATTERN_OF
                or op not in _OPERATION_OF
                or not who.startswith("User:")
            ):
                continue
            acl = Acl(_RESOURCE_OF[r_type], r_name, _PATTERN_OF[r_pattern], _OPERATION_OF[op])
            found.add((who.removeprefix("User:"), acl))
    return found


def _row(principal: str, a: Acl) -> tuple[Any, ...]:
    return (
        RESOURCE_CODE[a.resource],
        a.name,
        PATTERN_CODE[a.pattern],
        kafka_principal(principal),
        ANY_HOST,
        OPERATION_CODE[a.operation],
        ALLOW,
    )


async def sync_acls(settings: Settings, wanted: Mapping[str, Iterable[Acl]]) -> AclChanges:
    """Make each principal of ``wanted`` (user name -> ACLs) have exactly those ACLs."""
    want = {(p, a) for p, acls in wanted.items() for a in acls}
    have = {(p, a) for p, a in await describe_acls(settings) if p in wanted}
    create, delete = sorted(want - have), sorted(have - want)
    async with _admin(settings) as admin:
        if create:
            created = await admin._send_request(
                _Struct(CreateAclsRequest_v1([_row(p, a) for p, a in create]))
            )
            for error, message in created.creation_responses:
                _check(error, message, "CreateAcls")
        if delete:
            deleted = await admin._send_request(
                _Struct(DeleteAclsRequest_v1([_row(p, a) for p, a in delete]))
            )
            for error, message, _ in deleted.filter_responses:
                _check(error, message, "DeleteAcls")
    return AclChanges(create, delete)


@contextlib.asynccontextmanager
async def _admin(settings: Settings) -> Any:
    admin: AIOKafkaAdminClient = admin_client(settings)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()
