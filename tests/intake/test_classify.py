"""The classifier on Chinese texts (pure), and its cross-validated accuracy on the shipped file."""

from __future__ import annotations

import math

import pytest

from services.intake.classify import (
    METHOD,
    OTHER,
    Example,
    NaiveBayesClassifier,
    TermExtractor,
    load_examples,
    strongest_terms,
    trained_classifier,
)
from services.intake.evaluation import cross_validate, naive_bayes_trainer, stratified_folds
from shared.contract.taxonomy import default_taxonomy


@pytest.fixture(scope="module")
def classifier() -> NaiveBayesClassifier:
    return trained_classifier(None)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("3栋楼道垃圾堆了三天没人清运，异味很大", "sanitation"),
        ("楼下有人把电动车推进楼道里飞线充电，太危险了", "ebike_charging"),
        ("隔壁装修每天早上七点就开始电钻，吵得睡不着", "noise"),
        ("我们单元想加装电梯，一楼住户不同意，能不能帮忙协调", "elevator_retrofit"),
        ("樓道裡的電動車天天充電，電線拖了一地", "ebike_charging"),  # traditional characters
    ],
)
def test_classifies_chinese_reports(
    classifier: NaiveBayesClassifier, text: str, category: str
) -> None:
    found = classifier.classify(text)
    assert found.category == category
    assert found.method == METHOD
    assert 0 < found.confidence <= 1


def test_records_the_terms_that_decided(classifier: NaiveBayesClassifier) -> None:
    found = classifier.classify("小区门口的垃圾桶满溢，好几天没有清运了")
    assert found.category == "sanitation"
    assert {"垃圾桶", "清运"} & set(found.terms)
    assert len(found.terms) <= 5


def test_other_when_nothing_matches(classifier: NaiveBayesClassifier) -> None:
    found = classifier.classify("哈哈哈哈")
    assert (found.category, found.terms, found.confidence) == ("other", [], 0.0)


def test_keywords_count_for_a_category_without_examples() -> None:
    taxonomy = default_taxonomy()
    extractor = TermExtractor({w for c in taxonomy.categories for w in c.keywords})
    examples = [Example("楼道里堆满了垃圾没人清运", "sanitation")]
    model = NaiveBayesClassifier(taxonomy, examples, extractor=extractor)
    assert model.classify("业委会选举以后账目一直不公开").category == "owners_committee"


def test_terms_are_normalised_to_simplified_characters() -> None:
    extractor = TermExtractor({"电动车"})
    assert "电动车" in extractor.terms("樓下的電動車")
    assert "的" not in extractor.terms("樓下的電動車")  # a stop word


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("樓道裡的電動車", "楼道里的电动车"),  # traditional characters
        ("⾦湖苑", "金湖苑"),  # a Kangxi radical (⾦, U+2F26) that looks like 金
        ("\uf937口", "路口"),  # a compatibility ideograph (U+F937) that looks like 路
        ("３栋，ＡＢ", "３栋，ＡＢ"),  # full width only: no term changes, left as it is
        ("3栋楼道垃圾", "3栋楼道垃圾"),
    ],
)
def test_normalises_what_changes_chinese_characters(text: str, normalised: str) -> None:
    assert TermExtractor(()).normalise(text) == normalised


def test_terms_are_bigrams_within_chinese_runs_and_keywords() -> None:
    extractor = TermExtractor({"楼道充电", "充电", "臭"})
    terms = extractor.terms("我们楼道充电，味道臭！A栋")
    assert terms == ["们楼", "楼道", "道充", "充电", "味道", "道臭", "楼道充电", "臭"]
    assert "电味" not in terms  # no bigram across punctuation
    assert "我们" not in terms  # a stop word
    assert extractor.terms("A栋3楼") == []  # no two Chinese characters in a row


def test_known_terms_are_the_terms_in_the_vocabulary(classifier: NaiveBayesClassifier) -> None:
    extractor, vocab = classifier.extractor, classifier.vocab
    texts = [ex.text for ex in load_examples()] + ["我们小区居民反映楼道充电，臭", "哈哈"]
    for text in texts:
        expected = [t for t in extractor.terms(text) if t in vocab]
        assert extractor.terms(text, known=vocab) == expected


def _textbook(model: NaiveBayesClassifier, text: str) -> tuple[str, float, dict[str, float]]:
    """The model's decision computed the slow, obvious way from log P(term | category)."""
    terms = [t for t in model.extractor.terms(text) if t in model.vocab]
    scores = {c: sum(model.log_p(c, t) for t in terms) for c in model.categories}
    best = max(model.categories, key=lambda c: (scores[c], c))
    confidence = 1.0 / sum(math.exp(s - scores[best]) for s in scores.values())
    n = len(model.categories)
    lift = {
        t: model.log_p(best, t) - sum(model.log_p(c, t) for c in model.categories) / n
        for t in terms
    }
    return best, round(confidence, 3), lift


def test_fast_scoring_equals_the_textbook_formula(classifier: NaiveBayesClassifier) -> None:
    for ex in load_examples()[::3]:
        found = classifier.classify(ex.text)
        best, confidence, lift = _textbook(classifier, ex.text)
        if confidence < classifier.min_confidence:
            assert found.category == OTHER
            continue
        assert (found.category, found.confidence) == (best, confidence), ex.text
        assert 0 < len(found.terms) <= 5
        assert all(lift[t] > 0 for t in found.terms)
        assert not any(a in b for a in found.terms for b in found.terms if a != b)
        strongest = max(lift, key=lambda t: lift[t])
        assert any(strongest in t for t in found.terms)


def test_a_longer_term_replaces_the_named_terms_inside_it() -> None:
    lifts = {"充电": 3.0, "飞线": 2.5, "电动": 2.0, "楼道充电": 1.8, "电动车": 1.5, "动车": 1.0}
    terms = [*lifts, "楼道"]
    named = strongest_terms(terms, [*lifts.values(), -0.5], 5)
    assert named == ["楼道充电", "飞线", "电动车"]
    assert strongest_terms(terms, [*lifts.values(), -0.5], 2) == ["充电", "飞线"]


def test_folds_are_stratified_and_disjoint() -> None:
    examples = load_examples()
    folds = stratified_folds(examples, 6, seed=1)
    assert sum(len(f) for f in folds) == len(examples)
    assert len({id(ex) for f in folds for ex in f}) == len(examples)
    for fold in folds:
        sanitation = [ex for ex in fold if ex.category == "sanitation"]
        assert len(sanitation) == 2  # 12 per category, 6 folds


def test_cross_validated_accuracy_stays_above_the_documented_floor() -> None:
    """docs/intake.md reports about 0.70 (6-fold x 5 shuffles; 0.71 on this shuffle); a regression
    below 0.66 fails (the previous method, jieba-nb-v1, scored 0.688)."""
    taxonomy = default_taxonomy()
    extractor = TermExtractor({w for c in taxonomy.categories for w in c.keywords})
    score = cross_validate(load_examples(), naive_bayes_trainer(taxonomy, extractor), k=6, seed=0)
    assert score.total == 252
    assert score.accuracy >= 0.66
