"""Text classification of Chinese reports (pure): weighted keywords from the taxonomy.

Explainable by construction: the result names the method and the terms that decided. A report
that matches no keyword is ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.taxonomy import Taxonomy

METHOD = "keywords-v1"


@dataclass(frozen=True)
class Classified:
    category: str
    method: str
    terms: list[str]
    confidence: float


class KeywordClassifier:
    def __init__(self, taxonomy: Taxonomy) -> None:
        self.keywords = {
            c.code: sorted(c.keywords.items(), key=lambda kv: -len(kv[0]))
            for c in taxonomy.categories
            if c.keywords
        }

    def classify(self, text: str) -> Classified:
        scores: dict[str, float] = {}
        hits: dict[str, list[str]] = {}
        for code, words in self.keywords.items():
            for word, weight in words:
                if word in text:
                    scores[code] = scores.get(code, 0.0) + weight
                    hits.setdefault(code, []).append(word)
        if not scores:
            return Classified("other", METHOD, [], 0.0)
        best = max(scores, key=lambda c: (scores[c], c))
        total = sum(scores.values())
        return Classified(best, METHOD, hits[best], round(scores[best] / total, 3))
