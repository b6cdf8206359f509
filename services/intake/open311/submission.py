"""A POST of Open311 as a ``ReportSubmitted``, and its errors in Open311's terms (pure).

The fields, as the specification names them (form-encoded, or the same names in a JSON object):
``service_code``; a location: ``lat`` and ``long``, ``address_string`` or ``address_id`` (a
registry code: a building or a grid is located by it, a community, street or district by its
name); ``description``; ``media_url``; the reporter: ``first_name``, ``last_name``, ``phone``
(a mainland mobile number, as on every channel), ``account_id`` (their account in the upstream
system: the same account seconding twice counts once); ``attribute[code]=value`` for the
service definition's attributes (``services.intake.open311.catalog``). ``email`` and
``device_id`` are accepted and dropped: a report has no field for them, and intake keeps no
personal data it does not use. An empty value is no value ("optional arguments" in the
specification). A photo uploaded as the file ``media`` of a multipart POST is stored by the
route and reaches the report as its id (``photo_ids``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.contract.events import FieldError, ReportSubmitted

from . import catalog

ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,80}$")
CJK = re.compile(r"[\u3400-\u9fff]")
INTEGER = re.compile(r"^[0-9]{1,7}$")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # but tab and line breaks
BOOLEANS = {"true": True, "false": False}
# The report's fields, by the Open311 names that carry them (for errors)
FIELD_NAMES = {
    "report_id": "Idempotency-Key",
    "category": "service_code",
    "location": "location",
    "location.lat": "lat",
    "location.lon": "long",
    "location.address": "address_string",
    "location.building_code": "address_id",
    "location.grid_code": "address_id",
    "reporter.phone": "phone",
    "reporter.name": "first_name",
    "reporter.resident_id": "account_id",
    "reporter.anonymous": "attribute[anonymous]",
    "title": "attribute[title]",
    "households_affected": "attribute[households_affected]",
    "urgent": "attribute[urgent]",
    "description": "description",
    "photos": "media_url",
    "photo_ids": "media",
}
LOCATION_REQUIRED = "a location is required: lat and long, address_string or address_id"


class Invalid(Exception):
    """What is wrong with a POST: ``(field, message)`` pairs, and the HTTP status (400, or 404
    for an unknown service code)."""

    def __init__(self, errors: list[tuple[str, str]], status: int = 400) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = errors
        self.status = status


@dataclass(frozen=True)
class Submission:
    """A POST's fields: one value each, and the attributes' values by code."""

    fields: dict[str, str]
    attributes: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


def from_form(pairs: Iterable[tuple[str, str]]) -> Submission:
    """The fields of a form-encoded POST (``attribute[code]=v``, ``attribute[code][]=v``)."""
    fields: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    errors: list[tuple[str, str]] = []
    for key, value in pairs:
        if value == "":
            continue
        if CONTROL.search(key) or CONTROL.search(value):
            errors.append((key if not CONTROL.search(key) else "body", "control characters"))
            continue
        m = ATTRIBUTE_KEY.match(key)
        if m:
            attributes.setdefault(m.group(1), []).append(value)
        elif key.startswith("attribute"):
            errors.append((key, "write attributes as attribute[code]=value"))
        elif key in fields and fields[key] != value:
            errors.append((key, "given more than once, with different values"))
        else:
            fields[key] = value
    if errors:
        raise Invalid(errors)
    return Submission(fields, attributes)


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise Invalid([(name, "must be a string, a number or a boolean")])


def from_json(body: Any) -> Submission:
    """The fields of a JSON POST: the same names in an object; attributes as ``"attribute":
    {code: value or [values]}`` or as ``"attribute[code]"`` keys. ``null`` is no value."""
    if not isinstance(body, dict):
        raise Invalid([("body", "must be a JSON object")])
    pairs: list[tuple[str, str]] = []
    for key, value in body.items():
        if value is None:
            continue
        if key == "attribute":
            if not isinstance(value, dict):
                raise Invalid([("attribute", "must be an object of code: value")])
            for code, v in value.items():
                for item in v if isinstance(v, list) else [v]:
                    if item is not None:
                        pairs.append((f"attribute[{code}]", _text(f"attribute[{code}]", item)))
        elif isinstance(value, list) and ATTRIBUTE_KEY.match(key):
            pairs += [(key, _text(key, item)) for item in value if item is not None]
        else:
            pairs.append((key, _text(key, value)))
    return from_form(pairs)


def report_id(system: str, idempotency_key: str | None) -> str:
    """The report's id: the ``Idempotency-Key`` header, scoped by the upstream system (a retry
    with the same key is the same report), else a fresh one."""
    if idempotency_key is None:
        return f"{system}:{uuid.uuid4().hex}"
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise Invalid([("Idempotency-Key", "1 to 80 visible ASCII characters")])
    return f"{system}:{idempotency_key}"


def full_name(first: str | None, last: str | None) -> str | None:
    """A Chinese name is written family name first, without a space (王 + 芳 = 王芳)."""
    if not first and not last:
        return None
    if CJK.search(f"{first or ''}{last or ''}"):
        return f"{last or ''}{first or ''}"
    return " ".join(p for p in (first, last) if p)


def _number(sub: Submission, name: str, errors: list[tuple[str, str]]) -> float | None:
    text = sub.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        errors.append((name, "must be a number"))
        return None
    if not math.isfinite(value):
        errors.append((name, "must be a number"))
        return None
    return value


def _attributes(sub: Submission, errors: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, values in sub.attributes.items():
        attr = catalog.BY_CODE.get(code)
        field = f"attribute[{code}]"
        if attr is None:
            errors.append((field, "not an attribute of this service"))
        elif len(values) > 1:
            errors.append((field, "takes one value"))
        elif attr.datatype == "singlevaluelist" and attr.values != catalog.YES_NO:
            if values[0] not in {k for k, _ in attr.values}:
                errors.append((field, "must be one of " + ", ".join(k for k, _ in attr.values)))
            else:
                out[code] = values[0]
        elif attr.datatype == "singlevaluelist":
            if values[0] not in BOOLEANS:
                errors.append((field, "must be true or false"))
            else:
                out[code] = BOOLEANS[values[0]]
        elif attr.datatype == "number":
            if not INTEGER.match(values[0]):
                errors.append((field, "must be a whole number"))
            else:
                out[code] = int(values[0])
        else:
            out[code] = values[0]
    return out


@dataclass(frozen=True)
class AddressUnit:
    """The registry unit an ``address_id`` names."""

    code: str
    level: str
    name: str


def _location(
    sub: Submission, unit: AddressUnit | None, errors: list[tuple[str, str]]
) -> dict[str, Any]:
    lat, lon = _number(sub, "lat", errors), _number(sub, "long", errors)
    if (sub.get("lat") is None) != (sub.get("long") is None):
        errors.append(("lat", "lat and long go together"))
    location: dict[str, Any] = {"lat": lat, "lon": lon, "address": sub.get("address_string")}
    if unit is not None:
        if unit.level == "building":
            location["building_code"] = unit.code
        elif unit.level == "grid":
            location["grid_code"] = unit.code
        else:  # a community, street or district: by its name, refined by the address given
            location["address"] = unit.name + (location["address"] or "")
    return location


def to_report(
    sub: Submission,
    *,
    service_code: str,
    system: str,
    channel: str,
    report_id: str,
    now: datetime,
    address_unit: AddressUnit | None,
    photo_ids: list[str] | None = None,
) -> ReportSubmitted:
    """The report a POST stands for; ``Invalid`` with every error found (Open311 names)."""
    errors: list[tuple[str, str]] = []
    attributes = _attributes(sub, errors)
    location = _location(sub, address_unit, errors)
    if "crs" in attributes:
        location["crs"] = attributes["crs"]
    account = sub.get("account_id")
    body = {
        "report_id": report_id,
        "source": channel,
        "submitted_at": now,
        "reporter": {
            "name": full_name(sub.get("first_name"), sub.get("last_name")),
            "phone": sub.get("phone"),
            "resident_id": f"{system}:{account}"[:64] if account else None,
            "anonymous": attributes.get("anonymous", False),
        },
        "location": location,
        "category": service_code,
        "title": attributes.get("title"),
        "description": sub.get("description"),
        "photos": [sub.fields["media_url"]] if "media_url" in sub.fields else [],
        "photo_ids": photo_ids or [],
        "households_affected": attributes.get("households_affected"),
        "urgent": attributes.get("urgent"),
    }
    if body["description"] is None:
        del body["description"]  # absent, not null: "required"
    try:
        report = ReportSubmitted.model_validate(body)
    except ValidationError as exc:
        errors += [
            model_error(err["loc"], err["msg"], err["type"])
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise Invalid(_unique(errors)) from None
    if errors:
        raise Invalid(_unique(errors))
    return report


def model_error(loc: Iterable[Any], message: str, kind: str = "") -> tuple[str, str]:
    """A validation error of ``ReportSubmitted`` as the Open311 field it comes from."""
    parts = [str(p) for p in loc]
    path = ".".join(p for p in parts if not p.isdigit())
    if path == "location":
        return "location", LOCATION_REQUIRED
    name = FIELD_NAMES.get(path, path)
    if kind == "missing":
        return name, "required"
    return name, message.removeprefix("Value error, ")


def rejection_errors(errors: Iterable[FieldError | dict[str, Any]]) -> list[tuple[str, str]]:
    """A ``reports.rejected`` event's errors (or a stored rejection's) in Open311's terms."""
    out = []
    for e in errors:
        field, message = (
            (e.field, e.message)
            if isinstance(e, FieldError)
            else (
                str(e.get("field", "")),
                str(e.get("message", "")),
            )
        )
        if field == "location":
            out.append(("location", "no unit of the registry matches this location"))
        else:
            out.append((FIELD_NAMES.get(field, field), message))
    return _unique(out) or [("request", "rejected")]


def _unique(errors: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(errors))


def opened_notice(case_id: str, category_name: str, tier: str | None) -> str:
    tier_name = catalog.TIER_NAMES.get(tier or "", "")
    where = f"，默认由{tier_name}层级办理" if tier_name else ""
    return f"已受理（{category_name}），案件编号 {case_id}{where}。"


def merged_notice(case_id: str, supporters: int) -> str:
    return (
        f"该诉求已有在办案件 {case_id}，已作为附议并入（附议人数 {supporters}），"
        "办理进展与该案件一致。"
    )
