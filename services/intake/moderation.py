"""Abusive words in a report, flagged for moderation (审核) (pure; the list is a data file).

``ModerationList.flags(text)`` gives the categories found (``insult``, ``threat``,
``self_harm``), never the words; intake puts them on ``cases.opened`` as ``moderation``, and the
command centre's triage queue takes a flagged case to a person. The text itself is not changed.

The list is ``data/moderation.txt`` (its header says the format). Before matching, the text is
folded as the classifier folds it (NFKC, so full-width forms and case go; traditional characters
to simplified, ``classify.traditional_to_simplified``), everything that is not a letter, digit or
Chinese character is dropped (``傻 逼``, ``傻*逼`` are ``傻逼``), and the ``allow`` phrases are
removed (``跳楼价`` is a price). One regular expression of all the phrases then finds them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .classify import traditional_to_simplified

DEFAULT_LIST = Path(__file__).parent / "data" / "moderation.txt"
CATEGORIES = ("insult", "threat", "self_harm")
_DROPPED = re.compile(r"[^0-9a-z\u3400-\u9fff\U00020000-\U0002ffff]+")


class ModerationListError(ValueError):
    """A line of the word list is not ``CATEGORY<TAB>PHRASE`` with a known category."""


def fold(text: str) -> str:
    """What the phrases are matched against (module doc)."""
    folded = unicodedata.normalize("NFKC", text).lower().translate(traditional_to_simplified())
    return _DROPPED.sub("", folded)


@dataclass(frozen=True)
class ModerationList:
    phrases: dict[str, str]  # folded phrase -> category
    allowed: tuple[str, ...]  # folded phrases removed before matching

    @classmethod
    def parse(cls, text: str) -> ModerationList:
        phrases: dict[str, str] = {}
        allowed: list[str] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            category, _, phrase = line.partition("\t")
            phrase = fold(phrase)
            if not phrase or (category not in CATEGORIES and category != "allow"):
                raise ModerationListError(
                    f"line {n}: expected CATEGORY<TAB>PHRASE, CATEGORY one of "
                    f"{', '.join(CATEGORIES)} or allow"
                )
            if category == "allow":
                allowed.append(phrase)
            else:
                phrases[phrase] = category
        return cls(phrases, tuple(sorted(allowed, key=len, reverse=True)))

    @property
    def _pattern(self) -> re.Pattern[str]:
        return _compiled(tuple(sorted(self.phrases, key=len, reverse=True)))

    def flags(self, text: str) -> list[str]:
        """The categories of the list's phrases found in ``text``, in ``CATEGORIES`` order."""
        folded = fold(text)
        for phrase in self.allowed:
            folded = folded.replace(phrase, "|")
        found = {self.phrases[m.group()] for m in self._pattern.finditer(folded)}
        return [c for c in CATEGORIES if c in found]


@cache
def _compiled(phrases: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, phrases)) or r"(?!)")


@cache
def default_list() -> ModerationList:
    """The list shipped with intake (read once per process)."""
    return ModerationList.parse(DEFAULT_LIST.read_text(encoding="utf-8"))


def moderation_flags(text: str) -> list[str]:
    """``default_list().flags(text)``."""
    return default_list().flags(text)
