"""HistGradientBoosting against scikit-learn's as an oracle, across threads, with missing values
and bad input."""

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier as SkC
from sklearn.ensemble import HistGradientBoostingRegressor as SkR
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

from parml.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor


@pytest.fixture(scope="module")
def clf_data():
    X, y = make_classification(6000, 12, n_informative=6, random_state=0)
    X[np.random.default_rng(0).random(X.shape) < 0.03] = np.nan
    return X[:4000], y[:4000], X[4000:], y[4000:]


def test_binary_quality_close_to_sklearn(clf_data):
    Xtr, ytr, Xte, yte = clf_data
    ours = HistGradientBoostingClassifier(max_iter=60, early_stopping=False).fit(Xtr, ytr)
    theirs = SkC(max_iter=60, early_stopping=False).fit(Xtr, ytr)
    a = roc_auc_score(yte, ours.predict_proba(Xte)[:, 1])
    b = roc_auc_score(yte, theirs.predict_proba(Xte)[:, 1])
    assert a >= b - 0.01, (a, b)
    p = ours.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    assert np.array_equal(ours.predict(Xte), ours.classes_[p.argmax(axis=1)])
    assert np.allclose(ours.decision_function(Xte), np.log(p[:, 1] / p[:, 0]))


def test_multiclass_and_string_labels():
    X, y = make_classification(3000, 8, n_informative=5, n_classes=3, random_state=1)
    labels = np.array(["a", "b", "c"])[y]
    ours = HistGradientBoostingClassifier(max_iter=40).fit(X, labels)
    theirs = SkC(max_iter=40).fit(X, labels)
    assert ours.n_trees_per_iteration_ == 3
    assert accuracy_score(labels, ours.predict(X)) >= accuracy_score(labels, theirs.predict(X)) - 0.02
    assert set(ours.predict(X)) <= {"a", "b", "c"}


def test_regression_close_to_sklearn():
    X, y = make_regression(4000, 10, noise=5, random_state=0)
    ours = HistGradientBoostingRegressor(max_iter=80, early_stopping=False).fit(X[:3000], y[:3000])
    theirs = SkR(max_iter=80, early_stopping=False).fit(X[:3000], y[:3000])
    a, b = r2_score(y[3000:], ours.predict(X[3000:])), r2_score(y[3000:], theirs.predict(X[3000:]))
    assert a >= b - 0.01, (a, b)


@pytest.mark.parametrize("n_threads", [2, 4])
def test_identical_for_every_thread_count(clf_data, n_threads):
    Xtr, ytr, Xte, _ = clf_data
    one = HistGradientBoostingClassifier(max_iter=20, n_threads=1, random_state=0).fit(Xtr, ytr)
    many = HistGradientBoostingClassifier(max_iter=20, n_threads=n_threads,
                                          random_state=0).fit(Xtr, ytr)
    assert np.array_equal(one.predict_proba(Xte), many.predict_proba(Xte))


def test_staged_predict_ends_at_predict(clf_data):
    Xtr, ytr, Xte, _ = clf_data
    m = HistGradientBoostingClassifier(max_iter=15).fit(Xtr, ytr)
    stages = list(m.staged_predict_proba(Xte))
    assert len(stages) == m.n_iter_
    np.testing.assert_allclose(stages[-1], m.predict_proba(Xte), rtol=1e-12)
    assert np.array_equal(list(m.staged_predict(Xte))[-1], m.predict(Xte))


def test_missing_values_learn_a_direction():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 3))
    y = rng.integers(0, 2, 4000)
    X[y == 1, 1] = np.nan                     # only the missingness predicts the class
    m = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    Xq = np.array([[0.0, np.nan, 0.0], [0.0, 0.5, 0.0]])
    p = m.predict_proba(Xq)[:, 1]
    assert p[0] > 0.9 and p[1] < 0.1, p


def test_early_stopping_stops():
    X, y = make_classification(12_000, 10, random_state=0)
    m = HistGradientBoostingClassifier(max_iter=500, n_iter_no_change=3, random_state=0).fit(X, y)
    assert m.do_early_stopping_ and m.n_iter_ < 500
    # as scikit-learn: one score for the model before the first tree, then one per iteration
    assert len(m.validation_score_) == len(m.train_score_) == m.n_iter_ + 1
    np.testing.assert_allclose(m.validation_score_[0], -np.log(2), rtol=1e-3)  # balanced y
    # the rule fired: the last 3 scores do not beat the one before them
    assert max(m.validation_score_[-3:]) <= m.validation_score_[-4] + m.tol


def test_sample_weights_count(clf_data):
    """Weight 10 on class 1 raises its predicted probability; all-ones weights change nothing."""
    Xtr, ytr, Xte, _ = clf_data
    kw = dict(max_iter=10, early_stopping=False)
    plain = HistGradientBoostingClassifier(**kw).fit(Xtr, ytr).predict_proba(Xte)[:, 1]
    ones = HistGradientBoostingClassifier(**kw).fit(Xtr, ytr, sample_weight=np.ones(len(ytr)))
    np.testing.assert_allclose(ones.predict_proba(Xte)[:, 1], plain, rtol=1e-12)
    sw = np.where(ytr == 1, 10.0, 1.0)
    heavy = HistGradientBoostingClassifier(**kw).fit(Xtr, ytr, sample_weight=sw)
    assert heavy.predict_proba(Xte)[:, 1].mean() > plain.mean() + 0.05


@pytest.mark.parametrize("bad, exc", [
    (lambda X, y: (np.where(np.isnan(X), np.inf, X), y), ValueError),
    (lambda X, y: (X, y[:-1]), ValueError),
    (lambda X, y: (X[:, 0], y), ValueError),
    (lambda X, y: (X, np.zeros_like(y)), ValueError),
])
def test_bad_input(clf_data, bad, exc):
    Xtr, ytr, _, _ = clf_data
    X, y = bad(Xtr.copy(), ytr.copy())
    with pytest.raises(exc):
        HistGradientBoostingClassifier(max_iter=3).fit(X, y)


def test_unfitted_and_bad_params(clf_data):
    Xtr, ytr, _, _ = clf_data
    with pytest.raises(NotFittedError):
        HistGradientBoostingClassifier().predict(Xtr)
    for p in (dict(learning_rate=0), dict(max_bins=256), dict(max_leaf_nodes=1),
              dict(loss="huber")):
        with pytest.raises(ValueError):
            HistGradientBoostingClassifier(**p).fit(Xtr, ytr)
