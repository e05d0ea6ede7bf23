"""HistGradientBoostingRegressor / Classifier on parml's histogram kernels: serial over
iterations, every tree grown with parallel histogram, split and partition kernels."""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from parml._kernels import _tree_predict as TP
from parml._threads import effective_n_threads
from parml.linear_model._data import plain_rows

from ._grower import grow_tree, make_bins


def _expit(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable logistic


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _Forest:
    """Trees of all iterations as flat node arrays (what the prediction kernel walks)."""

    def __init__(self, n_outputs):
        self.n_outputs = n_outputs
        self.parts = []          # (tree arrays, output)
        self._flat = None

    KEYS = ("feature", "threshold", "missing_left", "left", "right", "value")

    @classmethod
    def from_flat(cls, flat, n_outputs, n_features):
        """The forest of flat arrays (as saved by parml.save), structure checked."""
        TP.check_forest(*(flat[k] for k in cls.KEYS), flat["roots"], flat["tree_output"],
                        n_features, n_outputs)
        f = cls(n_outputs)
        bounds = list(flat["roots"]) + [len(flat["value"])]
        for t, out in enumerate(flat["tree_output"]):
            lo, hi = int(bounds[t]), int(bounds[t + 1])
            f.parts.append(({k: flat[k][lo:hi] for k in cls.KEYS}, int(out)))
        f._flat = flat  # predict walks the loaded (memory-mapped, shared) arrays directly
        return f

    def add(self, arrays, output):
        self.parts.append((arrays, output))
        self._flat = None

    def flat(self):
        """All trees as one set of node arrays (cached; None without trees)."""
        if self._flat is None and self.parts:
            flat = {k: np.concatenate([a[k] for a, _ in self.parts]) for k in self.KEYS}
            sizes = [len(a["value"]) for a, _ in self.parts]
            flat["roots"] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            flat["tree_output"] = np.array([o for _, o in self.parts], dtype=np.int32)
            self._flat = flat
        return self._flat

    def predict(self, X, out, n_threads, checked=True):
        """out += the trees' leaf values for the rows of X (out: n x n_outputs float64)."""
        f = self.flat()
        if f is None:
            return out
        return TP.predict_forest(X, *(f[k] for k in self.KEYS), f["roots"], f["tree_output"],
                                 self.n_outputs, n_threads=n_threads, out=out, checked=checked)


class _BaseHGB(BaseEstimator):
    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "l2_regularization": [Interval(Real, 0, None, closed="left")],
        "max_bins": [Interval(Integral, 2, 255, closed="both")],
        "categorical_features": [None, StrOptions({"from_dtype"})],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "scoring": [StrOptions({"loss"}), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"),
                                Interval(Integral, 1, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "n_threads": [None, Integral],
    }

    def __init__(self, loss, *, learning_rate=0.1, max_iter=100, max_leaf_nodes=31,
                 max_depth=None, min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                 categorical_features="from_dtype", early_stopping="auto", scoring="loss",
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-7, verbose=0,
                 random_state=None, n_threads=None):
        self.loss = loss
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.n_threads = n_threads

    # ---- input -------------------------------------------------------------------------------
    def _check_X(self, X, reset):
        if reset or not plain_rows(self, X):  # plain float rows skip ~40 us of validation
            X = validate_data(self, X, dtype=[np.float64, np.float32], order="C",
                              ensure_all_finite="allow-nan", reset=reset)
        if np.isinf(X).any():
            raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
        return X

    # ---- fitting -----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features; NaN = missing) and y. Returns self."""
        self._validate_params()
        t0 = time.perf_counter()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C",
                             ensure_all_finite="allow-nan", y_numeric=not self._is_clf)
        if np.isinf(X).any():
            raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        Y = self._encode_y(y)
        nt = effective_n_threads(self.n_threads)
        rng = check_random_state(self.random_state)
        n = X.shape[0]
        es = self.early_stopping if self.early_stopping != "auto" else n > 10_000
        self.do_early_stopping_ = bool(es and self.validation_fraction is not None)
        if self.do_early_stopping_:
            strat = y if self._is_clf else None
            idx = np.arange(n)
            tr, va = train_test_split(idx, test_size=self.validation_fraction, stratify=strat,
                                      random_state=rng)
            tr, va = np.sort(tr), np.sort(va)
            Xt, Yt, Xv, Yv = X[tr], Y[tr], X[va], Y[va]
            swt = None if sw is None else sw[tr]
            swv = None if sw is None else sw[va]
        else:
            Xt, Yt, swt, Xv = X, Y, sw, None
        data = make_bins(Xt, self.max_bins, random_state=rng.randint(2**31), n_threads=nt)
        K = self.n_trees_per_iteration_
        self._baseline = self._baseline_of(Yt, swt)
        raw = np.tile(self._baseline, (len(Xt), 1))
        raw_val = None if Xv is None else np.tile(self._baseline, (len(Xv), 1))
        self._forest = _Forest(K)
        self.train_score_, self.validation_score_ = [], []
        l2 = float(self.l2_regularization)
        for it in range(self.max_iter):
            grads = self._gradients(raw, Yt)
            for k, (g, h) in enumerate(grads):
                if swt is not None:
                    g = g * swt
                    h = (h if h is not None else np.ones_like(g)) * swt
                g32 = np.ascontiguousarray(g, np.float32)
                h32 = None if h is None else np.ascontiguousarray(h, np.float32)
                tree, leaves = grow_tree(
                    data, g32, h32, max_leaf_nodes=self.max_leaf_nodes or 2**31 - 1,
                    max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf, l2=l2,
                    hconst=1.0 if h32 is None else 0.0, n_threads=nt,
                    strategy="features" if Xt.shape[1] >= 2 * nt else "samples")
                arrays = tree.arrays()
                arrays["value"] *= self.learning_rate
                for leaf, rows in leaves.items():
                    raw[rows, k] += arrays["value"][leaf]
                self._forest.add(arrays, k)
                if raw_val is not None:
                    part = _Forest(K)
                    part.add(arrays, k)
                    part.predict(Xv, raw_val, nt)
            self.n_iter_ = it + 1
            if self.do_early_stopping_:
                self.train_score_.append(-self._loss(raw, Yt, swt))
                self.validation_score_.append(-self._loss(raw_val, Yv, swv))
                if self.verbose:
                    print(f"[{it + 1}/{self.max_iter}] train loss {-self.train_score_[-1]:.5f} "
                          f"val loss {-self.validation_score_[-1]:.5f} "
                          f"({time.perf_counter() - t0:.2f} s)")
                if self._should_stop(self.validation_score_):
                    break
            elif self.verbose:
                print(f"[{it + 1}/{self.max_iter}] ({time.perf_counter() - t0:.2f} s)")
        self.train_score_ = np.asarray(self.train_score_)
        self.validation_score_ = np.asarray(self.validation_score_)
        return self

    def _should_stop(self, scores):
        """scikit-learn's rule: stop when none of the last n_iter_no_change scores beats the
        one before them by more than tol."""
        ref = self.n_iter_no_change + 1
        if len(scores) < ref:
            return False
        base = scores[-ref] + self.tol
        return not any(s > base for s in scores[-ref + 1:])

    # ---- prediction ----------------------------------------------------------------------------
    def _raw(self, X):
        check_is_fitted(self, "_forest")
        X = self._check_X(X, reset=False)
        out = np.tile(self._baseline, (X.shape[0], 1))
        return self._forest.predict(X, out, effective_n_threads(self.n_threads))

    def _staged_raw(self, X):
        check_is_fitted(self, "_forest")
        X = self._check_X(X, reset=False)
        K = self.n_trees_per_iteration_
        out = np.tile(self._baseline, (X.shape[0], 1))
        nt = effective_n_threads(self.n_threads)
        for it in range(self.n_iter_):
            part = _Forest(K)
            for arrays, k in self._forest.parts[it * K:(it + 1) * K]:
                part.add(arrays, k)
            part.predict(X, out, nt)
            yield out.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class HistGradientBoostingRegressor(RegressorMixin, _BaseHGB):
    """Histogram gradient boosting for regression (loss "squared_error"); scikit-learn's
    parameters plus ``n_threads``. NaN in X means missing: each split learns where it goes."""

    _is_clf = False
    _parameter_constraints = {**_BaseHGB._parameter_constraints,
                              "loss": [StrOptions({"squared_error"})]}

    def __init__(self, loss="squared_error", *, learning_rate=0.1, max_iter=100,
                 max_leaf_nodes=31, max_depth=None, min_samples_leaf=20, l2_regularization=0.0,
                 max_bins=255, categorical_features="from_dtype", early_stopping="auto",
                 scoring="loss", validation_fraction=0.1, n_iter_no_change=10, tol=1e-7,
                 verbose=0, random_state=None, n_threads=None):
        super().__init__(loss, learning_rate=learning_rate, max_iter=max_iter,
                         max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
                         min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
                         max_bins=max_bins, categorical_features=categorical_features,
                         early_stopping=early_stopping, scoring=scoring,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, tol=tol, verbose=verbose,
                         random_state=random_state, n_threads=n_threads)

    def _encode_y(self, y):
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
        self.n_trees_per_iteration_ = 1
        return y.reshape(-1, 1)

    def _baseline_of(self, Y, sw):
        return np.array([np.average(Y[:, 0], weights=sw)])

    def _gradients(self, raw, Y):
        return [(raw[:, 0] - Y[:, 0], None)]

    def _loss(self, raw, Y, sw):
        return 0.5 * float(np.average((raw[:, 0] - Y[:, 0]) ** 2, weights=sw))

    def predict(self, X):
        """Predictions, shape (n_samples,)."""
        return self._raw(X)[:, 0]

    def staged_predict(self, X):
        """Predictions after each iteration (a generator)."""
        for raw in self._staged_raw(X):
            yield raw[:, 0]


class HistGradientBoostingClassifier(ClassifierMixin, _BaseHGB):
    """Histogram gradient boosting for classification (log loss: one tree per iteration for two
    classes, one per class for more); scikit-learn's parameters plus ``n_threads``."""

    _is_clf = True
    _parameter_constraints = {**_BaseHGB._parameter_constraints,
                              "loss": [StrOptions({"log_loss"})]}

    def __init__(self, loss="log_loss", *, learning_rate=0.1, max_iter=100, max_leaf_nodes=31,
                 max_depth=None, min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                 categorical_features="from_dtype", early_stopping="auto", scoring="loss",
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-7, verbose=0,
                 random_state=None, n_threads=None):
        super().__init__(loss, learning_rate=learning_rate, max_iter=max_iter,
                         max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
                         min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
                         max_bins=max_bins, categorical_features=categorical_features,
                         early_stopping=early_stopping, scoring=scoring,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, tol=tol, verbose=verbose,
                         random_state=random_state, n_threads=n_threads)

    def _encode_y(self, y):
        from sklearn.utils.multiclass import check_classification_targets
        check_classification_targets(y)
        enc = LabelEncoder()
        yi = enc.fit_transform(y)
        self.classes_ = enc.classes_
        K = len(self.classes_)
        if K < 2:
            raise ValueError(f"HistGradientBoostingClassifier needs at least 2 classes in y; y "
                             f"has only one class: {self.classes_[0]!r}")
        self.n_trees_per_iteration_ = 1 if K == 2 else K
        if K == 2:
            return yi.reshape(-1, 1).astype(np.float64)
        return np.eye(K)[yi]

    def _baseline_of(self, Y, sw):
        eps = np.finfo(np.float64).eps
        p = np.clip(np.average(Y, axis=0, weights=sw), eps, 1 - eps)
        if Y.shape[1] == 1:
            return np.log(p / (1 - p))
        return np.log(p)

    def _gradients(self, raw, Y):
        if Y.shape[1] == 1:
            p = _expit(raw[:, 0])
            return [(p - Y[:, 0], p * (1 - p))]
        P = _softmax(raw)
        return [(P[:, k] - Y[:, k], P[:, k] * (1 - P[:, k])) for k in range(Y.shape[1])]

    def _loss(self, raw, Y, sw):
        eps = 1e-15
        if Y.shape[1] == 1:
            p = np.clip(_expit(raw[:, 0]), eps, 1 - eps)
            ll = -(Y[:, 0] * np.log(p) + (1 - Y[:, 0]) * np.log(1 - p))
        else:
            ll = -np.log(np.clip((_softmax(raw) * Y).sum(axis=1), eps, None))
        return float(np.average(ll, weights=sw))

    def _proba(self, raw):
        if raw.shape[1] == 1:
            p = _expit(raw[:, 0])
            return np.column_stack([1 - p, p])
        return _softmax(raw)

    def decision_function(self, X):
        """Raw scores: shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        raw = self._raw(X)
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes)."""
        return self._proba(self._raw(X))

    def predict(self, X):
        """Predicted labels."""
        proba = self.predict_proba(X)  # raises NotFittedError first
        return self.classes_[np.argmax(proba, axis=1)]

    def staged_predict(self, X):
        """Predicted labels after each iteration (a generator)."""
        for raw in self._staged_raw(X):
            yield self.classes_[np.argmax(self._proba(raw), axis=1)]

    def staged_predict_proba(self, X):
        """Class probabilities after each iteration (a generator)."""
        for raw in self._staged_raw(X):
            yield self._proba(raw)
