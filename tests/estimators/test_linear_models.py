"""Correctness of the parml linear models, with scikit-learn as the oracle: exact solvers to
~1e-6, iterative ones to the optimiser's tolerance, stochastic ones to an accuracy margin;
thread-count invariance, out-of-core (np.memmap) fitting and its memory use, partial_fit,
warm starts, pickling."""

import pickle
import tracemalloc

import numpy as np
import pytest
from sklearn import linear_model as sk_lm
from sklearn import svm as sk_svm
from sklearn.datasets import make_classification, make_regression
from sklearn.metrics import log_loss, r2_score
from sklearn.preprocessing import StandardScaler

from parml.linear_model import (LinearRegression, LinearSVC, LogisticRegression, Ridge,
                                SGDClassifier, SGDRegressor, iter_npy_chunks, stream_chunk_bytes)
from npy_files import write_npy

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore:.*iprint.*:DeprecationWarning")


def rel_err(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


# ---------------------------------------------------------------------------------------------
# data

def _regression(n=120, d=8, n_targets=1, seed=0):
    X, y = make_regression(n, d, n_targets=n_targets, noise=1.0, bias=3.0, random_state=seed)
    return X, y


def _weights(n, seed=1):
    return np.random.default_rng(seed).uniform(0.1, 3.0, n)


def _noisy_classification(n_classes, n=300, seed=None):
    """Overlapping classes (flip_y): the unpenalised logistic MLE is finite."""
    return make_classification(n, 6, n_informative=4, n_redundant=0, n_classes=n_classes,
                               flip_y=0.15, class_sep=0.8,
                               random_state=n_classes if seed is None else seed)


def _separated(n_classes, n=600, d=8, seed=None):
    """Well separated, standardised; first 2/3 train, last 1/3 test."""
    X, y = make_classification(n, d, n_informative=5, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, class_sep=2.0, flip_y=0.0,
                               random_state=n_classes if seed is None else seed)
    X = StandardScaler().fit_transform(X)
    m = 2 * n // 3
    return X[:m], y[:m], X[m:], y[m:]


# ---------------------------------------------------------------------------------------------
# LinearRegression and Ridge: exact solvers

@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("y_ndim", [1, 2])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("model", ["LinearRegression", "Ridge"])
def test_least_squares_match_sklearn(model, fit_intercept, y_ndim, weighted, dtype, n_threads):
    X, y = _regression(n_targets=1 if y_ndim == 1 else 2)
    X = X.astype(dtype)
    sw = _weights(len(X)) if weighted else None
    if model == "LinearRegression":
        ours = LinearRegression(fit_intercept=fit_intercept, n_threads=n_threads)
        ref = sk_lm.LinearRegression(fit_intercept=fit_intercept)
    else:
        ours = Ridge(alpha=1.7, fit_intercept=fit_intercept, n_threads=n_threads)
        ref = sk_lm.Ridge(alpha=1.7, fit_intercept=fit_intercept)
    ours.fit(X, y, sample_weight=sw)
    # the oracle gets exactly the values parml saw, in float64 (parml accumulates in float64)
    ref.fit(X.astype(np.float64), y, sample_weight=sw)
    assert np.shape(ours.coef_) == np.shape(ref.coef_)
    assert rel_err(ours.coef_, ref.coef_) < 1e-6
    if fit_intercept:
        assert np.shape(ours.intercept_) == np.shape(ref.intercept_)
        assert rel_err(ours.intercept_, ref.intercept_) < 1e-6
    else:
        np.testing.assert_array_equal(ours.intercept_, 0.0)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X.astype(np.float64)),
                               rtol=1e-6, atol=1e-6 * np.abs(y).max())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_ridge_wide_kernel_path(fit_intercept, weighted, n_threads):
    """More features than samples: parml solves the n x n kernel system."""
    X, y = make_regression(30, 100, noise=1.0, bias=2.0, random_state=1)
    sw = _weights(len(X)) if weighted else None
    ours = Ridge(alpha=1.5, fit_intercept=fit_intercept, n_threads=n_threads)
    ours.fit(X, y, sample_weight=sw)
    ref = sk_lm.Ridge(alpha=1.5, fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    assert rel_err(ours.coef_, ref.coef_) < 1e-6
    if fit_intercept:
        assert rel_err(ours.intercept_, ref.intercept_) < 1e-6
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-6, atol=1e-6)


def test_ridge_per_target_alpha():
    X, Y = _regression(n_targets=2)
    ours = Ridge(alpha=[0.5, 20.0]).fit(X, Y)
    ref = sk_lm.Ridge(alpha=[0.5, 20.0]).fit(X, Y)
    assert rel_err(ours.coef_, ref.coef_) < 1e-6
    assert rel_err(ours.intercept_, ref.intercept_) < 1e-6


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("y_ndim", [1, 2])
def test_ridge_lbfgs_matches_sklearn(y_ndim, weighted):
    X, y = _regression(n_targets=1 if y_ndim == 1 else 2)
    sw = _weights(len(X)) if weighted else None
    ours = Ridge(alpha=2.0, solver="lbfgs", tol=1e-8).fit(X, y, sample_weight=sw)
    ref = sk_lm.Ridge(alpha=2.0).fit(X, y, sample_weight=sw)      # exact oracle
    assert rel_err(ours.coef_, ref.coef_) < 1e-4
    assert rel_err(ours.intercept_, ref.intercept_) < 1e-4
    assert np.all(np.asarray(ours.n_iter_) >= 1)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_rank_deficient(fit_intercept, weighted):
    X, y = _regression()
    X = np.column_stack([X, X[:, 2], 2.0 * X[:, 5]])      # duplicate and collinear columns
    sw = _weights(len(X)) if weighted else None
    ours = LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    ref = sk_lm.LinearRegression(fit_intercept=fit_intercept).fit(X, y, sample_weight=sw)
    assert np.all(np.isfinite(ours.coef_))
    assert rel_err(ours.predict(X), ref.predict(X)) < 1e-6
    X_new = np.random.default_rng(3).standard_normal((20, X.shape[1]))
    X_new[:, -2], X_new[:, -1] = X_new[:, 2], 2.0 * X_new[:, 5]   # same linear structure
    assert rel_err(ours.predict(X_new), ref.predict(X_new)) < 1e-6


# ---------------------------------------------------------------------------------------------
# LogisticRegression

LOGREG_CASES = {
    "default": ({}, {}, False),
    "C=0.3": (dict(C=0.3), dict(C=0.3), False),
    "balanced": (dict(class_weight="balanced"), dict(class_weight="balanced"), False),
    "class_weight-dict": (dict(class_weight={0: 1.0, 1: 3.0}),
                          dict(class_weight={0: 1.0, 1: 3.0}), False),
    "sample_weight": ({}, {}, True),
    "no-penalty": (dict(penalty=None), dict(C=np.inf), False),
}


@pytest.mark.parametrize("case", list(LOGREG_CASES))
@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_matches_sklearn(n_classes, case):
    ours_kw, ref_kw, weighted = LOGREG_CASES[case]
    X, y = _noisy_classification(n_classes)
    sw = _weights(len(X)) if weighted else None
    ours = LogisticRegression(tol=1e-8, max_iter=1000, **ours_kw).fit(X, y, sample_weight=sw)
    ref = sk_lm.LogisticRegression(tol=1e-8, max_iter=1000, **ref_kw).fit(X, y,
                                                                          sample_weight=sw)
    K = 1 if n_classes == 2 else n_classes
    assert ours.coef_.shape == ref.coef_.shape == (K, X.shape[1])
    assert ours.intercept_.shape == ref.intercept_.shape == (K,)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert rel_err(ours.coef_, ref.coef_) < 1e-4
    assert rel_err(ours.intercept_, ref.intercept_) < 1e-4
    P = ours.predict_proba(X)
    np.testing.assert_allclose(P, ref.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(ours.predict_log_proba(X), np.log(P))
    assert np.mean(ours.predict(X) == ref.predict(X)) > 0.99
    assert ours.n_iter_.shape == (1,) and ours.n_iter_[0] >= 1


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_balanced_with_sample_weight_matches_sklearn(n_classes):
    X, y = _noisy_classification(n_classes)
    sw = _weights(len(X))
    ours = LogisticRegression(class_weight="balanced", tol=1e-8, max_iter=1000)
    ref = sk_lm.LogisticRegression(class_weight="balanced", tol=1e-8, max_iter=1000)
    ours.fit(X, y, sample_weight=sw)
    ref.fit(X, y, sample_weight=sw)
    assert rel_err(ours.coef_, ref.coef_) < 1e-4


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_gd_reaches_sklearn_loss(n_classes):
    X, y = _noisy_classification(n_classes)
    ours = LogisticRegression(solver="gd", max_iter=2000).fit(X, y)
    ref = sk_lm.LogisticRegression().fit(X, y)
    gap = log_loss(y, ours.predict_proba(X)) - log_loss(y, ref.predict_proba(X))
    assert abs(gap) < 1e-3


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_same_result_for_any_thread_count(n_classes):
    # big enough for the kernels to actually split the work between threads (n * K * d at
    # least 131,072 multiply-adds: 8000 x 20 for the binary case, K = 1)
    X, y = make_classification(8000, 20, n_informative=8, n_classes=n_classes, random_state=0)
    fits = [LogisticRegression(n_threads=n).fit(X, y) for n in (1, 2, 4)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.coef_, fits[0].coef_)
        np.testing.assert_array_equal(f.intercept_, fits[0].intercept_)
        np.testing.assert_array_equal(f.predict_proba(X), fits[0].predict_proba(X))


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_float32_close_to_float64(n_classes):
    X, y = _noisy_classification(n_classes)
    a64 = LogisticRegression(tol=1e-8).fit(X, y)
    X32 = X.astype(np.float32)
    a32 = LogisticRegression(tol=1e-8).fit(X32, y)
    assert rel_err(a32.coef_, a64.coef_) < 1e-5
    assert a32.coef_.dtype == np.float64
    np.testing.assert_allclose(a32.predict_proba(X32), a64.predict_proba(X), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# lbfgs with fit_intercept=False must not read uninitialised memory

_REAL_EMPTY, _REAL_EMPTY_LIKE = np.empty, np.empty_like


def _nan_empty(*args, **kwargs):
    out = _REAL_EMPTY(*args, **kwargs)
    if out.dtype.kind in "fc":
        out.fill(np.nan)
    return out


def _nan_empty_like(*args, **kwargs):
    out = _REAL_EMPTY_LIKE(*args, **kwargs)
    if out.dtype.kind in "fc":
        out.fill(np.nan)
    return out


def _uninit_cases():
    Xc, yc = _noisy_classification(2)
    X4, y4 = _noisy_classification(4)
    Xr, yr = _regression()
    cases = [
        ("LogisticRegression", lambda fi: LogisticRegression(fit_intercept=fi), Xc, yc),
        ("LogisticRegression-4", lambda fi: LogisticRegression(fit_intercept=fi), X4, y4),
        ("LogisticRegression-gd", lambda fi: LogisticRegression(solver="gd", fit_intercept=fi),
         Xc, yc),
        ("LinearSVC", lambda fi: LinearSVC(fit_intercept=fi), Xc, yc),
        ("LinearSVC-4", lambda fi: LinearSVC(fit_intercept=fi), X4, y4),
        ("Ridge-lbfgs", lambda fi: Ridge(solver="lbfgs", fit_intercept=fi), Xr, yr),
        ("Ridge", lambda fi: Ridge(fit_intercept=fi), Xr, yr),
        ("LinearRegression", lambda fi: LinearRegression(fit_intercept=fi), Xr, yr),
        ("SGDClassifier", lambda fi: SGDClassifier(random_state=0, fit_intercept=fi), Xc, yc),
        ("SGDRegressor", lambda fi: SGDRegressor(random_state=0, fit_intercept=fi), Xr, yr),
    ]
    params = []
    for name, make, X, y in cases:
        for fi in (True, False):
            params.append(pytest.param(make, fi, X, y, id=f"{name}-fit_intercept={fi}"))
    return params


@pytest.mark.parametrize("make, fit_intercept, X, y", _uninit_cases())
def test_fit_does_not_read_uninitialised_memory(make, fit_intercept, X, y, monkeypatch):
    """Every np.empty / np.empty_like buffer is filled with NaN during fit: a correct fit
    overwrites what it reads and gives the same model as a normal fit."""
    ref = make(fit_intercept).fit(X, y)
    monkeypatch.setattr(np, "empty", _nan_empty)
    monkeypatch.setattr(np, "empty_like", _nan_empty_like)
    got = make(fit_intercept).fit(X, y)
    monkeypatch.undo()
    np.testing.assert_array_equal(got.coef_, ref.coef_)
    np.testing.assert_array_equal(got.intercept_, ref.intercept_)


# ---------------------------------------------------------------------------------------------
# LinearSVC

@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_svc_matches_sklearn(n_classes):
    X, y = _noisy_classification(n_classes, n=450)
    Xtr, ytr, Xte, yte = X[:300], y[:300], X[300:], y[300:]
    ours = LinearSVC().fit(Xtr, ytr)
    ref = sk_svm.LinearSVC(dual=False).fit(Xtr, ytr)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    assert ours.coef_.shape == ref.coef_.shape
    for Xs, ys in ((Xtr, ytr), (Xte, yte)):
        assert abs(ours.score(Xs, ys) - ref.score(Xs, ys)) <= 0.01
        d_ours, d_ref = ours.decision_function(Xs), ref.decision_function(Xs)
        assert d_ours.shape == d_ref.shape
        assert np.mean(np.sign(d_ours) == np.sign(d_ref)) > 0.98


def test_linear_svc_attributes_and_arguments_as_sklearn():
    X, y = _noisy_classification(3, n=300)
    ours = LinearSVC(fit_intercept=False).fit(X, y)
    ref = sk_svm.LinearSVC(fit_intercept=False).fit(X, y)
    assert ours.intercept_ == ref.intercept_ == 0.0
    assert ours.decision_function(X).shape == ref.decision_function(X).shape
    with pytest.raises(ValueError, match="loss='hinge' is not supported when dual=False"):
        LinearSVC(loss="hinge", dual=False).fit(X, y)
    with pytest.raises(ValueError, match="loss='hinge' are not supported when dual=False"):
        sk_svm.LinearSVC(loss="hinge", dual=False).fit(X, y)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_single_column_y_shapes_as_sklearn(fit_intercept):
    # scikit-learn's Ridge ravels a (n, 1) target (coef_ (d,), 1-D predictions); its
    # LinearRegression keeps (1, d) and (n, 1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((60, 4)), rng.standard_normal((60, 1))
    for Est, Ref in [(Ridge, sk_lm.Ridge), (LinearRegression, sk_lm.LinearRegression)]:
        ours, ref = Est(fit_intercept=fit_intercept).fit(X, y), \
            Ref(fit_intercept=fit_intercept).fit(X, y)
        assert ours.coef_.shape == ref.coef_.shape
        assert np.shape(ours.intercept_) == np.shape(ref.intercept_)
        assert ours.predict(X).shape == ref.predict(X).shape
        np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-8, atol=1e-10)


def test_linear_svc_hinge_close_to_sklearn():
    X, y = _noisy_classification(2, n=450)
    ours = LinearSVC(loss="hinge", max_iter=5000).fit(X, y)
    ref = sk_svm.LinearSVC(loss="hinge", dual=True, max_iter=20000).fit(X, y)
    assert abs(ours.score(X, y) - ref.score(X, y)) <= 0.02
    assert np.mean(np.sign(ours.decision_function(X)) == np.sign(ref.decision_function(X))) \
        > 0.95


# ---------------------------------------------------------------------------------------------
# SGDClassifier

SGD_COMMON = dict(max_iter=50, tol=1e-3, random_state=0)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
@pytest.mark.parametrize("batch_size", [1, 64])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("loss", ["hinge", "log_loss", "modified_huber"])
def test_sgd_classifier_accuracy_matches_sklearn(loss, n_classes, batch_size, penalty):
    Xtr, ytr, Xte, yte = _separated(n_classes)
    kw = dict(loss=loss, penalty=penalty, **SGD_COMMON)
    ours = SGDClassifier(batch_size=batch_size, **kw).fit(Xtr, ytr)
    ref = sk_lm.SGDClassifier(**kw).fit(Xtr, ytr)
    assert ours.coef_.shape == ref.coef_.shape
    assert ours.intercept_.shape == ref.intercept_.shape
    # one-sided: scikit-learn's own run can land a few points low (stochastic, 200 test rows)
    assert ours.score(Xte, yte) >= ref.score(Xte, yte) - 0.03
    assert ours.score(Xte, yte) > 0.9
    assert 1 <= ours.n_iter_ <= SGD_COMMON["max_iter"]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("loss", ["hinge", "log_loss", "modified_huber"])
def test_sgd_classifier_average_matches_sklearn(loss, n_classes):
    Xtr, ytr, Xte, yte = _separated(n_classes)
    kw = dict(loss=loss, average=True, **SGD_COMMON)
    ours = SGDClassifier(**kw).fit(Xtr, ytr)
    ref = sk_lm.SGDClassifier(**kw).fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= ref.score(Xte, yte) - 0.03
    # the averaged model is not the last iterate
    plain = SGDClassifier(loss=loss, **SGD_COMMON).fit(Xtr, ytr)
    assert not np.array_equal(ours.coef_, plain.coef_)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sgd_predict_proba(n_classes):
    Xtr, ytr, Xte, _ = _separated(n_classes)
    clf = SGDClassifier(loss="log_loss", **SGD_COMMON).fit(Xtr, ytr)
    P = clf.predict_proba(Xte)
    assert P.shape == (len(Xte), n_classes)
    assert np.all((P >= 0) & (P <= 1))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(Xte))
    with np.errstate(divide="ignore"):      # saturated probabilities: log(0) = -inf
        np.testing.assert_allclose(clf.predict_log_proba(Xte), np.log(P))
    mh = SGDClassifier(loss="modified_huber", **SGD_COMMON).fit(Xtr, ytr)
    Pm = mh.predict_proba(Xte)
    np.testing.assert_allclose(Pm.sum(axis=1), 1.0, atol=1e-12)
    assert np.all((Pm >= 0) & (Pm <= 1))


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "perceptron"])
def test_sgd_no_predict_proba_for_non_probabilistic_losses(loss):
    Xtr, ytr, _, _ = _separated(2)
    clf = SGDClassifier(loss=loss, **SGD_COMMON)
    assert not hasattr(clf, "predict_proba")
    clf.fit(Xtr, ytr)
    assert not hasattr(clf, "predict_proba")
    assert not hasattr(clf, "predict_log_proba")
    assert hasattr(SGDClassifier(loss="log_loss"), "predict_proba")


@pytest.mark.parametrize("strategy", ["auto", "samples", "weights"])
@pytest.mark.parametrize("batch_size", [16, 64])
def test_sgd_minibatch_deterministic_across_threads(batch_size, strategy):
    X, y = make_classification(3000, 20, n_informative=10, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, class_sep=2.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    kw = dict(batch_size=batch_size, strategy=strategy, random_state=0, max_iter=10, tol=None)
    a = SGDClassifier(n_threads=1, **kw).fit(X, y)
    b = SGDClassifier(n_threads=2, **kw).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    c = SGDClassifier(n_threads=2, **{**kw, "random_state": 1}).fit(X, y)
    assert not np.array_equal(a.coef_, c.coef_)      # the seed does matter


def test_sgd_hogwild_accuracy():
    Xtr, ytr, Xte, yte = _separated(3, n=2400, d=20)
    ours = SGDClassifier(strategy="hogwild", n_threads=2, **SGD_COMMON).fit(Xtr, ytr)
    ref = sk_lm.SGDClassifier(**SGD_COMMON).fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= ref.score(Xte, yte) - 0.03
    assert ours.score(Xte, yte) > 0.9


# ---------------------------------------------------------------------------------------------
# SGDRegressor

@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(1000, 10, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    return X[:800], y[:800], X[800:], y[800:]


@pytest.mark.parametrize("params", [
    {}, dict(penalty="l1"), dict(penalty="elasticnet"), dict(average=True),
    dict(loss="huber", epsilon=1.0), dict(loss="epsilon_insensitive"),
    dict(learning_rate="constant", eta0=0.001), dict(batch_size=32),
], ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "default")
def test_sgd_regressor_r2_matches_sklearn(params, reg_data):
    Xtr, ytr, Xte, yte = reg_data
    ours = SGDRegressor(random_state=0, **params).fit(Xtr, ytr)
    ref_params = {k: v for k, v in params.items() if k != "batch_size"}
    ref = sk_lm.SGDRegressor(random_state=0, **ref_params).fit(Xtr, ytr)
    assert ours.coef_.shape == ref.coef_.shape
    assert ours.intercept_.shape == ref.intercept_.shape
    r2_ours, r2_ref = ours.score(Xte, yte), ref.score(Xte, yte)
    assert abs(r2_ours - r2_ref) <= 0.01
    assert r2_ours == pytest.approx(r2_score(yte, ours.predict(Xte)))


# ---------------------------------------------------------------------------------------------
# partial_fit, warm_start

@pytest.fixture(scope="module")
def chunk_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunks")
    X, y = make_classification(3000, 10, n_informative=6, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, class_sep=2.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    Xr, yr = make_regression(3000, 10, noise=1.0, bias=3.0, random_state=0)
    Xr = StandardScaler().fit_transform(Xr)
    np.save(d / "X.npy", X)
    np.save(d / "y.npy", y)
    np.save(d / "Xr.npy", Xr)
    np.save(d / "yr.npy", yr)
    return d, X, y, Xr, yr


def test_iter_npy_chunks(chunk_files):
    d, X, y, _, _ = chunk_files
    chunks = list(iter_npy_chunks(d / "X.npy", d / "y.npy", chunk_rows=700))
    assert [len(c[0]) for c in chunks] == [700, 700, 700, 700, 200]
    assert all(isinstance(c[0], np.memmap) for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), X)
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), y)
    only_X = list(iter_npy_chunks(d / "X.npy", chunk_rows=1000))
    assert len(only_X) == 3 and all(isinstance(c, np.memmap) for c in only_X)


@pytest.mark.parametrize("batch_size", [1, 32])
def test_sgd_classifier_partial_fit_over_chunks(chunk_files, batch_size):
    d, X, y, _, _ = chunk_files
    clf = SGDClassifier(loss="log_loss", random_state=0, batch_size=batch_size)
    n_calls = 0
    for _ in range(5):
        for Xc, yc in iter_npy_chunks(d / "X.npy", d / "y.npy", chunk_rows=500):
            clf.partial_fit(Xc, yc, classes=np.unique(y) if n_calls == 0 else None)
            n_calls += 1
    full = SGDClassifier(loss="log_loss", random_state=0, batch_size=batch_size).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.unique(y))
    assert clf.coef_.shape == (3, X.shape[1])
    assert clf.score(X, y) >= full.score(X, y) - 0.03
    assert clf.score(X, y) > 0.9
    assert clf.n_iter_ == 1                      # one epoch per call (as scikit-learn)
    if batch_size == 1:
        assert clf.t_ == 1 + 5 * len(X)          # one step per sample seen (as scikit-learn)
    else:
        assert clf.t_ > 1


def test_sgd_regressor_partial_fit_over_chunks(chunk_files):
    d, _, _, Xr, yr = chunk_files
    reg = SGDRegressor(random_state=0)
    n_calls = 0
    for _ in range(5):
        for Xc, yc in iter_npy_chunks(d / "Xr.npy", d / "yr.npy", chunk_rows=700):
            reg.partial_fit(Xc, yc)
            n_calls += 1
    full = SGDRegressor(random_state=0).fit(Xr, yr)
    assert abs(reg.score(Xr, yr) - full.score(Xr, yr)) <= 0.01
    assert reg.n_iter_ == 1 and n_calls > 1
    assert reg.t_ == 1 + 5 * len(Xr)


def test_sgd_partial_fit_matches_sklearn_single_pass():
    """One partial_fit call, shuffle=False: the same per-sample updates as scikit-learn."""
    Xtr, ytr, Xte, yte = _separated(2)
    kw = dict(loss="log_loss", shuffle=False, random_state=0)
    ours = SGDClassifier(**kw).partial_fit(Xtr, ytr, classes=[0, 1])
    ref = sk_lm.SGDClassifier(**kw).partial_fit(Xtr, ytr, classes=[0, 1])
    assert ours.t_ == ref.t_
    assert abs(ours.score(Xte, yte) - ref.score(Xte, yte)) <= 0.03


@pytest.mark.parametrize("penalty", [None, "l2", "l1", "elasticnet"])
@pytest.mark.parametrize("est,loss,lr", [
    ("classifier", "log_loss", "optimal"), ("classifier", "hinge", "optimal"),
    ("classifier", "modified_huber", "optimal"), ("regressor", "squared_error", "invscaling"),
    ("regressor", "huber", "invscaling"), ("regressor", "epsilon_insensitive", "optimal")])
def test_sgd_single_pass_weights_equal_sklearn(est, loss, lr, penalty):
    """shuffle=False, one pass: scikit-learn's per-sample updates, so the same weights up to
    rounding, with any penalty (penalty=None once gave NaN weights: alpha, which sets the
    'optimal' learning rate, was zeroed with the penalty). Not Huber with 'optimal' steps: their
    first steps are ~10, and a rounding-level difference flips a row across the kink (6e-4
    apart after 600 rows, 2e-14 after 200)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 12))
    z = X @ rng.standard_normal(12)
    kw = dict(loss=loss, penalty=penalty, learning_rate=lr, shuffle=False, random_state=0)
    if est == "classifier":
        y = (z + 0.5 * rng.standard_normal(600) > 0).astype(int)
        ours = SGDClassifier(**kw).partial_fit(X, y, classes=[0, 1])
        ref = sk_lm.SGDClassifier(**kw).partial_fit(X, y, classes=[0, 1])
    else:
        y = z + 0.3 * rng.standard_normal(600)
        ours = SGDRegressor(**kw).partial_fit(X, y)
        ref = sk_lm.SGDRegressor(**kw).partial_fit(X, y)
    assert np.all(np.isfinite(ours.coef_))
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("penalty,average", [("l2", False), ("l2", True), ("l1", False)])
def test_sgd_warm_start_and_coef_init_equal_sklearn(penalty, average):
    """A warm-started fit, or one from coef_init, is a new run from those weights (step count,
    lazy L2 scale, L1 and average state restart), as in scikit-learn: the same weights. (Not L1
    with averaging: scikit-learn's lazy average absorbs the L1 truncation, ours averages the
    iterates themselves.)"""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 10))
    y = (X @ rng.standard_normal(10) + 0.3 * rng.standard_normal(300) > 0).astype(int)
    kw = dict(shuffle=False, max_iter=1, tol=None, learning_rate="invscaling", eta0=0.05,
              penalty=penalty, alpha=0.01, average=average, warm_start=True)
    ours, ref = SGDClassifier(**kw).fit(X, y), sk_lm.SGDClassifier(**kw).fit(X, y)
    ours.fit(X, y)
    ref.fit(X, y)
    assert ours.t_ == ref.t_
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-7, atol=1e-10)
    init = np.ones((1, 10))
    ours.fit(X, y, coef_init=init)
    ref.fit(X, y, coef_init=init)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7, atol=1e-10)


def test_sgd_overflow_raises():
    # weights that overflow stop the fit with scikit-learn's error, never NaN weights; no state
    # is left to continue from
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)) * 1e3
    y = X @ np.ones(5)
    bad = SGDRegressor(learning_rate="constant", eta0=1e300, max_iter=5, tol=None,
                       warm_start=True)
    with pytest.raises(ValueError, match="Floating-point under-/overflow occurred at epoch #1"):
        bad.fit(X, y)
    bad.set_params(eta0=1e-6)
    bad.fit(X, y)                      # a warm start after the failed fit starts from zero
    assert np.all(np.isfinite(bad.coef_))
    reg = SGDRegressor(learning_rate="constant", eta0=1e300)
    with pytest.raises(ValueError, match="overflow"):
        reg.partial_fit(X, y)
    reg.set_params(eta0=1e-6)
    reg.partial_fit(X, y)              # and a partial_fit after a failed one starts afresh
    assert np.all(np.isfinite(reg.coef_)) and reg.t_ == 1 + len(X)


def test_sgd_warm_start_with_coef_init_for_other_classes():
    # as in scikit-learn, coef_init / intercept_init take precedence over a warm start's coef_
    X, y = _separated(2)[:2]
    clf = SGDClassifier(warm_start=True, max_iter=3, tol=None).fit(X, y)
    y3 = np.arange(len(y)) % 3
    clf.fit(X, y3, coef_init=np.zeros((3, X.shape[1])), intercept_init=np.zeros(3))
    assert clf.coef_.shape == (3, X.shape[1])


@pytest.mark.parametrize("est,loss", [("classifier", "squared_hinge"),
                                      ("regressor", "squared_epsilon_insensitive")])
def test_sgd_squared_losses_stay_finite(est, loss):
    # d loss / d z is clipped to +-1e12 as in scikit-learn: without it these grew the weights
    # past 1e40 (classifier accuracy 0.76 against scikit-learn's 0.86; regressor R^2 -inf)
    X, y = make_classification(600, 10, random_state=0) if est == "classifier" else \
        make_regression(600, 10, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    Est, Ref = (SGDClassifier, sk_lm.SGDClassifier) if est == "classifier" else \
        (SGDRegressor, sk_lm.SGDRegressor)
    kw = dict(loss=loss, alpha=0.01, learning_rate="optimal", random_state=0, max_iter=50,
              tol=None)
    ours, ref = Est(**kw).fit(X, y), Ref(**kw).fit(X, y)
    assert np.all(np.isfinite(ours.coef_))
    assert ours.score(X, y) >= ref.score(X, y) - 0.05


@pytest.mark.parametrize("kw", [dict(eta0=0.0), dict(average=0), dict(tol=-1.0)])
def test_sgd_rejects_parameters_sklearn_rejects(kw):
    X, y = _separated(2)[:2]
    with pytest.raises(ValueError):
        sk_lm.SGDClassifier(**kw).fit(X, y)
    with pytest.raises(ValueError, match=next(iter(kw))):
        SGDClassifier(**kw).fit(X, y)


def test_sgd_init_shapes_checked():
    X, y = _separated(2)[:2]
    with pytest.raises(ValueError, match="coef_init does not match"):
        SGDClassifier().fit(X, y, coef_init=np.ones(X.shape[1] + 1))
    with pytest.raises(ValueError, match="intercept_init does not match"):
        SGDClassifier().fit(X, y, intercept_init=np.ones(2))
    clf = SGDClassifier(warm_start=True).fit(X, y)
    y3 = np.arange(len(y)) % 3
    with pytest.raises(ValueError, match="does not match dataset"):
        clf.fit(X, y3)


def test_sgd_partial_fit_rejects_what_sklearn_rejects():
    X, y = _separated(2)[:2]
    with pytest.raises(ValueError, match="early_stopping should be False"):
        SGDClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="'balanced' is not supported for partial_fit"):
        SGDClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])


@pytest.mark.parametrize("Est,Ref", [(SGDClassifier, sk_lm.SGDClassifier),
                                     (LinearSVC, sk_svm.LinearSVC)])
def test_ovr_class_weight_as_sklearn(Est, Ref):
    """One-vs-rest class_weight weights problem k's positive rows by class k's weight and its
    negative rows by 1 (scikit-learn's SGD and liblinear), not every row by its class's weight."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((450, 6))
    y = np.argmax(X[:, :3] + 0.5 * rng.standard_normal((450, 3)), axis=1)
    cw = {0: 5.0, 1: 0.5}
    if Est is SGDClassifier:
        kw = dict(class_weight=cw, shuffle=False, max_iter=1, tol=None, learning_rate="constant",
                  eta0=0.01)
        ours, ref = Est(**kw).fit(X, y), Ref(**kw).fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-7, atol=1e-10)
    else:
        kw = dict(class_weight=cw, C=0.5, max_iter=20000, tol=1e-8)
        ours, ref = Est(**kw).fit(X, y), Ref(**kw).fit(X, y)
        # liblinear regularises the intercept and we do not: compare each problem's objective
        # (ours no higher at our optimum) and the predictions
        assert np.mean(ours.predict(X) == ref.predict(X)) > 0.97
        for k in range(3):
            yk = np.where(y == k, 1.0, -1.0)
            wk = np.where(y == k, cw.get(k, 1.0), 1.0)
            def obj(w, b):
                m = np.maximum(0.0, 1.0 - yk * (X @ w + b))
                return 0.5 * w @ w + 0.5 * np.sum(wk * m * m)
            assert obj(ours.coef_[k], ours.intercept_[k]) <= \
                obj(ref.coef_[k], ref.intercept_[k]) * (1 + 1e-6)


def test_sgd_warm_start():
    Xtr, ytr, Xte, yte = _separated(3)
    clf = SGDClassifier(warm_start=True, **SGD_COMMON).fit(Xtr, ytr)
    coef1, t1 = clf.coef_.copy(), clf.t_
    acc1 = clf.score(Xte, yte)
    clf.set_params(max_iter=1, tol=None)
    clf.fit(Xtr, ytr)
    cold = SGDClassifier(max_iter=1, tol=None, random_state=0).fit(Xtr, ytr)
    # continued from coef1, not restarted from zero
    assert not np.array_equal(clf.coef_, cold.coef_)
    assert clf.score(Xte, yte) >= acc1 - 0.03
    assert t1 > 1 + len(Xtr) and clf.t_ == 1 + len(Xtr)   # a new run: the schedule restarts
    assert clf.n_iter_ == 1
    # without warm_start a second fit is a fresh fit
    plain = SGDClassifier(**SGD_COMMON).fit(Xtr, ytr)
    again = SGDClassifier(**SGD_COMMON).fit(Xtr, ytr)
    plain.fit(Xtr, ytr)
    np.testing.assert_array_equal(plain.coef_, again.coef_)


def test_sgd_coef_init():
    Xtr, ytr, _, _ = _separated(2)
    ref = SGDClassifier(**SGD_COMMON).fit(Xtr, ytr)
    one = SGDClassifier(max_iter=1, tol=None, random_state=0)
    one.fit(Xtr, ytr, coef_init=ref.coef_, intercept_init=ref.intercept_)
    zero = SGDClassifier(max_iter=1, tol=None, random_state=0).fit(Xtr, ytr)
    assert np.linalg.norm(one.coef_ - ref.coef_) < np.linalg.norm(zero.coef_ - ref.coef_)


def test_logistic_warm_start():
    X, y = _noisy_classification(4)
    clf = LogisticRegression(warm_start=True, tol=1e-6, max_iter=500).fit(X, y)
    coef, n1 = clf.coef_.copy(), clf.n_iter_[0]
    clf.fit(X, y)
    assert clf.n_iter_[0] <= 2 < n1
    assert rel_err(clf.coef_, coef) < 1e-4
    cold = LogisticRegression(warm_start=False, tol=1e-6, max_iter=500).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_[0] == n1


# ---------------------------------------------------------------------------------------------
# out-of-core: np.memmap X

@pytest.fixture(scope="module")
def mm_small(tmp_path_factory):
    d = tmp_path_factory.mktemp("mm_small")
    Xc, yc = make_classification(3000, 10, n_informative=6, n_redundant=0, n_classes=3,
                                 n_clusters_per_class=1, class_sep=1.5, flip_y=0.05,
                                 random_state=0)
    Xc = StandardScaler().fit_transform(Xc)
    Xr, yr = make_regression(3000, 10, noise=1.0, bias=3.0, random_state=0)
    mc = np.load(write_npy(d / "Xc.npy", Xc), mmap_mode="r")
    mr = np.load(write_npy(d / "Xr.npy", Xr), mmap_mode="r")
    return Xc, yc, mc, Xr, yr, mr


@pytest.mark.parametrize("chunk_bytes", [None, 4096])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("model", ["LogisticRegression", "Ridge", "LinearRegression"])
def test_memmap_fit_equals_in_memory_fit(model, weighted, chunk_bytes, mm_small):
    Xc, yc, mc, Xr, yr, mr = mm_small
    X, y, mm = (Xc, yc, mc) if model == "LogisticRegression" else (Xr, yr, mr)
    make = {"LogisticRegression": lambda: LogisticRegression(),
            "Ridge": lambda: Ridge(alpha=3.0),
            "LinearRegression": lambda: LinearRegression()}[model]
    sw = _weights(len(X)) if weighted else None
    if chunk_bytes is None:
        a = make().fit(mm, y, sample_weight=sw)
        pred_mm = a.predict(mm)
    else:
        with stream_chunk_bytes(chunk_bytes):     # ~50 chunks
            a = make().fit(mm, y, sample_weight=sw)
            pred_mm = a.predict(mm)
    b = make().fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(pred_mm, a.predict(X))
    assert a.n_features_in_ == X.shape[1]


def test_memmap_sgd_classifier(mm_small):
    Xc, yc, mc, _, _, _ = mm_small
    with stream_chunk_bytes(8000):      # 100 rows per chunk, shuffled within each chunk
        a = SGDClassifier(random_state=0).fit(mc, yc)
        # no shuffling: the chunked pass is exactly the in-memory per-sample pass
        s = SGDClassifier(random_state=0, shuffle=False).fit(mc, yc)
    b = SGDClassifier(random_state=0).fit(Xc, yc)
    assert abs(a.score(Xc, yc) - b.score(Xc, yc)) <= 0.03
    s_ref = SGDClassifier(random_state=0, shuffle=False).fit(Xc, yc)
    np.testing.assert_allclose(s.coef_, s_ref.coef_, rtol=1e-12, atol=1e-12)
    assert s.n_iter_ == s_ref.n_iter_


def test_memmap_linear_svc(mm_small):
    Xc, yc, mc, _, _, _ = mm_small
    with stream_chunk_bytes(4096):
        a = LinearSVC().fit(mc, yc)
    b = LinearSVC().fit(Xc, yc)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-8)


N_BIG, D_BIG = 200_000, 50          # 80 MB of float64
PEAK_LIMIT = 10 * 2 ** 20


@pytest.fixture(scope="module")
def big_memmap(tmp_path_factory):
    d = tmp_path_factory.mktemp("mm_big")
    rng = np.random.default_rng(0)
    w = rng.standard_normal(D_BIG)
    X = np.lib.format.open_memmap(d / "X.npy", mode="w+", dtype=np.float64,
                                  shape=(N_BIG, D_BIG))
    y_reg = np.empty(N_BIG)
    step = 20_000
    for s in range(0, N_BIG, step):
        c = rng.standard_normal((min(step, N_BIG - s), D_BIG))
        X[s:s + len(c)] = c
        y_reg[s:s + len(c)] = c @ w + rng.standard_normal(len(c))
    X.flush()
    del X
    y_cls = (y_reg > 0).astype(np.int8)
    return d, y_reg, y_cls


def _peak_fit(est, X, y):
    with stream_chunk_bytes(1 << 20):
        tracemalloc.start()
        try:
            est.fit(X, y)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak


def test_tracemalloc_sees_numpy_allocations():
    """The premise of the memory tests: a NumPy buffer counts in tracemalloc's peak."""
    tracemalloc.start()
    try:
        a = np.ones(N_BIG * D_BIG // 8)
        peak = tracemalloc.get_traced_memory()[1]
        del a
    finally:
        tracemalloc.stop()
    assert peak >= N_BIG * D_BIG


@pytest.mark.parametrize("model", ["LogisticRegression", "Ridge"])
def test_memmap_fit_memory_is_bounded(model, big_memmap):
    d, y_reg, y_cls = big_memmap
    X = np.load(d / "X.npy", mmap_mode="r")
    assert X.nbytes == 80_000_000
    if model == "LogisticRegression":
        est, y = LogisticRegression(max_iter=5), y_cls
    else:
        est, y = Ridge(), y_reg
    peak = _peak_fit(est, X, y)
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.0f} MiB of X"
    assert np.all(np.isfinite(est.coef_))
    if model == "LogisticRegression":
        assert est.score(X[:5000], y[:5000]) > 0.9
    else:
        assert r2_score(y[:5000], est.predict(X[:5000])) > 0.95


@pytest.mark.parametrize("dtype", [np.int16, np.float16])
def test_memmap_converted_per_chunk_memory_is_bounded(dtype, big_memmap):
    """A file that is not float32/float64 is converted chunk by chunk, never as a whole
    (a whole float64 copy would be 80 MB)."""
    d, y_reg, y_cls = big_memmap
    path = d / f"X_{np.dtype(dtype).name}.npy"
    src = np.load(d / "X.npy", mmap_mode="r")
    Xt = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=src.shape)
    scale = 100.0 if dtype == np.int16 else 1.0
    for s in range(0, N_BIG, 20_000):
        Xt[s:s + 20_000] = (src[s:s + 20_000] * scale).astype(dtype)
    Xt.flush()
    del Xt, src
    X = np.load(path, mmap_mode="r")
    for est, y in ((LogisticRegression(max_iter=5), y_cls), (Ridge(), y_reg)):
        peak = _peak_fit(est, X, y)
        assert peak < PEAK_LIMIT, f"{type(est).__name__}: peak {peak / 2**20:.1f} MiB"
        assert np.all(np.isfinite(est.coef_))
    # the converted chunks give the model the in-memory float64 array gives
    sub = np.asarray(X[:4000], dtype=np.float64)
    with stream_chunk_bytes(1 << 14):
        a = Ridge().fit(np.load(path, mmap_mode="r")[:4000], y_reg[:4000])
    b = Ridge().fit(sub, y_reg[:4000])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# feature names, pickling

def _all_fitted():
    Xc, yc = _noisy_classification(3)
    Xr, yr = _regression()
    return [
        (LinearRegression(), Xr, yr), (Ridge(), Xr, yr), (Ridge(solver="lbfgs"), Xr, yr),
        (LogisticRegression(), Xc, yc), (LinearSVC(), Xc, yc),
        (SGDClassifier(loss="log_loss", random_state=0), Xc, yc),
        (SGDRegressor(random_state=0), Xr, yr),
    ]


@pytest.mark.parametrize("idx", range(7))
def test_feature_names_in_from_dataframe(idx, tmp_path):
    pd = pytest.importorskip("pandas")
    est, X, y = _all_fitted()[idx]
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    est.fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, cols)
    assert est.n_features_in_ == X.shape[1]
    with pytest.warns(UserWarning, match="feature names"):    # as scikit-learn does
        pred_array = est.predict(X)
    np.testing.assert_array_equal(est.predict(df), pred_array)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[cols[::-1]])
    est.fit(X, y)                                  # refit on an array forgets the names
    assert not hasattr(est, "feature_names_in_")
    est.fit(df, y)
    mm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    est.fit(mm, y)                                 # and so does a refit on a memmap
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("idx", range(7))
def test_pickle_round_trip(idx):
    est, X, y = _all_fitted()[idx]
    est.fit(X, y)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))
    np.testing.assert_array_equal(clone.coef_, est.coef_)
    for method in ("decision_function", "predict_proba"):
        if hasattr(est, method):
            np.testing.assert_array_equal(getattr(clone, method)(X), getattr(est, method)(X))
    assert clone.get_params() == est.get_params()


def test_pickled_sgd_continues_partial_fit():
    Xtr, ytr, _, _ = _separated(3)
    a = SGDClassifier(random_state=0).partial_fit(Xtr[:200], ytr[:200], classes=[0, 1, 2])
    b = pickle.loads(pickle.dumps(a))
    a.partial_fit(Xtr[200:], ytr[200:])
    b.partial_fit(Xtr[200:], ytr[200:])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.t_ == b.t_
