"""Intake's handlers: a report becomes a rejection or a located, classified case."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.consumer import Meta
from shared.events import (
    CaseLocation,
    CaseOpened,
    Classification,
    FieldError,
    ReportRejected,
    ReportSubmitted,
)
from shared.registry_store import lineage
from shared.taxonomy import Taxonomy
from shared.uow import UnitOfWork

from . import store
from .classify import KeywordClassifier
from .locate import point_in_polygon
from .privacy import Pii, mask_phone


def new_case_id(now: datetime) -> str:
    return f"C{now:%Y%m%d}-{uuid.uuid4().hex[:10]}"


class Intake:
    def __init__(self, taxonomy: Taxonomy, pii: Pii) -> None:
        self.taxonomy = taxonomy
        self.pii = pii
        self.classifier = KeywordClassifier(taxonomy)

    async def reject(
        self,
        uow: UnitOfWork,
        source: str | None,
        report_id: str | None,
        errors: list[FieldError],
        reason: str = "invalid",
    ) -> None:
        if isinstance(source, str) and isinstance(report_id, str):
            source, report_id = source[:64], report_id[:128]
            await store.insert_report(
                uow.conn,
                source=source,
                report_id=report_id,
                outcome="rejected",
                errors=[e.model_dump() for e in errors],
            )
        else:
            source = source if isinstance(source, str) else None
            report_id = report_id if isinstance(report_id, str) else None
        uow.publish(
            "reports.rejected",
            ReportRejected(source=source, report_id=report_id, errors=errors, reason=reason),
            key=f"{source}:{report_id}",
        )

    async def on_invalid(
        self, uow: UnitOfWork, obj: Any, errors: list[FieldError], meta: Meta
    ) -> None:
        source, report_id = obj.get("source"), obj.get("report_id")
        await self.reject(
            uow,
            source if isinstance(source, str) else None,
            report_id if isinstance(report_id, str) else None,
            errors,
        )

    async def on_report(self, uow: UnitOfWork, report: ReportSubmitted, meta: Meta) -> None:
        conn = uow.conn
        errors: list[FieldError] = []
        if report.category and self.taxonomy.get(report.category) is None:
            errors.append(FieldError(field="category", message="unknown category code"))
        loc = report.location
        if loc.building_code and await store.unit_level(conn, loc.building_code) != "building":
            errors.append(FieldError(field="location.building_code", message="unknown building"))
        if loc.grid_code and await store.unit_level(conn, loc.grid_code) != "grid":
            errors.append(FieldError(field="location.grid_code", message="unknown grid"))
        if errors:
            await self.reject(uow, report.source, report.report_id, errors)
            return
        unit = await self.locate(uow, report)
        if unit is None:
            await self.reject(
                uow,
                report.source,
                report.report_id,
                [FieldError(field="location", message="no unit matches this location")],
                reason="unlocatable",
            )
            return
        lin = await lineage(conn, unit)
        if report.category:
            cat = self.taxonomy.by_code[report.category]
            classification = Classification(method="given", terms=[], confidence=1.0)
        else:
            found = self.classifier.classify(f"{report.title or ''} {report.description}")
            cat = self.taxonomy.by_code[found.category]
            classification = Classification(
                method=found.method, terms=found.terms, confidence=found.confidence
            )
        now = datetime.now(UTC)
        case_id = new_case_id(now)
        await store.insert_case(
            conn, case_id=case_id, category=cat.code, lineage=lin, opened_at=now
        )
        ref = self.pii.reporter_ref(report.reporter, report.source, report.report_id)
        masked = mask_phone(report.reporter.phone)
        await store.insert_report(
            conn,
            source=report.source,
            report_id=report.report_id,
            submitted_at=report.submitted_at,
            outcome="opened",
            case_id=case_id,
            reporter_ref=ref,
            reporter_name_enc=self.pii.encrypt(report.reporter.name),
            reporter_phone_enc=self.pii.encrypt(report.reporter.phone),
            reporter_phone_masked=masked,
        )
        uow.publish(
            "cases.opened",
            CaseOpened(
                case_id=case_id,
                report_ids=[report.report_id],
                source=report.source,
                opened_at=now,
                category=cat.code,
                category_name=cat.name,
                agency_mode=cat.agency_mode,
                classification=classification,
                location=CaseLocation(**{lvl: lin.get(lvl) for lvl in CaseLocation.model_fields}),
                title=report.title,
                description=report.description,
                households_affected=report.households_affected,
                urgent=bool(report.urgent),
                reporter_ref=ref,
                reporter_phone_masked=masked,
                default_tier=cat.tier,
            ),
            key=case_id,
            subject=case_id,
        )

    async def locate(self, uow: UnitOfWork, report: ReportSubmitted) -> str | None:
        loc = report.location
        if loc.building_code:
            return loc.building_code
        if loc.grid_code:
            return loc.grid_code
        if loc.lon is not None and loc.lat is not None:
            for grid in await store.grids_with_area(uow.conn):
                if point_in_polygon(loc.lon, loc.lat, grid["area"]):
                    return str(grid["code"])
        return None
