"""Text classification of Chinese reports (pure: no Kafka, no SQL).

The method, ``bigram-nb-v2``, stays explainable and costs tens of microseconds per report:

1. Normalise the text: NFKC and traditional to simplified characters (a character table built
   once from OpenCC ``t2s``, so 樓道 and 楼道 are one term), applied when the text holds a
   character they turn into another Chinese character (one regular-expression search tells;
   full-width punctuation and digits end a run of Chinese characters either way).
2. Terms: every two adjacent Chinese characters (character bigrams; punctuation, digits and
   letters split them) that are not a stop word, plus every taxonomy keyword found as a
   substring. Each term counts once. Bigrams need no segmentation dictionary and, on these short
   reports, are as accurate as the jieba words of the previous method (``jieba-nb-v1``;
   docs/intake.md has both measurements) at a tenth of the cost.
3. A multinomial naive Bayes model over those terms, trained at start from the labelled reports
   shipped with intake (``data/reports-labeled.jsonl``); the taxonomy's keyword weights are added as
   prior counts, so a category still has evidence when the labelled file has none for it.
4. The decision names the terms that pushed hardest towards the chosen category (log-likelihood
   of the term under that category minus its mean over all categories; only terms seen with the
   category; a bigram inside a longer named term is left out) and the posterior probability as
   confidence. With no known term, or a posterior below ``min_confidence``, the report is
   ``other``.

Scoring costs a few operations per known term, whatever the number of categories: a term's
log-likelihoods differ from a category's "never seen" value only for the few categories it was
seen with, and those differences are packed, as fixed-point numbers, into one integer per term
(a 64-bit field per category), so that adding the terms' integers sums every category at once.

``KeywordClassifier`` (taxonomy keywords only) is kept as the baseline that
``scripts/measure_classifier.py`` compares against.
"""

from __future__ import annotations

import math
import re
import struct
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import repeat
from pathlib import Path

import orjson
from opencc_purepy import OpenCC

from shared.contract.taxonomy import Taxonomy, load_taxonomy

METHOD = "bigram-nb-v2"
KEYWORD_METHOD = "keywords-v1"
OTHER = "other"
LABELLED_FILE = Path(__file__).parent / "data" / "reports-labeled.jsonl"

# Function words and report boilerplate (来电人反映, 网格员你好, ...) that say nothing about the
# category. Kept short on purpose: naive Bayes copes with common words, these only add noise.
_STOP_TEXT = """
的 了 是 我 我们 你 你们 他 她 他们 它 在 有 和 与 及 就 都 也 还 又 很 吗 呢 啊 吧 呀 要 把 被
给 让 这 那 这个 那个 这里 那里 一个 什么 没有 没 不 人 说 去 来 到 上 下 里 一下 现在
已经 已 能 会 可以 请 麻烦 谢谢 你好 您好 反映 来电 来电人 居民 小区 社区 网格员 网格
走访 来访 称 其 目前 一直 好几 几个 多次
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
# Packed fixed-point sums of term evidence (see ``NaiveBayesClassifier``).
_FIELD_BITS = 64
_FRACTION_BITS = 32
_FRACTION = 2.0**-_FRACTION_BITS
# Chinese characters (CJK unified ideographs and extension A); bigrams never cross a run of them.
_CHINESE_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))
_CHINESE_CLASS = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CHINESE_RANGES) + "]"
_CHINESE_RUN = re.compile(_CHINESE_CLASS + "+")
# Where NFKC turns a character into a Chinese one: radicals, CJK symbols, enclosed ideographs,
# compatibility ideographs; and outside the basic plane the enclosed ideograph supplement and the
# compatibility ideographs supplement.
_COMPATIBILITY_RANGES = ((0x2E80, 0x33FF), (0xF900, 0xFAFF))
_SUPPLEMENTARY_COMPATIBILITY = ((0x1F200, 0x1F2FF), (0x2F800, 0x2FA1F))


@dataclass(frozen=True)
class Classified:
    category: str
    method: str
    terms: list[str]
    confidence: float


@dataclass(frozen=True)
class Example:
    text: str
    category: str


def load_examples(path: str | Path = LABELLED_FILE) -> list[Example]:
    """The labelled reports (JSON lines with ``text`` and ``category``)."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                row = orjson.loads(line)
                out.append(Example(str(row["text"]), str(row["category"])))
    return out


@cache
def traditional_to_simplified() -> dict[int, str]:
    """A ``str.translate`` table: each traditional character to its simplified form, as OpenCC
    ``t2s`` converts it on its own (built once per process, about 0.3 s). Character by character
    instead of OpenCC's phrase matching: the few phrase-level choices change no term that matters
    here, and a table lookup is far faster."""
    chars = [chr(c) for lo, hi in _CHINESE_RANGES for c in range(lo, hi + 1)]
    converted = str(OpenCC("t2s").convert("\n".join(chars))).split("\n")
    if len(converted) != len(chars):  # the separator was converted: keep what is certain
        converted = chars
    return {ord(a): b for a, b in zip(chars, converted, strict=True) if a != b and len(b) == 1}


@cache
def _needs_normalising() -> re.Pattern[str]:
    """Characters that normalising changes into another Chinese character: traditional ones, and
    those NFKC maps to a Chinese character (Kangxi radicals, compatibility and enclosed
    ideographs). Full-width punctuation, digits and letters are not in it: they end a run of
    Chinese characters whatever their width, so NFKC on them changes no term."""
    chinese = re.compile(_CHINESE_CLASS)
    changed = set(traditional_to_simplified())
    for lo, hi in _COMPATIBILITY_RANGES:
        for c in range(lo, hi + 1):
            folded = unicodedata.normalize("NFKC", chr(c))
            if folded != chr(c) and chinese.search(folded):
                changed.add(c)
    # Outside the basic plane, whole blocks: a class with many ranges there makes every search
    # slow, and a needless NFKC of a rare text costs nothing.
    ranges = [*_ranges(changed), *_SUPPLEMENTARY_COMPATIBILITY]
    return re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in ranges) + "]")


def _ranges(codes: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted ``codes`` as contiguous (first, last) ranges."""
    out: list[tuple[int, int]] = []
    for c in sorted(codes):
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


class TermExtractor:
    """Normalisation and term extraction: text -> distinct terms (bigrams, keywords)."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords = frozenset(k for k in keywords if k)
        self._t2s = traditional_to_simplified()
        self._needs_normalising = _needs_normalising()
        # Two-character keywords are bigrams already; longer ones are looked for only when the
        # text has their first bigram, single characters by plain search.
        longer: dict[str, list[str]] = defaultdict(list)
        for word in sorted(self.keywords):
            if len(word) > 2:
                longer[word[:2]].append(word)
        self._longer = {first: tuple(words) for first, words in longer.items()}
        self._single = tuple(sorted(k for k in self.keywords if len(k) == 1))

    def normalise(self, text: str) -> str:
        """NFKC and traditional to simplified, when the text has a character they change into
        another Chinese character (most texts have none: one search of the text tells)."""
        if self._needs_normalising.search(text):
            text = unicodedata.normalize("NFKC", text).translate(self._t2s)
        return text

    def terms(self, text: str, known: Container[str] | None = None) -> list[str]:
        """The distinct bigrams (stop words left out) in order of appearance, then the longer
        keywords found (in code-point order) and the single-character ones.

        With ``known`` (a model's vocabulary), only the terms in it: the same as filtering the
        result, as a vocabulary learnt from ``terms`` holds no stop word that is not a keyword,
        but in one pass instead of two."""
        text = self.normalise(text)
        grams = dict.fromkeys(
            [run[i : i + 2] for run in _CHINESE_RUN.findall(text) for i in range(len(run) - 1)]
        )
        if known is None:
            keywords = self.keywords
            terms = [g for g in grams if g not in STOP_WORDS or g in keywords]
        else:
            terms = [g for g in grams if g in known]
        longer = self._longer
        found = [w for first in sorted(longer.keys() & grams.keys()) for w in longer[first]]
        found += self._single
        found = [w for w in found if w in text]
        if known is not None and found:
            found = [w for w in found if w in known]
        return terms + found


class NaiveBayesClassifier:
    """Multinomial naive Bayes over distinct terms, taxonomy keywords as prior counts."""

    method = METHOD

    def __init__(
        self,
        taxonomy: Taxonomy,
        examples: Sequence[Example],
        *,
        extractor: TermExtractor | None = None,
        alpha: float = 3.0,
        keyword_weight: float = 6.0,
        min_confidence: float = 0.1,
        max_terms: int = 5,
    ) -> None:
        self.extractor = extractor or TermExtractor(_all_keywords(taxonomy))
        self.min_confidence = min_confidence
        self.max_terms = max_terms
        self.categories = [c.code for c in taxonomy.categories if c.code != OTHER]
        counts: dict[str, Counter[str]] = {c: Counter() for c in self.categories}
        for ex in examples:
            if ex.category in counts:
                counts[ex.category].update(self.extractor.terms(ex.text))
        weights: dict[str, dict[str, float]] = {c: dict(n) for c, n in counts.items()}
        for cat in taxonomy.categories:
            if cat.code in counts:
                for word, weight in cat.keywords.items():
                    w = weights[cat.code]
                    w[word] = w.get(word, 0.0) + weight * keyword_weight
        vocab = {t for c in weights.values() for t in c}
        self.vocab = frozenset(vocab)
        size = len(vocab)
        # Categories in descending code order: of equal scores the first, which ``index`` finds,
        # is the greatest code, as it always has been.
        self._codes = sorted(self.categories, reverse=True)
        self._unseen = [
            math.log(alpha / (sum(weights[code].values()) + alpha * size)) for code in self._codes
        ]
        self._mean_unseen = sum(self._unseen) / len(self._codes)
        # log P(term | category) = log(alpha / total) + log(1 + count / alpha): the first part is
        # the same for every term (``_unseen``), the second is zero for a category the term was
        # never seen with, so a term carries only the few second parts (``_boost``).
        self._boost = [
            {term: math.log1p(n / alpha) for term, n in weights[code].items()}
            for code in self._codes
        ]
        mean_boost: Counter[str] = Counter()
        for boosts in self._boost:
            mean_boost.update({t: b / len(self._codes) for t, b in boosts.items()})
        # For the explanation: per category, the boost of each term seen with it minus the term's
        # mean boost over all categories, so that lift = (unseen[best] - mean unseen) + this.
        # A term never seen with a category did not push towards it and is not named for it.
        self._relative = [
            {t: b - mean_boost[t] for t, b in boosts.items()} for boosts in self._boost
        ]
        # Summing boosts category by category costs a Python step per (term, category); instead
        # each term's boosts are packed as fixed-point numbers (32 fraction bits) into one
        # integer, a 64-bit field per category, and adding the integers of a text's terms sums
        # all fields at once. The "never seen" values are packed the same way, shifted up by
        # one amount in every category so that no field is negative (scores keep their
        # differences, and only differences count).
        one = 2**_FRACTION_BITS
        self._packed = {term: 0 for term in vocab}
        for i, boosts in enumerate(self._boost):
            for term, boost in boosts.items():
                self._packed[term] += round(boost * one) << (_FIELD_BITS * i)
        unseen = [round(u * one) for u in self._unseen]
        shifted = [u - min(unseen) for u in unseen]
        self._packed_unseen = sum(u << (_FIELD_BITS * i) for i, u in enumerate(shifted))
        largest = max(
            round(sum(b.values()) * one) + size * u
            for b, u in zip(self._boost, shifted, strict=True)
        )
        if largest >= 2**_FIELD_BITS:  # a text counts each term once: no field can overflow
            raise ValueError("term evidence too large for the packed sums")
        self._fields = struct.Struct(f"<{len(self._codes)}Q")
        # Uniform prior: the labelled file has as many reports of each category by design, and
        # real proportions vary by city; the evidence comes from the terms.

    def log_p(self, code: str, term: str) -> float:
        """log P(term | category) (for inspection and tests; ``classify`` does not call it)."""
        i = self._codes.index(code)
        return self._unseen[i] + self._boost[i].get(term, 0.0)

    def classify(self, text: str) -> Classified:
        packed = self._packed
        terms = self.extractor.terms(text, known=packed)
        if not terms:
            return Classified(OTHER, self.method, [], 0.0)
        total = sum(map(packed.__getitem__, terms)) + len(terms) * self._packed_unseen
        scores = self._fields.unpack(total.to_bytes(self._fields.size, "little"))
        top = max(scores)
        best = scores.index(top)
        # the posterior of best: 1 / sum over categories of exp(log score - best's log score)
        confidence = 1.0 / sum(map(math.exp, [(s - top) * _FRACTION for s in scores]))
        if confidence < self.min_confidence:
            return Classified(OTHER, self.method, [], round(confidence, 3))
        # lift = log P(term | best) - mean over categories of log P(term | category)
        #      = (unseen[best] - mean unseen) + (boost of the term for best - its mean boost)
        relative = list(map(self._relative[best].get, terms, repeat(-math.inf)))
        named = strongest_terms(
            terms, relative, self.max_terms, above=self._mean_unseen - self._unseen[best]
        )
        return Classified(self._codes[best], self.method, named, round(confidence, 3))


def strongest_terms(
    terms: Sequence[str], lifts: Sequence[float], limit: int, *, above: float = 0.0
) -> list[str]:
    """Up to ``limit`` of ``terms`` with a lift greater than ``above``, the strongest first; a
    term inside one already named is skipped (电动 after 电动车), a longer term takes the place of
    the named ones inside it (楼道充电 replaces 充电)."""
    named: list[str] = []
    for i in sorted(range(len(terms)), key=lifts.__getitem__, reverse=True):  # stable
        if lifts[i] <= above or len(named) == limit:
            break
        term = terms[i]
        first_part = None
        for j, other in enumerate(named):
            if term in other:
                break
            if first_part is None and other in term:
                first_part = j
        else:
            if first_part is None:
                named.append(term)
            else:
                named = [other for other in named if other not in term]
                named.insert(first_part, term)
    return named


class KeywordClassifier:
    """Baseline: sum of the taxonomy's keyword weights found as substrings of the text."""

    method = KEYWORD_METHOD

    def __init__(self, taxonomy: Taxonomy, extractor: TermExtractor | None = None) -> None:
        self.extractor = extractor
        self.keywords = {
            c.code: sorted(c.keywords.items(), key=lambda kv: -len(kv[0]))
            for c in taxonomy.categories
            if c.keywords
        }

    def classify(self, text: str) -> Classified:
        if self.extractor is not None:
            text = self.extractor.normalise(text)
        scores: dict[str, float] = {}
        hits: dict[str, list[str]] = {}
        for code, words in self.keywords.items():
            for word, weight in words:
                if word in text:
                    scores[code] = scores.get(code, 0.0) + weight
                    hits.setdefault(code, []).append(word)
        if not scores:
            return Classified(OTHER, self.method, [], 0.0)
        best = max(scores, key=lambda c: (scores[c], c))
        total = sum(scores.values())
        return Classified(best, self.method, hits[best], round(scores[best] / total, 3))


def _all_keywords(taxonomy: Taxonomy) -> set[str]:
    return {w for c in taxonomy.categories for w in c.keywords}


@lru_cache(maxsize=4)
def trained_classifier(taxonomy_file: str | None = None) -> NaiveBayesClassifier:
    """The service's classifier, trained once per process and taxonomy (about half a second,
    mostly building the traditional-to-simplified table)."""
    return NaiveBayesClassifier(load_taxonomy(taxonomy_file), load_examples())
