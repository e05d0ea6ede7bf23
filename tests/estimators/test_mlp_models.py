"""Correctness of parml's MLPClassifier / MLPRegressor.

With dtype=np.float64 and the same random_state, parml draws the same initial weights, the same
shuffles and the same validation split as scikit-learn, so scikit-learn is an exact oracle: the
weights, loss curves, validation scores and predictions must agree to rounding. Also: float32
accuracy, thread-count invariance (bitwise), out-of-core (np.memmap) training and its memory use,
partial_fit over .npy chunks, pickling, cloning, parameters and verbose output."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn import neural_network as sk_nn
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from parml._kernels._tuner import Tuner
from parml.linear_model import iter_npy_chunks, stream_chunk_bytes
from parml.neural_network import MLPClassifier, MLPRegressor
from parml.neural_network._classes import _indicator

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore:.*iprint.*:DeprecationWarning",
                                        "ignore:Got `batch_size`:UserWarning")

# float64 against scikit-learn. Observed: adam / sgd agree to ~1e-15 (the same arithmetic in
# a different order), L-BFGS to ~1e-10 (the line search amplifies rounding differences).
RTOL_STOCHASTIC = 1e-10
RTOL_LBFGS = 1e-7


def rel_err(a, b):
    """max |a - b| / max |b|."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _params(est):
    return est.coefs_ + est.intercepts_


def assert_bitwise_same_params(a, b):
    pa, pb = _params(a), _params(b)
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# data

N = 240  # with batch_size=50 the last batch of every epoch is partial


def _clf_data(kind, n=N, seed=0):
    if kind == "multilabel":
        X, y = make_multilabel_classification(n, 6, n_classes=3, random_state=seed)
    else:
        X, y = make_classification(n, 6, n_informative=4, n_redundant=0,
                                   n_classes=2 if kind == "binary" else 3, flip_y=0.05,
                                   random_state=seed)
    return StandardScaler().fit_transform(X), y


def _reg_data(kind, n=N, seed=0):
    if kind == "poisson":
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, 6))
        y = rng.poisson(np.exp(0.4 * X @ rng.standard_normal(6))).astype(np.float64)
        return X, y
    X, y = make_regression(n, 6, n_targets=1 if kind == "1-output" else 2, noise=1.0,
                           bias=2.0, random_state=seed)
    return X, y / y.std()


def _weights(n, seed=1):
    return np.random.default_rng(seed).uniform(0.1, 3.0, n)


def _pair(kind, **params):
    """(parml float64 estimator, scikit-learn estimator, X, y) for a target kind."""
    if kind in ("binary", "multiclass", "multilabel"):
        X, y = _clf_data(kind)
        return (MLPClassifier(dtype=np.float64, **params), sk_nn.MLPClassifier(**params), X, y)
    X, y = _reg_data(kind)
    if kind == "poisson":
        params = dict(params, loss="poisson")
    return (MLPRegressor(dtype=np.float64, **params), sk_nn.MLPRegressor(**params), X, y)


def assert_matches_sklearn(ours, ref, X, *, rtol, compare_n_iter=True):
    """Every fitted attribute scikit-learn has, and the predictions."""
    assert len(ours.coefs_) == len(ref.coefs_)
    for a, b in zip(_params(ours), _params(ref)):
        assert a.dtype == np.float64
        assert a.shape == b.shape
        assert rel_err(a, b) < rtol
    for attr in ("n_outputs_", "n_layers_", "out_activation_", "n_features_in_", "t_"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    if compare_n_iter:
        assert ours.n_iter_ == ref.n_iter_
    assert rel_err(ours.loss_, ref.loss_) < rtol
    if ref.solver != "lbfgs":
        assert len(ours.loss_curve_) == len(ref.loss_curve_)
        assert rel_err(ours.loss_curve_, ref.loss_curve_) < rtol
        if ref.best_loss_ is None:
            assert ours.best_loss_ is None
        else:
            assert rel_err(ours.best_loss_, ref.best_loss_) < rtol
        if ref.validation_scores_ is None:
            assert ours.validation_scores_ is None and ours.best_validation_score_ is None
        else:
            assert len(ours.validation_scores_) == len(ref.validation_scores_)
            np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_,
                                       rtol=rtol, atol=rtol)
            assert abs(ours.best_validation_score_ - ref.best_validation_score_) < rtol
    if hasattr(ref, "classes_"):
        np.testing.assert_array_equal(ours.classes_, ref.classes_)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
        P = ours.predict_proba(X)
        assert P.dtype == np.float64
        np.testing.assert_allclose(P, ref.predict_proba(X), rtol=rtol, atol=rtol)
        # parml keeps logistic probabilities inside [eps, 1 - eps], so its log-probabilities
        # stay finite where scikit-learn's saturated ones are -inf
        logP = ours.predict_log_proba(X)
        assert np.isfinite(logP).all()
        np.testing.assert_allclose(logP, np.log(P))
    else:
        p = ours.predict(X)
        assert p.shape == ref.predict(X).shape and p.dtype == np.float64
        assert rel_err(p, ref.predict(X)) < rtol


# ---------------------------------------------------------------------------------------------
# scikit-learn as the oracle (float64)

KINDS = ["binary", "multiclass", "multilabel", "1-output", "2-outputs", "poisson"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_matches_sklearn(solver, kind):
    params = dict(hidden_layer_sizes=(12, 7), solver=solver, max_iter=25, random_state=0,
                  batch_size=50)
    if solver != "lbfgs":
        params["learning_rate_init"] = 0.01
    ours, ref, X, y = _pair(kind, **params)
    ours.fit(X, y)
    ref.fit(X, y)
    assert_matches_sklearn(ours, ref, X, rtol=RTOL_LBFGS if solver == "lbfgs" else RTOL_STOCHASTIC)


OPTION_CASES = {
    # name: (target kind, params, weighted)
    "early_stopping-multiclass": ("multiclass", dict(early_stopping=True, max_iter=80), False),
    "early_stopping-binary-stratified": ("binary", dict(early_stopping=True, max_iter=80), False),
    "early_stopping-multilabel": ("multilabel", dict(early_stopping=True, max_iter=80), False),
    "early_stopping-2-outputs-weighted": ("2-outputs", dict(early_stopping=True, max_iter=120,
                                                            validation_fraction=0.2), True),
    "early_stopping-poisson": ("poisson", dict(early_stopping=True, max_iter=60), False),
    "early_stopping-sgd": ("multiclass", dict(solver="sgd", early_stopping=True, max_iter=80,
                                              n_iter_no_change=3), False),
    "sgd-invscaling": ("multiclass", dict(solver="sgd", learning_rate="invscaling",
                                          learning_rate_init=0.5, power_t=0.3), False),
    "sgd-invscaling-regressor": ("1-output", dict(solver="sgd", learning_rate="invscaling",
                                                  learning_rate_init=0.2), False),
    # tol is large: the loss "stalls" every few epochs, the step is divided by 5 each time,
    # down to 1e-6 where training stops
    "sgd-adaptive": ("multiclass", dict(solver="sgd", learning_rate="adaptive", max_iter=300,
                                        learning_rate_init=0.1, n_iter_no_change=2,
                                        tol=0.05), False),
    "sgd-no-nesterov": ("multiclass", dict(solver="sgd", nesterovs_momentum=False), False),
    "sgd-no-momentum": ("2-outputs", dict(solver="sgd", momentum=0.0), False),
    "sgd-weighted": ("1-output", dict(solver="sgd"), True),
    "adam-weighted": ("multiclass", {}, True),
    "adam-weighted-multilabel": ("multilabel", {}, True),
    "lbfgs-weighted": ("multiclass", dict(solver="lbfgs"), True),
    "lbfgs-weighted-poisson": ("poisson", dict(solver="lbfgs"), True),
    "lbfgs-max_fun": ("binary", dict(solver="lbfgs", max_iter=100, max_fun=9), False),
    "batch_size-37-no-shuffle": ("multiclass", dict(batch_size=37, shuffle=False), False),
    "batch_size-37-no-shuffle-sgd": ("2-outputs", dict(solver="sgd", batch_size=37,
                                                       shuffle=False), False),
    "batch_size-1": ("binary", dict(solver="sgd", batch_size=1, max_iter=3,
                                    learning_rate_init=0.001), False),
    "batch_size-larger-than-n": ("multiclass", dict(batch_size=1000), False),
    "converges-by-tol": ("multiclass", dict(tol=1e-2, n_iter_no_change=3, max_iter=200), False),
    "n_iter_no_change-inf": ("binary", dict(n_iter_no_change=np.inf), False),
    "tanh": ("2-outputs", dict(activation="tanh"), False),
    "logistic": ("multiclass", dict(activation="logistic"), False),
    "identity-alpha": ("binary", dict(activation="identity", alpha=0.5), False),
    "adam-betas-epsilon": ("multiclass", dict(beta_1=0.5, beta_2=0.9, epsilon=1e-4), False),
    "int-hidden_layer_sizes": ("multiclass", dict(hidden_layer_sizes=7), False),
    "three-layers": ("1-output", dict(hidden_layer_sizes=(9, 7, 5)), False),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_options_match_sklearn(case):
    kind, extra, weighted = OPTION_CASES[case]
    params = dict(hidden_layer_sizes=(12, 7), max_iter=25, random_state=3,
                  learning_rate_init=0.01)
    params.update(extra)
    ours, ref, X, y = _pair(kind, **params)
    sw = _weights(len(X)) if weighted else None
    ours.fit(X, y, sample_weight=sw)
    ref.fit(X, y, sample_weight=sw)
    lbfgs = params.get("solver") == "lbfgs"
    assert_matches_sklearn(ours, ref, X, rtol=RTOL_LBFGS if lbfgs else RTOL_STOCHASTIC)
    if case.startswith("early_stopping"):
        assert ours.n_iter_ < params["max_iter"]      # it did stop early
        assert ours.best_validation_score_ == max(ours.validation_scores_)
    if case == "sgd-adaptive":
        assert ours.n_iter_ < params["max_iter"]      # the step fell below 1e-6


def test_string_labels_match_sklearn():
    X, y = _clf_data("multiclass")
    labels = np.array(["cat", "dog", "emu"])[y]
    params = dict(hidden_layer_sizes=(8,), max_iter=15, random_state=0)
    ours = MLPClassifier(dtype=np.float64, **params).fit(X, labels)
    ref = sk_nn.MLPClassifier(**params).fit(X, labels)
    assert_matches_sklearn(ours, ref, X, rtol=RTOL_STOCHASTIC)
    assert set(ours.predict(X)) <= {"cat", "dog", "emu"}


@settings(max_examples=60, deadline=None)
@given(n_classes=st.integers(2, 12), n=st.integers(1, 60), kind=st.sampled_from("ifUb"),
       seed=st.integers(0, 2**16), subset=st.booleans())
def test_training_targets_are_label_binarizers(n_classes, n, kind, seed, subset):
    """The indicator matrix the classifier trains on equals LabelBinarizer.transform, for the
    labels it was fitted on and for a batch holding only some of them (partial_fit)."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(1000, n_classes, replace=False)
    classes = {"i": classes, "f": classes.astype(float), "U": classes.astype(str),
               "b": np.array([False, True])}[kind]
    n_classes = len(classes)
    y = np.concatenate([classes, rng.choice(classes, n)])
    lb = LabelBinarizer().fit(y)
    if subset:
        y = y[np.isin(y, classes[: max(1, n_classes // 2)])]
    for dtype in (np.float32, np.float64):
        Y = _indicator(lb, y, np.dtype(dtype))
        assert Y.dtype == dtype and Y.flags.c_contiguous
        np.testing.assert_array_equal(Y, lb.transform(y))


@pytest.mark.parametrize("kind", ["multiclass", "1-output"])
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_warm_start_matches_sklearn(solver, kind):
    ours, ref, X, y = _pair(kind, hidden_layer_sizes=(10,), solver=solver, max_iter=8,
                            random_state=0, warm_start=True)
    rtol = RTOL_LBFGS if solver == "lbfgs" else RTOL_STOCHASTIC
    for max_iter in (8, 8, 5):
        ours.set_params(max_iter=max_iter)
        ref.set_params(max_iter=max_iter)
        ours.fit(X, y)
        ref.fit(X, y)
        # n_iter_ is compared on its own below (a known difference)
        assert_matches_sklearn(ours, ref, X, rtol=rtol, compare_n_iter=False)
    if solver != "lbfgs":
        assert len(ours.loss_curve_) == 21          # the curve keeps growing across fits
    # a warm start on other rows of the same classes / outputs
    ours.fit(X[:100], y[:100])
    ref.fit(X[:100], y[:100])
    assert_matches_sklearn(ours, ref, X, rtol=rtol, compare_n_iter=False)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_warm_start_n_iter_counts_the_last_call(cls):
    # after scikit-learn's own non-regression test (sklearn/neural_network/tests/test_mlp.py,
    # test_mlp_warm_start_no_convergence)
    X, y = _clf_data("multiclass") if cls is MLPClassifier else _reg_data("1-output")
    model = cls(warm_start=True, early_stopping=False, max_iter=10, random_state=0)
    for max_iter in (10, 10, 20):
        model.set_params(max_iter=max_iter)
        with pytest.warns(ConvergenceWarning):
            model.fit(X, y)
        assert model.n_iter_ == max_iter
    assert len(model.loss_curve_) == 40


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_n_iter_matches_sklearn(cls):
    X, y = _clf_data("multiclass") if cls is MLPClassifier else _reg_data("1-output")
    kw = dict(classes=np.unique(y)) if cls is MLPClassifier else {}
    ours = cls(random_state=0, dtype=np.float64)
    ref = (sk_nn.MLPClassifier if cls is MLPClassifier else sk_nn.MLPRegressor)(random_state=0)
    for _ in range(3):
        ours.partial_fit(X, y, **kw)
        ref.partial_fit(X, y, **kw)
        kw = {}
    assert ref.n_iter_ == 1
    assert ours.n_iter_ == ref.n_iter_


PARTIAL_FIT_CASES = ["multiclass", "multiclass-missing-classes", "multilabel", "1-output",
                     "2-outputs", "poisson", "weighted", "after-fit", "no-shuffle"]


@pytest.mark.parametrize("case", PARTIAL_FIT_CASES)
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_partial_fit_sequence_matches_sklearn(solver, case):
    kind = case if case in KINDS else ("1-output" if case == "weighted" else "multiclass")
    params = dict(hidden_layer_sizes=(10,), solver=solver, random_state=0,
                  learning_rate_init=0.01, batch_size=30)
    if case == "no-shuffle":
        params["shuffle"] = False
    ours, ref, X, y = _pair(kind, **params)
    sw = _weights(len(X)) if case == "weighted" else None
    if case == "after-fit":
        ours.set_params(max_iter=4)
        ref.set_params(max_iter=4)
        ours.fit(X, y)
        ref.fit(X, y)
    # classes= on the first call (any non-None value for multilabel, as in scikit-learn)
    first = {"classes": np.unique(y) if kind != "multilabel" else [0, 1, 2]} \
        if kind in ("multiclass", "multilabel") else {}
    order = np.arange(len(X))
    if case == "multiclass-missing-classes":
        order = np.argsort(y, kind="stable")       # the first chunks hold one or two classes
    for _ in range(2):
        for s in range(0, len(X), 70):
            rows = order[s:s + 70]
            kw = dict(first)
            first = {}
            if sw is not None:
                kw["sample_weight"] = sw[rows]
            ours.partial_fit(X[rows], y[rows], **kw)
            ref.partial_fit(X[rows], y[rows], **kw)
    assert_matches_sklearn(ours, ref, X, rtol=RTOL_STOCHASTIC, compare_n_iter=False)
    assert len(ours.loss_curve_) == len(ref.loss_curve_) == 8 + (4 if case == "after-fit" else 0)


# ---------------------------------------------------------------------------------------------
# float32 (the default)

def test_float32_accuracy_close_to_sklearn():
    X, y = make_classification(2000, 20, n_informative=10, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    Xtr, ytr, Xte, yte = X[:1500], y[:1500], X[1500:], y[1500:]
    ours = MLPClassifier(random_state=0, max_iter=50).fit(Xtr, ytr)
    ref = sk_nn.MLPClassifier(random_state=0, max_iter=50).fit(Xtr, ytr)
    assert all(p.dtype == np.float32 for p in _params(ours))
    P = ours.predict_proba(Xte)
    assert P.dtype == np.float32 and P.shape == (500, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    assert ours.score(Xte, yte) >= ref.score(Xte, yte) - 0.02
    assert ref.score(Xte, yte) > 0.8
    # and float32 training follows the float64 trajectory closely
    assert rel_err(ours.loss_curve_, ref.loss_curve_) < 1e-3


def test_float32_regressor_r2_close_to_sklearn():
    X, y = make_regression(1500, 10, noise=5.0, random_state=0)
    y = y / y.std()
    ours = MLPRegressor(random_state=0, max_iter=60).fit(X[:1000], y[:1000])
    ref = sk_nn.MLPRegressor(random_state=0, max_iter=60).fit(X[:1000], y[:1000])
    p = ours.predict(X[1000:])
    assert p.dtype == np.float32 and p.shape == (500,)
    r_ours, r_ref = r2_score(y[1000:], p), r2_score(y[1000:], ref.predict(X[1000:]))
    assert r_ref > 0.9 and r_ours >= r_ref - 0.02


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_float32_input_float64_model_and_back(solver):
    """X's dtype does not decide the model's: float32 X with dtype=float64 is the float64 model
    of the same (exactly representable) values."""
    X, y = _clf_data("multiclass")
    X32 = X.astype(np.float32)
    a = MLPClassifier(solver=solver, dtype=np.float64, max_iter=10, random_state=0).fit(X32, y)
    b = MLPClassifier(solver=solver, dtype=np.float64, max_iter=10, random_state=0).fit(
        X32.astype(np.float64), y)
    assert_bitwise_same_params(a, b)
    c = MLPClassifier(solver=solver, max_iter=10, random_state=0).fit(X, y)
    d = MLPClassifier(solver=solver, max_iter=10, random_state=0).fit(X32, y)
    assert_bitwise_same_params(c, d)
    assert c.coefs_[0].dtype == np.float32


def test_same_random_state_same_model():
    X, y = _clf_data("multiclass")
    a = MLPClassifier(random_state=7, max_iter=10).fit(X, y)
    b = MLPClassifier(random_state=7, max_iter=10).fit(X, y)
    assert_bitwise_same_params(a, b)
    assert a.loss_curve_ == b.loss_curve_
    c = MLPClassifier(random_state=8, max_iter=10).fit(X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


# ---------------------------------------------------------------------------------------------
# thread-count invariance

@pytest.fixture(scope="module")
def wide_data():
    X, y = make_classification(3000, 50, n_informative=20, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    yr = X[:, :5] @ np.arange(1.0, 6.0) + 0.1 * np.random.default_rng(0).standard_normal(3000)
    return X, y, yr


@pytest.mark.parametrize("tuner", ["adaptive", "forced"])
@pytest.mark.parametrize("model, solver, dtype", [
    ("clf", "adam", np.float32), ("clf", "sgd", np.float64), ("reg", "adam", np.float64),
    ("reg", "sgd", np.float32)])
def test_identical_model_for_any_thread_count(model, solver, dtype, tuner, wide_data):
    X, y, yr = wide_data
    target = y if model == "clf" else yr
    cls = MLPClassifier if model == "clf" else MLPRegressor
    fits = {}
    for nt in (1, 2, 4) if tuner == "forced" else (1, 2, 4, None):
        est = cls(hidden_layer_sizes=(128, 64), batch_size=256, max_iter=3, random_state=0,
                  solver=solver, dtype=dtype, n_threads=nt)
        if tuner == "forced":
            # every batch on nt threads (the default tuner may fall back to one thread on a
            # busy machine); the estimator keeps a tuner whose n_threads matches
            est._thread_tuner = Tuner(nt, "batches", adapt=False)
        est.fit(X, target)
        if nt is not None and nt > 1:
            # the batches are large enough to run in parallel (6 * 256 * 14.7k flops > 8e6)
            assert est._thread_tuner.stats()["units_many"] > 0
        fits[nt] = est
    ref = fits[1]
    for nt in fits:
        assert_bitwise_same_params(fits[nt], ref)
        assert fits[nt].loss_curve_ == ref.loss_curve_
        np.testing.assert_array_equal(fits[nt].predict(X), ref.predict(X))
    assert ref.loss_curve_[-1] < ref.loss_curve_[0]     # and it does learn


# ---------------------------------------------------------------------------------------------
# out-of-core: np.memmap X

@pytest.fixture(scope="module")
def mm_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlp_mm")
    X, y = make_classification(3000, 10, n_informative=6, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, class_sep=1.5, flip_y=0.05,
                               random_state=0)
    X = StandardScaler().fit_transform(X)
    yr = X @ np.linspace(-1, 1, 10) + 0.5 * np.sin(X[:, 0])
    arrays = {"float64": X, "float32": X.astype(np.float32),
              "int16": np.round(X * 1000).astype(np.int16)}
    for name, A in arrays.items():
        np.save(d / f"X_{name}.npy", A)
    np.save(d / "y.npy", y)
    return d, arrays, y, yr


def _mm(d, name):
    m = np.load(d / f"X_{name}.npy", mmap_mode="r")
    assert isinstance(m, np.memmap)
    return m


def _chunk_bytes(rows, n_features, dtype):
    """stream_chunk_bytes that makes chunks of exactly `rows` rows of the model's dtype."""
    return rows * n_features * np.dtype(dtype).itemsize


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("file_dtype", ["float32", "float64", "int16"])
def test_memmap_no_shuffle_equals_in_memory(file_dtype, model_dtype, solver, mm_data):
    d, arrays, y, _ = mm_data
    mm = _mm(d, file_dtype)
    kw = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0, solver=solver,
              dtype=model_dtype, shuffle=False, batch_size=64)
    # 30 chunks of 128 rows (a whole number of batches)
    with stream_chunk_bytes(_chunk_bytes(128, 10, model_dtype)):
        a = MLPClassifier(**kw).fit(mm, y)
        P_mm = a.predict_proba(mm)
    b = MLPClassifier(**kw).fit(np.asarray(arrays[file_dtype]), y)
    assert a.n_features_in_ == 10
    if solver == "lbfgs":
        # the gradient is summed chunk by chunk: the same sum in another order
        tol = 1e-5 if model_dtype == np.float32 else 1e-10
        for p, q in zip(_params(a), _params(b)):
            assert rel_err(p, q) < tol
    else:
        assert_bitwise_same_params(a, b)
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    np.testing.assert_array_equal(P_mm, a.predict_proba(np.asarray(arrays[file_dtype])))
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_memmap_no_shuffle_equals_in_memory_unaligned_chunks(solver, mm_data):
    d, arrays, y, _ = mm_data
    mm = _mm(d, "float64")
    kw = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0, solver=solver,
              dtype=np.float64, shuffle=False, batch_size=64)
    with stream_chunk_bytes(_chunk_bytes(100, 10, np.float64)):      # 100-row chunks
        a = MLPClassifier(**kw).fit(mm, y)
    b = MLPClassifier(**kw).fit(arrays["float64"], y)
    for p, q in zip(_params(a), _params(b)):
        assert rel_err(p, q) < 1e-6


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_memmap_regressor_weighted_equals_in_memory(solver, mm_data):
    d, arrays, _, yr = mm_data
    sw = _weights(len(yr))
    kw = dict(hidden_layer_sizes=(16, 8), max_iter=4, random_state=0, solver=solver,
              dtype=np.float64, shuffle=False, batch_size=50)
    with stream_chunk_bytes(_chunk_bytes(150, 10, np.float64)):
        a = MLPRegressor(**kw).fit(_mm(d, "float64"), yr, sample_weight=sw)
        pred_mm = a.predict(_mm(d, "float64"))
    b = MLPRegressor(**kw).fit(arrays["float64"], yr, sample_weight=sw)
    for p, q in zip(_params(a), _params(b)):
        assert rel_err(p, q) < (1e-10 if solver == "lbfgs" else 1e-14)
    np.testing.assert_array_equal(pred_mm, a.predict(arrays["float64"]))


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("model_dtype", [np.float32, np.float64])
def test_memmap_shuffled_trains_well(model_dtype, early_stopping, mm_data):
    """shuffle=True: chunks in a random order, rows shuffled within each chunk; not the
    in-memory trajectory, but as good a model."""
    d, arrays, y, _ = mm_data
    X = arrays["float64"]
    kw = dict(hidden_layer_sizes=(32,), max_iter=20, random_state=0, dtype=model_dtype,
              early_stopping=early_stopping)
    with stream_chunk_bytes(_chunk_bytes(250, 10, model_dtype)):    # 12 chunks
        a = MLPClassifier(**kw).fit(_mm(d, "float64"), y)
    b = MLPClassifier(**kw).fit(X, y)
    assert a.score(X, y) > 0.9
    assert a.score(X, y) >= b.score(X, y) - 0.03
    if early_stopping:
        assert len(a.validation_scores_) == a.n_iter_
        assert a.best_validation_score_ > 0.85


@pytest.mark.parametrize("chunk_rows", [1, 7, 100, 5000])
def test_memmap_predict_equals_array_predict(chunk_rows, mm_data):
    d, arrays, y, yr = mm_data
    X = arrays["float32"]
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit(X, y)
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=3, random_state=0,
                       dtype=np.float64).fit(X, yr)
    with stream_chunk_bytes(_chunk_bytes(chunk_rows, 10, np.float32)):
        mm = _mm(d, "float32")
        np.testing.assert_array_equal(clf.predict_proba(mm), clf.predict_proba(X))
        np.testing.assert_array_equal(clf.predict(mm), clf.predict(X))
        assert clf.score(mm, y) == clf.score(X, y)
        np.testing.assert_array_equal(reg.predict(mm), reg.predict(X))
        np.testing.assert_array_equal(reg.predict(_mm(d, "int16")),
                                      reg.predict(arrays["int16"]))


def test_partial_fit_over_npy_chunks(mm_data):
    d, arrays, y, _ = mm_data
    X = arrays["float32"]
    streamed = MLPClassifier(hidden_layer_sizes=(32,), random_state=0, learning_rate_init=0.01)
    in_memory = clone(streamed)
    classes = np.unique(y)
    for _ in range(5):
        for Xc, yc in iter_npy_chunks(d / "X_float32.npy", d / "y.npy", chunk_rows=500):
            assert isinstance(Xc, np.memmap)
            streamed.partial_fit(Xc, yc, classes=classes)
            in_memory.partial_fit(np.array(Xc), np.array(yc), classes=classes)
    assert streamed.score(X, y) > 0.9
    assert_bitwise_same_params(streamed, in_memory)
    assert len(streamed.loss_curve_) == 30 and streamed.t_ == 5 * len(X)


def test_partial_fit_regressor_over_npy_chunks(mm_data, tmp_path):
    d, arrays, _, yr = mm_data
    np.save(tmp_path / "yr.npy", yr)
    reg = MLPRegressor(hidden_layer_sizes=(32,), random_state=0, learning_rate_init=0.01)
    for _ in range(10):
        for Xc, yc in iter_npy_chunks(d / "X_float32.npy", tmp_path / "yr.npy", chunk_rows=700):
            reg.partial_fit(Xc, yc)
    assert r2_score(yr, reg.predict(arrays["float32"])) > 0.9


def test_partial_fit_over_converted_npy_chunks(mm_data):
    """An int16 file: each chunk is converted on its own, to the values the in-memory int16
    array gives."""
    d, arrays, y, _ = mm_data
    a = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, dtype=np.float64,
                      shuffle=False, batch_size=32)
    b = clone(a)
    classes = np.unique(y)
    with stream_chunk_bytes(_chunk_bytes(64, 10, np.float64)):  # each chunk streamed in turn
        for Xc, yc in iter_npy_chunks(d / "X_int16.npy", d / "y.npy", chunk_rows=600):
            a.partial_fit(Xc, yc, classes=classes)
            b.partial_fit(np.array(Xc), np.array(yc), classes=classes)
    assert_bitwise_same_params(a, b)


# peak memory: a memmap much larger than the stream chunk

N_BIG, D_BIG = 200_000, 50          # 80 MB of float64
PEAK_LIMIT = 16 * 2 ** 20           # a fifth of the data; each training row costs a few int64s


@pytest.fixture(scope="module")
def big_memmap(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlp_mm_big")
    rng = np.random.default_rng(0)
    w = rng.standard_normal(D_BIG)
    X = np.lib.format.open_memmap(d / "X.npy", mode="w+", dtype=np.float64, shape=(N_BIG, D_BIG))
    X16 = np.lib.format.open_memmap(d / "X16.npy", mode="w+", dtype=np.int16,
                                    shape=(N_BIG, D_BIG))
    y_reg = np.empty(N_BIG)
    step = 20_000
    for s in range(0, N_BIG, step):
        c = rng.standard_normal((step, D_BIG))
        X[s:s + step] = c
        X16[s:s + step] = np.round(c * 1000)
        y_reg[s:s + step] = c @ w / np.sqrt(D_BIG) + 0.1 * rng.standard_normal(step)
    X.flush()
    X16.flush()
    del X, X16
    return d, y_reg, (y_reg > 0).astype(np.int8)


def _peak(fn):
    with stream_chunk_bytes(1 << 20):
        tracemalloc.start()
        try:
            out = fn()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak, out


@pytest.mark.parametrize("case", ["adam", "adam-no-shuffle", "adam-float64", "sgd-regressor",
                                  "lbfgs", "int16-file"])
def test_memmap_fit_memory_is_bounded(case, big_memmap):
    d, y_reg, y_cls = big_memmap
    X = np.load(d / ("X16.npy" if case == "int16-file" else "X.npy"), mmap_mode="r")
    kw = dict(hidden_layer_sizes=(16,), max_iter=1, random_state=0)
    est, y = {
        "adam": (MLPClassifier(**kw), y_cls),
        "adam-no-shuffle": (MLPClassifier(shuffle=False, **kw), y_cls),
        "adam-float64": (MLPClassifier(dtype=np.float64, **kw), y_cls),
        "sgd-regressor": (MLPRegressor(solver="sgd", **kw), y_reg),
        "lbfgs": (MLPClassifier(**dict(kw, solver="lbfgs", max_iter=3)), y_cls),
        "int16-file": (MLPClassifier(**kw), y_cls),
    }[case]
    peak, _ = _peak(lambda: est.fit(X, y))
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB for {X.nbytes / 2**20:.0f} MiB of X"
    assert all(np.isfinite(p).all() for p in _params(est))
    sub = np.asarray(X[:5000])
    if case == "sgd-regressor":
        assert r2_score(y[:5000], est.predict(sub)) > 0.8
    elif case != "lbfgs":
        assert est.score(sub, y[:5000]) > 0.9
    peak, pred = _peak(lambda: est.predict(X))
    assert peak < 8 * 2 ** 20 and pred.shape == (N_BIG,)


# ---------------------------------------------------------------------------------------------
# pickling, clone, parameters

def _fitted(kind, dtype, solver="adam"):
    ours, _, X, y = _pair(kind, hidden_layer_sizes=(10,), max_iter=5, random_state=0,
                          solver=solver)
    ours.set_params(dtype=dtype)
    return ours.fit(X, y), X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "2-outputs", "poisson"])
def test_pickle_round_trip(kind, dtype):
    est, X, y = _fitted(kind, dtype)
    est2 = pickle.loads(pickle.dumps(est))
    assert_bitwise_same_params(est, est2)
    np.testing.assert_array_equal(est2.predict(X), est.predict(X))
    if hasattr(est, "predict_proba"):
        np.testing.assert_array_equal(est2.predict_proba(X), est.predict_proba(X))
    assert est2.loss_curve_ == est.loss_curve_ and est2.n_iter_ == est.n_iter_
    # training continues identically after unpickling
    for _ in range(2):
        est.partial_fit(X, y)
        est2.partial_fit(X, y)
    assert_bitwise_same_params(est, est2)
    assert est2.loss_curve_ == est.loss_curve_


def test_pickle_lbfgs_and_unfitted():
    est, X, y = _fitted("multiclass", np.float64, solver="lbfgs")
    est2 = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est2.predict_proba(X), est.predict_proba(X))
    u = pickle.loads(pickle.dumps(MLPRegressor(hidden_layer_sizes=(3,), dtype=np.float64)))
    assert u.get_params() == MLPRegressor(hidden_layer_sizes=(3,), dtype=np.float64).get_params()


def test_pickle_then_partial_fit_from_first_call():
    X, y = _clf_data("multiclass")
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    est.partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    est2 = pickle.loads(pickle.dumps(est))
    est.partial_fit(X[100:], y[100:])          # no classes= needed after unpickling either
    est2.partial_fit(X[100:], y[100:])
    assert_bitwise_same_params(est, est2)


def test_clone_and_refit():
    est, X, y = _fitted("multiclass", np.float32)
    c = clone(est)
    assert not hasattr(c, "coefs_")
    assert c.get_params() == est.get_params()
    c.fit(X, y)
    assert_bitwise_same_params(c, est)        # same random_state, same model


@pytest.mark.parametrize("ours, ref", [(MLPClassifier, sk_nn.MLPClassifier),
                                       (MLPRegressor, sk_nn.MLPRegressor)])
def test_get_params_are_sklearns_plus_two(ours, ref):
    p = ours().get_params()
    assert p == {**ref().get_params(), "n_threads": None, "dtype": np.float32}


def test_set_params():
    X, y = _clf_data("multiclass")
    est = MLPClassifier(max_iter=3, random_state=0)
    assert est.set_params(hidden_layer_sizes=(5, 4), dtype=np.float64, n_threads=1) is est
    est.fit(X, y)
    assert [c.shape for c in est.coefs_] == [(6, 5), (5, 4), (4, 3)]
    assert all(p.dtype == np.float64 for p in _params(est))
    est.set_params(dtype=np.float32).fit(X, y)     # a refit (not warm) may change the dtype
    assert est.coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(bogus=1)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_convergence_warning_at_max_iter(solver):
    X, y = _clf_data("multiclass")
    with pytest.warns(ConvergenceWarning, match=r"(?i)max|iteration"):
        MLPClassifier(solver=solver, max_iter=2, random_state=0).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_no_convergence_warning_when_stopped_by_tol(solver):
    X, y = _clf_data("multiclass")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = MLPClassifier(solver=solver, max_iter=500, tol=0.5, n_iter_no_change=1,
                            random_state=0).fit(X, y)
    assert est.n_iter_ < 500


def test_batch_size_larger_than_n_warns_and_clips():
    X, y = _clf_data("binary")
    with pytest.warns(UserWarning, match="batch_size"):
        a = MLPClassifier(batch_size=10 * len(X), max_iter=3, random_state=0).fit(X, y)
    b = MLPClassifier(batch_size=len(X), max_iter=3, random_state=0).fit(X, y)
    assert_bitwise_same_params(a, b)


def test_fitted_attributes():
    X, y = _clf_data("multiclass")
    est = MLPClassifier(hidden_layer_sizes=(9,), max_iter=4, random_state=0).fit(X, y)
    assert est.n_layers_ == 3 and est.n_outputs_ == 3 and est.out_activation_ == "softmax"
    assert est.n_features_in_ == 6 and est.t_ == 4 * len(X) and est.n_iter_ == 4
    assert len(est.loss_curve_) == 4 and est.loss_ == est.loss_curve_[-1]
    assert [c.shape for c in est.coefs_] == [(6, 9), (9, 3)]
    assert [b.shape for b in est.intercepts_] == [(9,), (3,)]
    Xb, yb = _clf_data("binary")
    b = MLPClassifier(hidden_layer_sizes=(9,), max_iter=4, random_state=0).fit(Xb, yb)
    assert b.n_outputs_ == 1 and b.out_activation_ == "logistic"
    assert b.predict_proba(Xb).shape == (len(Xb), 2)
    r = MLPRegressor(loss="poisson", max_iter=4, random_state=0).fit(*_reg_data("poisson"))
    assert r.out_activation_ == "exp" and np.all(r.predict(X) > 0)


# ---------------------------------------------------------------------------------------------
# verbose

def test_verbose_prints_iterations(capsys):
    X, y = _clf_data("multiclass")
    est = MLPClassifier(verbose=True, max_iter=4, random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {i}, loss = {loss:.8f}"
                     for i, loss in enumerate(est.loss_curve_, start=1)]


@pytest.mark.parametrize("params", [
    dict(max_iter=4),
    dict(early_stopping=True, max_iter=6),
    dict(tol=10.0, n_iter_no_change=2, max_iter=20),
    dict(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1, max_iter=8),
], ids=["plain", "early_stopping", "stops", "adaptive"])
def test_verbose_output_same_as_sklearn(params, capsys):
    X, y = _clf_data("binary")
    MLPClassifier(verbose=True, random_state=0, dtype=np.float64, **params).fit(X, y)
    ours = capsys.readouterr().out
    sk_nn.MLPClassifier(verbose=True, random_state=0, **params).fit(X, y)
    ref = capsys.readouterr().out
    assert ours.startswith("Iteration 1, loss = ")
    assert ours == ref


def test_not_verbose_prints_nothing(capsys):
    X, y = _clf_data("binary")
    MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    MLPRegressor(solver="lbfgs", max_iter=3, random_state=0).fit(*_reg_data("1-output"))
    assert capsys.readouterr().out == ""
