"""The classifier's linear model and its calibration (pure: arrays in, arrays out).

``blend``: a multinomial logistic regression and a complement naive Bayes fitted on the same
TF-IDF features, their scores added. Both score a text as a weight per feature and class times the
text's feature values, so their weighted sum is again one weight matrix and one intercept: the
blended model is stored, scored and explained exactly as a logistic regression is
(``classify.ModelParameters``). Complement naive Bayes learns from counts, so it credits a word
seen a few times with a category where the regression, from 30-odd examples a category, has not
learnt it; the regression weighs what counts cannot tell apart. The Bayes scores are scaled so
that their spread over the training rows matches the regression's, times ``nb_weight`` (0: the
regression alone).

``inverse_temperature``: temperature scaling, the one number that multiplies a model's scores
before the softmax so that its probabilities are calibrated, fitted on held-out scores as
scikit-learn's ``CalibratedClassifierCV(method="temperature")`` fits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB


@dataclass(frozen=True, eq=False)
class Linear:
    classes: list[str]
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)

    def scores(self, x: Any) -> np.ndarray:
        """``x @ coef.T + intercept`` (texts × classes)."""
        scores: np.ndarray = np.asarray(x @ self.coef.T) + self.intercept
        return scores


def blend(x: Any, y: Any, *, c: float, nb_alpha: float, nb_weight: float) -> Linear:
    """Fit the regression (L2, inverse regularisation ``c``) and, if ``nb_weight`` > 0, the
    complement naive Bayes (smoothing ``nb_alpha``) on ``x`` (texts × features) and ``y``, and add
    them into one linear model."""
    regression = LogisticRegression(C=c, solver="newton-cg", max_iter=300).fit(x, y)
    coef = regression.coef_.astype(np.float64)
    if nb_weight > 0:
        bayes = ComplementNB(alpha=nb_alpha).fit(x, y)
        # per feature, each class's log weight minus its mean over the classes: the same ranking
        # of classes for every text, centred as the regression's scores are below
        nb = bayes.feature_log_prob_ - bayes.feature_log_prob_.mean(axis=0, keepdims=True)
        lr_scores = np.asarray(x @ coef.T)
        nb_scores = np.asarray(x @ nb.T)
        lr_scores -= lr_scores.mean(axis=1, keepdims=True)
        nb_scores -= nb_scores.mean(axis=1, keepdims=True)
        coef = coef + nb_weight * lr_scores.std() / max(float(nb_scores.std()), 1e-12) * nb
    return Linear(
        [str(k) for k in regression.classes_], coef, regression.intercept_.astype(np.float64)
    )


def inverse_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The β that minimises the mean log loss of softmax(β × ``scores``) for the true classes
    ``truth`` (column indices): log β searched in [-10, 10] by bounded scalar minimisation, as
    scikit-learn does."""
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(truth))

    def loss(log_beta: float) -> float:
        z = np.exp(log_beta) * scores
        return float(np.mean(logsumexp(z, axis=1) - z[rows, truth]))

    found = minimize_scalar(
        loss, bounds=(-10.0, 10.0), method="bounded", options={"xatol": 64 * np.finfo(float).eps}
    )
    if not found.success:  # pragma: no cover
        raise RuntimeError(f"temperature scaling did not converge: {found.message}")
    return float(np.exp(found.x))
