"""The classifier on Chinese texts (pure), its explanations, its parameters, and its
cross-validated accuracy on the shipped labelled reports."""

from __future__ import annotations

import io

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from services.intake.classify import (
    FUNCTION_CHARACTERS,
    METHOD,
    OTHER,
    STOP_WORDS,
    CharNgrams,
    Example,
    LinearClassifier,
    ModelParameters,
    Normaliser,
    Recipe,
    _vectoriser,
    drop_headers,
    fold_symbols,
    learnable,
    load_examples,
    model_version,
    normaliser,
    train,
    trained_classifier,
    training_set,
)
from services.intake.evaluation import cross_validate, linear_trainer, scores
from shared.contract.taxonomy import default_taxonomy


@pytest.fixture(scope="module")
def classifier() -> LinearClassifier:
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
def test_classifies_chinese_reports(classifier: LinearClassifier, text: str, category: str) -> None:
    found = classifier.classify(text)
    assert found.category == category
    assert (found.method, found.model) == (METHOD, classifier.version)
    assert 0 < found.confidence <= 1
    assert len(found.suggestions) == 3
    assert found.suggestions[0].category == category
    assert found.suggestions[0].probability == found.confidence
    probabilities = [s.probability for s in found.suggestions]
    assert probabilities == sorted(probabilities, reverse=True)
    assert len({s.category for s in found.suggestions}) == 3


def test_a_batch_is_classified_as_each_text_alone(classifier: LinearClassifier) -> None:
    texts = [ex.text for ex in load_examples()[::40]] + ["哈哈哈哈"]
    assert classifier.classify_many(texts) == [classifier.classify(t) for t in texts]
    assert classifier.classify_many([]) == []


def test_terms_a_clerk_can_read(classifier: LinearClassifier) -> None:
    found = classifier.classify("小区门口的垃圾桶满溢，好几天没有清运了")
    assert found.category == "sanitation"
    assert {"垃圾桶", "清运"} <= set(found.terms)
    found = classifier.classify("楼下有人把电动车推进楼道里飞线充电，太危险了")
    assert "飞线充电" in found.terms  # adjacent bigrams joined into the word they spell
    assert not {"飞线", "充电", "线充"} & set(found.terms)  # not also its parts


def test_no_noise_bigrams_in_any_explanation(classifier: LinearClassifier) -> None:
    texts = [ex.text for ex in load_examples()]
    texts.append("小区里到处都是狗屎，都是那几家遛狗不牵绳的，处处都是")
    explained = 0
    for found in classifier.classify_many(texts):
        assert len(found.terms) <= 5, found
        explained += bool(found.terms)
        for term in found.terms:
            assert not FUNCTION_CHARACTERS & set(term), (term, found)  # 都是, 处都, ...
            assert term not in STOP_WORDS
            assert len(term) >= 2
        assert not any(a in b for a in found.terms for b in found.terms if a != b)
    # a very short text may have no word worth naming ("车为又被占了!!"); nearly all have some
    assert explained >= 0.97 * len(texts)


def test_other_when_nothing_known(classifier: LinearClassifier) -> None:
    for text in ("哈哈哈哈", "hello 123", "", "😤😤"):
        found = classifier.classify(text)
        assert (found.category, found.terms, found.confidence, found.suggestions) == (
            OTHER,
            [],
            0.0,
            [],
        )
        assert found.model == classifier.version


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
    assert Normaliser().normalise(text) == normalised


def test_probabilities_are_scikit_learns_calibrated_ones() -> None:
    """With the regression alone and no keyword documents (char-lr-v3's recipe), the model's
    own calibration and scoring (softmax of the scores times the inverse temperature) give what
    scikit-learn's CalibratedClassifierCV predicts, fitted the same way on the same data."""
    examples = load_examples()[::2]
    recipe = Recipe(nb_weight=0.0, keyword_documents=False)
    model = LinearClassifier(train(examples, default_taxonomy(), recipe), default_taxonomy())

    def prepare(text: str) -> str:
        return fold_symbols(drop_headers(normaliser().normalise(text)))

    vectoriser = _vectoriser(recipe.ngram_max)
    x = vectoriser.fit_transform([prepare(ex.text) for ex in examples])
    reference = CalibratedClassifierCV(
        LogisticRegression(C=recipe.c, solver="newton-cg", max_iter=300),
        method="temperature",
        ensemble=False,
        cv=StratifiedKFold(recipe.calibration_folds, shuffle=True, random_state=recipe.seed),
    ).fit(x, [ex.category for ex in examples])
    probe = [ex.text for ex in load_examples()[1::9]]
    expected = reference.predict_proba(vectoriser.transform([prepare(t) for t in probe]))
    assert list(reference.classes_) == model.classes
    assert np.allclose(model.probabilities(probe), expected, atol=1e-4)


def test_the_blend_and_the_keywords_change_the_model() -> None:
    """The complement naive Bayes share and the taxonomy's keyword documents each move the
    scores (a recipe without them is the regression alone); the keywords are learnt, never
    counted as reports."""
    examples = load_examples()[::3]
    taxonomy = default_taxonomy()
    data = training_set(examples, taxonomy)
    assert len(data.reports) == len(learnable(examples, Recipe()))
    assert Example("垃圾桶", "sanitation") in data.keywords
    assert not training_set(examples, taxonomy, Recipe(keyword_documents=False)).keywords
    probe = [ex.text for ex in load_examples()[1::20]]
    full = LinearClassifier(train(examples, taxonomy), taxonomy).probabilities(probe)
    for variant in (Recipe(nb_weight=0.0), Recipe(keyword_documents=False)):
        other = LinearClassifier(train(examples, taxonomy, variant), taxonomy)
        assert not np.allclose(other.probabilities(probe), full, atol=1e-3)
    # a taxonomy word no report of these has (吐痰, civility) is in the vocabulary, and pushes
    # a text towards its category
    assert not any("吐痰" in normaliser().normalise(ex.text) for ex in examples)
    model = LinearClassifier(train(examples, taxonomy), taxonomy)
    assert "吐痰" in model.params.vocabulary
    civility = model.classes.index("civility")
    with_word, without = model.probabilities(["楼道里有人吐痰", "楼道里有人"])[:, civility]
    assert with_word > without


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("来电人反映：3栋电梯坏了", "3栋电梯坏了"),
        ("市民来电称：路灯不亮", "路灯不亮"),
        ("入户走访时，5单元居民反映楼道堆物", "5单元居民反映楼道堆物"),
        ("天天敲门组记录：空巢老人需要关爱", "空巢老人需要关爱"),
        ("【我要报事】门口积水", "门口积水"),
        ("标题\n居民来访：想咨询低保", "标题\n想咨询低保"),  # a header opening the description
        ("来电人咨询：孩子上学要什么材料", "来电人咨询：孩子上学要什么材料"),  # asking: kept
        ("小区门口来电人反映：", "小区门口来电人反映："),  # not at a line's start
    ],
)
def test_channel_headers_are_dropped(text: str, dropped: str) -> None:
    assert drop_headers(text) == dropped


def test_the_fast_vectoriser_computes_what_scikit_learns_does(
    classifier: LinearClassifier,
) -> None:
    """CharNgrams (what a model classifies with) gives scikit-learn's TfidfVectorizer rows for
    the model's vocabulary and IDF: on every labelled report as the model prepares it and as
    it is written (white space, line breaks, emoji, digits), and on texts with nothing known."""
    params = classifier.params
    reference = _vectoriser(params.ngram_max, params.vocabulary)
    reference.idf_ = params.idf
    fast = CharNgrams(params.vocabulary, params.idf, params.ngram_max)
    raw = [ex.text for ex in load_examples()] + ["", "  \n\n  ", "哈哈 \t 哈", "😤😤", "abc"]
    for texts in (raw, [fold_symbols(drop_headers(normaliser().normalise(t))) for t in raw]):
        expected = reference.transform(texts)
        got = fast.transform(texts)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert (got != 0).sum() == (expected != 0).sum()
        assert abs(got - expected).max() < 1e-6


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("3栋门口的垃圾桶又满了，盖子都盖不上😤", "0栋门口的垃圾桶又满了 盖子都盖不上 "),
        ("12栋502住户：楼道灯坏了！！", "0栋0住户 楼道灯坏了 "),
        ("标题\n\n楼下 WiFi 没信号", "标题 楼下 WiFi 没信号"),
        ("１２３号", "0号"),  # full-width digits
    ],
)
def test_digits_and_symbols_are_folded(text: str, folded: str) -> None:
    assert fold_symbols(text) == folded


def test_a_model_of_the_previous_version_still_loads_and_classifies_as_it_did() -> None:
    """A char-lr-v3 model installed before this version (its archive has no drop_headers, its
    recipe none of the new fields) keeps the headers, is named by its own version, and its recipe
    reads as v3's: the regression alone, no keyword documents."""
    examples = load_examples()[::2]
    taxonomy = default_taxonomy()
    old_recipe = Recipe.from_stored({"c": 20.0, "ngram_max": 2, "calibration_folds": 5, "seed": 0})
    assert (old_recipe.nb_weight, old_recipe.drop_headers, old_recipe.keyword_documents) == (
        0.0,
        False,
        False,
    )
    assert not old_recipe.fold_symbols
    assert Recipe.from_stored(Recipe().__dict__) == Recipe()
    v4_stored = {k: v for k, v in Recipe().__dict__.items() if k != "fold_symbols"}
    assert Recipe.from_stored(v4_stored) == Recipe(fold_symbols=False)  # char-lr-cnb-v4's
    params = train(examples, taxonomy, old_recipe)
    archive = io.BytesIO()
    np.savez_compressed(  # as char-lr-v3 wrote it
        archive,
        version=np.array("char-lr-v3-0123456789"),
        vocabulary=np.array(params.vocabulary),
        idf=params.idf,
        classes=np.array(params.classes),
        coef=params.coef,
        intercept=params.intercept,
        inverse_temperature=np.array(params.inverse_temperature),
        ngram_max=np.array(params.ngram_max),
    )
    old = LinearClassifier(ModelParameters.from_bytes(archive.getvalue()), taxonomy)
    assert not old.params.drop_headers and not old.params.fold_symbols
    found = old.classify("来电人反映：3栋电梯坏了")
    assert (found.method, found.model) == ("char-lr-v3", "char-lr-v3-0123456789")
    texts = ["来电人反映：3栋电梯坏了", "3栋电梯坏了"]
    same = LinearClassifier(params, taxonomy)
    assert np.allclose(old.probabilities(texts), same.probabilities(texts))
    with_header, without = old.probabilities(texts)
    assert not np.allclose(with_header, without)  # the header counts, as it did in v3


def test_a_model_of_char_lr_cnb_v4_still_loads_and_classifies_as_it_did() -> None:
    """A char-lr-cnb-v4 archive (no fold_symbols) drops headers but folds no symbols: digits and
    punctuation count as they did in v4, and it is named by its own version."""
    examples = load_examples()[::2]
    taxonomy = default_taxonomy()
    v4 = Recipe(fold_symbols=False)
    params = train(examples, taxonomy, v4)
    archive = io.BytesIO()
    np.savez_compressed(  # as char-lr-cnb-v4 wrote it
        archive,
        version=np.array("char-lr-cnb-v4-0123456789"),
        vocabulary=np.array(params.vocabulary),
        idf=params.idf,
        classes=np.array(params.classes),
        coef=params.coef,
        intercept=params.intercept,
        inverse_temperature=np.array(params.inverse_temperature),
        ngram_max=np.array(params.ngram_max),
        drop_headers=np.array(True),
    )
    old = LinearClassifier(ModelParameters.from_bytes(archive.getvalue()), taxonomy)
    assert old.params.drop_headers and not old.params.fold_symbols
    assert old.method == "char-lr-cnb-v4"
    texts = ["3栋楼道灯坏了！！", "12栋楼道灯坏了"]
    assert np.allclose(
        old.probabilities(texts), LinearClassifier(params, taxonomy).probabilities(texts)
    )
    assert "！" in old.params.vocabulary  # v4 learnt punctuation; v5 folds it away
    assert "！" not in train(examples, taxonomy).vocabulary


def test_parameters_survive_bytes_and_hold_no_code(classifier: LinearClassifier) -> None:
    data = classifier.params.to_bytes()
    back = ModelParameters.from_bytes(data)
    assert (back.version, back.vocabulary, back.classes) == (
        classifier.version,
        classifier.params.vocabulary,
        classifier.classes,
    )
    again = LinearClassifier(back, default_taxonomy())
    texts = [ex.text for ex in load_examples()[::25]]
    assert again.classify_many(texts) == classifier.classify_many(texts)
    # an archive holding a Python object (which only pickle could read) is refused
    out = io.BytesIO()
    np.savez(out, version=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        ModelParameters.from_bytes(out.getvalue())


def test_the_version_names_recipe_and_examples() -> None:
    a = [Example("楼道垃圾", "sanitation"), Example("乱停车", "parking")]
    assert model_version(a, Recipe()) == model_version(a[::-1], Recipe())
    assert model_version(a, Recipe()) != model_version(a[:1], Recipe())
    assert model_version(a, Recipe()) != model_version(a, Recipe(c=1.0))
    assert model_version(a, Recipe()).startswith(METHOD + "-")


def test_only_categories_with_enough_examples_are_learnt() -> None:
    examples = [Example(f"垃圾{i}", "sanitation") for i in range(5)]
    examples += [Example("吵", "noise")] * 4 + [Example("哈哈", OTHER)] * 9
    assert {ex.category for ex in learnable(examples, Recipe())} == {"sanitation"}


def test_cross_validated_accuracy_stays_above_the_documented_floor() -> None:
    """docs/intake.md reports top-1 0.82 and top-3 0.97 (5-fold, 3 shuffles, all 777 labelled
    reports); a regression below 0.80 / 0.955 on shuffle 0 fails (char-lr-cnb-v4 scored 0.821 /
    0.964 there, char-lr-v3 0.793 / 0.949, bigram-nb-v2 about 0.70 on the first 252)."""
    examples = load_examples()
    assert len(examples) == 777
    s = scores(cross_validate(examples, linear_trainer(default_taxonomy()), k=5, seed=0))
    assert s.n == 777
    assert s.top1 >= 0.80
    assert s.top3 >= 0.955
