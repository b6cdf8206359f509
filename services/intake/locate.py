"""Locating a report in the unit tree: pure geometry and text matching.

The rule order (first that works): building_code -> its grid; grid_code; lon/lat inside a grid's
polygon; address text (and the description) matched against building and grid names and aliases.
``services.intake.handlers`` applies it against intake's copy of the registry.
"""

from __future__ import annotations

from collections.abc import Sequence


def point_in_polygon(lon: float, lat: float, polygon: Sequence[Sequence[float]]) -> bool:
    """Ray casting; points on an edge count as inside for the lower/left edges."""
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i][0], polygon[i][1]
        x2, y2 = polygon[(i + 1) % n][0], polygon[(i + 1) % n][1]
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lon < x_cross:
                inside = not inside
    return inside
