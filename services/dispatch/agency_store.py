"""The SQL of 三代 agency (``agency``): ``case_agents`` and ``agency_relays`` (migration
``018_agency.sql``); the timeline steps are written by ``store``. ``assign_agents`` is the one step
every dispatch that may need an agent shares (the first dispatch, triage's decision, a correction):
read the community's possible agents, choose (``agency.pick_agent``), write."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shared.contract.events import CaseAgentAssigned, CaseCommissioned, CaseRelayed
from shared.contract.taxonomy import Taxonomy
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger

from . import store
from .agency import AGENT_ROLES, Agency, AgentLoad, agency_mode_of, pick_agent, plan_assignment
from .model import Case, Step

log = get_logger(component="dispatch")

AGENT_LOADS_SQL = """SELECT h.unit, h.id, h.role, h.on_duty,
          (SELECT count(*) FROM case_agents a JOIN cases c ON c.case_id = a.case_id
           WHERE a.agent_id = h.id AND c.state <> 'resolved') AS agencies
   FROM handlers h WHERE h.unit = ANY($1::text[]) AND h.role = ANY($2::text[])
   ORDER BY h.unit, h.id"""


def agency_of(row: asyncpg.Record) -> Agency:
    return Agency(
        case_id=row["case_id"],
        agency_mode=row["agency_mode"],
        agent_id=row["agent_id"],
        agent_role=row["agent_role"],
        community=row["community"],
        assigned_at=row["assigned_at"],
        commissioned_at=row["commissioned_at"],
        commission_note=row["commission_note"],
        relays=row["relays"],
    )


_SELECT = """SELECT a.*, (SELECT count(*) FROM agency_relays r WHERE r.case_id = a.case_id)
                    AS relays
             FROM case_agents a"""


async def agency(conn: Connection, case_id: str) -> Agency | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE a.case_id = $1", case_id)
    return agency_of(row) if row else None


async def agencies(conn: Connection, case_ids: Iterable[str]) -> dict[str, Agency]:
    rows = await conn.fetch(f"{_SELECT} WHERE a.case_id = ANY($1::text[])", list(case_ids))
    return {r["case_id"]: agency_of(r) for r in rows}


async def agent_loads(conn: Connection, communities: Iterable[str]) -> dict[str, list[AgentLoad]]:
    """The possible agents of each community (its community staff and party volunteers), with
    their open cases as an agent."""
    wanted = sorted(set(communities))
    out: dict[str, list[AgentLoad]] = {c: [] for c in wanted}
    if wanted:
        for r in await conn.fetch(AGENT_LOADS_SQL, wanted, list(AGENT_ROLES)):
            out[r["unit"]].append(AgentLoad(r["id"], r["role"], r["on_duty"], r["agencies"]))
    return out


async def insert_agencies(conn: Connection, rows: Sequence[Agency]) -> None:
    await conn.executemany(
        """INSERT INTO case_agents (case_id, agency_mode, agent_id, agent_role, community,
                                    assigned_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id) DO NOTHING""",
        [
            (a.case_id, a.agency_mode, a.agent_id, a.agent_role, a.community, a.assigned_at)
            for a in rows
        ],
    )


async def assign_agents(
    conn: Connection, taxonomy: Taxonomy, cases: Sequence[Case], now: datetime
) -> list[CaseAgentAssigned | None]:
    """An agent for each of ``cases`` (as their dispatch leaves them, already written) whose
    category asks for one and that has none yet: the row and timeline step written, the event
    returned for the caller's unit of work (None for the others, in order). Agents' loads are
    kept current while the batch assigns, so a batch spreads as one case at a time would."""
    wanted = [(c, m) for c in cases if (m := agency_mode_of(taxonomy, c)) is not None]
    if not wanted:
        return [None] * len(cases)
    have = await agencies(conn, [c.case_id for c, _ in wanted])
    loads = await agent_loads(conn, [c.community for c, _ in wanted if c.community])
    made: dict[str, CaseAgentAssigned] = {}
    rows: list[Agency] = []
    steps: list[Step] = []
    for case, mode in wanted:
        if case.case_id in have or case.case_id in made:
            continue
        assert case.community is not None  # agency_mode_of
        pool = loads[case.community]
        agent = pick_agent(pool, handler_id=case.handler_id)
        if agent is None:
            log.warning(
                "no agent for a case (三代): no community staff or party volunteer on duty",
                case_id=case.case_id,
                community=case.community,
            )
            continue
        i = pool.index(agent)
        pool[i] = AgentLoad(agent.id, agent.role, agent.on_duty, agent.agencies + 1)
        row, step, event = plan_assignment(case, mode, agent, now)
        rows.append(row)
        steps.append(step)
        made[case.case_id] = event
    await insert_agencies(conn, rows)
    await store.add_timeline_steps(conn, steps)
    out: list[CaseAgentAssigned | None] = []
    for c in cases:
        out.append(made.pop(c.case_id, None))
    return out


# --- the commission (委托) and relays ---------------------------------------------------------


async def by_commission_key(conn: Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM case_agents WHERE commission_key = $1", key)


async def record_commission(conn: Connection, ev: CaseCommissioned, key: str | None) -> None:
    await conn.execute(
        """UPDATE case_agents SET commissioned_at = $2, commission_note = $3,
                  commission_recorded_at = $4, commission_key = $5
           WHERE case_id = $1""",
        ev.case_id,
        ev.commissioned_at,
        ev.note,
        ev.recorded_at,
        key,
    )


async def lock_agency(conn: Connection, case_id: str) -> Agency | None:
    """The case's agency, its row locked (commissions and relays of a case in turn)."""
    row = await conn.fetchrow("SELECT 1 FROM case_agents WHERE case_id = $1 FOR UPDATE", case_id)
    return await agency(conn, case_id) if row else None


async def relay_by_key(conn: Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM agency_relays WHERE request_key = $1", key)


async def insert_relay(conn: Connection, ev: CaseRelayed, key: str | None) -> None:
    await conn.execute(
        """INSERT INTO agency_relays (case_id, n, agent_id, note, at, request_key)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        ev.case_id,
        ev.relay,
        ev.agent_id,
        ev.note,
        ev.relayed_at,
        key,
    )


# --- the agent's work ---------------------------------------------------------------------------


async def cases_of_agent(conn: Connection, agent_id: str) -> list[Case]:
    """The open cases ``agent_id`` is the agent of."""
    rows = await conn.fetch(
        """SELECT c.* FROM cases c JOIN case_agents a ON a.case_id = c.case_id
           WHERE a.agent_id = $1 AND c.state <> 'resolved'""",
        agent_id,
    )
    return [store.case_of(r) for r in rows]


async def is_agent(conn: Connection, agent_id: str, case_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM case_agents WHERE case_id = $1 AND agent_id = $2", case_id, agent_id
        )
    )


def relay_view(row: Any) -> dict[str, Any]:
    return {"relay": row["n"], "agent_id": row["agent_id"], "note": row["note"], "at": row["at"]}
