"""Intake's handlers: a report becomes a rejection, a new case, or a supporter of an open case.

Each handler runs inside the consumer pipeline's transaction (``shared.consumer``): the report's
row, the case and the outgoing events commit together or not at all.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.consumer import Meta
from shared.events import (
    CaseClosed,
    CaseLocation,
    CaseMerged,
    CaseOpened,
    Classification,
    FieldError,
    ReportRejected,
    ReportSubmitted,
)
from shared.logging import get_logger
from shared.registry_store import RegistryMessage, apply_registry_message
from shared.settings import Settings
from shared.taxonomy import Category, Taxonomy, load_taxonomy
from shared.uow import UnitOfWork

from . import store
from .classify import NaiveBayesClassifier, trained_classifier
from .locate import Located, RegistryIndex
from .privacy import Pii, mask_phone, redact_phones

log = get_logger(component="intake")


def new_case_id(now: datetime) -> str:
    return f"C{now:%Y%m%d}-{uuid.uuid4().hex[:10]}"


def merge_lock_key(category: str, lineage: dict[str, str], place: str) -> str:
    """Reports that may merge share a key: same category and grid (or place, without a grid)."""
    return f"intake-merge:{category}:{lineage.get('grid') or place}"


class Intake:
    def __init__(
        self,
        taxonomy: Taxonomy,
        pii: Pii,
        classifier: NaiveBayesClassifier,
        merge_window: timedelta,
    ) -> None:
        self.taxonomy = taxonomy
        self.pii = pii
        self.classifier = classifier
        self.merge_window = merge_window
        self.index = RegistryIndex.build([])
        self.index_version = -1

    @classmethod
    def from_settings(cls, settings: Settings) -> Intake:
        return cls(
            load_taxonomy(settings.taxonomy_file),
            Pii(settings.pii_key.get_secret_value() if settings.pii_key else None),
            trained_classifier(settings.taxonomy_file),
            settings.merge_window,
        )

    # --- registry.units -------------------------------------------------------------------------

    async def on_registry(self, uow: UnitOfWork, msg: RegistryMessage | None, meta: Meta) -> None:
        """Apply the record to intake's copy and tell every replica its index is stale."""
        await apply_registry_message(uow, msg, meta)
        await store.bump_registry_version(uow.conn)

    async def _current_index(self, uow: UnitOfWork, version: int) -> RegistryIndex:
        if version != self.index_version:
            self.index = RegistryIndex.build(await store.load_units(uow.conn))
            self.index_version = version
            log.info("location index rebuilt", version=version, units=len(self.index.units))
        return self.index

    # --- cases.closed ---------------------------------------------------------------------------

    async def on_case_closed(self, uow: UnitOfWork, event: CaseClosed, meta: Meta) -> None:
        if await store.close_case(uow.conn, event.case_id, event.closed_at):
            log.info("case closed: no more merging into it", case_id=event.case_id)

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
            uow.conn, str(source), str(report_id), "invalid", [e.model_dump() for e in errors]
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
        uow.publish(
            "reports.rejected",
            ReportRejected(source=source, report_id=report_id, errors=errors, reason=reason),
            key=f"{source}:{report_id}",
        )

    async def _reject(
        self, uow: UnitOfWork, report: ReportSubmitted, errors: list[FieldError], reason: str
    ) -> None:
        await store.finish_report(
            uow.conn,
            report.source,
            report.report_id,
            outcome="rejected",
            reason=reason,
            errors=[e.model_dump() for e in errors],
        )
        self._publish_rejection(uow, report.source, report.report_id, errors, reason)

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

    def _classify(self, report: ReportSubmitted) -> tuple[Category, Classification]:
        if report.category:
            return self.taxonomy.by_code[report.category], Classification(
                method="given", terms=[], confidence=1.0
            )
        found = self.classifier.classify(f"{report.title or ''}\n{report.description}")
        category = self.taxonomy.get(found.category) or self.taxonomy.by_code["other"]
        return category, Classification(
            method=found.method, terms=found.terms, confidence=found.confidence
        )

    async def on_report(self, uow: UnitOfWork, report: ReportSubmitted, meta: Meta) -> None:
        conn = uow.conn
        version = await store.claim_report(
            conn, report.source, report.report_id, report.submitted_at
        )
        if version is None:
            log.info("duplicate report ignored", source=report.source, report_id=report.report_id)
            return
        index = await self._current_index(uow, version)
        errors = self._code_errors(report, index)
        if errors:
            await self._reject(uow, report, errors, "invalid")
            return
        text = f"{report.title or ''}\n{report.description}"
        located = index.locate(report.location, text)
        if located is None:
            await self._reject(
                uow,
                report,
                [FieldError(field="location", message="no unit matches this location")],
                "unlocatable",
            )
            return
        category, classification = self._classify(report)
        lineage = index.lineage(located.code)
        now = datetime.now(UTC)
        ref = self.pii.reporter_ref(report.reporter, report.source, report.report_id)
        masked = mask_phone(report.reporter.phone)
        await store.lock_merge_key(conn, merge_lock_key(category.code, lineage, located.code))
        case_id = await store.find_open_case(
            conn,
            category=category.code,
            building=lineage.get("building"),
            grid=lineage.get("grid"),
            place=located.code,
            since=now - self.merge_window,
        )
        reporter = {
            "reporter_ref": ref,
            "reporter_name_enc": self.pii.encrypt(report.reporter.name),
            "reporter_phone_enc": self.pii.encrypt(report.reporter.phone),
            "reporter_phone_masked": masked,
        }
        supporter = store.Supporter(ref, report.source, report.report_id, masked)
        if case_id is not None:
            count = await store.add_supporter(conn, case_id, supporter)
            await store.finish_report(
                conn,
                report.source,
                report.report_id,
                outcome="merged",
                case_id=case_id,
                **reporter,
            )
            uow.publish(
                "cases.merged",
                CaseMerged(
                    case_id=case_id,
                    report_id=report.report_id,
                    source=report.source,
                    merged_at=now,
                    supporter_count=count,
                    reporter_ref=ref,
                    reporter_phone_masked=masked,
                    households_affected=report.households_affected,
                    urgent=bool(report.urgent),
                ),
                key=case_id,
                subject=case_id,
            )
            log.info(
                "report merged into open case (附议)",
                case_id=case_id,
                report_id=report.report_id,
                supporter_count=count,
                reporter_ref=ref,
            )
            return
        case_id = new_case_id(now)
        await store.insert_case(
            conn,
            case_id=case_id,
            category=category.code,
            place=located.code,
            lineage=lineage,
            opened_at=now,
        )
        await store.add_first_supporter(conn, case_id, supporter)
        await store.finish_report(
            conn, report.source, report.report_id, outcome="opened", case_id=case_id, **reporter
        )
        uow.publish(
            "cases.opened",
            self._case_opened(report, case_id, now, category, classification, located, lineage),
            key=case_id,
            subject=case_id,
        )
        log.info(
            "case opened",
            case_id=case_id,
            report_id=report.report_id,
            category=category.code,
            method=classification.method,
            located_by=located.by,
            place=located.code,
            reporter_ref=ref,
        )

    def _case_opened(
        self,
        report: ReportSubmitted,
        case_id: str,
        now: datetime,
        category: Category,
        classification: Classification,
        located: Located,
        lineage: dict[str, str],
    ) -> CaseOpened:
        return CaseOpened(
            case_id=case_id,
            report_ids=[report.report_id],
            source=report.source,
            opened_at=now,
            category=category.code,
            category_name=category.name,
            agency_mode=category.agency_mode,
            classification=classification,
            location=CaseLocation(**{lvl: lineage.get(lvl) for lvl in CaseLocation.model_fields}),
            title=redact_phones(report.title) if report.title else None,
            description=redact_phones(report.description),
            households_affected=report.households_affected,
            urgent=bool(report.urgent),
            reporter_ref=self.pii.reporter_ref(report.reporter, report.source, report.report_id),
            reporter_phone_masked=mask_phone(report.reporter.phone),
            default_tier=category.tier,
            located_by=located.by,
        )
