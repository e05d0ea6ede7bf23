"""Input every parml estimator must refuse the same way: strings, objects, complex and sparse X."""

import numpy as np
import pytest
import scipy.sparse as sp

from parml.linear_model import (LinearRegression, LinearSVC, LogisticRegression, Ridge,
                                SGDClassifier, SGDRegressor)
from parml.neural_network import MLPClassifier, MLPRegressor
from npy_files import write_npy

# name -> (factory, is_regressor)
ESTIMATORS = {
    "LinearRegression": (LinearRegression, True),
    "Ridge": (Ridge, True),
    "SGDRegressor": (SGDRegressor, True),
    "LogisticRegression": (LogisticRegression, False),
    "LinearSVC": (LinearSVC, False),
    "SGDClassifier": (SGDClassifier, False),
    "MLPClassifier": (lambda: MLPClassifier((4,), max_iter=5), False),
    "MLPClassifier-lbfgs": (lambda: MLPClassifier((4,), solver="lbfgs", max_iter=5), False),
    "MLPRegressor": (lambda: MLPRegressor(hidden_layer_sizes=(4,), max_iter=5), True),
}
names = pytest.mark.parametrize("name", list(ESTIMATORS))
reg_names = pytest.mark.parametrize("name", [k for k, (_, reg) in ESTIMATORS.items() if reg])
clf_names = pytest.mark.parametrize("name", [k for k, (_, reg) in ESTIMATORS.items() if not reg])


@pytest.fixture
def data(rng):
    X = rng.standard_normal((40, 3))
    y_reg = np.abs(X @ np.array([1.0, -2.0, 0.5]))
    y_clf = (X[:, 0] > 0).astype(int)
    return X, y_reg, y_clf


def _make(name, data):
    factory, is_reg = ESTIMATORS[name]
    return factory(), data[1] if is_reg else data[2]


@names
@pytest.mark.parametrize("kind", ["str", "object", "mixed-object"])
def test_string_features(name, kind, data):
    est, y = _make(name, data)
    if kind == "str":
        X = np.array([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]])
    elif kind == "object":
        X = np.array([["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]], dtype=object)
    else:
        X = np.array([[1.0, "x"], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]], dtype=object)
    with pytest.raises((ValueError, TypeError), match=r"(?i)string|float|number"):
        est.fit(X, y[:4])


@names
def test_string_features_predict(name, data):
    est, y = _make(name, data)
    est.fit(data[0], y)
    with pytest.raises((ValueError, TypeError), match=r"(?i)string|float"):
        est.predict(np.array([["a", "b", "c"]]))


@names
def test_complex_X(name, data):
    est, y = _make(name, data)
    with pytest.raises(ValueError, match=r"(?i)complex"):
        est.fit(data[0].astype(np.complex128), y)


@names
def test_sparse_X_rejected(name, data):
    est, y = _make(name, data)
    with pytest.raises(TypeError, match=r"(?i)sparse"):
        est.fit(sp.csr_matrix(data[0]), y)


@names
def test_memmap_bad_inputs(name, data, tmp_path):
    est, y = _make(name, data)
    X = data[0]
    Xs = np.load(write_npy(tmp_path / "s.npy", np.full(X.shape, "ab")), mmap_mode="r")
    with pytest.raises(TypeError, match="numbers"):
        est.fit(Xs, y)
    Xc = np.load(write_npy(tmp_path / "c.npy", X.astype(np.complex128)), mmap_mode="r")
    with pytest.raises(TypeError, match="numbers"):
        est.fit(Xc, y)
    X1 = np.load(write_npy(tmp_path / "one.npy", X[:, 0].copy()), mmap_mode="r")
    with pytest.raises(ValueError, match="2-D"):
        est.fit(X1, y)
    Xm = np.load(write_npy(tmp_path / "X.npy", X), mmap_mode="r")
    with pytest.raises(ValueError, match="must match"):
        est.fit(Xm, y[:-1])
    with pytest.raises(ValueError, match="requires y"):
        est.fit(Xm, None)
    with pytest.raises(ValueError, match=r"(?i)sample_weight|shape"):
        est.fit(Xm, y, sample_weight=np.ones(3))
    est.fit(Xm, y)
    X2 = np.load(write_npy(tmp_path / "X2.npy", X[:, :2].copy()), mmap_mode="r")
    with pytest.raises(ValueError, match="features"):
        est.predict(X2)


@names
@pytest.mark.parametrize("shape", ["1d", "3d", "scalar"])
def test_wrong_X_ndim(name, shape, data):
    est, y = _make(name, data)
    X = data[0]
    Xb = {"1d": X[:, 0], "3d": X[:, :, None], "scalar": np.float64(1.0)}[shape]
    with pytest.raises(ValueError, match=r"(?i)2D|dim"):
        est.fit(Xb, y)


@names
def test_wrong_X_ndim_predict(name, data):
    est, y = _make(name, data)
    X = data[0]
    est.fit(X, y)
    with pytest.raises(ValueError, match=r"(?i)2D|dim"):
        est.predict(X[0])
    with pytest.raises(ValueError, match=r"(?i)2D|dim"):
        est.predict(X[:, :, None])


@names
@pytest.mark.parametrize("delta", [-1, +1])
def test_y_wrong_length(name, delta, data):
    est, y = _make(name, data)
    yb = y[:-1] if delta < 0 else np.r_[y, y[:1]]
    with pytest.raises(ValueError, match=r"(?i)samples|inconsistent"):
        est.fit(data[0], yb)


@names
@pytest.mark.parametrize("n", [39, 41])
def test_sample_weight_wrong_length(name, n, data):
    est, y = _make(name, data)
    with pytest.raises(ValueError, match=r"(?i)sample_weight|shape"):
        est.fit(data[0], y, sample_weight=np.ones(n))
    with pytest.raises(ValueError, match=r"(?i)1D|sample weight"):
        est.fit(data[0], y, sample_weight=np.ones((len(y), 1)))


@names
def test_empty_and_featureless_X(name, data):
    est, y = _make(name, data)
    X = data[0]
    with pytest.raises(ValueError, match=r"(?i)0 sample"):
        est.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match=r"(?i)0 feature"):
        est.fit(X[:, :0], y)


@names
@pytest.mark.parametrize("n_features", [2, 4])
def test_predict_different_n_features(name, n_features, data, rng):
    est, y = _make(name, data)
    est.fit(data[0], y)
    with pytest.raises(ValueError, match="features"):
        est.predict(rng.standard_normal((5, n_features)))


@reg_names
def test_memmap_nonfinite_y_regressor(name, data, tmp_path):
    est, y = _make(name, data)
    y = y.copy()
    y[-1] = np.nan
    Xm = np.load(write_npy(tmp_path / "X.npy", data[0]), mmap_mode="r")
    with pytest.raises(ValueError, match=r"(?i)nan"):
        est.fit(Xm, y)


@clf_names
def test_memmap_single_class(name, data, tmp_path):
    est, _ = _make(name, data)
    Xm = np.load(write_npy(tmp_path / "X.npy", data[0]), mmap_mode="r")
    with pytest.raises(ValueError, match="class"):
        est.fit(Xm, np.ones(len(data[0]), dtype=int))
