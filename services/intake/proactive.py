"""未诉先办, the orchestration around ``hotspots.py``: after a batch of reports has opened its
cases, count them per community and category, and open a proactive case for each new burst, in
the same transaction (``hotspot_store.py``)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.contract.events import CaseLocation, CaseOpened, Classification
from shared.contract.taxonomy import Taxonomy
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings
from shared.runtime.uow import UnitOfWork

from . import hotspot_store, store
from .hotspots import Decision, HotspotRule, bucket_of, task_description, task_title
from .locate import RegistryIndex

log = get_logger(component="intake")
METHOD = "hotspot-v1"


@dataclass(frozen=True)
class Opened:
    """A case a report of the batch opened, as the hotspot rule counts it."""

    uow: UnitOfWork
    category: str
    lineage: dict[str, str]
    submitted_at: datetime | None


def rule_from_settings(settings: Settings) -> HotspotRule:
    return HotspotRule(
        window=settings.hotspot_window,
        baseline=settings.hotspot_baseline,
        min_reports=settings.hotspot_min_reports,
        p=settings.hotspot_p,
    )


class Proactive:
    def __init__(self, rule: HotspotRule, taxonomy: Taxonomy) -> None:
        self.rule = rule
        self.taxonomy = taxonomy

    async def after_cases_opened(
        self,
        conn: Connection,
        opened: list[Opened],
        index: RegistryIndex,
        now: datetime,
        new_case_id: Callable[[], str],
    ) -> None:
        rule = self.rule
        counts: dict[tuple[str, str, datetime], int] = defaultdict(int)
        last: dict[tuple[str, str], Opened] = {}
        for o in opened:
            community = o.lineage.get("community")
            if community is None:
                continue  # a street-level case belongs to no community's baseline
            at = bucket_of(rule.counted_at(o.submitted_at, now))
            counts[(community, o.category, at)] += 1
            last[(community, o.category)] = o
        if not counts:
            return
        pairs = sorted(last)
        await store.lock_merge_keys(conn, [f"intake-hotspot:{m}:{c}" for m, c in pairs])
        await hotspot_store.add_counts(conn, counts, rule.baseline_since(now))
        found = await hotspot_store.states(
            conn, pairs, rule.recent_since(now), rule.baseline_since(now)
        )
        new: list[hotspot_store.NewHotspot] = []
        extended: list[tuple[str, datetime, int]] = []
        for pair in pairs:
            s = found[pair]
            decision = rule.decide(s.recent, s.baseline, s.active_until, now)
            if decision is Decision.ONGOING and s.hotspot_id is not None:
                extended.append((s.hotspot_id, now + rule.window, s.recent))
            elif decision is Decision.NEW:
                o = last[pair]
                spot = hotspot_store.NewHotspot(
                    hotspot_id=f"H{now:%Y%m%d}-{uuid.uuid4().hex[:10]}",
                    community=pair[0],
                    street=o.lineage.get("street"),
                    district=o.lineage.get("district"),
                    category=pair[1],
                    case_id=new_case_id(),
                    started_at=now,
                    active_until=now + rule.window,
                    reports=s.recent,
                    expected=rule.expected(s.baseline),
                )
                new.append(spot)
                self._open_task(o, spot, index, now)
        if new:
            await store.insert_cases(
                conn,
                [store.NewCase(h.case_id, h.category, h.community, lineage(h), now) for h in new],
            )
            await hotspot_store.insert_hotspots(conn, new)
        if extended:
            await hotspot_store.extend_hotspots(conn, extended)

    def _open_task(
        self, o: Opened, h: hotspot_store.NewHotspot, index: RegistryIndex, now: datetime
    ) -> None:
        category = self.taxonomy.by_code[h.category]
        unit = index.units.get(h.community)
        name = unit.name if unit is not None else h.community
        o.uow.emit(
            CaseOpened(
                case_id=h.case_id,
                report_ids=[],
                source="proactive",
                opened_at=now,
                category=category.code,
                category_name=category.name,
                agency_mode=category.agency_mode,
                classification=Classification(method=METHOD, terms=[], confidence=1.0),
                location=CaseLocation(**lineage(h)),
                title=task_title(name, category.name),
                description=task_description(name, category.name, h.reports, h.expected, self.rule),
                reporter_ref=f"proactive:{h.hotspot_id}",
                anonymous=True,  # nobody to follow up (回访)
                default_tier=category.tier,
                located_by="hotspot",
            )
        )
        log.info(
            "hotspot: proactive case opened (未诉先办)",
            case_id=h.case_id,
            hotspot_id=h.hotspot_id,
            community=h.community,
            category=h.category,
            reports=h.reports,
            expected=round(h.expected, 3),
        )


def lineage(h: hotspot_store.NewHotspot) -> dict[str, str]:
    out = {"community": h.community}
    if h.street:
        out["street"] = h.street
    if h.district:
        out["district"] = h.district
    return out
