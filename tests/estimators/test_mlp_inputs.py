"""Bad input to parml's MLPClassifier / MLPRegressor: every case must end in a clear ValueError /
TypeError (naming the problem) raised before any kernel runs, never a crash, a hang or a model
that silently predicts NaN; a diverging fit must not leave a garbage model behind."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from parml.linear_model import stream_chunk_bytes
from parml.neural_network import MLPClassifier, MLPRegressor
from npy_files import write_npy

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning",
                                        "ignore:.*iprint.*:DeprecationWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

FINITE_MSG = "NaN or infinity"   # parml's own message for non-finite X


# ---------------------------------------------------------------------------------------------
# estimators (small settings: these tests are about validation, not about fitting well)

def _small(cls, **defaults):
    """A small estimator factory; keyword arguments override the defaults."""
    base = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0, **defaults)
    return lambda **kw: cls(**{**base, **kw})


_clf = _small(MLPClassifier)
_reg = _small(MLPRegressor)

ALL = {
    "MLPClassifier": _clf,
    "MLPClassifier-lbfgs": _small(MLPClassifier, solver="lbfgs"),
    "MLPClassifier-sgd-float64": _small(MLPClassifier, solver="sgd", dtype=np.float64),
    "MLPRegressor": _reg,
    "MLPRegressor-lbfgs-float64": _small(MLPRegressor, solver="lbfgs", dtype=np.float64),
    "MLPRegressor-poisson": _small(MLPRegressor, loss="poisson"),
}
REGRESSORS = [n for n in ALL if n.startswith("MLPRegressor")]
CLASSIFIERS = [n for n in ALL if n.startswith("MLPClassifier")]

all_names = pytest.mark.parametrize("name", list(ALL))
reg_names = pytest.mark.parametrize("name", REGRESSORS)
clf_names = pytest.mark.parametrize("name", CLASSIFIERS)


@pytest.fixture
def data(rng):
    X = rng.standard_normal((40, 3))
    y_reg = np.abs(X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(40))  # >= 0
    y_clf = (X[:, 0] + 0.3 * rng.standard_normal(40) > 0).astype(int)
    return X, y_reg, y_clf


def _y(name, data):
    return data[1] if name in REGRESSORS else data[2]


def _assert_unfitted(est, X):
    assert not hasattr(est, "coefs_"), "a rejected fit must not leave a fitted model behind"
    with pytest.raises(NotFittedError):
        est.predict(X)


# ---------------------------------------------------------------------------------------------
# non-finite and too-large values

@all_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nonfinite_X_fit(name, bad, dtype, data):
    X, y = data[0].astype(dtype), _y(name, data)
    X[7, 2] = bad
    est = ALL[name]()
    with pytest.raises(ValueError, match=FINITE_MSG):
        est.fit(X, y)
    _assert_unfitted(est, data[0])


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
        est.predict(Xb[1::2])       # a strided view works the same way
    if hasattr(est, "predict_proba"):
        with pytest.raises(ValueError, match=FINITE_MSG):
            est.predict_proba(Xb)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_X_partial_fit(cls, bad, data):
    X, y_reg, y_clf = data
    y, kw = (y_clf, dict(classes=[0, 1])) if cls is MLPClassifier else (y_reg, {})
    Xb = X.copy()
    Xb[5, 1] = bad
    with pytest.raises(ValueError, match=FINITE_MSG):
        cls().partial_fit(Xb, y, **kw)
    est = cls(random_state=0).partial_fit(X, y, **kw)
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match=FINITE_MSG):
        est.partial_fit(Xb, y)
    for a, b in zip(est.coefs_, before):       # the rejected call changed nothing
        np.testing.assert_array_equal(a, b)


@all_names
def test_values_too_large_for_float32(name, data):
    """1e39 is finite in float64 but overflows float32 (the default dtype): rejected, with a
    message that says so, rather than trained on as inf."""
    X, y = data[0].copy(), _y(name, data)
    X[11, 1] = 1e39
    est = ALL[name](dtype=np.float32)
    with pytest.raises(ValueError, match=r"(?=.*too large)(?=.*float32)"):
        est.fit(X, y)
    _assert_unfitted(est, data[0])
    fitted = ALL[name](dtype=np.float32).fit(data[0], y)
    with pytest.raises(ValueError, match=r"(?=.*too large)(?=.*float32)"):
        fitted.predict(X)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_values_too_large_for_float32_fine_in_float64(cls, solver, data):
    """The same 1e39 is an ordinary (if badly scaled) value for a float64 model."""
    X, y = data[0].copy(), (data[2] if cls is MLPClassifier else data[1])
    X[11, 1] = 1e39
    est = cls(hidden_layer_sizes=(5,), max_iter=3, random_state=0, solver=solver,
              dtype=np.float64).fit(X, y)
    assert all(np.isfinite(p).all() for p in est.coefs_ + est.intercepts_)
    assert np.isfinite(np.asarray(est.predict(X), dtype=np.float64)).all()


@reg_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_y_regressor(name, bad, data):
    X, y = data[0], data[1].copy()
    y[3] = bad
    est = ALL[name]()
    with pytest.raises(ValueError, match=r"(?i)nan|infinity"):
        est.fit(X, y)
    _assert_unfitted(est, X)
    with pytest.raises(ValueError, match=r"(?i)nan|infinity"):
        _reg().partial_fit(X, y)


def test_y_too_large_for_float32(data):
    X, y = data[0], data[1].copy()
    y[3] = 1e39
    est = _reg()
    with pytest.raises(ValueError, match=r"(?=.*too large)(?=.*float32)"):
        est.fit(X, y)
    _assert_unfitted(est, X)


@all_names
@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0])
def test_bad_sample_weight_values(name, bad, data):
    X, y = data[0], _y(name, data)
    sw = np.ones(len(y))
    sw[4] = bad
    est = ALL[name]()
    with pytest.raises(ValueError, match=r"(?i)nan|infinity|negative"):
        est.fit(X, y, sample_weight=sw)
    _assert_unfitted(est, X)


@all_names
def test_all_zero_sample_weight(name, data):
    X, y = data[0], _y(name, data)
    est = ALL[name]()
    with pytest.raises(ValueError, match=r"(?i)non-zero|zero"):
        est.fit(X, y, sample_weight=np.zeros(len(y)))
    _assert_unfitted(est, X)
    with pytest.raises(ValueError, match=r"(?i)negative"):
        ALL[name]().fit(X, y, sample_weight=-np.ones(len(y)))


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_different_n_features(cls, data, rng):
    X, y_reg, y_clf = data
    y, kw = (y_clf, dict(classes=[0, 1])) if cls is MLPClassifier else (y_reg, {})
    est = cls().partial_fit(X, y, **kw)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(rng.standard_normal((40, 4)), y)


def test_regressor_n_outputs_change_in_partial_fit(data):
    X, y = data[0], data[1]
    est = _reg().partial_fit(X, y)
    with pytest.raises(ValueError, match=r"(?i)layers|outputs"):
        est.partial_fit(X, np.c_[y, y])


@all_names
def test_predict_before_fit(name, data):
    est = ALL[name]()
    with pytest.raises(NotFittedError):
        est.predict(data[0])
    if name in CLASSIFIERS:
        with pytest.raises(NotFittedError):
            est.predict_proba(data[0])
        with pytest.raises(NotFittedError):
            est.predict_log_proba(data[0])
    with pytest.raises(NotFittedError):
        est.score(data[0], _y(name, data))


# ---------------------------------------------------------------------------------------------
# label and feature types

@clf_names
@pytest.mark.parametrize("label", [0, 1, "a"])
def test_single_class(name, label, data):
    X = data[0]
    y = np.full(len(X), label, dtype=object if isinstance(label, str) else int)
    est = ALL[name]()
    with pytest.raises(ValueError, match="class"):
        est.fit(X, y)
    _assert_unfitted(est, X)


@clf_names
def test_continuous_target_for_classifier(name, data):
    with pytest.raises(ValueError, match=r"(?i)label|continuous"):
        ALL[name]().fit(data[0], data[1] + 0.5)


# ---------------------------------------------------------------------------------------------
# hyper-parameters

BAD_PARAMS = [
    # (params, exception, match)
    (dict(hidden_layer_sizes=()), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=[]), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(10, 0)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(10, -1)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=0), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=-3), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(2.5,)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(True, 4)), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes="abc"), ValueError, "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=None), ValueError, "hidden_layer_sizes"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(alpha=np.nan), ValueError, "alpha"),
    (dict(alpha=np.inf), ValueError, "alpha"),
    (dict(learning_rate_init=0.0), ValueError, "learning_rate_init"),
    (dict(learning_rate_init=-0.1), ValueError, "learning_rate_init"),
    (dict(learning_rate_init=np.nan), ValueError, "learning_rate_init"),
    (dict(learning_rate_init=np.inf), ValueError, "learning_rate_init"),
    (dict(solver="newton"), ValueError, "solver"),
    (dict(solver="ADAM"), ValueError, "solver"),
    (dict(activation="softmax"), ValueError, "activation"),
    (dict(activation="sigmoid"), ValueError, "activation"),
    (dict(learning_rate="fast"), ValueError, "learning_rate"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size="big"), ValueError, "batch_size"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(max_iter=2.5), ValueError, "max_iter"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(tol=np.nan), ValueError, "tol"),
    (dict(momentum=1.5, solver="sgd"), ValueError, "momentum"),
    (dict(momentum=-0.1, solver="sgd"), ValueError, "momentum"),
    (dict(power_t=-1.0, solver="sgd", learning_rate="invscaling"), ValueError, "power_t"),
    (dict(beta_1=1.0), ValueError, "beta_1"),
    (dict(beta_2=-0.5), ValueError, "beta_2"),
    (dict(epsilon=0.0), ValueError, "epsilon"),
    (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
    (dict(validation_fraction=1.0, early_stopping=True), ValueError, "validation_fraction"),
    (dict(max_fun=0, solver="lbfgs"), ValueError, "max_fun"),
    (dict(shuffle="yes"), ValueError, "shuffle"),
    (dict(warm_start=None), ValueError, "warm_start"),
    (dict(n_threads=0), ValueError, "n_threads"),
    (dict(n_threads=5000), ValueError, "n_threads"),
    (dict(n_threads=1.5), ValueError, "n_threads"),
    (dict(n_threads=True), TypeError, "n_threads"),
    (dict(dtype=np.int32), ValueError, "dtype"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(dtype=np.float16), ValueError, "dtype"),
    (dict(dtype=np.complex128), ValueError, "dtype"),
    (dict(dtype=">f8"), ValueError, "dtype"),
    (dict(dtype=object), ValueError, "dtype"),
    # numpy cannot read the name at all: its own TypeError ("data type 'bogus' not understood")
    (dict(dtype="bogus"), (ValueError, TypeError), r"(?i)dtype|data type"),
]


def _ids(cases):
    return ["-".join(f"{k}={v!r}" for k, v in p.items()) for p, _, _ in cases]


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("params, exc, match", BAD_PARAMS, ids=_ids(BAD_PARAMS))
def test_invalid_hyperparameters(cls, params, exc, match, data):
    y = data[2] if cls is MLPClassifier else data[1]
    est = cls(**params)
    with pytest.raises(exc, match=match):
        est.fit(data[0], y)
    _assert_unfitted(est, data[0])


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_dtype_none_rejected(cls, data):
    y = data[2] if cls is MLPClassifier else data[1]
    est = cls(dtype=None, max_iter=2)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        est.fit(data[0], y)


@pytest.mark.parametrize("params, match", [
    (dict(loss="huber"), "loss"), (dict(loss="absolute_error"), "loss"),
    (dict(loss=None), "loss")])
def test_invalid_regressor_loss(params, match, data):
    with pytest.raises(ValueError, match=match):
        MLPRegressor(**params).fit(data[0], data[1])


@pytest.mark.parametrize("params, exc, match", [
    (dict(hidden_layer_sizes=(4, 0)), ValueError, "hidden_layer_sizes"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(learning_rate_init=0.0), ValueError, "learning_rate_init"),
    (dict(dtype=np.int32), ValueError, "dtype"),
])
def test_invalid_hyperparameters_partial_fit(params, exc, match, data):
    with pytest.raises(exc, match=match):
        MLPClassifier(**params).partial_fit(data[0], data[2], classes=[0, 1])
    with pytest.raises(exc, match=match):
        MLPRegressor(**params).partial_fit(data[0], data[1])


def test_numpy_integer_hidden_layer_sizes_accepted(data):
    est = _clf(hidden_layer_sizes=np.array([4, 3])).fit(data[0], data[2])
    assert [c.shape for c in est.coefs_] == [(3, 4), (4, 3), (3, 1)]


# ---------------------------------------------------------------------------------------------
# targets, classes, partial_fit and warm_start misuse

@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_poisson_negative_y(solver, data):
    X, y = data[0], data[1].copy()
    y[5] = -0.1
    est = MLPRegressor(loss="poisson", solver=solver)
    with pytest.raises(ValueError, match=r"(?=.*poisson)(?=.*non-negative)"):
        est.fit(X, y)
    _assert_unfitted(est, X)
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").partial_fit(X, y)


def test_partial_fit_without_classes_on_first_call(data):
    X, _, y = data
    est = MLPClassifier()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    _assert_unfitted(est, X)
    est.partial_fit(X, y, classes=[0, 1])
    est.partial_fit(X, y)                            # later calls do not need it
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y, classes=[0, 1, 2])     # and may not change it


def test_partial_fit_classes_not_covering_y(data):
    X, _, y = data
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(X, y, classes=[0, 2])
    est = MLPClassifier().partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y + 5)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_with_early_stopping(cls, data):
    X, y_reg, y_clf = data
    y, kw = (y_clf, dict(classes=[0, 1])) if cls is MLPClassifier else (y_reg, {})
    est = cls(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y, **kw)
    _assert_unfitted(est, X)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_lbfgs_unavailable(cls):
    est = cls(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="(?i)partial_fit|stochastic"):
        est.partial_fit


@pytest.mark.parametrize("new_labels", ["other", "fewer", "more"])
def test_warm_start_with_different_classes(new_labels, data):
    X, _, y = data
    y3 = np.where(X[:, 1] > 0.5, 2, y)
    est = _clf(warm_start=True).fit(X, y3 if new_labels == "fewer" else y)
    yb = {"other": np.where(y == 1, 7, y), "fewer": y, "more": y3}[new_labels]
    before = [c.copy() for c in est.coefs_]
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same "
                                         "classes"):
        est.fit(X, yb)
    for a, b in zip(est.coefs_, before):
        np.testing.assert_array_equal(a, b)


def test_warm_start_or_partial_fit_with_other_dtype_or_layers(data):
    X, y_reg, y = data
    est = _clf(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="dtype"):
        est.set_params(dtype=np.float64).fit(X, y)
    est.set_params(dtype=np.float32, hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        est.fit(X, y)
    reg = _reg().partial_fit(X, y_reg)
    with pytest.raises(ValueError, match="dtype"):
        reg.set_params(dtype=np.float64).partial_fit(X, y_reg)


def test_early_stopping_validation_set_too_small(data):
    X, y_reg, y = data
    with pytest.raises(ValueError, match=r"(?i)validation set is too small|test_size"):
        MLPRegressor(early_stopping=True, validation_fraction=0.01).fit(X[:20], y_reg[:20])
    with pytest.raises(ValueError, match=r"(?i)validation|test_size"):
        MLPClassifier(early_stopping=True, validation_fraction=0.01).fit(X[:20], y[:20])


# ---------------------------------------------------------------------------------------------
# divergence: a clear error (or a warning), never a model that predicts NaN

def _huge(rng):
    X = rng.standard_normal((200, 5)) * 1e6              # unscaled, huge values
    y_reg = np.abs(X @ rng.standard_normal(5)) * 1e10
    y_clf = (X[:, 0] > 0).astype(int)
    return X, y_reg, y_clf


def _predicts_finite_or_unfitted(est, X):
    """After a fit that raised: either the estimator is not fitted, or it is finite."""
    if not hasattr(est, "coefs_"):
        with pytest.raises(NotFittedError):
            est.predict(X)
        return
    assert all(np.isfinite(p).all() for p in est.coefs_ + est.intercepts_)
    assert np.isfinite(np.asarray(est.predict(X), dtype=np.float64)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["classifier", "regressor", "poisson"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_divergence_is_reported(solver, kind, dtype, rng):
    X, y_reg, y_clf = _huge(rng)
    kw = dict(solver=solver, dtype=dtype, max_iter=20, random_state=0)
    if solver != "lbfgs":
        kw.update(learning_rate_init=1e10, momentum=0.9)
    if kind == "classifier":
        est, y = MLPClassifier(**kw), y_clf
    else:
        est, y = MLPRegressor(loss="poisson" if kind == "poisson" else "squared_error", **kw), y_reg
    try:
        est.fit(X, y)
    except ValueError as e:
        assert "diverged" in str(e) or "non-finite" in str(e)
        if solver != "lbfgs":
            assert "learning_rate_init" in str(e)       # tells what to change
    _predicts_finite_or_unfitted(est, X)


def test_divergence_sgd_regressor_raises(rng):
    X, y, _ = _huge(rng)
    est = MLPRegressor(solver="sgd", learning_rate_init=1e10, momentum=0.9, random_state=0)
    with pytest.raises(ValueError, match=r"(?=.*diverged)(?=.*learning_rate_init)"):
        est.fit(X, y)
    _assert_unfitted(est, X)


def _good(rng):
    X = rng.standard_normal((200, 5))
    return X, X @ rng.standard_normal(5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_divergence_after_a_good_fit_rolls_back(how, dtype, rng):
    """A warm-started fit or a later partial_fit that diverges raises, and leaves the model it
    started from (not the astronomically large weights of the last batch before the NaN)."""
    X, y = _good(rng)
    est = MLPRegressor(solver="sgd", random_state=0, dtype=dtype, max_iter=5, batch_size=20,
                       warm_start=how == "warm_start")
    if how == "warm_start":
        est.fit(X, y)
    else:
        est.partial_fit(X, y)
    good = [p.copy() for p in est.coefs_ + est.intercepts_]
    pred = est.predict(X)
    est.set_params(learning_rate_init=1e10)
    with pytest.raises(ValueError, match="diverged"):
        if how == "warm_start":
            est.fit(X * 1e6, y * 1e16)
        else:
            est.partial_fit(X * 1e6, y * 1e16)
    _predicts_finite_or_unfitted(est, X)
    if hasattr(est, "coefs_"):
        for a, b in zip(est.coefs_ + est.intercepts_, good):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(est.predict(X), pred)


@pytest.mark.parametrize("case", ["regressor-max_iter=1", "classifier-max_iter=2",
                                  "regressor-partial_fit"])
def test_fit_that_returns_never_predicts_nan(case, rng):
    X, y_reg, y_clf = _huge(rng)
    kw = dict(solver="sgd", learning_rate_init=1e10, momentum=0.9, random_state=0)
    if case == "regressor-max_iter=1":
        est, fit = MLPRegressor(max_iter=1, **kw), lambda e: e.fit(X, y_reg)
    elif case == "classifier-max_iter=2":
        est, fit = MLPClassifier(max_iter=2, **kw), lambda e: e.fit(X, y_clf)
    else:
        X, y = _good(rng)
        est = MLPRegressor(solver="sgd", random_state=0).partial_fit(X, y)
        est.set_params(learning_rate_init=1e10)
        X, y_reg = X * 1e6, y * 1e16
        fit = lambda e: e.partial_fit(X, y_reg)                          # noqa: E731
    try:
        fit(est)
    except ValueError as e:          # a clear error is fine
        assert "diverged" in str(e) or "non-finite" in str(e)
    _predicts_finite_or_unfitted(est, X)
    if hasattr(est, "predict_proba") and hasattr(est, "coefs_"):
        assert np.isfinite(est.predict_proba(X)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_partial_fit_after_divergence_starts_afresh(dtype, rng):
    X, y = _good(rng)
    kw = dict(solver="sgd", random_state=0, batch_size=20, dtype=dtype)
    est = MLPRegressor(learning_rate_init=1e10, **kw)
    with pytest.raises(ValueError, match="diverged"):
        est.partial_fit(X * 1e6, y * 1e16)        # the very first call diverges
    _assert_unfitted(est, X)
    est.set_params(learning_rate_init=1e-3)
    est.partial_fit(X, y)                       # an unfitted estimator: a fresh start
    fresh = MLPRegressor(learning_rate_init=1e-3, **kw).partial_fit(X, y)
    np.testing.assert_allclose(est.predict(X), fresh.predict(X), rtol=1e-12)


def test_refit_after_divergence_starts_afresh(rng):
    """fit (not partial_fit) after a divergence: a fresh model, as if the first never was."""
    X, y = _good(rng)
    kw = dict(solver="sgd", random_state=0, max_iter=5, dtype=np.float64)
    est = MLPRegressor(learning_rate_init=1e10, **kw)
    with pytest.raises(ValueError, match="diverged"):
        est.fit(X * 1e6, y * 1e16)
    est.set_params(learning_rate_init=1e-3).fit(X, y)
    fresh = MLPRegressor(learning_rate_init=1e-3, **kw).fit(X, y)
    for a, b in zip(est.coefs_, fresh.coefs_):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# memory-mapped X

@all_names
@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_memmap_with_nonfinite_rejected(name, where, bad, data, tmp_path):
    X, y = data[0].copy(), _y(name, data)
    X[0 if where == "first" else -1, 1] = bad
    Xm = np.load(write_npy(tmp_path / "X.npy", X), mmap_mode="r")
    assert isinstance(Xm, np.memmap)
    # small chunks: the bad value sits in a chunk other than the first one when where == "last"
    with stream_chunk_bytes(64):
        est = ALL[name]()
        with pytest.raises(ValueError, match=FINITE_MSG):
            est.fit(Xm, y)
        _assert_unfitted(est, data[0])
        est = ALL[name]().fit(data[0], y)
        with pytest.raises(ValueError, match=FINITE_MSG):
            est.predict(Xm)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_memmap_too_large_for_float32(cls, data, tmp_path):
    X, y_reg, y_clf = data
    y = y_clf if cls is MLPClassifier else y_reg
    Xb = X.copy()
    Xb[-1, 2] = 1e39
    Xm = np.load(write_npy(tmp_path / "X.npy", Xb), mmap_mode="r")
    with stream_chunk_bytes(64):
        with pytest.raises(ValueError, match=r"(?=.*too large)(?=.*float32)"):
            cls().fit(Xm, y)
        with pytest.raises(ValueError, match=r"(?=.*too large)(?=.*float32)"):
            cls(max_iter=2).fit(X, y).predict(Xm)
        # float64 holds it
        est = cls(dtype=np.float64, max_iter=2, solver="lbfgs").fit(Xm, y)
        assert np.isfinite(np.asarray(est.predict(Xm), dtype=float)).all()


def test_memmap_poisson_negative_y(data, tmp_path):
    Xm = np.load(write_npy(tmp_path / "X.npy", data[0]), mmap_mode="r")
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(Xm, data[1] - 10.0)


# ---- found in review --------------------------------------------------------------------------

def test_non_finite_weights_leave_no_model(data):
    X, y = data[0], data[1]
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=3e38,
                       momentum=0, max_iter=1, batch_size=64)
    with pytest.raises(ValueError):
        est.fit(X, 100 * y)
    _assert_unfitted(est, X)


def test_early_stopping_validation_overflow_is_a_clear_error(rng):
    X = rng.standard_normal((300, 4))
    y = X @ np.array([1.0, 2.0, 3.0, 4.0])
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=1e37,
                       momentum=0, max_iter=3, batch_size=64, early_stopping=True)
    with pytest.raises(ValueError, match="diverged"):
        est.fit(X, y)
    _assert_unfitted(est, X)


def test_lbfgs_max_fun_warns(data):
    from sklearn.exceptions import ConvergenceWarning
    with pytest.warns(ConvergenceWarning):
        MLPClassifier((7,), solver="lbfgs", max_fun=5).fit(data[0], data[2])
