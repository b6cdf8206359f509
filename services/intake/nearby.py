"""Duplicates across channels, the orchestration around ``similarity.py``: a report's point in
WGS-84 and its sketch, the locks, the open cases nearby (``nearby_store.py``)."""

from __future__ import annotations

from shared.contract.events import ReportLocation, ReportSubmitted

from .coords import to_wgs84
from .locate import Located, RegistryIndex
from .similarity import Sketch, matter_text


def wgs84_location(loc: ReportLocation) -> ReportLocation:
    """The location with its point in WGS-84 (what the registry's polygons are in)."""
    if loc.crs == "wgs84" or loc.lon is None or loc.lat is None:
        return loc
    lon, lat = to_wgs84(loc.lon, loc.lat, loc.crs)
    return loc.model_copy(update={"lon": lon, "lat": lat, "crs": "wgs84"})


def report_point(
    report: ReportSubmitted, located: Located, index: RegistryIndex
) -> tuple[float, float] | None:
    """Where the report's matter is: its own point (in WGS-84), else its building's."""
    loc = report.location
    if loc.lon is not None and loc.lat is not None:
        return to_wgs84(loc.lon, loc.lat, loc.crs)
    unit = index.units.get(located.code)
    return unit.point if unit is not None and unit.level == "building" else None


def sketch_of(
    report: ReportSubmitted, category: str, located: Located, index: RegistryIndex
) -> Sketch | None:
    point = report_point(report, located, index)
    if point is None:
        return None
    text = matter_text(f"{report.title or ''}\n{report.description}")
    building = located.code if located.level == "building" else None
    return Sketch(category, point[0], point[1], text, building)
