"""The simulated territory: a district of streets (街道), communities (社区), grids (网格) and
buildings (楼栋), with departments (职能部门) and handlers, written as a registry YAML file.

Pure and seeded. The default size is modelled on a large urban district: 14 streets, 140
communities, 1,272 grids, about 25,000 buildings and about 3,000 handlers. Grids are rectangles
that tile the district: the district is cut into street blocks, each street block into community
strips, each strip into grids; every building lies strictly inside its grid.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from shared.contract.events import Department, Handler, HandlerRole, Unit
from sim.names import UniqueNames, chinese_numeral, person

# District bounding box (lon, lat), roughly the size of a large Wuhan district (~25 x 17 km).
BBOX = (114.30, 30.45, 114.56, 30.60)


@dataclass(frozen=True)
class TerritorySize:
    streets: int = 14
    communities: int = 140
    grids: int = 1272
    buildings: int = 25_000
    # handlers per unit: grid workers per grid, building heads per grid, community staff, party
    # volunteers and property staff per community, staff per department
    grid_workers_per_grid: float = 1.0
    building_heads_per_grid: float = 0.34
    community_staff: int = 5
    party_volunteers: int = 2
    property_staff: int = 1
    department_staff: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.streets <= self.communities <= self.grids <= self.buildings:
            raise ValueError("need 1 <= streets <= communities <= grids <= buildings")

    @classmethod
    def small(cls) -> TerritorySize:
        """A small city for tests and quick runs."""
        return cls(streets=2, communities=4, grids=12, buildings=120)


# Departments above the community: the street and district categories of
# shared/contract/taxonomy.yaml, plus district departments that take escalated community-tier
# matters.
STREET_DEPARTMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CG", "城管中队", ("illegal_construction", "market_order")),
    ("SZ", "市政所", ("municipal_facility",)),
    ("SF", "司法所", ("legal_petition",)),
)
DISTRICT_DEPARTMENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CGJ", "城管执法局", ("illegal_construction", "market_order", "sanitation")),
    ("FWJ", "房屋征收局", ("demolition",)),
    ("ZJJ", "住房和城乡建设局", ("municipal_facility", "elevator_retrofit", "owners_committee")),
    ("MZJ", "民政局", ("welfare", "elderly_care")),
    ("YJJ", "应急管理局", ("safety_hazard",)),
    ("SFJ", "司法局", ("legal_petition", "neighbor_dispute")),
    ("SCJ", "市场监督管理局", ("market_order",)),
    ("YLJ", "园林局", ("greening",)),
)


@dataclass(frozen=True)
class Building:
    code: str
    name: str
    grid: str
    community: str
    street: str
    lon: float
    lat: float
    address: str  # e.g. 关山街道金湖苑小区3栋


@dataclass
class Territory:
    district: Unit
    units: list[Unit]
    departments: list[Department]
    handlers: list[Handler]
    buildings: list[Building] = field(default_factory=list)
    handlers_by_unit: dict[str, list[Handler]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_unit: dict[str, list[Handler]] = defaultdict(list)
        for h in self.handlers:
            by_unit[h.unit].append(h)
        self.handlers_by_unit = dict(by_unit)

    def records(self) -> list[Unit | Department | Handler]:
        return [*self.units, *self.departments, *self.handlers]

    def count(self, level: str) -> int:
        return sum(1 for u in self.units if u.level == level)

    def grids(self) -> list[Unit]:
        return [u for u in self.units if u.level == "grid"]

    def to_yaml(self) -> str:
        """The registry file ``wangge registry load`` reads: one flow mapping per record."""
        lines = [
            "# A simulated district made by `wangge simulate territory` (seeded; regenerate it",
            "# rather than editing). Load it with: wangge registry load FILE",
            "units:",
        ]

        def entry(d: dict[str, object]) -> str:
            return "  - " + json.dumps(d, ensure_ascii=False, separators=(", ", ": "))

        for u in self.units:
            lines.append(entry(u.model_dump(exclude={"kind"}, exclude_defaults=True)))
        lines.append("departments:")
        for d in self.departments:
            lines.append(entry(d.model_dump(exclude={"kind"}, exclude_defaults=True)))
        lines.append("handlers:")
        for h in self.handlers:
            lines.append(entry(h.model_dump(exclude={"kind"})))
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_yaml(), encoding="utf-8")
        return p


def split(total: int, parts: int, rng: random.Random, spread: float = 0.35) -> list[int]:
    """``total`` split into ``parts`` positive integers that vary by about ``spread``."""
    if parts <= 0 or total < parts:
        raise ValueError(f"cannot split {total} into {parts} positive parts")
    weights = [max(0.05, rng.gauss(1.0, spread)) for _ in range(parts)]
    scale = (total - parts) / sum(weights)
    out = [1 + int(w * scale) for w in weights]
    short = total - sum(out)
    order = sorted(range(parts), key=lambda i: weights[i] * scale - int(weights[i] * scale))
    for i in range(short):
        out[order[-1 - (i % parts)]] += 1
    return out


def _cells(
    box: tuple[float, float, float, float], n: int, *, vertical: bool
) -> list[tuple[float, float, float, float]]:
    """``box`` cut into ``n`` equal strips (columns when ``vertical``)."""
    x0, y0, x1, y1 = box
    out = []
    for i in range(n):
        if vertical:
            a, b = x0 + (x1 - x0) * i / n, x0 + (x1 - x0) * (i + 1) / n
            out.append((a, y0, b, y1))
        else:
            a, b = y0 + (y1 - y0) * i / n, y0 + (y1 - y0) * (i + 1) / n
            out.append((x0, a, x1, b))
    return out


def _street_blocks(n: int) -> list[tuple[float, float, float, float]]:
    rows = 2 if n >= 4 else 1
    cols = -(-n // rows)
    blocks = []
    for r, row in enumerate(_cells(BBOX, rows, vertical=False)):
        k = cols if r < rows - 1 else n - cols * (rows - 1)
        blocks.extend(_cells(row, k, vertical=True))
    return blocks


def _r(x: float) -> float:
    return round(x, 6)


def generate_territory(
    size: TerritorySize | None = None,
    *,
    seed: int = 1,
    district_code: str = "HS",
    district_name: str = "洪山区",
) -> Territory:
    size = size or TerritorySize()
    rng = random.Random(seed)
    names = UniqueNames(rng)
    district = Unit(code=district_code, name=district_name, level="district")
    units: list[Unit] = [district]
    departments: list[Department] = []
    handlers: list[Handler] = []
    buildings: list[Building] = []

    def add_handlers(unit: str, role: HandlerRole, n: int) -> None:
        for _ in range(n):
            handlers.append(
                Handler(
                    id=f"h-{len(handlers) + 1:06d}",
                    name=person(rng),
                    unit=unit,
                    role=role,
                    on_duty=rng.random() < 0.95,
                )
            )

    def fraction(rate: float) -> int:
        whole = int(rate)
        return whole + (1 if rng.random() < rate - whole else 0)

    for code, name, cats in DISTRICT_DEPARTMENTS:
        dep = Department(
            code=f"{district_code}-{code}",
            name=f"{district_name}{name}",
            parent=district_code,
            categories=list(cats),
        )
        departments.append(dep)
        add_handlers(dep.code, "department_staff", size.department_staff)

    communities_per_street = split(size.communities, size.streets, rng)
    grids_per_community = split(size.grids, size.communities, rng)
    buildings_per_grid = split(size.buildings, size.grids, rng)
    c_index = g_index = 0
    for s, block in enumerate(_street_blocks(size.streets)):
        street_name = names.street(s) + "街道"
        street = Unit(
            code=f"{district_code}-S{s + 1:02d}",
            name=street_name,
            level="street",
            parent=district_code,
            aliases=[street_name.removesuffix("街道")],
        )
        units.append(street)
        for code, name, cats in STREET_DEPARTMENTS:
            dep = Department(
                code=f"{street.code}-{code}",
                name=f"{street_name}{name}",
                parent=street.code,
                categories=list(cats),
            )
            departments.append(dep)
            add_handlers(dep.code, "department_staff", size.department_staff)
        n_comm = communities_per_street[s]
        for c, strip in enumerate(_cells(block, n_comm, vertical=True)):
            comm_name = names.community() + "社区"
            community = Unit(
                code=f"{street.code}-C{c + 1:02d}",
                name=comm_name,
                level="community",
                parent=street.code,
            )
            units.append(community)
            add_handlers(community.code, "community_staff", size.community_staff)
            add_handlers(community.code, "party_volunteer", size.party_volunteers)
            add_handlers(community.code, "property_staff", size.property_staff)
            n_grids = grids_per_community[c_index]
            c_index += 1
            for g, cell in enumerate(_cells(strip, n_grids, vertical=False)):
                x0, y0, x1, y1 = cell
                compound = names.compound()
                grid = Unit(
                    code=f"{community.code}-G{g + 1:02d}",
                    name=f"{comm_name.removesuffix('社区')}第{chinese_numeral(g + 1)}网格",
                    level="grid",
                    parent=community.code,
                    area=[(_r(x0), _r(y0)), (_r(x1), _r(y0)), (_r(x1), _r(y1)), (_r(x0), _r(y1))],
                    aliases=[f"{compound}小区"],
                )
                units.append(grid)
                add_handlers(grid.code, "grid_worker", fraction(size.grid_workers_per_grid))
                add_handlers(grid.code, "building_head", fraction(size.building_heads_per_grid))
                n_buildings = buildings_per_grid[g_index]
                g_index += 1
                dx, dy = (x1 - x0) * 0.1, (y1 - y0) * 0.1
                for b in range(1, n_buildings + 1):
                    lon = _r(rng.uniform(x0 + dx, x1 - dx))
                    lat = _r(rng.uniform(y0 + dy, y1 - dy))
                    bname = f"{compound}小区{b}栋"
                    unit = Unit(
                        code=f"{grid.code}-B{b:03d}",
                        name=bname,
                        level="building",
                        parent=grid.code,
                        aliases=[f"{compound}{b}栋", f"{compound}{chinese_numeral(b)}栋"],
                        lon=lon,
                        lat=lat,
                    )
                    units.append(unit)
                    buildings.append(
                        Building(
                            code=unit.code,
                            name=bname,
                            grid=grid.code,
                            community=community.code,
                            street=street.code,
                            lon=lon,
                            lat=lat,
                            address=f"{street_name}{bname}",
                        )
                    )
    return Territory(district, units, departments, handlers, buildings)
