"""Text classification of Chinese reports (pure: no Kafka, no SQL).

The method, ``char-lr-cnb-v5``:

1. Normalise the text: NFKC and traditional to simplified characters (a character table built
   once from OpenCC ``t2s``, so 樓道 and 楼道 are one term), applied when the text holds a
   character they turn into another Chinese character (one regular-expression search tells);
   then a channel's header at the start of a line is dropped (``CHANNEL_HEADER``: 来电人反映：,
   入户走访时，, 【我要报事】, ...): it says how a report came, not what it is about; then
   digits and symbols folded (``fold_symbols``: 12栋 as 0栋, punctuation and emoji as a space).
2. Features: character unigrams and bigrams, TF-IDF weighted (sublinear term frequency, rows
   L2-normalised): scikit-learn's ``TfidfVectorizer(analyzer="char")`` learns them, ``CharNgrams``
   computes the same rows when classifying, without the vectoriser's per-call cost. No
   segmentation dictionary: word features (jieba's segmentation), pinyin, trigrams and
   skip-bigrams were measured and gained nothing beyond noise in cross-validation, words at
   136 µs a report (docs/intake.md).
3. A multinomial logistic regression (scikit-learn, L2, ``C`` = 20) blended with a complement
   naive Bayes over the same features into one linear model (``blending.LogisticBayesBlend``),
   both learning from the labelled reports and from each taxonomy keyword as a one-word document
   (垃圾桶 -> sanitation: what the taxonomy says a category is about, never held out or scored);
   the probabilities calibrated by temperature scaling fitted on cross-validated predictions
   (``CalibratedClassifierCV(method="temperature", ensemble=False)``): one inverse temperature
   that multiplies the model's scores before the softmax, so that a confidence of 0.8 is right
   about 80 % of the time.
4. The decision: the most probable category, its probability as ``confidence``, the best three as
   ``suggestions`` (the second is the runner-up), and as ``terms`` the words that pushed hardest
   towards the category (``explain``): bigrams of real weight, never one with a function
   character (的, 都, 是, ...) or a boilerplate word (反映, 小区, ...), adjacent ones joined into
   the longer word they spell (电动 + 动车 = 电动车), the category's taxonomy keywords in the text
   kept whole. A text with no known bigram (no Chinese word the model has seen) is ``other``.

A model is plain arrays (``ModelParameters``: vocabulary, IDF, coefficients, intercepts, inverse
temperature, whether headers are dropped and symbols folded), written with ``numpy.savez`` and
read with ``numpy.load(allow_pickle=False)``: an installed model read from the database
(``wangge classifier retrain``) runs no code. A model installed by an older version
(``char-lr-v3``: no header dropping, the regression alone, no keyword documents;
``char-lr-cnb-v4``: no symbol folding) still loads and classifies as it did, named by its own
version; ``Recipe.from_stored`` reads its recipe with those settings, so that ``wangge
classifier retrain`` compares it fairly with a ``char-lr-cnb-v5`` candidate.
Scoring is batched (``classify_many``): intake classifies a batch of reports in one call.

``KeywordClassifier`` (taxonomy keywords only) is kept as the baseline that ``bench.classify``
compares against.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from opencc_purepy import OpenCC
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold

from shared.contract.taxonomy import Taxonomy, load_taxonomy

from .blending import Linear, blend, inverse_temperature

METHOD = "char-lr-cnb-v5"
KEYWORD_METHOD = "keywords-v1"
OTHER = "other"
DATA = Path(__file__).parent / "data"
# The labelled reports shipped with intake: every one is training data (and cross-validation
# data for the bench).
LABELLED_FILES = (DATA / "reports-labeled.jsonl", DATA / "reports-labeled-more.jsonl")
SUGGESTIONS = 3  # categories offered with every classification (the triage queue's choices)
MAX_TERMS = 5
MAX_WORD = 4  # characters of a term joined from bigrams (taxonomy keywords may be longer)

# Words that say nothing about the category: report boilerplate (来电人反映, 网格员你好, ...) and
# common words. A bigram among them, or with a function character in it, is never named as a
# term that decided (it still counts in the model: only the explanation leaves it out).
_STOP_TEXT = """
我们 你们 他们 这个 那个 这里 那里 一个 什么 没有 一下 现在 已经 可以 麻烦 谢谢 你好 您好
反映 来电 居民 小区 社区 网格 走访 来访 目前 一直 好几 几天 几个 多次 市民 住户 要求 希望 能不能
是不 不是 天天 每天 时候 问题 情况 处理 一下 今天 昨天 晚上 早上 上午 下午 知道 觉得 怎么
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
FUNCTION_CHARACTERS = frozenset(
    "的了是都也就在我你他她它们这那有很还又被把给让吗呢啊吧呀么个着过和与及或但而却再才已将从"
    "向对于为以之其此啥咋嘛哦哈呵嗯噢哪谁些每各该没"
)
# Chinese characters (CJK unified ideographs and extension A).
_CHINESE_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))
_CHINESE_CLASS = "[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CHINESE_RANGES) + "]"
_CHINESE_PAIR = re.compile(_CHINESE_CLASS + "{2}")
# Where NFKC turns a character into a Chinese one: radicals, CJK symbols, enclosed ideographs,
# compatibility ideographs; and outside the basic plane the enclosed ideograph supplement and the
# compatibility ideographs supplement.
_COMPATIBILITY_RANGES = ((0x2E80, 0x33FF), (0xF900, 0xFAFF))
_SUPPLEMENTARY_COMPATIBILITY = ((0x1F200, 0x1F2FF), (0x2F800, 0x2FA1F))
# How a channel opens a report, at the start of a line (after normalising): 12345 hotline
# transcripts (来电人反映：, 来电人称：, 市民来电称：), door-to-door notes (入户走访时，,
# 天天敲门组记录：, 天天敲门组走访时，, 走访中), visits (居民来访：, 居民来访反映：,
# 居民来访称：), the app (【我要报事】) and the suggestion box (写给社区：). A resident's own
# 咨询 (来电人咨询：) is kept: it says what the report is.
CHANNEL_HEADER = re.compile(
    r"(?m)^[ \t]*(?:【我要报事】|写给社区[：:]|天天敲门组(?:记录[：:]|走访时[，,]?)"
    r"|入户走访时[，,]?|走访中|来电人(?:反映|称)[：:]|市民来电称[：:]"
    r"|居民来访(?:反映|称)?[：:])"
)
# Folding symbols (``fold_symbols``): every run of digits is one 0 (3栋 and 12栋 are one term),
# every run of anything but Chinese characters, digits and ASCII letters (punctuation, emoji,
# spaces, line breaks) one space.
_DIGITS = re.compile(r"[0-9０-９]+")
_SYMBOLS = re.compile(r"[^" + _CHINESE_CLASS[1:-1] + r"0-9a-zA-Z]+")
# How scikit-learn's character analyzer folds white space before it counts n-grams.
_WHITE_SPACES = re.compile(r"\s\s+")


@dataclass(frozen=True)
class Suggestion:
    category: str
    probability: float


@dataclass(frozen=True)
class Classified:
    category: str
    method: str
    terms: list[str]
    confidence: float
    suggestions: list[Suggestion] = field(default_factory=list)
    model: str | None = None


@dataclass(frozen=True)
class Example:
    text: str
    category: str


def load_examples(path: str | Path | None = None) -> list[Example]:
    """The labelled reports (JSON lines with ``text`` and ``category``): ``path``, else every
    file shipped with intake (``LABELLED_FILES``)."""
    out = []
    for name in [path] if path is not None else LABELLED_FILES:
        with open(name, "rb") as f:
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


class Normaliser:
    """NFKC and traditional to simplified characters, when a text needs them."""

    def __init__(self) -> None:
        self._t2s = traditional_to_simplified()
        self._needs_normalising = _needs_normalising()

    def normalise(self, text: str) -> str:
        """NFKC and traditional to simplified, when the text has a character they change into
        another Chinese character (most texts have none: one search of the text tells)."""
        if self._needs_normalising.search(text):
            text = unicodedata.normalize("NFKC", text).translate(self._t2s)
        return text


@cache
def normaliser() -> Normaliser:
    return Normaliser()


def drop_headers(normalised: str) -> str:
    """``normalised`` without the channel headers that open its lines (``CHANNEL_HEADER``)."""
    return CHANNEL_HEADER.sub("", normalised)


def fold_symbols(text: str) -> str:
    """``text`` with each run of digits as one 0 and each run of other characters that are not
    Chinese or ASCII letters (punctuation, emoji, white space) as one space: 3栋 and 12栋 are one
    term, and ``，``, ``！``, ``😤`` and line breaks make no n-grams of their own. Applied after
    ``drop_headers`` (whose pattern needs the line breaks)."""
    return _SYMBOLS.sub(" ", _DIGITS.sub("0", text))


# --- training -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """How a model is trained (besides its examples)."""

    c: float = 20.0  # inverse L2 regularisation of the logistic regression
    ngram_max: int = 2  # character n-grams 1..ngram_max
    calibration_folds: int = 5  # cross-validation folds the temperature is fitted on
    seed: int = 0
    nb_weight: float = 1.0  # complement naive Bayes' share of the blend (0: the regression alone)
    nb_alpha: float = 0.3  # its additive smoothing
    drop_headers: bool = True  # drop channel headers (CHANNEL_HEADER) before the features
    keyword_documents: bool = True  # each taxonomy keyword a one-word training document
    fold_symbols: bool = True  # digits and symbols folded (``fold_symbols``) before the features

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> Recipe:
        """A recipe as ``classifier_models`` keeps it (its fields as JSON). A field it lacks was
        not there when the model was made, so it takes the value that reproduces what that
        version did (``char-lr-v3``: the regression alone, headers kept, no keyword documents;
        ``char-lr-cnb-v4``: symbols not folded)."""
        return cls(**{**_BEFORE_V4, **_BEFORE_V5, **stored})


_BEFORE_V4: dict[str, Any] = {"nb_weight": 0.0, "drop_headers": False, "keyword_documents": False}
_BEFORE_V5: dict[str, Any] = {"fold_symbols": False}


@dataclass(frozen=True, eq=False)
class ModelParameters:
    """Everything a trained model computes with: arrays and names, no code."""

    version: str
    vocabulary: list[str]  # the features, in column order
    idf: np.ndarray  # (features,)
    classes: list[str]
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    inverse_temperature: float
    ngram_max: int
    drop_headers: bool = True  # CHANNEL_HEADER dropped before the features
    fold_symbols: bool = True  # digits and symbols folded (``fold_symbols``) after that

    @property
    def method(self) -> str:
        """The method that made the model: its version without the digest (``char-lr-v3``)."""
        return self.version.rsplit("-", 1)[0]

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive (numpy's own format: arrays of numbers and strings only)."""
        out = io.BytesIO()
        np.savez_compressed(
            out,
            version=np.array(self.version),
            vocabulary=np.array(self.vocabulary),
            idf=self.idf,
            classes=np.array(self.classes),
            coef=self.coef,
            intercept=self.intercept,
            inverse_temperature=np.array(self.inverse_temperature),
            ngram_max=np.array(self.ngram_max),
            drop_headers=np.array(self.drop_headers),
            fold_symbols=np.array(self.fold_symbols),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ModelParameters:
        """Read what ``to_bytes`` wrote; ``allow_pickle=False``: no object is unpickled, so bytes
        from the database can hold numbers and strings only, never code. An archive without
        ``drop_headers`` was written by ``char-lr-v3``, which kept the headers; one without
        ``fold_symbols`` by ``char-lr-v3`` or ``char-lr-cnb-v4``, which did not fold them."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(
                version=str(z["version"]),
                vocabulary=[str(t) for t in z["vocabulary"]],
                idf=z["idf"],
                classes=[str(c) for c in z["classes"]],
                coef=z["coef"],
                intercept=z["intercept"],
                inverse_temperature=float(z["inverse_temperature"]),
                ngram_max=int(z["ngram_max"]),
                drop_headers=bool(z["drop_headers"]) if "drop_headers" in z.files else False,
                fold_symbols=bool(z["fold_symbols"]) if "fold_symbols" in z.files else False,
            )


def model_version(examples: Sequence[Example], recipe: Recipe) -> str:
    """``char-lr-cnb-v5-`` and a digest of the recipe and the examples learnt from: the same data
    and recipe give the same version, so a version names what the model learnt from."""
    h = hashlib.sha256(orjson.dumps([METHOD, recipe.__dict__]))
    for text, category in sorted((ex.text, ex.category) for ex in examples):
        h.update(orjson.dumps([text, category]))
    return f"{METHOD}-{h.hexdigest()[:10]}"


def _vectoriser(ngram_max: int, vocabulary: list[str] | None = None) -> TfidfVectorizer:
    # texts arrive normalised: no lower-casing or accent stripping of its own
    return TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, ngram_max),
        sublinear_tf=True,
        lowercase=False,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


def learnable(examples: Sequence[Example], recipe: Recipe) -> list[Example]:
    """The examples a model can learn from: those of categories with at least as many examples
    as calibration folds (a category seen less often cannot be cross-validated), never
    ``other`` (the category of a text with nothing known in it, not a topic)."""
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.category] = counts.get(ex.category, 0) + 1
    return [
        ex
        for ex in examples
        if ex.category != OTHER and counts[ex.category] >= recipe.calibration_folds
    ]


@dataclass(frozen=True)
class TrainingSet:
    """What a model learns from: the ``learnable`` reports (cross-validated for calibration) and
    the taxonomy's keywords of their categories as one-word documents (always learnt from)."""

    reports: list[Example]
    keywords: list[Example]
    recipe: Recipe

    @property
    def version(self) -> str:
        """The version of the model the recipe makes from it (``model_version``)."""
        return model_version([*self.reports, *self.keywords], self.recipe)


def training_set(
    examples: Sequence[Example], taxonomy: Taxonomy, recipe: Recipe | None = None
) -> TrainingSet:
    recipe = recipe or Recipe()
    reports = learnable(examples, recipe)
    learnt = {ex.category for ex in reports}
    keywords = (
        [
            Example(word, c.code)
            for c in taxonomy.categories
            if c.code in learnt
            for word in c.keywords
        ]
        if recipe.keyword_documents
        else []
    )
    return TrainingSet(reports, keywords, recipe)


def train(
    examples: Sequence[Example], taxonomy: Taxonomy, recipe: Recipe | None = None
) -> ModelParameters:
    """Fit the vectoriser, the blended linear model (``blending.blend``) and its temperature on
    ``examples`` (``learnable`` ones only) and the taxonomy's keywords (``training_set``); about
    a second for the shipped 777. The temperature is fitted on the reports' scores from models
    that did not learn them (``calibration_folds`` stratified folds of the reports, each model
    learning the keywords too), as ``CalibratedClassifierCV(method="temperature",
    ensemble=False)`` does; the model kept learnt from everything."""
    data = training_set(examples, taxonomy, recipe)
    recipe = data.recipe
    prepare = _preparer(recipe.drop_headers, recipe.fold_symbols)
    texts = [prepare(ex.text) for ex in data.reports]
    keyword_texts = [prepare(ex.text) for ex in data.keywords]
    labels = np.array([ex.category for ex in data.reports])
    keyword_labels = np.array([ex.category for ex in data.keywords], dtype=labels.dtype)
    vectoriser = _vectoriser(recipe.ngram_max).fit([*texts, *keyword_texts])
    x = vectoriser.transform(texts)
    x_keywords = (
        vectoriser.transform(keyword_texts)
        if keyword_texts
        else sparse.csr_matrix((0, x.shape[1]), dtype=x.dtype)
    )

    def fit(rows: np.ndarray) -> Linear:
        return blend(
            sparse.vstack([x[rows], x_keywords]).tocsr(),
            np.concatenate([labels[rows], keyword_labels]),
            c=recipe.c,
            nb_alpha=recipe.nb_alpha,
            nb_weight=recipe.nb_weight,
        )

    model = fit(np.arange(len(texts)))
    held_out = np.zeros((len(texts), len(model.classes)))
    folds = StratifiedKFold(recipe.calibration_folds, shuffle=True, random_state=recipe.seed)
    for rows, held in folds.split(np.zeros(len(texts)), labels):
        fold = fit(rows)
        assert fold.classes == model.classes  # every category is in every training fold
        held_out[held] = fold.scores(x[held])
    truth = np.searchsorted(np.array(model.classes), labels)
    return ModelParameters(
        version=data.version,
        vocabulary=[str(t) for t in vectoriser.get_feature_names_out()],
        idf=vectoriser.idf_.astype(np.float64),
        classes=model.classes,
        coef=model.coef.astype(np.float32),
        intercept=model.intercept,
        inverse_temperature=inverse_temperature(held_out, truth),
        ngram_max=recipe.ngram_max,
        drop_headers=recipe.drop_headers,
        fold_symbols=recipe.fold_symbols,
    )


def _preparer(headers_dropped: bool, symbols_folded: bool = False) -> Callable[[str], str]:
    """A text as a model's features see it: normalised, its channel headers dropped and then
    its digits and symbols folded if the model does so."""
    normalise = normaliser().normalise
    if headers_dropped and symbols_folded:
        return lambda text: fold_symbols(drop_headers(normalise(text)))
    if headers_dropped:
        return lambda text: drop_headers(normalise(text))
    if symbols_folded:
        return lambda text: fold_symbols(normalise(text))
    return normalise


class CharNgrams:
    """What ``_vectoriser(ngram_max, vocabulary)`` with its fitted IDF computes (character
    1..``ngram_max``-grams of the text with runs of white space folded as scikit-learn folds
    them, sublinear term frequency times IDF, rows L2-normalised, float32), without the
    vectoriser's cost of about half a millisecond a call: classifying a lone report pays it
    on every report. A test checks the two agree on every labelled report."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, ngram_max: int) -> None:
        self._index = {t: i for i, t in enumerate(vocabulary)}
        self._idf = np.asarray(idf, dtype=np.float64)
        self._ngram_max = ngram_max
        self._width = len(vocabulary)

    def rows(self, texts: Sequence[str]) -> Rows:
        """The TF-IDF rows of ``texts`` (``Rows``: each row's columns in order and values)."""
        index = self._index.get
        width = self._width
        keys: list[int] = []  # row × width + column of each n-gram in the vocabulary
        for r, text in enumerate(texts):
            text = _WHITE_SPACES.sub(" ", text)
            base = r * width
            grams = [
                text[i : i + n]
                for n in range(1, self._ngram_max + 1)
                for i in range(len(text) - n + 1)
            ]
            keys.extend(base + j for g in grams if (j := index(g)) is not None)
        found, counts = np.unique(np.array(keys, dtype=np.int64), return_counts=True)
        rows, cols = np.divmod(found, width)
        values = (np.log(counts) + 1.0) * self._idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=values**2, minlength=len(texts)))
        values /= norms[rows]  # a row with a value has a norm above 0
        bounds = np.searchsorted(rows, np.arange(len(texts) + 1))
        return Rows(cols.astype(np.int32), values.astype(np.float32), bounds)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """``rows`` as scikit-learn's sparse matrix (texts × vocabulary)."""
        r = self.rows(texts)
        return sparse.csr_matrix((r.values, r.cols, r.bounds), shape=(len(texts), self._width))


@dataclass(frozen=True, eq=False)
class Rows:
    """TF-IDF rows, as a sparse matrix holds them: row ``i``'s columns are
    ``cols[bounds[i]:bounds[i + 1]]`` (ascending), its values ``values[...]`` likewise."""

    cols: np.ndarray
    values: np.ndarray
    bounds: np.ndarray

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.bounds[i], self.bounds[i + 1]
        return self.cols[start:end], self.values[start:end]

    def times(self, weights: np.ndarray) -> np.ndarray:
        """The rows times ``weights`` (vocabulary × k): texts × k, each row's weighted sum of
        its columns' weights (a running sum read at the rows' bounds, so no sparse matrix is
        built for a batch of one)."""
        summed = np.zeros((len(self.cols) + 1, weights.shape[1]))
        np.cumsum(weights[self.cols] * self.values[:, None], axis=0, out=summed[1:])
        out: np.ndarray = summed[self.bounds[1:]] - summed[self.bounds[:-1]]
        return out


# --- classifying --------------------------------------------------------------------------------


class LinearClassifier:
    """A trained ``ModelParameters`` put to work: batches of texts to ``Classified``."""

    def __init__(self, params: ModelParameters, taxonomy: Taxonomy) -> None:
        self.params = params
        self.version = params.version
        self.method = params.method
        self.classes = params.classes
        self._prepare = _preparer(params.drop_headers, params.fold_symbols)
        self._vectoriser = CharNgrams(params.vocabulary, params.idf, params.ngram_max)
        self._weights = np.ascontiguousarray(params.coef.T, dtype=np.float32)  # (features, cls)
        self._intercept = params.intercept
        self._beta = params.inverse_temperature
        # per feature: its weight for each category minus its mean weight (how far it pushes
        # towards that category), and whether it may be named in an explanation
        self._lift = self._weights - self._weights.mean(axis=1, keepdims=True)
        self._bigram = np.array([_CHINESE_PAIR.fullmatch(t) is not None for t in params.vocabulary])
        self._nameable = np.array(
            [
                bool(self._bigram[i]) and t not in STOP_WORDS and not FUNCTION_CHARACTERS & set(t)
                for i, t in enumerate(params.vocabulary)
            ]
        )
        self._keywords = {
            c.code: sorted((w for w in c.keywords if len(w) >= 2), key=len, reverse=True)
            for c in taxonomy.categories
        }
        self._all_keywords = frozenset(w for words in self._keywords.values() for w in words)

    def _scored(self, normalised: Sequence[str]) -> tuple[Rows, np.ndarray]:
        """The TF-IDF rows and calibrated probabilities (texts × classes)."""
        x = self._vectoriser.rows(normalised)
        scores = (x.times(self._weights) + self._intercept) * self._beta
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        return x, p

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """The calibrated probabilities of ``texts`` (texts × ``classes``)."""
        return self._scored([self._prepare(t) for t in texts])[1]

    def classify_many(self, texts: Sequence[str]) -> list[Classified]:
        """Each text's category, confidence, suggestions and terms: one matrix product for the
        batch (the per-call cost of the vectoriser is paid once)."""
        if not texts:
            return []
        normalised = [self._prepare(t) for t in texts]
        x, p = self._scored(normalised)
        out = []
        for row, text in enumerate(normalised):
            cols, values = x.row(row)
            if not self._bigram[cols].any():
                out.append(Classified(OTHER, self.method, [], 0.0, [], self.version))
                continue
            order = np.argsort(-p[row])[:SUGGESTIONS]
            best = int(order[0])
            suggestions = [Suggestion(self.classes[i], round(float(p[row, i]), 3)) for i in order]
            terms = self.explain(text, cols, values, best)
            out.append(
                Classified(
                    self.classes[best],
                    self.method,
                    terms,
                    round(float(p[row, best]), 3),
                    suggestions,
                    self.version,
                )
            )
        return out

    def classify(self, text: str) -> Classified:
        return self.classify_many([text])[0]

    def explain(self, text: str, cols: np.ndarray, values: np.ndarray, best: int) -> list[str]:
        """The words of ``text`` that pushed hardest towards class ``best``: nameable bigrams
        whose contribution (TF-IDF value × the feature's lift for the class) is positive and at
        least a fifth of the strongest one's, joined where they overlap in the text into the
        word they spell; a taxonomy keyword of the category found in the text is kept whole
        when its bigrams all push towards it. Strongest first, at most ``MAX_TERMS``."""
        nameable = cols[self._nameable[cols]]
        contribution = self._lift[nameable, best] * values[self._nameable[cols]]
        keep = contribution > 0
        vocabulary = self.params.vocabulary
        pushing = dict(
            zip(
                [vocabulary[c] for c in nameable[keep].tolist()],
                contribution[keep].tolist(),
                strict=True,
            )
        )
        if not pushing:
            return []
        floor = max(pushing.values()) / 5
        strong = {g for g, v in pushing.items() if v >= floor}
        # runs of the text's bigrams: each strong one, extended on both sides by bigrams that
        # push towards the category too (飞线 + 线充 + 充电 = 飞线充电), at most a word's length
        pairs = [text[i : i + 2] for i in range(len(text) - 1)]
        spans: list[tuple[int, int]] = []  # [start, end) in text
        for i, pair in enumerate(pairs):
            if pair not in strong or (spans and spans[-1][1] > i + 1):
                continue
            start, end = i, i + 1
            while start > 0 and pairs[start - 1] in pushing:
                start -= 1
            while end < len(pairs) and pairs[end] in pushing:
                end += 1
            spans.append(
                self._to_keywords(text, *_strongest_window(pairs, pushing, start, end + 1))
            )
        for word in self._keywords.get(self.classes[best], ()):
            at = text.find(word)
            whole = at >= 0 and all(word[j : j + 2] in pushing for j in range(len(word) - 1))
            if whole and not any(s <= at and at + len(word) <= e for s, e in spans):
                spans.append((at, at + len(word)))
        scored: dict[str, float] = {}
        for s, e in spans:
            word = text[s:e]
            grams = {word[j : j + 2] for j in range(len(word) - 1)}
            score = sum(pushing.get(g, 0.0) for g in grams)
            scored[word] = max(score, scored.get(word, 0.0))
        named: list[str] = []
        for word in sorted(scored, key=lambda w: -scored[w]):
            if word not in STOP_WORDS and not any(word in other for other in named):
                named.append(word)
            if len(named) == MAX_TERMS:
                break
        return named

    def _to_keywords(self, text: str, start: int, end: int) -> tuple[int, int]:
        """A joined run that holds taxonomy keywords, cut to the part they cover (垃圾桶满 ->
        垃圾桶; 飞线充电, two keywords end to end, stays whole): each keyword shorter than the run
        found in it, at its first place. The run's substrings are looked up among the keywords
        (a run is a few characters; the taxonomy has hundreds of keywords)."""
        run = text[start:end]
        inside = [
            (at, at + size)
            for size in range(2, len(run))
            for i in range(len(run) - size + 1)
            if run[i : i + size] in self._all_keywords and (at := run.find(run[i : i + size])) == i
        ]
        if not inside:
            return start, end
        return start + min(s for s, _ in inside), start + max(e for _, e in inside)


def _strongest_window(
    pairs: Sequence[str], pushing: dict[str, float], start: int, end: int
) -> tuple[int, int]:
    """Of the text span [start, end), the ``MAX_WORD`` characters whose bigrams push hardest."""
    if end - start <= MAX_WORD:
        return start, end
    weights = [pushing.get(p, 0.0) for p in pairs[start : end - 1]]
    width = MAX_WORD - 1  # bigrams in a window
    total = sum(weights[:width])
    best, best_total = start, total
    for i in range(1, len(weights) - width + 1):
        total += weights[i + width - 1] - weights[i - 1]
        if total > best_total:
            best, best_total = start + i, total
    return best, best + MAX_WORD


class KeywordClassifier:
    """Baseline: sum of the taxonomy's keyword weights found as substrings of the text."""

    method = KEYWORD_METHOD

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.normaliser = normaliser()
        self.keywords = {
            c.code: sorted(c.keywords.items(), key=lambda kv: -len(kv[0]))
            for c in taxonomy.categories
            if c.keywords
        }

    def classify(self, text: str) -> Classified:
        text = self.normaliser.normalise(text)
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

    def classify_many(self, texts: Sequence[str]) -> list[Classified]:
        return [self.classify(t) for t in texts]


@lru_cache(maxsize=4)
def trained_classifier(taxonomy_file: str | None = None) -> LinearClassifier:
    """The classifier trained from the shipped labelled reports and the taxonomy's keywords,
    once per process and taxonomy (about a second): what intake uses when no model is
    installed."""
    taxonomy = load_taxonomy(taxonomy_file)
    return LinearClassifier(train(load_examples(), taxonomy), taxonomy)
