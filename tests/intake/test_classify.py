"""The classifier on Chinese texts (pure), and its cross-validated accuracy on the shipped file."""

from __future__ import annotations

import pytest

from services.intake.classify import (
    METHOD,
    Example,
    NaiveBayesClassifier,
    TermExtractor,
    load_examples,
    trained_classifier,
)
from services.intake.evaluation import cross_validate, naive_bayes_trainer, stratified_folds
from shared.taxonomy import default_taxonomy


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


def test_folds_are_stratified_and_disjoint() -> None:
    examples = load_examples()
    folds = stratified_folds(examples, 6, seed=1)
    assert sum(len(f) for f in folds) == len(examples)
    assert len({id(ex) for f in folds for ex in f}) == len(examples)
    for fold in folds:
        sanitation = [ex for ex in fold if ex.category == "sanitation"]
        assert len(sanitation) == 2  # 12 per category, 6 folds


def test_cross_validated_accuracy_stays_above_the_documented_floor() -> None:
    """docs/intake.md reports about 0.69 (6-fold x 5 shuffles); a regression below 0.6 fails."""
    taxonomy = default_taxonomy()
    extractor = TermExtractor({w for c in taxonomy.categories for w in c.keywords})
    score = cross_validate(load_examples(), naive_bayes_trainer(taxonomy, extractor), k=6, seed=0)
    assert score.total == 252
    assert score.accuracy >= 0.6
