"""The unit registry file: parsing and validating the operator's YAML (pure: no I/O but the file).

``wangge registry load FILE`` validates the whole file with this module before publishing anything;
each error names the line it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from shared.contract.events import Department, Handler, RegistryRecord, Unit, registry_key
from shared.contract.taxonomy import Taxonomy

PARENT_LEVEL = {
    "street": "district",
    "community": "street",
    "grid": "community",
    "building": "grid",
}
# 插花地: the levels a unit served by another community (``served_by``) may have
SERVED_LEVELS = ("grid", "building")
_RECORD = TypeAdapter(RegistryRecord)


@dataclass(frozen=True)
class RegistryError:
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        return f"{at}{self.where}: {self.message}"


class RegistryInvalid(Exception):
    def __init__(self, errors: list[RegistryError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping as ``__line__``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_registry(text: str, taxonomy: Taxonomy) -> list[Unit | Department | Handler]:
    """Every record of the file, or ``RegistryInvalid`` with all the errors found."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RegistryInvalid(
            [RegistryError(mark.line + 1 if mark else None, "file", f"not valid YAML: {exc}")]
        ) from None
    if not isinstance(doc, dict):
        raise RegistryInvalid([RegistryError(None, "file", "expected a mapping with 'units'")])
    errors: list[RegistryError] = []
    records: list[tuple[int | None, Unit | Department | Handler]] = []
    for section, kind in (
        ("units", "unit"),
        ("departments", "department"),
        ("handlers", "handler"),
    ):
        entries = doc.get(section) or []
        if not isinstance(entries, list):
            errors.append(RegistryError(doc.get("__line__"), section, "expected a list"))
            continue
        for i, entry in enumerate(entries):
            where = f"{section}[{i}]"
            if not isinstance(entry, dict):
                errors.append(RegistryError(None, where, "expected a mapping"))
                continue
            line = entry.pop("__line__", None)
            try:
                records.append((line, _RECORD.validate_python({**entry, "kind": kind})))
            except ValidationError as exc:
                for err in exc.errors(include_url=False, include_input=False):
                    loc = ".".join(str(p) for p in err["loc"][1:]) or "(entry)"
                    errors.append(RegistryError(line, f"{where}.{loc}", err["msg"]))
    errors.extend(_cross_check(records, taxonomy))
    if errors:
        raise RegistryInvalid(errors)
    return [r for _, r in records]


def _cross_check(
    records: list[tuple[int | None, Unit | Department | Handler]], taxonomy: Taxonomy
) -> list[RegistryError]:
    """What a record cannot check alone: unique codes, and what each record's parent, unit and
    categories name exists and fits; in the file's order, a record's duplicate code first."""
    errors: list[RegistryError] = []
    seen: dict[str, int | None] = {}
    units = {r.code: r for _, r in records if isinstance(r, Unit)}
    departments = {r.code: r for _, r in records if isinstance(r, Department)}
    for line, r in records:
        key = registry_key(r)
        if key in seen:
            errors.append(RegistryError(line, key, f"duplicate code (first on line {seen[key]})"))
        seen.setdefault(key, line)
        if isinstance(r, Unit):
            errors.extend(_check_unit(line, r, units))
        elif isinstance(r, Department):
            errors.extend(_check_department(line, r, units, taxonomy))
        else:
            errors.extend(_check_handler(line, r, units, departments))
    return errors


def _check_unit(line: int | None, r: Unit, units: dict[str, Unit]) -> list[RegistryError]:
    """A parent of the level above (a district none), an area of 3 points, both coordinates."""
    errors: list[RegistryError] = []
    want = PARENT_LEVEL.get(r.level)
    if want is None and r.parent:
        errors.append(RegistryError(line, r.code, "a district has no parent"))
    if want is not None:
        parent = units.get(r.parent or "")
        if parent is None:
            errors.append(RegistryError(line, r.code, f"{r.level} needs a parent {want}"))
        elif parent.level != want:
            message = f"parent {parent.code} is a {parent.level}, not a {want}"
            errors.append(RegistryError(line, r.code, message))
    if r.area is not None and len(r.area) < 3:
        errors.append(RegistryError(line, r.code, "area needs at least 3 points"))
    if (r.lon is None) != (r.lat is None):
        errors.append(RegistryError(line, r.code, "give both lon and lat, or neither"))
    if r.served_by is not None:
        errors.extend(_check_served_by(line, r, units))
    return errors


def _check_served_by(line: int | None, r: Unit, units: dict[str, Unit]) -> list[RegistryError]:
    """插花地: only a building or a grid is served elsewhere, by a community of the file that is
    not its own administrative community."""
    if r.level not in SERVED_LEVELS:
        message = f"served_by is for buildings and grids, not a {r.level}"
        return [RegistryError(line, r.code, message)]
    serving = units.get(r.served_by or "")
    if serving is None:
        return [RegistryError(line, r.code, f"served_by {r.served_by}: no such unit in the file")]
    if serving.level != "community":
        message = f"served_by {serving.code} is a {serving.level}, not a community"
        return [RegistryError(line, r.code, message)]
    if administrative_community(r, units) == serving.code:
        message = f"served_by {serving.code} is its own community: leave served_by out"
        return [RegistryError(line, r.code, message)]
    return []


def administrative_community(r: Unit, units: dict[str, Unit]) -> str | None:
    """The community a grid or building belongs to by its parents (None: not found)."""
    cur: Unit | None = r
    for _ in range(len(PARENT_LEVEL) + 1):
        if cur is None or cur.level == "community":
            break
        cur = units.get(cur.parent or "")
    return cur.code if cur is not None and cur.level == "community" else None


def _check_department(
    line: int | None, r: Department, units: dict[str, Unit], taxonomy: Taxonomy
) -> list[RegistryError]:
    """Under a street or a district; categories the taxonomy knows."""
    errors: list[RegistryError] = []
    parent = units.get(r.parent)
    if parent is None or parent.level not in ("street", "district"):
        errors.append(RegistryError(line, r.code, "parent must be a street or district"))
    for c in r.categories:
        if taxonomy.get(c) is None:
            errors.append(RegistryError(line, r.code, f"unknown category {c!r}"))
    return errors


def _check_handler(
    line: int | None, r: Handler, units: dict[str, Unit], departments: dict[str, Department]
) -> list[RegistryError]:
    """Attached to a unit or a department of the file."""
    if r.unit not in units and r.unit not in departments:
        return [RegistryError(line, r.id, f"unknown unit or department {r.unit!r}")]
    return []


def load_registry_file(path: str | Path, taxonomy: Taxonomy) -> list[Unit | Department | Handler]:
    return parse_registry(Path(path).read_text(encoding="utf-8"), taxonomy)
