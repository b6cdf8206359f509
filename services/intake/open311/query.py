"""The filters of ``GET requests`` (pure), as the specification sets them.

- ``service_request_id``: one or more ids, comma-separated (or the parameter repeated); it
  overrides every other filter.
- ``service_code``, ``status`` (``open``, ``closed``): one or more, comma-separated or repeated.
- ``start_date``, ``end_date``: W3C-DTF (``2010-01-01T00:00:00Z``; a reduced precision such as
  ``2010-01-01`` or ``2010-01`` means that whole period, in Asia/Shanghai time); they select on
  ``requested_datetime`` and may not span more than 90 days. Without them: the last 90 days; with
  one of them: 90 days from the start, or up to the end.
- At most 1000 requests, the newest first; the common pagination extension ``page_size``
  (1..1000, default 1000) and ``page`` (from 1) reach further.
- ``extensions=true`` adds ``extended_attributes`` (the common extension).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .status import SH

WINDOW = timedelta(days=90)
MAX_PAGE = 1000
MAX_IDS = 1000
STATUSES = ("open", "closed")
W3C_DTF = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d{1,6})?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?$",
    re.ASCII,
)


class BadQuery(ValueError):
    """A filter that cannot be used: ``(parameter, message)`` pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in errors))
        self.errors = errors


@dataclass(frozen=True)
class Period:
    """A W3C-DTF value as the period it names: [start, end)."""

    start: datetime
    end: datetime


def parse_w3(text: str) -> Period:
    """``2010``, ``2010-05``, ``2010-05-24`` (Asia/Shanghai), or an instant with its offset
    (``2010-05-24T08:00Z``, ``…T08:00:00+08:00``, ``…T08:00:00.5Z``)."""
    m = W3C_DTF.match(text.strip())
    if not m:
        raise ValueError("not a W3C date-time (e.g. 2010-01-01T00:00:00Z)")
    g = m.groupdict()
    year, month, day = int(g["year"]), int(g["month"] or 1), int(g["day"] or 1)
    if not 1900 <= year <= 2999:
        raise ValueError("a year from 1900 to 2999")
    try:
        if g["tz"] is not None:
            tz = "+00:00" if g["tz"] == "Z" else g["tz"]
            stamp = f"{year:04d}-{month:02d}-{day:02d}T{g['hour']}:{g['minute']}:"
            stamp += f"{g['second'] or '00'}{g['fraction'] or ''}{tz}"
            at = datetime.fromisoformat(stamp)
            return Period(at, at + timedelta(microseconds=1))
        start = datetime(year, month, day, tzinfo=SH)
    except ValueError:
        raise ValueError("not a valid date") from None
    if g["day"] is not None:
        return Period(start, start + timedelta(days=1))
    if g["month"] is not None:
        nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=SH)
        return Period(start, nxt)
    return Period(start, datetime(year + 1, 1, 1, tzinfo=SH))


@dataclass(frozen=True)
class RequestQuery:
    ids: tuple[str, ...] | None
    service_codes: tuple[str, ...] | None
    statuses: tuple[str, ...] | None
    start: datetime
    end: datetime  # exclusive
    limit: int
    offset: int
    extensions: bool


def _values(given: list[str] | None) -> tuple[str, ...] | None:
    """A list parameter: repeated and/or comma-separated; none given (or only empty) is None."""
    out = tuple(v.strip() for g in given or [] for v in g.split(",") if v.strip())
    return tuple(dict.fromkeys(out)) or None


def _int(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise BadQuery([(name, f"a whole number from {low} to {high}")])
    return int(text)


def _window(
    start_text: str | None, end_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    errors: list[tuple[str, str]] = []
    start = end = None
    for name, text in (("start_date", start_text), ("end_date", end_text)):
        if not text:
            continue
        try:
            period = parse_w3(text)
        except ValueError as exc:
            errors.append((name, str(exc)))
            continue
        if name == "start_date":
            start = period.start
        else:
            end = period.end
    if errors:
        raise BadQuery(errors)
    if start is None and end is None:
        return now - WINDOW, now + timedelta(seconds=1)
    if start is None:
        assert end is not None
        return end - WINDOW, end
    if end is None:
        return start, start + WINDOW
    if end <= start:
        raise BadQuery([("end_date", "must be after start_date")])
    if end - start > WINDOW + timedelta(microseconds=1):
        raise BadQuery([("end_date", "the range may not span more than 90 days")])
    return start, end


def request_query(
    *,
    service_request_id: list[str] | None,
    service_code: list[str] | None,
    status: list[str] | None,
    start_date: str | None,
    end_date: str | None,
    page_size: str | None,
    page: str | None,
    extensions: str | None,
    now: datetime,
) -> RequestQuery:
    """The query the parameters ask for; ``BadQuery`` names every parameter that is wrong."""
    ids = _values(service_request_id)
    if ids is not None and (
        len(ids) > MAX_IDS or any(len(i) > 128 or not i.isprintable() for i in ids)
    ):
        raise BadQuery([("service_request_id", f"at most {MAX_IDS} ids of 128 characters")])
    codes = _values(service_code)
    if codes is not None and any(len(c) > 64 or not c.isprintable() for c in codes):
        raise BadQuery([("service_code", "not a service code")])
    statuses = _values(status)
    if statuses is not None and any(s not in STATUSES for s in statuses):
        raise BadQuery([("status", "open or closed (comma-separated)")])
    ext = (extensions or "false").strip().lower()
    if ext not in ("true", "false", ""):
        raise BadQuery([("extensions", "true or false")])
    limit = _int("page_size", page_size, MAX_PAGE, 1, MAX_PAGE)
    number = _int("page", page, 1, 1, 1_000_000)
    start, end = _window(start_date, end_date, now)
    return RequestQuery(
        ids=ids,
        service_codes=codes,
        statuses=statuses,
        start=start,
        end=end,
        limit=limit,
        offset=(number - 1) * limit,
        extensions=ext == "true",
    )
