"""The same matter told twice, through two channels (附议 across channels): a report and an open
case are the same matter when they are of the same category, their points are within a radius
and their texts are alike. Pure: no SQL, no Kafka.

This rule comes second: a report first looks for an open case of its category at its building
(``merging.py``); only without one does it look for an open case nearby. Both look only at cases
opened within the merge window.

Texts are compared as residents' accounts of a problem, not as channel formulae: NFKC, without
what a channel adds to every report (来电人反映, 入户走访时, 天天敲门组, 要求尽快处理 …), and
without runs of five or more digits (phone, ID and card numbers: they never tell two matters
apart, and no personal number is kept). Two reports located at two different buildings, or
whose texts name different building numbers (3栋, 5栋), are never the same matter. What is left
is compared through its character
bigrams: ``rapidfuzz``'s ``token_set_ratio`` over the sorted sets of bigrams, that is how much of
the smaller account the two share (0..1). Building numbers stay (3栋 and 5栋 differ).

Thresholds (``WANGGE_NEARBY_RADIUS_M``, ``WANGGE_NEARBY_SIMILARITY``) were chosen on the
labelled pairs of ``services/intake/data/duplicate-pairs.jsonl`` (``python -m bench.duplicates``
measures them; docs/performance.md has the figures).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz

from .coords import distance_m
from .locate import normalise

# What channels put into every report: their formulae, and the requests every report ends with.
_FORMULAE = re.compile(
    "|".join(
        (
            "【我要报事】",
            "意见箱",
            "写给社区",
            "来电人",
            "市民来电",
            "来电",
            "入户走访时",
            "入户走访",
            "走访中",
            "天天敲门组",
            "居民来访",
            "居民",
            "住户",
            "反映",
            "反馈",
            "记录",
            "称",
            "网格员",
            "社区",
            "物业",
            "要求",
            "希望",
            "请求",
            "麻烦",
            "尽快",
            "处理",
            "能不能",
            "一下",
        )
    )
)
_BUILDING_NUMBER = re.compile(r"(?<!\d)(\d{1,4})栋")
_KEPT = re.compile(r"[\u3400-\u9fff]+|(?<!\d)\d{1,4}(?!\d)")
_MAX_TEXT = 400  # characters compared: the opening of a long account says what it is about


def matter_text(text: str) -> str:
    """The part of a report's text that says what the matter is (the rule compares these; the
    case keeps its first report's)."""
    text = _FORMULAE.sub(" ", normalise(unicodedata.normalize("NFKC", text)))
    return " ".join(_KEPT.findall(text))[:_MAX_TEXT]


def _bigrams(text: str) -> str:
    grams = set()
    for run in text.split():
        if len(run) == 1:
            grams.add(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return " ".join(sorted(grams))


def text_similarity(a: str, b: str) -> float:
    """How alike two ``matter_text``s are, 0..1 (the module docstring says how)."""
    if not a or not b:
        return 0.0
    return float(fuzz.token_set_ratio(_bigrams(a), _bigrams(b))) / 100.0


def building_numbers(text: str) -> frozenset[str]:
    """The building numbers a ``matter_text`` names (3栋, 3号楼 and 三栋 are all 3)."""
    return frozenset(_BUILDING_NUMBER.findall(text))


@dataclass(frozen=True)
class Sketch:
    """What the rule knows of a report or a case: category, WGS-84 point, matter text, and the
    building it was located at, if any."""

    category: str
    lon: float
    lat: float
    text: str
    building: str | None = None


@dataclass(frozen=True)
class NearbyCase:
    case_id: str
    sketch: Sketch


@dataclass(frozen=True)
class Match:
    case_id: str
    distance_m: float
    similarity: float


@dataclass(frozen=True)
class NearbyRule:
    radius_m: float = 150.0
    min_similarity: float = 0.5

    def match(self, report: Sketch, case: NearbyCase) -> Match | None:
        """``case`` when it is the same matter as ``report``, else None."""
        c = case.sketch
        if c.category != report.category:
            return None
        if report.building and c.building and report.building != c.building:
            return None  # located at two buildings: the place rule has told them apart
        named, case_named = building_numbers(report.text), building_numbers(c.text)
        if named and case_named and not named & case_named:
            return None  # 3栋 and 5栋: two matters however alike
        d = distance_m(report.lon, report.lat, c.lon, c.lat)
        if d > self.radius_m:
            return None
        s = text_similarity(report.text, c.text)
        return Match(case.case_id, d, s) if s >= self.min_similarity else None

    def best(self, report: Sketch, cases: Iterable[NearbyCase]) -> Match | None:
        """The most alike of the cases that are the same matter (the nearest of equals)."""
        found = [m for c in cases if (m := self.match(report, c)) is not None]
        return max(found, key=lambda m: (m.similarity, -m.distance_m), default=None)

    def lock_cell_m(self) -> float:
        """The size of the cells the merge locks take around a point (``coords.cell``)."""
        return self.radius_m
