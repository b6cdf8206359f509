"""Simulated people for the demo and the crash suite: handlers who accept and resolve what is
dispatched to them, verifiers who confirm each resolution on site (核查, ``cases.resolved``
naming a ``verifier_unit``), and residents who rate what was resolved.

They react to ``cases.dispatched`` and ``feedback.requested`` records and are idempotent: a record
delivered twice (at-least-once) produces the same action ids, which dispatch applies once. The
residents open each follow-up request as the notifier does (``shared.contract.notify``, with
``WANGGE_NOTIFY_KEY``); a request published both as v1 and v2 is rated once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from cli.client import Publisher, Record
from shared.contract.notify import NotifyKeys, SealError, open_request
from shared.runtime.clock import Clock, utcnow
from shared.runtime.logging import get_logger

# (case_id, rating round) -> the rating to give, or None to never rate.
RatingPolicy = Callable[[str, int], dict[str, Any] | None]
log = get_logger(component="actors")
HandlerLookup = Callable[[str], Awaitable[str | None]]


def always_satisfied(case_id: str, round_: int) -> dict[str, Any] | None:
    return {"resolved": True, "satisfaction": "satisfied"}


def stable_fraction(case_id: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by the case id: choices that survive replays and restarts."""
    digest = hashlib.sha256(f"{salt}{case_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def unsatisfied_first(share: float) -> RatingPolicy:
    """``share`` of the cases are rated unsatisfied once (reopened), then satisfied."""

    def policy(case_id: str, round_: int) -> dict[str, Any] | None:
        if round_ == 1 and stable_fraction(case_id, "reopen") < share:
            return {"resolved": False, "satisfaction": "unsatisfied", "comment": "问题没有解决"}
        return {"resolved": True, "satisfaction": "satisfied"}

    return policy


async def unit_handler(admin_dsn: str, unit: str) -> str | None:
    """Who plays the handler of a case dispatched to ``unit`` as a whole: its first handler (not
    a party volunteer) in dispatch's copy of the registry, read with an admin connection."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        found: str | None = await conn.fetchval(
            "SELECT id FROM dispatch.handlers WHERE unit = $1 AND role <> 'party_volunteer' "
            "ORDER BY id LIMIT 1",
            unit,
        )
        return found
    finally:
        await conn.close()


@dataclass
class Actors:
    publisher: Publisher
    unit_handler: HandlerLookup
    rating: RatingPolicy = always_satisfied
    # the notifier's keys; None: the publisher's settings' WANGGE_NOTIFY_KEY
    notify_keys: NotifyKeys | None = None
    note: str = "已到现场处理完毕"
    seen_tokens: set[str] = field(default_factory=set)
    clock: Clock = utcnow  # the time their apps send (``at``): the services' clock in a demo

    async def react(self, rec: Record) -> None:
        if rec.topic == "cases.dispatched":
            await self.on_dispatched(rec.json())
        elif rec.topic == "cases.resolved":
            await self.on_resolved(rec.json())
        elif rec.topic == "feedback.requested":
            await self.on_requested(rec.json())

    async def on_dispatched(self, ev: dict[str, Any]) -> None:
        handler = ev.get("handler_id") or await self.unit_handler(ev["unit"])
        if handler is None:
            return
        case_id, attempt = ev["case_id"], ev["attempt"]
        for action in ("accept", "resolve"):
            note = self.note if action == "resolve" else None
            await self.act(case_id, handler, action, f"{case_id}:{attempt}:{action}", note=note)

    async def on_resolved(self, ev: dict[str, Any]) -> None:
        """The verifier unit's handler (``unit_handler``) verifies the resolution, unless they
        resolved it themselves (then it waits, as it would for want of another verifier)."""
        unit = ev.get("verifier_unit")
        if not unit:
            return
        verifier = await self.unit_handler(unit)
        if verifier is None or verifier == ev.get("handler_id"):
            log.warning("nobody to verify a resolution", case_id=ev["case_id"], unit=unit)
            return
        action_id = f"{ev['case_id']}:{ev['resolved_at']}:verify"
        await self.act(ev["case_id"], verifier, "verify", action_id, note="现场已核实")

    async def act(
        self, case_id: str, handler: str, action: str, action_id: str, **fields: Any
    ) -> None:
        """One handler action, at the clock's time (``fields``: note, extend_to, ...)."""
        await self.publisher.send(
            "handler.actions",
            {
                "action_id": action_id,
                "case_id": case_id,
                "handler_id": handler,
                "action": action,
                "at": self.clock().isoformat(),
                **fields,
            },
            key=case_id,
        )

    def keys(self) -> NotifyKeys:
        if self.notify_keys is None:
            key = self.publisher.settings.notify_key
            self.notify_keys = NotifyKeys.parse(key.get_secret_value() if key else None)
        return self.notify_keys

    async def on_requested(self, ev: dict[str, Any]) -> None:
        try:
            token = open_request(ev, self.keys()).rating_token
        except SealError as exc:
            log.warning("a follow-up request does not open", error=str(exc))
            return
        if token in self.seen_tokens:
            return
        self.seen_tokens.add(token)
        case_id = ev["case_id"]
        verdict = self.rating(case_id, ev.get("round", 1))
        if verdict is None:
            return
        await self.publisher.send(
            "feedback.submitted",
            {"case_id": case_id, "rating_token": token, "at": self.clock().isoformat(), **verdict},
            key=case_id,
        )
