"""A deadline's limit (时限) as the rules files write it: natural time, working hours (工作时) or
working days (工作日).

- natural time, the clock running day and night: ``30m``, ``2h``, ``3d``, ``45s``, a number
  (seconds) or ISO 8601 (``PT2H``);
- working hours: ``2wh``, ``0.5wh``: only the working periods of working days count;
- working days: ``3wd``: the close of the 3rd working day after the day the limit starts (that
  day not counted).

The arithmetic of working time is dispatch's (``services/dispatch/workcalendar.py``); this module
only reads and names a limit, so that the taxonomy (a category's own ``sla``) and the tier rules
share one format.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

LimitUnit = Literal["natural", "working_hours", "working_days"]

_NATURAL_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_NATURAL_UNIT = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_WORKING_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(wh|wd)\s*$")
_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def parse_natural(value: Any) -> Any:
    """``30m``, ``2h``, ``3d``, ``45s``; numbers are seconds; anything else goes to pydantic
    (ISO 8601 ``PT2H`` and the like)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str) and (m := _NATURAL_RE.match(value)):
        return timedelta(seconds=float(m.group(1)) * _NATURAL_UNIT[m.group(2)])
    return value


class Limit(BaseModel):
    """A positive limit: ``span`` for natural time and working hours, ``days`` for working
    days (a whole number)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: LimitUnit
    span: timedelta = timedelta(0)
    days: int = 0

    @model_validator(mode="before")
    @classmethod
    def _written(cls, value: Any) -> Any:
        if isinstance(value, Limit | dict):
            return value
        if isinstance(value, str) and (m := _WORKING_RE.match(value)):
            amount = float(m.group(1))
            if m.group(2) == "wh":
                return {"unit": "working_hours", "span": timedelta(hours=amount)}
            if not amount.is_integer():
                raise ValueError(f"working days are whole days, not {m.group(1)}")
            return {"unit": "working_days", "days": int(amount)}
        return {"unit": "natural", "span": _TIMEDELTA.validate_python(parse_natural(value))}

    @model_validator(mode="after")
    def _positive(self) -> Limit:
        if self.unit == "working_days":
            if self.days <= 0 or self.span:
                raise ValueError("working days: a whole number of days above 0")
        elif self.span <= timedelta(0) or self.days:
            raise ValueError("a limit must be longer than 0")
        return self

    @property
    def working(self) -> bool:
        return self.unit != "natural"

    def __str__(self) -> str:
        if self.unit == "working_days":
            return f"{self.days}wd"
        hours = self.span / timedelta(hours=1)
        text = f"{hours:g}"
        return f"{text}wh" if self.unit == "working_hours" else f"{text}h"


def natural(span: timedelta) -> Limit:
    return Limit(unit="natural", span=span)
