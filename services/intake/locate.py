"""Locating a report in the unit tree (pure: an in-memory index of intake's registry copy).

Rules, first that works:

1. ``building_code`` -> that building (and so its grid, community, street, district);
2. ``grid_code`` -> that grid;
3. ``lon``/``lat`` inside a grid's polygon -> that grid;
4. the address text matched against unit names and aliases (buildings, grids, communities,
   streets); the finest unit found wins, so an address naming only a community or a street opens
   the case there;
5. the title and description matched the same way ("a building mentioned in the description").

When rules 2-4 find a grid or a coarser unit, a building named in the address or description
*inside that unit* refines it (``grid_code+description``), so duplicates in one building merge.
Nothing found: the report is unlocatable.

Text matching works on normalised text (NFKC, 号楼/幢 -> 栋, Chinese numerals before 栋 ->
digits) so 青和居5号楼, 青和居5栋 and 青和居五栋 are one name. A name is only matched where it is
not part of a longer number (3栋 is not found in 13栋) and not inside a longer name that also
matched (5栋 is not found in 青和居5栋). When several units of the finest level are named, their
lowest common ancestor is used if it is a street or below; names that contradict a coarser name in
the same text (a building outside the community the text names) are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.contract.events import ReportLocation

LEVELS = ("district", "street", "community", "grid", "building")
DEPTH = {level: i for i, level in enumerate(LEVELS)}
# Suffixes residents often leave out: 欧景苑社区 is also 欧景苑, 杨园街道 also 杨园.
_DROPPABLE_SUFFIX = {"community": ("社区",), "street": ("街道办事处", "街道办", "街道")}
_CELL = 0.01  # degrees; bucket size of the polygon index (about 1 km)

_NUMERAL = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_NUMERAL.update({"五": 5, "六": 6, "七": 7, "八": 8, "九": 9})
_BUILDING_WORD = re.compile(r"(号楼|号栋|幢|座)")
_CN_NUMBER_BUILDING = re.compile(r"([零〇一二两三四五六七八九十百]+)栋")
_SPACE = re.compile(r"\s+")


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


def chinese_number(text: str) -> int | None:
    """一 -> 1, 十一 -> 11, 二十三 -> 23, 一百零五 -> 105 (what building numbers need)."""
    total, current = 0, 0
    for ch in text:
        if ch in _NUMERAL:
            current = _NUMERAL[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


def normalise(text: str) -> str:
    """The form names and texts are compared in (see the module docstring)."""
    text = _SPACE.sub("", unicodedata.normalize("NFKC", text))
    text = _BUILDING_WORD.sub("栋", text)

    def to_digits(m: re.Match[str]) -> str:
        n = chinese_number(m.group(1))
        return f"{n}栋" if n is not None else m.group(0)

    return _CN_NUMBER_BUILDING.sub(to_digits, text)


@dataclass(frozen=True)
class UnitInfo:
    code: str
    name: str
    level: str
    parent: str | None = None
    aliases: tuple[str, ...] = ()
    area: tuple[tuple[float, float], ...] | None = None
    point: tuple[float, float] | None = None  # (lon, lat), WGS-84: a building's surveyed point
    served_by: str | None = None  # 插花地: the community that serves this building or grid


@dataclass(frozen=True)
class Place:
    """Where a located case is, for ``cases.opened``'s location: ``lineage`` is the chain that
    serves the place (``{level: code}``: dispatch routes to it, the figures count there) and
    ``administrative`` its own chain when another community serves it (插花地), else None."""

    lineage: dict[str, str]
    administrative: dict[str, str] | None = None


@dataclass(frozen=True)
class Located:
    code: str
    level: str
    by: str  # building_code | grid_code | point | address | description, "+description" if refined


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    codes: frozenset[str]


@dataclass
class RegistryIndex:
    """Units by code, names by normalised text, grid polygons by map cell."""

    units: dict[str, UnitInfo] = field(default_factory=dict)
    _names: dict[str, set[str]] = field(default_factory=dict)
    # The lengths of the names that start with each two characters (longest first): a text is
    # scanned with one lookup per position, and names are only tried where one can start.
    _lengths_at: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _cells: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    _bbox: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)

    @classmethod
    def build(cls, units: Iterable[UnitInfo]) -> RegistryIndex:
        idx = cls(units={u.code: u for u in units})
        names: dict[str, set[str]] = defaultdict(set)
        cells: dict[tuple[int, int], list[str]] = defaultdict(list)
        for u in idx.units.values():
            for name in idx._names_of(u):
                key = normalise(name)
                if len(key) >= 2:
                    names[key].add(u.code)
            if u.level == "grid" and u.area and len(u.area) >= 3:
                xs, ys = [p[0] for p in u.area], [p[1] for p in u.area]
                box = (min(xs), min(ys), max(xs), max(ys))
                idx._bbox[u.code] = box
                for cx in range(int(box[0] // _CELL), int(box[2] // _CELL) + 1):
                    for cy in range(int(box[1] // _CELL), int(box[3] // _CELL) + 1):
                        cells[(cx, cy)].append(u.code)
        idx._names = dict(names)
        lengths: dict[str, set[int]] = defaultdict(set)
        for key in names:
            lengths[key[:2]].add(len(key))
        idx._lengths_at = {p: tuple(sorted(ls, reverse=True)) for p, ls in lengths.items()}
        idx._cells = dict(cells)
        return idx

    @staticmethod
    def _names_of(u: UnitInfo) -> list[str]:
        out = [u.name, *u.aliases]
        for suffix in _DROPPABLE_SUFFIX.get(u.level, ()):
            if u.name.endswith(suffix) and len(u.name) - len(suffix) >= 2:
                out.append(u.name[: -len(suffix)])
        return out

    # --- the tree ---------------------------------------------------------------------------

    def level(self, code: str) -> str | None:
        u = self.units.get(code)
        return u.level if u else None

    def ancestors(self, code: str) -> list[str]:
        """``code`` and its ancestors, finest first."""
        out: list[str] = []
        cur: str | None = code
        while cur is not None and cur in self.units and len(out) < len(LEVELS) + 2:
            out.append(cur)
            cur = self.units[cur].parent
        return out

    def lineage(self, code: str) -> dict[str, str]:
        """``{level: code}`` for the unit and its ancestors."""
        return {self.units[c].level: c for c in self.ancestors(code)}

    def place(self, code: str) -> Place:
        """The chain that serves the unit ``code`` (插花地): the finest of the unit and its
        ancestors that names a ``served_by`` community (a building's own before its grid's) puts
        the case under that community, its street and district; the grid is the served grid
        itself, or for a served building the serving community's grid whose area holds the
        building's point (none when no grid of it does: the grid tier then has no unit and
        dispatch goes one tier up). A ``served_by`` the index does not know as a community (the
        registry not read that far yet) is ignored. Every other unit is served by its own
        chain."""
        own = self.lineage(code)
        for c in self.ancestors(code):
            u = self.units[c]
            if u.level not in ("building", "grid"):
                break
            serving = self.units.get(u.served_by or "")
            if serving is None or serving.level != "community":
                continue
            if serving.code == own.get("community"):
                break  # served by its own community (the registry file refuses saying so)
            served = {k: v for k, v in self.lineage(serving.code).items() if k != "grid"}
            grid = c if u.level == "grid" else self._grid_of(serving.code, own.get("building"))
            if grid is not None:
                served["grid"] = grid
            if "building" in own:
                served["building"] = own["building"]
            administrative = {k: v for k, v in own.items() if k != "building"}
            return Place(served, administrative)
        return Place(own)

    def _grid_of(self, community: str, building: str | None) -> str | None:
        """The grid of ``community`` whose area holds the building's point."""
        point = self.units[building].point if building in self.units else None
        if point is None:
            return None
        for code in self._cells.get((int(point[0] // _CELL), int(point[1] // _CELL)), ()):
            area = self.units[code].area
            if self.units[code].parent == community and area and point_in_polygon(*point, area):
                return code
        return None

    def within(self, code: str, ancestor: str) -> bool:
        return ancestor in self.ancestors(code)

    def common_ancestor(self, codes: Iterable[str]) -> str | None:
        chains = [self.ancestors(c) for c in codes]
        if not chains:
            return None
        shared = set(chains[0]).intersection(*map(set, chains[1:]))
        for c in chains[0]:
            if c in shared:
                return c
        return None

    # --- geometry -----------------------------------------------------------------------------

    def grid_at(self, lon: float, lat: float) -> str | None:
        for code in self._cells.get((int(lon // _CELL), int(lat // _CELL)), ()):
            x0, y0, x1, y1 = self._bbox[code]
            area = self.units[code].area
            if x0 <= lon <= x1 and y0 <= lat <= y1 and area and point_in_polygon(lon, lat, area):
                return code
        return None

    # --- text ---------------------------------------------------------------------------------

    def _matches(self, text: str) -> list[_Match]:
        found: list[_Match] = []
        n = len(text)
        lengths_at = self._lengths_at
        for i in range(n - 1):
            for length in lengths_at.get(text[i : i + 2], ()):
                j = i + length
                if j > n:
                    continue
                codes = self._names.get(text[i:j])
                if not codes:
                    continue
                if text[i].isdigit() and i > 0 and text[i - 1].isdigit():
                    continue
                if text[j - 1].isdigit() and j < n and text[j].isdigit():
                    continue
                found.append(_Match(i, j, frozenset(codes)))
        return [
            m
            for m in found
            if not any(
                o.start <= m.start and m.end <= o.end and (o.end - o.start) > (m.end - m.start)
                for o in found
            )
        ]

    def match_text(self, text: str, within: str | None = None) -> str | None:
        """The finest unit the text names (inside ``within`` when given), or None."""
        if not text:
            return None
        candidates = {c for m in self._matches(normalise(text)) for c in m.codes}
        if within is not None:
            candidates = {c for c in candidates if c != within and self.within(c, within)}
        if not candidates:
            return None
        named_at: dict[str, set[str]] = defaultdict(set)
        for c in candidates:
            named_at[self.units[c].level].add(c)

        def consistent(code: str) -> bool:
            chain = self.lineage(code)
            depth = DEPTH[self.units[code].level]
            return all(
                chain.get(level) in named
                for level, named in named_at.items()
                if DEPTH[level] < depth and level in chain
            )

        kept = [c for c in candidates if consistent(c)]
        finest = max(DEPTH[self.units[c].level] for c in kept)
        at_finest = [c for c in kept if DEPTH[self.units[c].level] == finest]
        if len(at_finest) == 1:
            return at_finest[0]
        common = self.common_ancestor(at_finest)
        if common is None or DEPTH[self.units[common].level] < DEPTH["street"]:
            return None
        return common

    # --- the rules ----------------------------------------------------------------------------

    def locate(self, loc: ReportLocation, text: str) -> Located | None:
        """Apply the rules of the module docstring; ``text`` is the title and description.
        Unknown codes are the caller's to reject before this is called."""
        if loc.building_code and self.level(loc.building_code) == "building":
            return Located(loc.building_code, "building", "building_code")
        found: tuple[str, str] | None = None
        if loc.grid_code and self.level(loc.grid_code) == "grid":
            found = (loc.grid_code, "grid_code")
        elif loc.lon is not None and loc.lat is not None and (g := self.grid_at(loc.lon, loc.lat)):
            found = (g, "point")
        elif loc.address and (a := self.match_text(loc.address)):
            found = (a, "address")
        elif d := self.match_text(text):
            found = (d, "description")
        if found is None:
            return None
        code, by = found
        for source, words in (("address", loc.address or ""), ("description", text)):
            if by == source or self.units[code].level == "building":
                continue
            if finer := self.match_text(words, within=code):
                code, by = finer, f"{by}+{source}"
        return Located(code, self.units[code].level, by)
