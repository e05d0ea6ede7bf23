"""Bad input to the parml linear models: every case must end in a clear ValueError / TypeError
raised before any kernel runs, never a crash, a hang or a silent result."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.exceptions import NotFittedError

from parml.linear_model._base import _encode_small_ints
from parml._threads import MAX_THREADS, effective_n_threads
from parml.linear_model import (LinearRegression, LinearSVC, LogisticRegression, Ridge,
                                SGDClassifier, SGDRegressor, iter_npy_chunks, stream_chunk_bytes)
from npy_files import write_npy

FINITE_MSG = "NaN or infinity"   # parml's own message for non-finite X


# ---------------------------------------------------------------------------------------------
# estimators (small settings: these tests are about validation, not about fitting well)

def _sgd_clf(**kw):
    return SGDClassifier(random_state=0, max_iter=5, tol=None, **kw)


def _sgd_reg(**kw):
    return SGDRegressor(random_state=0, max_iter=5, tol=None, **kw)


REGRESSORS = {
    "LinearRegression": LinearRegression,
    "Ridge": Ridge,
    "Ridge-lbfgs": lambda **kw: Ridge(solver="lbfgs", **kw),
    "SGDRegressor": _sgd_reg,
}
CLASSIFIERS = {
    "LogisticRegression": LogisticRegression,
    "LogisticRegression-gd": lambda **kw: LogisticRegression(solver="gd", **kw),
    "LinearSVC": LinearSVC,
    "SGDClassifier": _sgd_clf,
    "SGDClassifier-batch": lambda **kw: _sgd_clf(batch_size=16, **kw),
}
ALL = {**REGRESSORS, **CLASSIFIERS}


def _is_regressor(name):
    return name in REGRESSORS


@pytest.fixture
def data(rng):
    X = rng.standard_normal((40, 3))
    y_reg = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(40)
    y_clf = (X[:, 0] + 0.3 * rng.standard_normal(40) > 0).astype(int)
    return X, y_reg, y_clf


def _y(name, data):
    return data[1] if _is_regressor(name) else data[2]


all_names = pytest.mark.parametrize("name", list(ALL))
reg_names = pytest.mark.parametrize("name", list(REGRESSORS))
clf_names = pytest.mark.parametrize("name", list(CLASSIFIERS))


# ---------------------------------------------------------------------------------------------
# non-finite values

@all_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nonfinite_X_fit(name, bad, dtype, data):
    X, y = data[0].astype(dtype), _y(name, data)
    X[7, 2] = bad
    with pytest.raises(ValueError, match=FINITE_MSG):
        ALL[name]().fit(X, y)


@all_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nonfinite_X_predict(name, bad, dtype, data):
    X, y = data[0], _y(name, data)
    est = ALL[name]().fit(X, y)
    Xb = X.astype(dtype)
    Xb[-1, 0] = bad          # the last element: the whole array must be checked
    with pytest.raises(ValueError, match=FINITE_MSG):
        est.predict(Xb)
    with pytest.raises(ValueError, match=FINITE_MSG):
        est.predict(Xb[:, :])      # a view works the same way
    if hasattr(est, "decision_function"):
        with pytest.raises(ValueError, match=FINITE_MSG):
            est.decision_function(Xb)


@reg_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_y_regressor(name, bad, data):
    X, y = data[0], data[1].copy()
    y[3] = bad
    with pytest.raises(ValueError, match=r"(?i)nan|infinity"):
        ALL[name]().fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_y_sgd_regressor_partial_fit(bad, data):
    X, y = data[0], data[1].copy()
    reg = _sgd_reg().partial_fit(X, y)
    y[0] = bad
    with pytest.raises(ValueError, match=r"(?i)nan|infinity"):
        reg.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"(?i)nan|infinity"):
        _sgd_reg().partial_fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_X_partial_fit(bad, data):
    X, _, y = data
    clf = _sgd_clf().partial_fit(X, y, classes=[0, 1])
    Xb = X.copy()
    Xb[5, 1] = bad
    with pytest.raises(ValueError, match=FINITE_MSG):
        clf.partial_fit(Xb, y)
    reg = _sgd_reg().partial_fit(X, data[1])
    with pytest.raises(ValueError, match=FINITE_MSG):
        reg.partial_fit(Xb, data[1])


@all_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_sample_weight_values(name, bad, data):
    X, y = data[0], _y(name, data)
    sw = np.ones(len(y))
    sw[4] = bad
    with pytest.raises(ValueError, match=r"(?i)nan|infinity|negative"):
        ALL[name]().fit(X, y, sample_weight=sw)


@all_names
def test_sample_weight_2d(name, data):
    X, y = data[0], _y(name, data)
    with pytest.raises(ValueError, match=r"(?i)1D|sample weight"):
        ALL[name]().fit(X, y, sample_weight=np.ones((len(y), 1)))


@all_names
def test_predict_before_fit(name, data):
    with pytest.raises(NotFittedError):
        ALL[name]().predict(data[0])


# ---------------------------------------------------------------------------------------------
# label and feature types

@clf_names
@pytest.mark.parametrize("label", [0, 1, "a"])
def test_single_class(name, label, data):
    X = data[0]
    y = np.full(len(X), label, dtype=object if isinstance(label, str) else int)
    with pytest.raises(ValueError, match="class"):
        ALL[name]().fit(X, y)


@clf_names
def test_continuous_target_for_classifier(name, data):
    with pytest.raises(ValueError, match=r"(?i)label|continuous"):
        ALL[name]().fit(data[0], data[1])


# ---------------------------------------------------------------------------------------------
# hyper-parameters

BAD_PARAMS = [
    # (estimator, params, exception, match)
    (LinearRegression, dict(positive=True), ValueError, "positive"),
    (Ridge, dict(alpha=-1.0), ValueError, "alpha"),
    (Ridge, dict(alpha=np.nan), ValueError, "alpha"),
    (Ridge, dict(alpha="big"), ValueError, "alpha"),
    (Ridge, dict(alpha=[[1.0]]), ValueError, "alpha"),
    (Ridge, dict(alpha=[1.0, 2.0]), ValueError, "alpha"),   # 2 alphas, 1 target
    (Ridge, dict(max_iter=0), ValueError, "max_iter"),
    (Ridge, dict(max_iter=0, solver="lbfgs"), ValueError, "max_iter"),
    (Ridge, dict(max_iter=2.5), ValueError, "max_iter"),
    (Ridge, dict(solver="svd"), ValueError, "solver"),
    (Ridge, dict(positive=True), ValueError, "positive"),
    (Ridge, dict(solver="lbfgs", strategy="bogus"), ValueError, "strategy"),
    (Ridge, dict(solver="lbfgs", strategy="hogwild"), ValueError, "strategy"),
    (LogisticRegression, dict(C=0), ValueError, "C must"),
    (LogisticRegression, dict(C=-1), ValueError, "C must"),
    (LogisticRegression, dict(C=np.nan), ValueError, "C must"),
    (LogisticRegression, dict(C="1"), ValueError, "C must"),
    (LogisticRegression, dict(C=True), ValueError, "C must"),
    (LogisticRegression, dict(tol=-1), ValueError, "tol"),
    (LogisticRegression, dict(tol=np.nan), ValueError, "tol"),
    (LogisticRegression, dict(max_iter=0), ValueError, "max_iter"),
    (LogisticRegression, dict(max_iter=1.5), ValueError, "max_iter"),
    (LogisticRegression, dict(penalty="l1"), ValueError, "penalty"),
    (LogisticRegression, dict(penalty="elasticnet"), ValueError, "penalty"),
    (LogisticRegression, dict(solver="newton-cg"), ValueError, "solver"),
    (LogisticRegression, dict(strategy="bogus"), ValueError, "strategy"),
    (LogisticRegression, dict(strategy="hogwild"), ValueError, "strategy"),
    (LogisticRegression, dict(class_weight="bogus"), ValueError, "class_weight"),
    (LinearSVC, dict(C=0), ValueError, "C must"),
    (LinearSVC, dict(C=-1), ValueError, "C must"),
    (LinearSVC, dict(max_iter=0), ValueError, "max_iter"),
    (LinearSVC, dict(tol=-1e-3), ValueError, "tol"),
    (LinearSVC, dict(loss="log_loss"), ValueError, "loss"),
    (LinearSVC, dict(penalty="l1"), ValueError, "penalty"),
    (LinearSVC, dict(multi_class="crammer_singer"), ValueError, "multi_class"),
    (LinearSVC, dict(dual="sometimes"), ValueError, "dual"),
    (LinearSVC, dict(strategy="bogus"), ValueError, "strategy"),
    (SGDClassifier, dict(loss="bogus"), ValueError, "loss"),
    (SGDClassifier, dict(penalty="l3"), ValueError, "penalty"),
    (SGDClassifier, dict(learning_rate="fast"), ValueError, "learning_rate"),
    (SGDClassifier, dict(strategy="bogus"), ValueError, "strategy"),
    (SGDClassifier, dict(alpha=-1.0), ValueError, "alpha"),
    (SGDClassifier, dict(alpha=np.inf), ValueError, "alpha"),
    (SGDClassifier, dict(l1_ratio=1.5), ValueError, "l1_ratio"),
    (SGDClassifier, dict(l1_ratio=-0.1), ValueError, "l1_ratio"),
    (SGDClassifier, dict(epsilon=-1.0), ValueError, "epsilon"),
    (SGDClassifier, dict(eta0=0.0, learning_rate="constant"), ValueError, "eta0"),
    (SGDClassifier, dict(eta0=0.0, learning_rate="invscaling"), ValueError, "eta0"),
    (SGDClassifier, dict(eta0=-1.0, learning_rate="adaptive"), ValueError, "eta0"),
    (SGDClassifier, dict(alpha=0.0, learning_rate="optimal"), ValueError, "optimal"),
    (SGDClassifier, dict(strategy="hogwild", penalty="l1"), ValueError, "hogwild"),
    (SGDClassifier, dict(strategy="hogwild", penalty="elasticnet"), ValueError, "hogwild"),
    (SGDClassifier, dict(strategy="hogwild", average=True), ValueError, "hogwild"),
    (SGDClassifier, dict(max_iter=0), ValueError, "max_iter"),
    (SGDClassifier, dict(max_iter=2.5), ValueError, "max_iter"),
    (SGDClassifier, dict(batch_size=0), ValueError, "batch_size"),
    (SGDClassifier, dict(batch_size=True), ValueError, "batch_size"),
    (SGDClassifier, dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (SGDClassifier, dict(early_stopping=True, validation_fraction=0.0), ValueError,
     "validation_fraction"),
    (SGDClassifier, dict(validation_fraction=1.5), ValueError, "validation_fraction"),
    (SGDClassifier, dict(average=-1), ValueError, "average"),
    (SGDClassifier, dict(tol="small"), ValueError, "tol"),
    (SGDClassifier, dict(power_t=np.nan), ValueError, "power_t"),
    (SGDRegressor, dict(loss="hinge"), ValueError, "loss"),
    (SGDRegressor, dict(loss="log_loss"), ValueError, "loss"),
    (SGDRegressor, dict(penalty="l3"), ValueError, "penalty"),
    (SGDRegressor, dict(alpha=-1.0), ValueError, "alpha"),
    (SGDRegressor, dict(eta0=0.0), ValueError, "eta0"),     # default schedule: invscaling
    (SGDRegressor, dict(learning_rate="optimal", alpha=0.0), ValueError, "optimal"),
    (SGDRegressor, dict(strategy="hogwild", penalty="l1"), ValueError, "hogwild"),
    (SGDRegressor, dict(max_iter=0), ValueError, "max_iter"),
    (SGDRegressor, dict(batch_size=0), ValueError, "batch_size"),
]


@pytest.mark.parametrize(
    "cls, params, exc, match", BAD_PARAMS,
    ids=[f"{c.__name__}-{'-'.join(f'{k}={v!r}' for k, v in p.items())}"
         for c, p, _, _ in BAD_PARAMS])
def test_invalid_hyperparameters(cls, params, exc, match, data):
    y = data[1] if cls in (LinearRegression, Ridge, SGDRegressor) else data[2]
    est = cls(**params)
    with pytest.raises(exc, match=match):
        est.fit(data[0], y)
    assert not hasattr(est, "coef_"), "a rejected fit must not leave a fitted model behind"


@pytest.mark.parametrize("cls", [SGDClassifier, SGDRegressor])
def test_invalid_hyperparameters_partial_fit(cls, data):
    y = data[2] if cls is SGDClassifier else data[1]
    kw = dict(classes=[0, 1]) if cls is SGDClassifier else {}
    with pytest.raises(ValueError, match="eta0"):
        cls(learning_rate="constant", eta0=0.0).partial_fit(data[0], y, **kw)
    with pytest.raises(ValueError, match="hogwild"):
        cls(strategy="hogwild", penalty="l1").partial_fit(data[0], y, **kw)


# ---------------------------------------------------------------------------------------------
# n_threads

def test_effective_n_threads_errors():
    with pytest.raises(ValueError, match="n_threads=0"):
        effective_n_threads(0)
    with pytest.raises(TypeError, match="n_threads"):
        effective_n_threads(1.5)
    with pytest.raises(TypeError, match="bool"):
        effective_n_threads(True)
    with pytest.raises(TypeError, match="n_threads"):
        effective_n_threads("2")
    with pytest.raises(ValueError, match="n_threads"):
        effective_n_threads(MAX_THREADS + 1)
    assert effective_n_threads(1) == 1
    assert effective_n_threads(np.int64(2)) == 2
    assert effective_n_threads(-1) == effective_n_threads(None) >= 1
    assert effective_n_threads(-10 ** 6) == 1


@all_names
@pytest.mark.parametrize("n_threads, exc, match", [
    (0, ValueError, "n_threads=0"),
    (1.5, TypeError, "n_threads"),
    (True, TypeError, "n_threads"),
    ("4", TypeError, "n_threads"),
    (MAX_THREADS + 1, ValueError, "n_threads"),
])
def test_bad_n_threads(name, n_threads, exc, match, data):
    X, y = data[0], _y(name, data)
    with pytest.raises(exc, match=match):
        ALL[name](n_threads=n_threads).fit(X, y)
    est = ALL[name]().fit(X, y)
    est.set_params(n_threads=n_threads)      # set after fit: predict must reject it too
    with pytest.raises(exc, match=match):
        est.predict(X)


# ---------------------------------------------------------------------------------------------
# partial_fit

def test_partial_fit_without_classes_first_call(data):
    X, _, y = data
    clf = _sgd_clf()
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    assert not hasattr(clf, "coef_")
    clf.partial_fit(X, y, classes=[0, 1])          # later calls may leave classes out
    clf.partial_fit(X, y)


def test_partial_fit_inconsistent_calls(data, rng):
    X, _, y = data
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    clf = _sgd_clf().partial_fit(X, y3, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :2], y3)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y3 + 5)                      # labels never announced
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y3, classes=[0, 1, 2, 3])    # a different set of classes
    with pytest.raises(ValueError, match="classes"):
        _sgd_clf().partial_fit(X, y3, classes=[0, 1])   # y holds a label not in classes
    with pytest.raises(ValueError, match="class"):
        _sgd_clf().partial_fit(X, np.zeros(len(X)), classes=[0])
    reg = _sgd_reg().partial_fit(X, data[1])
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(rng.standard_normal((10, 4)), np.zeros(10))


def test_partial_fit_bad_sample_weight(data):
    X, y_reg, y = data
    with pytest.raises(ValueError, match=r"(?i)negative"):
        _sgd_clf().partial_fit(X, y, classes=[0, 1], sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match=r"(?i)sample_weight|shape"):
        _sgd_reg().partial_fit(X, y_reg, sample_weight=np.ones(3))


def test_coef_init_wrong_shape(data):
    X, _, y = data
    with pytest.raises(ValueError):
        _sgd_clf().fit(X, y, coef_init=np.zeros(5))


def test_early_stopping_too_few_samples(data):
    X, _, y = data
    with pytest.raises(ValueError):
        SGDClassifier(early_stopping=True, validation_fraction=0.01).fit(X[:10], y[:10])


# ---------------------------------------------------------------------------------------------
# memory-mapped X


@all_names
@pytest.mark.parametrize("opener", ["open_memmap", "np.load", "np.memmap"])
@pytest.mark.parametrize("where", ["first", "last"])
def test_memmap_with_nan_rejected(name, opener, where, data, tmp_path):
    X, y = data[0].copy(), _y(name, data)
    X[0 if where == "first" else -1, 1] = np.nan
    if opener == "np.memmap":
        path = tmp_path / "X.bin"
        X.tofile(path)
        Xm = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    else:
        path = write_npy(tmp_path / "X.npy", X)
        Xm = (np.load(path, mmap_mode="r") if opener == "np.load"
              else np.lib.format.open_memmap(path, mode="r"))
    assert isinstance(Xm, np.memmap)
    # small chunks: the NaN sits in a chunk other than the first one when where == "last"
    with stream_chunk_bytes(64):
        with pytest.raises(ValueError, match=FINITE_MSG):
            ALL[name]().fit(Xm, y)
        est = ALL[name]().fit(data[0], y)
        with pytest.raises(ValueError, match=FINITE_MSG):
            est.predict(Xm)


@all_names
def test_memmap_float16_inf_rejected(name, data, tmp_path):
    X, y = data[0].astype(np.float16), _y(name, data)
    X[-1, 0] = np.inf
    Xm = np.load(write_npy(tmp_path / "X16.npy", X), mmap_mode="r")
    with stream_chunk_bytes(64), pytest.raises(ValueError, match=FINITE_MSG):
        ALL[name]().fit(Xm, y)


# ---------------------------------------------------------------------------------------------
# the streaming helpers

@pytest.mark.parametrize("nbytes", [0, -1, 1.5, True, "1", None])
def test_stream_chunk_bytes_rejects(nbytes):
    with pytest.raises(ValueError, match="positive integer"):
        with stream_chunk_bytes(nbytes):
            pass


def test_stream_chunk_bytes_restores_on_error(data, tmp_path):
    from parml._core import rows as _data
    before = _data._STREAM["chunk_bytes"]
    with pytest.raises(RuntimeError):
        with stream_chunk_bytes(128):
            assert _data._STREAM["chunk_bytes"] == 128
            raise RuntimeError
    assert _data._STREAM["chunk_bytes"] == before


@pytest.mark.parametrize("chunk_rows", [0, -5, 2.5, True])
def test_iter_npy_chunks_bad_chunk_rows(chunk_rows, data, tmp_path):
    path = write_npy(tmp_path / "X.npy", data[0])
    with pytest.raises(ValueError, match="chunk_rows"):
        list(iter_npy_chunks(path, chunk_rows=chunk_rows))


def test_iter_npy_chunks_bad_files(data, tmp_path):
    X = data[0]
    px = write_npy(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match="No such"):
        list(iter_npy_chunks(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="No such"):
        list(iter_npy_chunks(px, tmp_path / "missing_y.npy"))
    np.save(tmp_path / "y.npy", np.zeros(len(X) - 1))
    with pytest.raises(ValueError, match="rows"):
        list(iter_npy_chunks(px, tmp_path / "y.npy"))


# --- integer labels are encoded by counting: same classes and codes as np.unique ---------------


@settings(max_examples=80, deadline=None)
@given(dtype=st.sampled_from(["bool", "int8", "uint8", "int16", "int32", "int64", "uint32",
                              "uint64"]),
       data=st.data())
def test_small_int_labels_encode_like_unique(dtype, data):
    info = np.iinfo(dtype) if dtype != "bool" else None
    lo = 0 if info is None else data.draw(st.integers(int(info.min), int(info.max)))
    top = 1 if info is None else min(int(info.max), lo + data.draw(st.integers(0, 1000)))
    vals = data.draw(st.lists(st.integers(lo, top), min_size=1, max_size=300))
    y = np.array(vals).astype(dtype)
    got = _encode_small_ints(y)
    classes, codes = np.unique(y, return_inverse=True)
    assert got is not None
    assert got[0].dtype == y.dtype
    np.testing.assert_array_equal(got[0], classes)
    np.testing.assert_array_equal(got[1], codes)


def test_wide_or_non_integer_labels_take_the_general_path():
    assert _encode_small_ints(np.array([-2**62, 2**62])) is None        # span too wide to count
    assert _encode_small_ints(np.array([0.0, 1.0])) is None
    assert _encode_small_ints(np.array(["a", "b"])) is None
    assert _encode_small_ints(np.zeros((3, 1), dtype=int)) is None      # 2-d: scikit-learn's check
    # the general path still rejects continuous targets
    with pytest.raises(ValueError, match="continuous|Unknown label"):
        SGDClassifier(max_iter=1).fit(np.ones((4, 2)), np.array([0.5, 1.5, 2.5, 3.5]))


def test_integer_labels_skip_unique_and_the_target_check(monkeypatch):
    """encode_classes takes the counting path for integer labels: np.unique, np.searchsorted and
    scikit-learn's target check are not called (they cost 17.5 ms for 800k labels)."""
    import sklearn.utils.multiclass as mc
    from parml.linear_model._base import encode_classes

    def boom(*a, **k):
        raise AssertionError("general path taken")
    y = np.array([3, 7, 3, 3, 9, 7])
    monkeypatch.setattr(mc, "check_classification_targets", boom)
    monkeypatch.setattr(np, "unique", boom)
    monkeypatch.setattr(np, "searchsorted", boom)
    classes, yi = encode_classes(SGDClassifier(), y)
    np.testing.assert_array_equal(classes, [3, 7, 9])
    np.testing.assert_array_equal(yi, [0, 1, 0, 0, 2, 1])
    assert yi.dtype == np.intp
