"""HistGradientBoostingRegressor / Classifier on parml's histogram kernels: serial over
iterations, every tree grown with parallel histogram, split and partition kernels. The losses'
per-row math is in _gb_losses.py; scores, early stopping and progress display in _gb_scoring.py."""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import compute_sample_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from parml._core.forest import Forest
from parml._core.grower import grow_tree, make_bins, random_draws
from parml._core.persist import (Persistent, check_class_count, decode_value,
                                 encode_value)
from parml._core.rows import plain_rows
from parml._kernels import _boost as B
from parml._threads import effective_n_threads
from parml._kernels._tuner import Tuner

from . import _categorical as C
from . import _gb_losses as L
from ._gb_scoring import Progress, ScoreKeeper, scoring_constraint


class _NativeGradients:
    """The loss's gradients and hessians from the native kernel (parallel over rows, float32
    out, sample weights applied), for the losses that have one; ok is False otherwise and the
    loss's numpy gradients are used."""

    def __init__(self, loss, Y, sw):
        K = Y.shape[1]
        self.kind = loss.native(K) if hasattr(loss, "native") else None
        self.ok = self.kind is not None
        if not self.ok:
            return
        n = Y.shape[0]
        self.y = np.ascontiguousarray(Y[:, 0] if K == 1 else np.argmax(Y, axis=1), np.float64)
        self.sw = None if sw is None else np.ascontiguousarray(sw, np.float64)
        self.g = np.empty((K, n), np.float32)
        const_h = self.kind == "squared_error" and sw is None
        self.h = None if const_h else np.empty((K, n), np.float32)

    def __call__(self, raw, n_threads):
        B.gradients(self.kind, raw, self.y, self.sw, self.g, self.h, n_threads)
        K = self.g.shape[0]
        return [(self.g[k], None if self.h is None else self.h[k]) for k in range(K)]


class _BaseHGB(Persistent, BaseEstimator):
    def _save_state(self, put):
        forest = self._forest
        flat = forest.flat()
        for f in forest.keys() + ("roots", "tree_output"):
            put(f"_forest.{f}", flat[f] if flat is not None else np.zeros(0))
        if forest.known is not None:
            put("_forest.known", forest.known)
        put("_baseline", self._baseline)
        extra = {"_forest": {"n_outputs": int(forest.n_outputs),
                             "categorical": forest.known is not None}}
        cats = getattr(self, "_frame_categories", None)
        if cats:
            extra["_frame_categories"] = {str(i): [encode_value(c) for c in v]
                                          for i, v in cats.items()}
        return extra

    def _restore_state(self, extra, take):
        e = extra.pop("_forest")
        categorical = e.get("categorical", False) is True
        keys = Forest.KEYS + (Forest.CAT_KEYS if categorical else ()) + ("roots", "tree_output")
        flat = {f: take(f"_forest.{f}") for f in keys}
        known = take("_forest.known") if categorical else None
        n_out = e["n_outputs"]
        if not isinstance(n_out, int) or n_out < 1:
            raise ValueError("bad forest output count")
        d = getattr(self, "n_features_in_", None)
        if not isinstance(d, int) or d < 1:
            raise ValueError("n_features_in_ is missing or invalid")
        self._forest = Forest.from_flat(flat, n_out, d, known)
        self._baseline = take("_baseline")
        cats = extra.pop("_frame_categories", None)
        if cats is not None:
            try:
                self._frame_categories = {int(i): [decode_value(c) for c in v]
                                          for i, v in cats.items()}
            except (TypeError, ValueError, AttributeError):
                raise ValueError("bad categorical column categories") from None

    def _check_restored(self):
        if getattr(self, "classes_", None) is not None:
            check_class_count(len(self.classes_), self.n_trees_per_iteration_)

    _parameter_constraints: dict = {
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "l2_regularization": [Interval(Real, 0, None, closed="left")],
        "max_bins": [Interval(Integral, 2, 255, closed="both")],
        "categorical_features": ["array-like", StrOptions({"from_dtype"}), None],
        "warm_start": ["boolean"],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "scoring": scoring_constraint(),
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
                 categorical_features="from_dtype", warm_start=False, early_stopping="auto",
                 scoring="loss", validation_fraction=0.1, n_iter_no_change=10, tol=1e-7,
                 verbose=0, random_state=None, n_threads=None):
        self.loss = loss
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_bins = max_bins
        self.categorical_features = categorical_features
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.scoring = scoring
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.n_threads = n_threads

    # ---- the loss (per-row math in _gb_losses; these keep their meaning for parml.dask) -----
    def _baseline_of(self, Y, sw):
        """Raw score of the model before any tree, shape (K,)."""
        return self._loss_fn().baseline(Y, sw)

    def _gradients(self, raw, Y):
        """One (g, h) pair per output; h None for a constant hessian of 1."""
        return self._loss_fn().gradients(raw, Y)

    def _loss(self, raw, Y, sw):
        """The (weighted) mean loss of raw scores raw against Y."""
        return self._loss_fn().value(raw, Y, sw)

    # ---- input -------------------------------------------------------------------------------
    def _check_X(self, X, reset):
        if getattr(self, "_frame_categories", None):  # categorical dataframe columns -> codes
            X = C.encode_frame(X, self._frame_categories, fit=False)
        if reset or not plain_rows(self, X):  # plain float rows skip ~40 us of validation
            X = validate_data(self, X, dtype=[np.float64, np.float32], order="C",
                              ensure_all_finite="allow-nan", reset=reset)
        if np.isinf(X).any():
            raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
        return X

    def _finalize_sample_weight(self, sw, y):
        return sw

    def _validation_set(self, X_val, y_val, sample_weight_val):
        """The validated (X, y, Y, sw) of a validation set passed to fit."""
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be passed together.")
        if self.early_stopping is False:
            raise ValueError("X_val and y_val are for early stopping, which early_stopping=False "
                             "turns off; pass early_stopping='auto' or True.")
        X_val = self._check_X(X_val, reset=False)
        y_val = column_or_1d(y_val, warn=True)
        check_consistent_length(X_val, y_val)
        sw_val = None
        if sample_weight_val is not None:
            sw_val = _check_sample_weight(sample_weight_val, X_val, dtype=np.float64,
                                          ensure_non_negative=True)
        return X_val, y_val, self._encode_y_val(y_val), sw_val

    def _check_warm_start(self, n_features, outputs):
        """A warm start adds trees to the fitted ones: the data must have the same shape of
        features and outputs, and max_iter may not undercut the iterations already fitted."""
        if self.max_iter < self.n_iter_:
            raise ValueError(f"max_iter={self.max_iter} must be >= n_iter_={self.n_iter_} when "
                             "warm_start=True")
        if n_features != self.n_features_in_ or outputs != self._forest.n_outputs:
            raise ValueError("warm_start=True continues the fitted model, but X or y do not "
                             "match it (features, classes or outputs differ); fit with "
                             "warm_start=False to start over.")

    # ---- fitting -----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None, sample_weight_val=None):
        """Fit on X (n_samples, n_features; NaN = missing) and y. Returns self.

        X_val, y_val, sample_weight_val: a validation set for early stopping, used instead of
        holding out validation_fraction of X (not with early_stopping=False)."""
        self._validate_params()
        progress = Progress(self.verbose, self.max_iter)
        warm = bool(self.warm_start) and getattr(self, "n_iter_", 0) > 0 \
            and hasattr(self, "_forest")
        old = (self.n_features_in_, getattr(self, "classes_", None)) if warm else None
        cat_mask = C.resolve_mask(self.categorical_features, X)
        # a dataframe's categorical columns become codes of their categories (remembered at
        # the first fit; a warm start encodes with those, so codes keep their meaning)
        frame_cats = dict(getattr(self, "_frame_categories", {})) if warm else {}
        X = C.encode_frame(X, frame_cats, fit=not warm)
        if warm and not np.array_equal(cat_mask if cat_mask is not None else [],
                                       self.is_categorical_ if self.is_categorical_ is not None
                                       else []):
            raise ValueError("warm_start: the categorical features differ from the first fit's")
        # a warm start checks X against the fitted model (reset=False) and changes nothing
        # before the fit is accepted
        try:
            X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], order="C",
                                 ensure_all_finite="allow-nan", y_numeric=not self._is_clf,
                                 reset=not warm)
        except ValueError as e:
            if warm and "features" in str(e):
                raise ValueError(f"warm_start: X must have the first fit's features: {e}") from e
            raise
        if np.isinf(X).any():
            raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
        if cat_mask is not None:
            C.check_codes(X, cat_mask, self.max_bins)
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        kept = {k: getattr(self, k) for k in ("classes_", "n_trees_per_iteration_")
                if hasattr(self, k)}
        try:
            Y = self._encode_y(y)
            sw = self._finalize_sample_weight(sw, y)
            K = self.n_trees_per_iteration_
            if warm:
                if old[1] is not None and not np.array_equal(old[1], self.classes_):
                    K = -1  # other classes: refused below
                self._check_warm_start(old[0], K)
        except BaseException:
            for k, v in kept.items():  # a refused warm start leaves the model as it was
                setattr(self, k, v)
            raise
        self.is_categorical_ = cat_mask  # None when no feature is categorical (scikit-learn's)
        self._frame_categories = frame_cats
        val = None
        if X_val is not None or y_val is not None:
            val = self._validation_set(X_val, y_val, sample_weight_val)
        elif sample_weight_val is not None:
            raise ValueError("sample_weight_val was passed without X_val and y_val.")
        nt = effective_n_threads(self.n_threads)
        # the draws' order is random_draws's contract (a model loaded from disk keeps no
        # generator state: a warm start then draws afresh)
        rng, state = random_draws(self.random_state,
                                  getattr(self, "_rng_state", None) if warm else None)
        self._rng_state = state
        n = X.shape[0]
        es = self.early_stopping if self.early_stopping != "auto" else n > 10_000
        self.do_early_stopping_ = bool(es)
        if self.do_early_stopping_ and val is None and self.validation_fraction is not None:
            tr, va = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                      stratify=y if self._is_clf else None, random_state=rng)
            tr, va = np.sort(tr), np.sort(va)
            train = (X[tr], y[tr], Y[tr], None if sw is None else sw[tr])
            val = (X[va], y[va], Y[va], None if sw is None else sw[va])
        else:
            train = (X, y, Y, sw)
            if not self.do_early_stopping_:
                val = None  # scikit-learn ignores a validation set it does not stop on
        Xt, _, Yt, swt = train
        Xv = None if val is None else val[0]
        data = make_bins(Xt, self.max_bins, random_state=rng.randint(2**31), n_threads=nt,
                         is_cat=cat_mask)
        score_seed = rng.randint(2**31)
        loss = self._loss_fn()
        if warm:
            if cat_mask is not None:  # categories new in this fit become known ones
                self._forest.known = self._forest.known | C.known_categories(
                    data.B, cat_mask, data.missing_bin)
                self._forest._flat = None
            raw = self._forest.predict(Xt, np.tile(self._baseline, (len(Xt), 1)), nt)
            raw_val = None if Xv is None else \
                self._forest.predict(Xv, np.tile(self._baseline, (len(Xv), 1)), nt)
            self.train_score_ = list(self.train_score_)
            self.validation_score_ = list(self.validation_score_)
        else:
            self._baseline = self._baseline_of(Yt, swt)
            raw = np.tile(self._baseline, (len(Xt), 1))
            raw_val = None if Xv is None else np.tile(self._baseline, (len(Xv), 1))
            self._forest = Forest(K)
            if cat_mask is not None:  # categories seen in training; others are missing later
                self._forest.known = C.known_categories(data.B, cat_mask, data.missing_bin)
            self.train_score_, self.validation_score_ = [], []
            self.n_iter_ = 0
        keeper = None
        if self.do_early_stopping_:
            keeper = ScoreKeeper(self, train, val, score_seed)
            if not warm:
                keeper.record(raw, raw_val)  # the first score is the model before any tree
        l2 = float(self.l2_regularization)
        stop = False
        progress.begin()
        native = _NativeGradients(loss, Yt, swt)
        # iterations are alike: measure whether nt threads beat one (a busy core makes the
        # many short parallel regions of an iteration wait for a preempted helper)
        tuner = self._thread_tuner = Tuner(nt, "iterations",
                                           adapt=len(Xt) * Xt.shape[1] >= 2**20)
        for it in range(self.n_iter_, self.max_iter):
            t_it = time.perf_counter()
            nt = tuner.threads()
            grads = native(raw, nt) if native.ok else self._gradients(raw, Yt)
            trees = []
            for k, (g, h) in enumerate(grads):
                if swt is not None and not native.ok:
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
                if not loss.differentiable:  # absolute error, quantile: leaf values by residuals
                    L.refit_leaf_values(loss, arrays["value"], leaves, Yt[:, k], raw[:, k], swt,
                                        self.learning_rate)
                sp = np.array([(j, a, b) for j, (a, b) in tree.leaf_spans.items()],
                              dtype=np.int64).reshape(-1, 3)
                B.add_leaf_values(raw, k, tree.rows_buffer, sp[:, 1].copy(), sp[:, 2].copy(),
                                  arrays["value"][sp[:, 0]], nt,
                                  checked=True)  # leaves are disjoint spans of a permutation
                self._forest.add(arrays, k)
                trees.append(tree)
                if raw_val is not None:
                    part = Forest(K)
                    part.known = self._forest.known
                    part.add(arrays, k)
                    part.predict(Xv, raw_val, nt)
            self.n_iter_ = it + 1
            tuner.record(time.perf_counter() - t_it)
            if keeper is not None:
                stop = keeper.record(raw, raw_val)
            progress.update(self.n_iter_, "" if keeper is None else keeper.describe(), trees)
            if stop:
                break
        self.train_score_ = np.asarray(self.train_score_, dtype=np.float64)
        self.validation_score_ = np.asarray(self.validation_score_, dtype=np.float64)
        if progress.level:
            f = self._forest.flat()
            progress.close(len(self._forest.parts), self.n_iter_,
                           0 if f is None else int((f["left"] < 0).sum()), stop)
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
            part = Forest(K)
            part.known = self._forest.known
            for arrays, k in self._forest.parts[it * K:(it + 1) * K]:
                part.add(arrays, k)
            part.predict(X, out, nt)
            yield out.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


_COMMON_DOC = """
    Parameters and attributes are scikit-learn's (see its documentation), plus ``n_threads``
    (None: all available cores, see parml's threading notes), with these differences:

    - ``categorical_features``: None, "from_dtype" (a dataframe's categorical columns), a
      boolean mask, integer indices or feature names, as in scikit-learn. Categorical values are
      integer codes below max_bins (NaN and negative values are missing); a split sends a set of
      categories left, and categories not seen in training follow the missing direction.
    - ``verbose``: progress on stderr; 1 shows one line updated in place (iteration, time
      elapsed and left, the latest train/validation loss or score when early stopping computes
      them) and a summary at the end; 2 prints one line per iteration.
    - ``scoring``: "loss", any scikit-learn scorer name, a callable ``scorer(est, X, y)``, or
      None (the estimator's ``score``), evaluated as scikit-learn does: on the validation set
      when there is one, and on at most 10,000 training rows drawn with the fit's random state
      (stratified for classifiers). ``train_score_`` and ``validation_score_`` hold one entry
      before the first tree and one per iteration (n_iter_ + 1), higher is better (the negated
      loss for "loss"). ``early_stopping=True`` with ``validation_fraction=None`` stops on the
      training scores.
    - ``warm_start``: adds trees to the fitted ones, on the first fit's validation split (a
      model loaded from disk draws a new one).
    - ``fit`` accepts ``X_val``, ``y_val``, ``sample_weight_val`` (scikit-learn >= 1.7).
    - Not available: ``max_features``, ``monotonic_cst``, ``interaction_cst``.
"""


class HistGradientBoostingRegressor(RegressorMixin, _BaseHGB):
    __doc__ = """Histogram gradient boosting for regression.

    ``loss``: "squared_error", "absolute_error" (trees fitted to the gradient sign, each leaf
    value then re-set to the weighted median of its rows' residuals, as in scikit-learn),
    "quantile" (the same with the ``quantile``-quantile), "poisson" and "gamma" (log link:
    predictions are exp of the raw score). NaN in X means missing: each split learns where it
    goes. Medians and quantiles (baseline, leaf values) use the averaged inverted CDF: always a
    minimiser of the loss over the rows, np.median when unweighted, and an integer sample weight
    k acts exactly like k copies of a row. scikit-learn differs for weighted rows and, for
    "quantile", interpolates unweighted quantiles linearly.
""" + _COMMON_DOC

    _is_clf = False
    _parameter_constraints = {**_BaseHGB._parameter_constraints,
                              "loss": [StrOptions(set(L.REGRESSION_LOSSES))],
                              "quantile": [Interval(Real, 0, 1, closed="neither"), None]}

    def __init__(self, loss="squared_error", *, quantile=None, learning_rate=0.1, max_iter=100,
                 max_leaf_nodes=31, max_depth=None, min_samples_leaf=20, l2_regularization=0.0,
                 max_bins=255, categorical_features="from_dtype", warm_start=False,
                 early_stopping="auto", scoring="loss", validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-7, verbose=0, random_state=None, n_threads=None):
        super().__init__(loss, learning_rate=learning_rate, max_iter=max_iter,
                         max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
                         min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
                         max_bins=max_bins, categorical_features=categorical_features,
                         warm_start=warm_start, early_stopping=early_stopping, scoring=scoring,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, tol=tol, verbose=verbose,
                         random_state=random_state, n_threads=n_threads)
        self.quantile = quantile

    def _loss_fn(self):
        return L.get_loss(self.loss, self.quantile)

    def _encode_y_val(self, y):
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
        self._loss_fn().check_y(y)
        return y.reshape(-1, 1)

    def _encode_y(self, y):
        Y = self._encode_y_val(y)
        self.n_trees_per_iteration_ = 1
        return Y

    def predict(self, X):
        """Predictions, shape (n_samples,)."""
        return self._loss_fn().inverse_link(self._raw(X)[:, 0])

    def staged_predict(self, X):
        """Predictions after each iteration (a generator)."""
        inverse = self._loss_fn().inverse_link
        for raw in self._staged_raw(X):
            yield inverse(raw[:, 0])


class HistGradientBoostingClassifier(ClassifierMixin, _BaseHGB):
    __doc__ = """Histogram gradient boosting for classification.

    Log loss: one tree per iteration for two classes, one per class for more. ``class_weight``
    ("balanced" or {label: weight}) multiplies the sample weights, as in scikit-learn. NaN in X
    means missing: each split learns where it goes.
""" + _COMMON_DOC

    _is_clf = True
    _parameter_constraints = {**_BaseHGB._parameter_constraints,
                              "loss": [StrOptions({"log_loss"})],
                              "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, loss="log_loss", *, learning_rate=0.1, max_iter=100, max_leaf_nodes=31,
                 max_depth=None, min_samples_leaf=20, l2_regularization=0.0, max_bins=255,
                 categorical_features="from_dtype", warm_start=False, early_stopping="auto",
                 scoring="loss", validation_fraction=0.1, n_iter_no_change=10, tol=1e-7,
                 verbose=0, random_state=None, class_weight=None, n_threads=None):
        super().__init__(loss, learning_rate=learning_rate, max_iter=max_iter,
                         max_leaf_nodes=max_leaf_nodes, max_depth=max_depth,
                         min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
                         max_bins=max_bins, categorical_features=categorical_features,
                         warm_start=warm_start, early_stopping=early_stopping, scoring=scoring,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, tol=tol, verbose=verbose,
                         random_state=random_state, n_threads=n_threads)
        self.class_weight = class_weight

    def _loss_fn(self):
        return L.LogLoss()

    def _targets(self, yi):
        """Encoded class indices as the loss's Y: one 0/1 column for two classes, else one-hot."""
        K = len(self.classes_)
        if K == 2:
            return yi.reshape(-1, 1).astype(np.float64)
        return np.eye(K)[yi]

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
        return self._targets(yi)

    def _encode_y_val(self, y):
        yi = np.searchsorted(self.classes_, y)
        known = (yi < len(self.classes_)) & (self.classes_[np.minimum(yi, len(self.classes_) - 1)]
                                             == y)
        if not known.all():
            raise ValueError(f"y_val has labels not seen in y: {np.unique(y[~known])[:5]}")
        return self._targets(yi)

    def _finalize_sample_weight(self, sw, y):
        """class_weight multiplies each row's sample weight by its class's weight."""
        if self.class_weight is None:
            return sw
        cw = compute_sample_weight(self.class_weight, y)
        return cw if sw is None else sw * cw

    def _proba(self, raw):
        return L.LogLoss().inverse_link(raw)

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

    def staged_decision_function(self, X):
        """Raw scores after each iteration (a generator), shaped as decision_function's."""
        for raw in self._staged_raw(X):
            yield raw[:, 0] if raw.shape[1] == 1 else raw
