"""Text classification of Chinese reports (pure: no Kafka, no SQL).

The method, ``jieba-nb-v1``, stays explainable:

1. Normalise the text: NFKC (full-width digits and letters), traditional to simplified characters
   (OpenCC ``t2s``, so 樓道 and 楼道 are one term).
2. Terms: jieba segmentation in search mode (long words and their sub-words), every taxonomy
   keyword is added to jieba's dictionary and also found as a plain substring; stop words,
   punctuation and single characters that are not keywords are dropped. Each term counts once.
3. A multinomial naive Bayes model over those terms, trained at start from the labelled reports
   shipped with intake (``data/reports-labeled.jsonl``); the taxonomy's keyword weights are added as
   prior counts, so a category still has evidence when the labelled file has none for it.
4. The decision names the terms that pushed hardest towards the chosen category (log-likelihood
   of the term under that category minus its mean over all categories) and the posterior
   probability as confidence. With no known term, or a posterior below ``min_confidence``, the
   report is ``other``.

``KeywordClassifier`` (taxonomy keywords only) is kept as the baseline that
``scripts/measure_classifier.py`` compares against.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba
import orjson
from opencc_purepy import OpenCC

from shared.taxonomy import Taxonomy, load_taxonomy

METHOD = "jieba-nb-v1"
KEYWORD_METHOD = "keywords-v1"
OTHER = "other"
LABELLED_FILE = Path(__file__).parent / "data" / "reports-labeled.jsonl"

jieba.setLogLevel(logging.WARNING)

# Function words and report boilerplate (来电人反映, 网格员你好, ...) that say nothing about the
# category. Kept short on purpose: naive Bayes copes with common words, these only add noise.
_STOP_TEXT = """
的 了 是 我 我们 你 你们 他 她 他们 它 在 有 和 与 及 就 都 也 还 又 很 吗 呢 啊 吧 呀 要 把 被
给 让 这 那 这个 那个 这里 那里 一个 什么 没有 没 不 人 说 去 来 到 上 下 里 一下 现在
已经 已 能 会 可以 请 麻烦 谢谢 你好 您好 反映 来电 来电人 居民 小区 社区 网格员 网格
走访 来访 称 其 目前 一直 好几 几个 多次
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_HAS_WORD_CHAR = re.compile(r"[\u4e00-\u9fffA-Za-z]")


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


class TermExtractor:
    """Normalisation and segmentation: text -> distinct terms, in order of appearance."""

    def __init__(self, keywords: Iterable[str]) -> None:
        self.keywords = frozenset(k for k in keywords if k)
        self._t2s = OpenCC("t2s")
        self._jieba = jieba.Tokenizer()
        for word in self.keywords:
            self._jieba.add_word(word, freq=2000)

    def normalise(self, text: str) -> str:
        return str(self._t2s.convert(unicodedata.normalize("NFKC", text)))

    def terms(self, text: str) -> list[str]:
        text = self.normalise(text)
        seen: dict[str, None] = {}
        for raw in self._jieba.lcut_for_search(text):
            term = raw.strip()
            if not term or term in STOP_WORDS or not _HAS_WORD_CHAR.search(term):
                continue
            if len(term) == 1 and term not in self.keywords:
                continue
            seen.setdefault(term)
        for word in self.keywords:
            if word in text:
                seen.setdefault(word)
        return list(seen)


class NaiveBayesClassifier:
    """Multinomial naive Bayes over distinct terms, taxonomy keywords as prior counts."""

    method = METHOD

    def __init__(
        self,
        taxonomy: Taxonomy,
        examples: Sequence[Example],
        *,
        extractor: TermExtractor | None = None,
        alpha: float = 2.0,
        keyword_weight: float = 4.0,
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
        self._unseen: dict[str, float] = {}
        self._log_p: dict[str, dict[str, float]] = {}
        for code, counter in weights.items():
            denom = sum(counter.values()) + alpha * size
            self._unseen[code] = math.log(alpha / denom)
            self._log_p[code] = {t: math.log((n + alpha) / denom) for t, n in counter.items()}
        # Uniform prior: the labelled file has as many reports of each category by design, and
        # real proportions vary by city; the evidence comes from the terms.

    def log_p(self, code: str, term: str) -> float:
        return self._log_p[code].get(term, self._unseen[code])

    def classify(self, text: str) -> Classified:
        terms = [t for t in self.extractor.terms(text) if t in self.vocab]
        if not terms:
            return Classified(OTHER, self.method, [], 0.0)
        scores = {c: sum(self.log_p(c, t) for t in terms) for c in self.categories}
        best = max(self.categories, key=lambda c: (scores[c], c))
        top = scores[best]
        confidence = 1.0 / sum(math.exp(s - top) for s in scores.values())
        if confidence < self.min_confidence:
            return Classified(OTHER, self.method, [], round(confidence, 3))
        n = len(self.categories)
        lift = {
            t: self.log_p(best, t) - sum(self.log_p(c, t) for c in self.categories) / n
            for t in terms
        }
        deciding = sorted((t for t in terms if lift[t] > 0), key=lambda t: -lift[t])
        return Classified(best, self.method, deciding[: self.max_terms], round(confidence, 3))


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
    """The service's classifier, trained once per process and taxonomy (jieba's dictionary takes
    about a second to load)."""
    return NaiveBayesClassifier(load_taxonomy(taxonomy_file), load_examples())
