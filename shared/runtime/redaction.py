"""Personal numbers in free text, masked: ID card numbers, bank card numbers, phone numbers
(pure functions, no I/O).

This is the part of redaction that logs need as much as events: ``shared.runtime.logging`` runs
``redact_numbers`` over every line, intake (``services/intake/redaction.py``) over every free
text it publishes, before masking names and house numbers, which only intake does.

What is a number here. A *span* is a run of digits (ASCII or full-width) that may hold
separators inside (spaces, dashes, brackets: ``+86 138-1234-5678``, ``（021）1234 5678``,
``6222 0212 3456 7890``), may start with ``+`` and end with ``X`` (an ID card's check digit), and
touches no other digit or Latin letter (``SF1234567890123``, a parcel number, is no span; a
JSON escape such as ``\\n`` before it does not count as a letter). A span with fewer than 10
digits is left as it is: no ID, card or phone number is that short (an 8-digit local number
without its area code is not recognised, as libphonenumber does not). A longer span is read in
its separator-delimited groups, from the left, each time the longest run of groups that is one
of these, in this order:

- ID card (居民身份证号码): 18 characters, 17 digits and a digit or X, whose digits 7-14 are a
  real date from 1900 on; or the 15-digit numbers of before 1999 (a date YYMMDD at 7-12). The
  check digit is not required to be right: a mistyped ID number still names a person.
- Bank card (银行卡号): 16-19 digits passing the Luhn check (``stdnum.luhn``), or 16-19
  digits starting with 62 (UnionPay, whose older cards do not all pass it), or 13-19 digits
  right after 卡号/银行卡/账号/帐号/卡 (the resident says it is one). Other long numbers (an
  order number, a timestamp in milliseconds) are kept: 9 in 10 of them fail the Luhn check.
- Phone number: what libphonenumber (``phonenumbers``, Google's metadata) parses for region CN
  as a valid (assigned) number, in at most 4 groups: mobiles with or without +86/0086/86,
  landlines with their area code and its 0 (``021-12345678``, ``0571 8888 8888``; without the
  0, ``2024-03-05 15`` would be a Guangzhou number), 400/800 numbers.

Masking keeps the separators and the last 4 digits; every other digit becomes ``*``, except, in a
phone number, its prefix (+86, the trunk 0) and its first 3 digits (a mobile's network, a
400/800 prefix) or its area code (a landline): ``138****5678``, ``+86 138-****-5678``,
``021-****5678``, ``**************4514``, ``**** **** **** 7890``. The last 4 digits are what a
clerk asks a caller for (尾号) and identify no one.

Libraries. ``phonenumbers`` decides what is a phone number and ``stdnum`` does the Luhn check; no
library on PyPI finds Chinese ID and bank card numbers in text that is well kept (the Chinese PII
packages there are single-author releases of this year, and Presidio has no Chinese recognisers
and needs a spaCy model), so spans and groups are found here, with one regular expression.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from stdnum import luhn

NumberKind = Literal["id_card", "bank_card", "phone"]

_DIGITS = "0-9\uff10-\uff19"  # ASCII and full-width
_SEP = " \u3000\\-\uff0d\u2013\u2014()\uff08\uff09"  # spaces, dashes, brackets (half, full width)
# A letter before the span, unless it ends a JSON escape (\n, \t, \u1234 are not words)
_SPAN = re.compile(
    rf"(?<![{_DIGITS}])(?<!(?<!\\)[A-Za-z])"
    rf"[+\uff0b(\uff08]?[{_DIGITS}](?:[{_SEP}]*[{_DIGITS}])*[Xx\uff38\uff58]?"
    rf"(?![{_DIGITS}A-Za-z])"
)
_GROUP = re.compile(rf"[{_DIGITS}]+(?:[Xx\uff38\uff58](?![{_DIGITS}]))?")
_MIN_DIGITS = 10
_CARD_CONTEXT = re.compile(r"(?:卡号|银行卡|账号|帐号|卡)[:：\s]*$")
_FULL_WIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


@dataclass(frozen=True)
class Finding:
    """A personal number found in a text: its kind and where it is (``text[start:end]``)."""

    kind: NumberKind
    start: int
    end: int
    keep_head: int  # digits kept at the start (a phone's prefix and network or area code)


def _plain(s: str) -> str:
    return s.translate(_FULL_WIDTH)


def _date(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True


def _is_id_card(d: str) -> bool:
    if len(d) == 18 and d[:17].isdigit() and (d[17].isdigit() or d[17] == "X"):
        year = int(d[6:10])
        return 1900 <= year <= 2099 and _date(year, int(d[10:12]), int(d[12:14]))
    if len(d) == 15 and d.isdigit():
        return _date(1900 + int(d[6:8]), int(d[8:10]), int(d[10:12]))
    return False


def _is_bank_card(d: str, said_card: bool, groups: list[int]) -> bool:
    if not d.isdigit() or not 13 <= len(d) <= 19:
        return False
    if said_card:
        return True
    # written as cards are: in one run, or in fours (6222 0212 3456 7890 123)
    card_like = len(groups) == 1 or (all(n == 4 for n in groups[:-1]) and groups[-1] <= 4)
    return card_like and len(d) >= 16 and (d.startswith("62") or luhn.is_valid(d))


def _phone_head(d: str, groups: list[int]) -> int | None:
    """For a valid phone number: how many leading digits stay visible; None otherwise."""
    if not d.isdigit() or len(groups) > 4:
        return None
    try:
        number = phonenumbers.parse(d, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    national = len(str(number.national_number))
    prefix = len(d) - national  # +86, 0086, 86, the trunk 0
    area = phonenumbers.length_of_geographical_area_code(number)
    if area and not prefix:  # a landline is written with its trunk 0 (2024030515 is a date)
        return None
    return prefix + (area if area else 3)


def _classify(d: str, said_card: bool, groups: list[int]) -> tuple[NumberKind, int] | None:
    if _is_id_card(d):
        return "id_card", 0
    if _is_bank_card(d, said_card, groups):
        return "bank_card", 0
    head = _phone_head(d, groups)
    if head is not None:
        return "phone", head
    return None


def find_numbers(text: str) -> list[Finding]:
    """Every personal number in ``text``, in order, not overlapping."""
    found: list[Finding] = []
    for span in _SPAN.finditer(text):
        groups = list(_GROUP.finditer(text, span.start(), span.end()))
        if sum(len(g.group()) for g in groups) < _MIN_DIGITS:
            continue
        i = 0
        while i < len(groups):
            hit = _longest_at(text, span.start(), groups, i)
            if hit is None:
                i += 1
            else:
                found.append(hit[0])
                i = hit[1]
    return found


def _longest_at(
    text: str, span_start: int, groups: list[re.Match[str]], i: int
) -> tuple[Finding, int] | None:
    """The longest run of groups from ``i`` that is a personal number, and the group after it."""
    start = groups[i].start()
    # a + or bracket just before the first group belongs to the number
    if start > span_start and text[start - 1] in "+\uff0b(\uff08":
        start -= 1
    said_card = bool(_CARD_CONTEXT.search(text, max(0, start - 8), start))
    for j in range(len(groups), i, -1):
        digits = _plain("".join(g.group() for g in groups[i:j])).upper()
        if len(digits) < _MIN_DIGITS:
            return None
        kind = _classify(digits, said_card, [len(g.group()) for g in groups[i:j]])
        if kind is not None:
            return Finding(kind[0], start, groups[j - 1].end(), kind[1]), j
    return None


def mask_digits(s: str, keep_head: int, keep_tail: int = 4) -> str:
    """``s`` with every digit but the first ``keep_head`` and the last ``keep_tail`` as ``*``
    (separators and the rest as they are)."""
    positions = [n for n, c in enumerate(s) if c.isdigit() or c in "Xx\uff38\uff58"]
    hidden = set(positions[keep_head : max(keep_head, len(positions) - keep_tail)])
    return "".join("*" if n in hidden else c for n, c in enumerate(s))


def redact_numbers(text: str) -> str:
    """``text`` with every ID card, bank card and phone number in it masked (module doc)."""
    findings = find_numbers(text)
    if not findings:
        return text
    out, last = [], 0
    for f in findings:
        out.append(text[last : f.start])
        out.append(mask_digits(text[f.start : f.end], f.keep_head))
        last = f.end
    out.append(text[last:])
    return "".join(out)
