"""Intake's handlers: a report becomes a rejection, a new case, or a supporter of an open case.

Each handler runs inside the consumer pipeline's transaction (``shared.runtime.consumer``): the
report's row, the case and the outgoing events commit together or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shared.contract.events import (
    AdministrativeLocation,
    CaseClosed,
    CaseLocation,
    CaseMerged,
    CaseOpened,
    CasePhoto,
    CaseReclassified,
    Classification,
    FieldError,
    ReportRejected,
    ReportSubmitted,
    Suggestion,
)
from shared.contract.taxonomy import Category, Taxonomy, load_taxonomy
from shared.registry.store import RegistryMessage, apply_registry_message
from shared.runtime.clock import Clock, clock_of, utcnow
from shared.runtime.consumer import TRANSIENT_ERRORS, Claimed, Meta
from shared.runtime.db import Connection
from shared.runtime.logging import get_logger
from shared.runtime.settings import Settings
from shared.runtime.uow import UnitOfWork

from . import classifier_store, nearby_store, photo_store, store
from .classify import LinearClassifier, trained_classifier
from .fingerprints import payload_fingerprint, report_fingerprint
from .hotspots import HotspotRule
from .locate import Located, Place, RegistryIndex, UnitInfo
from .merging import (
    Placement,
    merge_lock_key,
    merge_target,
    nearby_lock_keys,
    place_reports,
    supporter_counts_after_batch,
    supporter_counts_after_each,
)
from .moderation import moderation_flags
from .nearby import sketch_of, wgs84_location
from .privacy import Pii, mask_phone
from .proactive import Opened, Proactive, rule_from_settings
from .redaction import redact
from .similarity import NearbyRule
from .triage import triage_reasons

log = get_logger(component="intake")


def new_case_id(now: datetime) -> str:
    return f"C{now:%Y%m%d}-{uuid.uuid4().hex[:10]}"


def classified_text(report: ReportSubmitted) -> str:
    """What the classifier reads of a report (and what a reclassification labels)."""
    return f"{report.title or ''}\n{report.description}"


@dataclass
class _Triaged:
    """A claimed report that is valid and located, on its way to a case."""

    claimed: Claimed[ReportSubmitted]
    category: Category
    classification: Classification
    located: Located
    lineage: dict[str, str]  # the chain that serves the place (locate.Place)
    ref: str = ""  # the reporter's pseudonym
    masked: str | None = None  # the reporter's masked phone
    photos: list[CasePhoto] = field(default_factory=list)  # those of photo_ids intake holds
    administrative: dict[str, str] | None = None  # 插花地: the place's own chain


def case_location(lineage: dict[str, str], administrative: dict[str, str] | None) -> CaseLocation:
    """``cases.opened``'s location: the serving chain's codes, and the place's own chain when
    another community serves it (插花地)."""
    return CaseLocation(
        district=lineage.get("district"),
        street=lineage.get("street"),
        community=lineage.get("community"),
        grid=lineage.get("grid"),
        building=lineage.get("building"),
        administrative=AdministrativeLocation(**administrative) if administrative else None,
    )


class Intake:
    def __init__(
        self,
        taxonomy: Taxonomy,
        pii: Pii,
        classifier: LinearClassifier | None,
        merge_window: timedelta,
        triage_min_confidence: float = 0.0,
        *,
        nearby: NearbyRule | None = None,
        hotspots: HotspotRule | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.clock = clock  # when cases open and merge windows end
        self.taxonomy = taxonomy
        self.pii = pii
        # None until chosen at start: then the latest installed model (wangge classifier
        # retrain), else the one trained from the labelled reports shipped with intake
        self.classifier = classifier
        self._choosing = asyncio.Lock()
        self.taxonomy_file: str | None = None
        self.merge_window = merge_window
        self.nearby = nearby or NearbyRule()
        self.proactive = Proactive(hotspots or HotspotRule(), taxonomy)
        self.triage_min_confidence = triage_min_confidence
        self.index = RegistryIndex.build([])
        self.index_version = -1

    @classmethod
    def from_settings(cls, settings: Settings) -> Intake:
        intake = cls(
            load_taxonomy(settings.taxonomy_file),
            Pii.from_settings(settings),
            None,
            settings.merge_window,
            settings.triage_min_confidence,
            nearby=NearbyRule(settings.nearby_radius_m, settings.nearby_similarity),
            hotspots=rule_from_settings(settings),
            clock=clock_of(settings),
        )
        intake.taxonomy_file = settings.taxonomy_file
        return intake

    async def _current_classifier(self, conn: Connection) -> LinearClassifier:
        """The classifier, chosen at start (``keep_warm``) or at the first batch, whichever
        asks first: the model installed last, else the one trained from the shipped labelled
        reports (in a thread: about a second)."""
        async with self._choosing:  # once, whether keep_warm or a batch asks first
            if self.classifier is None:
                installed = await classifier_store.latest_model(conn)
                if installed is not None:
                    self.classifier = LinearClassifier(installed.parameters, self.taxonomy)
                    origin = "installed"
                else:
                    self.classifier = await asyncio.to_thread(
                        trained_classifier, self.taxonomy_file
                    )
                    origin = "shipped data"
                log.info("classifier ready", model=self.classifier.version, origin=origin)
            return self.classifier

    # --- registry.units -------------------------------------------------------------------------

    async def on_registry(self, uow: UnitOfWork, msg: RegistryMessage | None, meta: Meta) -> None:
        """Apply the record to intake's copy and tell every replica its index is stale."""
        await apply_registry_message(uow, msg, meta)
        await store.bump_registry_version(uow.conn)

    def known_unit(self, code: str) -> UnitInfo | None:
        """The unit ``code`` names in the location index as last built (it may lag the registry
        by a version until the next batch of reports rebuilds it)."""
        return self.index.units.get(code)

    async def _current_index(self, conn: Connection, version: int) -> RegistryIndex:
        """The location index of registry ``version`` or later (built here only when
        ``keep_warm`` has not built it yet)."""
        if version > self.index_version:
            await self._build_index(conn, version)
        return self.index

    async def _build_index(self, conn: Connection, version: int) -> None:
        # in a thread: a district's 26,000 units take a while, the other consumers go on
        index = await asyncio.to_thread(RegistryIndex.build, await store.load_units(conn))
        if version > self.index_version:  # not one built meanwhile of a later version
            self.index, self.index_version = index, version
            log.info("location index rebuilt", version=version, units=len(index.units))

    async def keep_warm(self, pool: asyncpg.Pool, period_s: float = 1.0) -> None:
        """The classifier chosen and the location index built at start, and the index built
        again soon after every registry change (its version polled every ``period_s``), so
        that no batch of reports waits for them (a batch still builds the index itself when
        it finds a later version than the one built)."""
        while True:
            with contextlib.suppress(*TRANSIENT_ERRORS):
                async with pool.acquire() as conn:
                    await self._current_classifier(conn)
                    version = await store.registry_version(conn)
                    if version > self.index_version:
                        await self._build_index(conn, version)
            await asyncio.sleep(period_s)  # a period, not synchronisation

    # --- cases.closed ---------------------------------------------------------------------------

    async def on_case_closed(self, uow: UnitOfWork, event: CaseClosed, meta: Meta) -> None:
        if await store.close_case(uow.conn, event.case_id, event.closed_at):
            log.info("case closed: no more merging into it", case_id=event.case_id)

    # --- cases.reclassified ---------------------------------------------------------------------

    async def on_reclassified(self, uow: UnitOfWork, event: CaseReclassified, meta: Meta) -> None:
        """The command centre's category (人工分拨): a labelled example, and the category later
        reports merge by."""
        known = await store.record_reclassification(uow.conn, event)
        log.info(
            "case reclassified: kept as a labelled example" if known else "unknown case",
            case_id=event.case_id,
            from_category=event.from_category,
            to_category=event.to_category,
            origin=event.origin,
        )

    # --- reports.submitted ----------------------------------------------------------------------

    async def on_invalid(
        self, uow: UnitOfWork, obj: Any, errors: list[FieldError], meta: Meta
    ) -> None:
        """A JSON object that is not a valid report: ``reports.rejected`` (once per report)."""
        source, report_id = obj.get("source"), obj.get("report_id")
        source = source[:64] if isinstance(source, str) and source else None
        report_id = report_id[:128] if isinstance(report_id, str) and report_id else None
        readable = source is not None and report_id is not None
        if readable and not await store.record_rejection(
            uow.conn,
            str(source),
            str(report_id),
            "invalid",
            [e.model_dump() for e in errors],
            payload_fingerprint(obj),
        ):
            log.info("duplicate report ignored", source=source, report_id=report_id)
            return
        self._publish_rejection(uow, source, report_id, errors, "invalid")

    def _publish_rejection(
        self,
        uow: UnitOfWork,
        source: str | None,
        report_id: str | None,
        errors: list[FieldError],
        reason: str,
    ) -> None:
        log.info(
            "report rejected",
            source=source,
            report_id=report_id,
            reason=reason,
            fields=[e.field for e in errors],
        )
        uow.emit(ReportRejected(source=source, report_id=report_id, errors=errors, reason=reason))

    def _reject(
        self, uow: UnitOfWork, report: ReportSubmitted, errors: list[FieldError], reason: str
    ) -> store.Outcome:
        self._publish_rejection(uow, report.source, report.report_id, errors, reason)
        return store.Outcome(
            report.source,
            report.report_id,
            "rejected",
            submitted_at=report.submitted_at,
            reason=reason,
            errors=[e.model_dump() for e in errors],
            fingerprint=report_fingerprint(report),
        )

    def _code_errors(self, report: ReportSubmitted, index: RegistryIndex) -> list[FieldError]:
        errors = []
        if report.category and self.taxonomy.get(report.category) is None:
            errors.append(FieldError(field="category", message="unknown category code"))
        loc = report.location
        if loc.building_code and index.level(loc.building_code) != "building":
            errors.append(FieldError(field="location.building_code", message="unknown building"))
        if loc.grid_code and index.level(loc.grid_code) != "grid":
            errors.append(FieldError(field="location.grid_code", message="unknown grid"))
        return errors

    async def _classified(
        self,
        conn: Connection,
        located: list[tuple[Claimed[ReportSubmitted], Located, Place]],
    ) -> list[_Triaged]:
        """The located reports with their category: the channel's when it gave one (method
        "given"), else the classifier's, all of a batch in one call."""
        guess = [c.event for c, _, _ in located if not c.event.category]
        found = iter(
            (await self._current_classifier(conn)).classify_many(
                [classified_text(r) for r in guess]
            )
            if guess
            else []
        )
        out = []
        for c, where, place in located:
            if c.event.category:
                category = self.taxonomy.by_code[c.event.category]
                classification = Classification(method="given", terms=[], confidence=1.0)
            else:
                f = next(found)
                category = self.taxonomy.get(f.category) or self.taxonomy.by_code["other"]
                classification = Classification(
                    method=f.method,
                    terms=f.terms,
                    confidence=f.confidence,
                    model=f.model,
                    suggestions=[
                        Suggestion(category=s.category, probability=s.probability)
                        for s in f.suggestions
                    ],
                )
            out.append(
                _Triaged(
                    c,
                    category,
                    classification,
                    where,
                    place.lineage,
                    administrative=place.administrative,
                )
            )
        return out

    async def on_reports(self, conn: Connection, claimed: list[Claimed[ReportSubmitted]]) -> None:
        """A batch of reports, set-based: claim them, reject what is invalid or unlocatable,
        classify and locate the rest, then open or merge (附议) under the merge locks."""
        recorded = await store.known_reports(
            conn, [(c.event.source, c.event.report_id) for c in claimed]
        )
        known = recorded.final
        index = await self._current_index(conn, recorded.version)
        outcomes: list[store.Outcome] = []
        located_reports: list[tuple[Claimed[ReportSubmitted], Located, Place]] = []
        for c in claimed:
            report = c.event
            key = (report.source, report.report_id)
            if key in known:  # recorded, or earlier in the batch
                log.info(
                    "duplicate report ignored", source=report.source, report_id=report.report_id
                )
                continue
            if key in recorded.rejected and recorded.rejected[key] == report_fingerprint(report):
                log.info(
                    "duplicate of a rejected report ignored",
                    source=report.source,
                    report_id=report.report_id,
                )
                c.release()  # a corrected version may still come
                continue
            known.add(key)
            errors = self._code_errors(report, index)
            located = None
            if not errors:
                located = index.locate(
                    wgs84_location(report.location), f"{report.title or ''}\n{report.description}"
                )
            if located is None:
                reason = "invalid" if errors else "unlocatable"
                errors = errors or [
                    FieldError(field="location", message="no unit matches this location")
                ]
                outcomes.append(self._reject(c.uow, report, errors, reason))
                c.release()  # a corrected version under the same id is handled, not ignored
                continue
            located_reports.append((c, located, index.place(located.code)))
        triaged = await self._classified(conn, located_reports)
        if triaged:
            outcomes += await self._open_or_merge(conn, triaged, index)
        await store.record_reports(conn, outcomes)
        counts = Counter(o.outcome for o in outcomes)
        log.info(
            "reports handled",
            reports=len(claimed),
            opened=counts["opened"],
            merged=counts["merged"],
            rejected=counts["rejected"],
            duplicates=len(claimed) - len(outcomes),
        )

    async def _open_or_merge(
        self, conn: Connection, triaged: list[_Triaged], index: RegistryIndex
    ) -> list[store.Outcome]:
        now = self.clock()
        sketches = [sketch_of(t.claimed.event, t.category.code, t.located, index) for t in triaged]
        await store.lock_merge_keys(
            conn,
            [merge_lock_key(t.category.code, t.lineage, t.located.code) for t in triaged]
            + [k for s in sketches if s is not None for k in nearby_lock_keys(s, self.nearby)],
        )
        targets = [merge_target(t.category.code, t.lineage, t.located.code) for t in triaged]
        since = now - self.merge_window
        found = await store.find_open_cases(conn, list(set(targets)), since)
        near = await nearby_store.find_nearby_cases(
            conn,
            [s for s, t in zip(sketches, targets, strict=True) if s is not None and t not in found],
            self.nearby.radius_m,
            since,
        )
        placements = place_reports(
            targets,
            {t: c.case_id for t, c in found.items()},
            lambda: new_case_id(now),
            sketches=sketches,
            nearby=[c for c, _ in near.values()],
            rule=self.nearby,
        )
        await store.insert_cases(
            conn,
            [
                store.NewCase(
                    p.case_id,
                    t.category.code,
                    t.located.code,
                    t.lineage,
                    now,
                    self.pii.encrypt(classified_text(t.claimed.event)),
                )
                for t, p in zip(triaged, placements, strict=True)
                if p.opens
            ],
        )
        await nearby_store.record_case_points(
            conn,
            [
                (p.case_id, s)
                for s, p in zip(sketches, placements, strict=True)
                if p.opens and s is not None
            ],
        )
        for t in triaged:
            r = t.claimed.event
            t.ref = self.pii.reporter_ref(r.reporter, r.source, r.report_id)
            # an anonymous reporter's phone, even masked, leaves intake nowhere
            t.masked = None if r.reporter.anonymous else mask_phone(r.reporter.phone)
        added = await store.add_supporters(
            conn,
            [
                (
                    p.case_id,
                    store.Supporter(
                        t.ref, t.claimed.event.source, t.claimed.event.report_id, t.masked
                    ),
                )
                for t, p in zip(triaged, placements, strict=True)
            ],
        )
        is_new, seen = [], set()
        for t, p in zip(triaged, placements, strict=True):
            pair = (p.case_id, t.ref)
            is_new.append(pair in added and pair not in seen)
            seen.add(pair)
        before = {c.case_id: c.supporter_count for c in found.values()}
        before.update({case_id: n for case_id, (_, n) in near.items()})
        counts = supporter_counts_after_batch(placements, is_new, before)
        await store.set_supporter_counts(conn, counts)
        after = supporter_counts_after_each(placements, is_new, counts)
        await self._photos(conn, triaged)
        outcomes = []
        for t, p, count in zip(triaged, placements, after, strict=True):
            if p.opens:
                self._opened(t, p.case_id, now)
            else:
                self._merged(t, p, now, count)
            r = t.claimed.event
            outcomes.append(
                store.Outcome(
                    r.source,
                    r.report_id,
                    "opened" if p.opens else "merged",
                    submitted_at=r.submitted_at,
                    case_id=p.case_id,
                    reporter_ref=t.ref,
                    reporter_name_enc=self.pii.encrypt(r.reporter.name),
                    reporter_phone_enc=self.pii.encrypt(r.reporter.phone),
                    reporter_phone_masked=t.masked,
                    title_enc=self.pii.encrypt(r.title),
                    description_enc=self.pii.encrypt(r.description),
                )
            )
        await self.proactive.after_cases_opened(
            conn,
            [
                Opened(t.claimed.uow, t.category.code, t.lineage, t.claimed.event.submitted_at)
                for t, p in zip(triaged, placements, strict=True)
                if p.opens
            ],
            index,
            now,
            lambda: new_case_id(now),
        )
        return outcomes

    async def _photos(self, conn: Connection, triaged: list[_Triaged]) -> None:
        """Each report's photos (``photo_ids``) that intake holds, for its case's event; an id it
        does not hold is dropped."""
        wanted = sorted({pid for t in triaged for pid in t.claimed.event.photo_ids})
        if not wanted:
            return
        held = await photo_store.held(conn, wanted)
        for t in triaged:
            ids = dict.fromkeys(t.claimed.event.photo_ids)
            t.photos = [held[pid] for pid in ids if pid in held]
            if len(t.photos) < len(ids):
                log.info(
                    "report names photos intake does not hold", dropped=len(ids) - len(t.photos)
                )

    def _merged(self, t: _Triaged, p: Placement, now: datetime, count: int) -> None:
        report, case_id = t.claimed.event, p.case_id
        t.claimed.uow.emit(
            CaseMerged(
                case_id=case_id,
                report_id=report.report_id,
                source=report.source,
                merged_at=now,
                supporter_count=count,
                reporter_ref=t.ref,
                reporter_phone_masked=t.masked,
                anonymous=report.reporter.anonymous,
                households_affected=report.households_affected,
                urgent=bool(report.urgent),
                merged_by="nearby" if p.by == "nearby" else "place",
                photos=t.photos,
            )
        )
        log.debug(
            "report merged into open case (附议)",
            merged_by=p.by,
            case_id=case_id,
            report_id=report.report_id,
            supporter_count=count,
            reporter_ref=t.ref,
        )

    def _opened(self, t: _Triaged, case_id: str, now: datetime) -> None:
        report = t.claimed.event
        t.claimed.uow.emit(self._case_opened(t, case_id, now))
        log.debug(
            "case opened",
            case_id=case_id,
            report_id=report.report_id,
            category=t.category.code,
            method=t.classification.method,
            located_by=t.located.by,
            place=t.located.code,
            reporter_ref=t.ref,
        )

    def _case_opened(self, t: _Triaged, case_id: str, now: datetime) -> CaseOpened:
        report, category, lineage = t.claimed.event, t.category, t.lineage
        opened = CaseOpened(
            case_id=case_id,
            report_ids=[report.report_id],
            source=report.source,
            opened_at=now,
            category=category.code,
            category_name=category.name,
            agency_mode=category.agency_mode,
            classification=t.classification,
            location=case_location(lineage, t.administrative),
            title=redact(report.title) if report.title else None,
            description=redact(report.description),
            households_affected=report.households_affected,
            urgent=bool(report.urgent),
            reporter_ref=t.ref,
            reporter_phone_masked=t.masked,
            anonymous=report.reporter.anonymous,
            default_tier=category.tier,
            located_by=t.located.by,
            moderation=moderation_flags(classified_text(report)),
            photos=t.photos,
        )
        reasons = triage_reasons(opened, self.triage_min_confidence)
        if not reasons:
            return opened
        return opened.model_copy(update={"needs_triage": True, "triage_reasons": reasons})
