"""Merges (附议) into dispatched cases, a batch at a time (``cases.merged``).

The batch's cases are read and locked with one query. The usual merge only updates the case's
facts (households, supporters, urgency) and records a timeline step: those are written for the
whole batch with one ``executemany`` each. A merge after which the rules may raise the case's tier
or shorten its response time is handed to ``Dispatch.on_merged`` (one at a time, after the writes
so far), which may redispatch the case; later merges of the same case in the batch then see it
as it left it. A merge whose case dispatch does not know yet is kept as an early merge for
``cases.opened`` (``opening.py``).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.consumer import Claimed
from shared.events import CaseMerged

from . import store
from .handlers import Dispatch
from .sweeps import Step


async def dispatch_merged(
    d: Dispatch, conn: asyncpg.Connection, claimed: list[Claimed[CaseMerged]]
) -> None:
    cases: dict[str, dict[str, Any]] = {
        r["case_id"]: dict(r)
        for r in await store.get_cases(conn, (c.event.case_id for c in claimed))
    }
    early: list[CaseMerged] = []
    changed: dict[str, dict[str, Any]] = {}
    steps: list[Step] = []

    async def write() -> None:
        await store.add_early_merges(conn, early)
        await store.update_cases(conn, list(changed.items()))
        await store.add_timeline_steps(conn, steps)
        early.clear()
        changed.clear()
        steps.clear()

    for c in claimed:
        ev = c.event
        case = cases.get(ev.case_id)
        if case is None:
            early.append(ev)
            continue
        facts, changes, step = d.merged(case, ev, d.clock())
        if d.merge_may_redispatch(case, facts):
            await write()
            await d.on_merged(c.uow, ev, c.meta)
            row = await store.get_case(conn, ev.case_id)
            assert row is not None
            cases[ev.case_id] = dict(row)
            continue
        case.update(changes)
        changed[ev.case_id] = changes  # every column a merge sets: the latest supersedes
        steps.append(step)
    await write()
