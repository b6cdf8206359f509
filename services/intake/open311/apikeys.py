"""Open311 api keys: one or more per upstream system (pure; the table is ``intake.api_keys``).

A key reads ``wg311_<key id>_<secret>``: the key id (8 hex digits) names it in ``wangge apikey
list`` and ``revoke``; the secret is 32 random bytes. Only the SHA-256 of the whole key is
stored, and a caller is found by that hash: the key is printed once, by ``wangge apikey
create``, and never logged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from shared.contract.events import Source

PREFIX = "wg311_"
SYSTEM = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,39}$")
MAX_KEY_CHARS = 200  # longer than any key: not looked up


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str  # shown once

    @property
    def digest(self) -> bytes:
        return digest(self.key)


def new_key() -> NewKey:
    key_id = secrets.token_hex(4)
    return NewKey(key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}")


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def check_system(name: str) -> str:
    """An upstream system's name: lower-case letters, digits, ``_.-``, at most 40 characters
    (it prefixes the ids of its reports)."""
    if not SYSTEM.match(name):
        raise ValueError(
            "a system name is 1-40 lower-case letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_channel(channel: str) -> Source:
    """The report ``source`` a key's requests carry (``open311`` unless the system is one of the
    channels, e.g. the 12345 hotline platform: ``hotline_12345``)."""
    from typing import get_args

    allowed: tuple[str, ...] = get_args(Source)
    if channel not in allowed:
        raise ValueError(f"the channel is one of {', '.join(allowed)}")
    return channel  # type: ignore[return-value]


@dataclass(frozen=True)
class Caller:
    """The upstream system an api key identifies."""

    system: str
    channel: str
