"""RandomForestClassifier / RandomForestRegressor: X binned once, then every tree grown natively
as one task of a parallel-for (trees in parallel), each on its own random stream, so the forest
is the same for any n_threads."""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from parml._threads import effective_n_threads
from parml._core import trees as TB
from parml.tree import DecisionTreeClassifier, DecisionTreeRegressor


class _BaseForest(TB.FlatTreesPersistent, BaseEstimator):
    _parameter_constraints: dict = {
        **TB.TREE_CONSTRAINTS,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "oob_score": ["boolean", callable],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "max_samples": [None, Interval(Real, 0.0, 1.0, closed="right"),
                        Interval(Integral, 1, None, closed="left")],
    }

    def fit(self, X, y, sample_weight=None):
        """Grow the forest on X (n_samples, n_features; NaN = missing) and y. With
        warm_start=True and more n_estimators than already grown, only the new trees are grown
        (on the bins of the first fit)."""
        self._validate_params()
        TB.check_unsupported(self)
        t0 = time.perf_counter()
        if not self.bootstrap and (self.oob_score or self.max_samples is not None):
            raise ValueError("oob_score and max_samples need bootstrap=True")
        X, y = TB.check_X_fit(self, X, y, self._is_clf)
        n, d = X.shape
        nt = effective_n_threads(self.n_threads if self.n_threads is not None else self.n_jobs)
        cw = self.class_weight if self._is_clf else None
        if cw == "balanced_subsample" and not self.bootstrap:
            cw = "balanced"  # without a subsample it is the same thing (scikit-learn's rule)
        if self._is_clf:
            classes, yi = TB.encode_classes(y)
            K, target = len(classes), yi
            base_w = TB.base_weights(sample_weight, X, cw, classes, yi, weighted_balance=True)
        else:
            classes, K, target = None, 1, np.ascontiguousarray(y)
            base_w = TB.base_weights(sample_weight, X, None, None, None)
        old = self._trees if self.warm_start and hasattr(self, "_flat") else []
        if old and self.n_estimators < len(old):
            raise ValueError(f"n_estimators={self.n_estimators} must be larger or equal to "
                             f"len(estimators_)={len(old)} when warm_start==True")
        if old and not hasattr(self, "_edges"):
            raise ValueError("warm_start needs the first fit's bins, which a loaded model does "
                             "not keep; fit a new forest")
        if old and self.n_estimators == len(old):
            warnings.warn("Warm-start fitting without increasing n_estimators does not fit new "
                          "trees.", UserWarning)
        if old:  # the first fit's bin edges and seed sequence: the new trees continue it
            data = TB.rebin(X, self._edges, self._missing_bin, nt)
            seed_seq = self._seed_seq
        else:
            rng = check_random_state(self.random_state)
            data = TB.bins_for(X, self.max_bins, rng.randint(2**31), nt, base_w)
            seed_seq = int(rng.randint(2**31))
        # tree i's seed depends on (random_state, i) only: warm starts continue the sequence
        seeds = np.random.default_rng(seed_seq).integers(
            0, 2**63 - 1, size=self.n_estimators, dtype=np.int64).astype(np.uint64)
        mf = TB.resolve_max_features(self.max_features, d)
        n_boot = TB.n_bootstrap(self.max_samples, n, base_w) if self.bootstrap else n
        new = []
        if self.n_estimators > len(old):
            crit = "entropy" if self.criterion == "log_loss" else self.criterion
            new = TB.build(self, data, target, K, crit, base_w, seeds[len(old):],
                           max_features=mf, bootstrap=self.bootstrap, n_boot=n_boot,
                           balanced_subsample=cw == "balanced_subsample", n_threads=nt)
        self._flat = TB.flatten(old + new)
        self._seeds = seeds
        self._edges, self._missing_bin, self._seed_seq = data.edges, data.missing_bin, seed_seq
        self.n_outputs_ = 1
        self.max_features_ = mf
        if self._is_clf:
            self.classes_, self.n_classes_ = classes, K
        if self.oob_score:
            self._set_oob(data, target, base_w, n_boot, nt)
        if self.verbose:
            print(f"{type(self).__name__}: {len(new)} trees in {time.perf_counter() - t0:.2f} s "
                  f"({nt} threads)")
        return self

    @property
    def _trees(self):
        """Per-tree node arrays: views into the flat arrays."""
        return TB.unflatten(self._flat)

    def _set_oob(self, data, target, base_w, n_boot, nt):
        W = self._flat["value"].shape[1]
        mean, has = TB.oob(data, self._flat, self._seeds, n_boot, base_w, W, nt)
        if self._is_clf:
            self.oob_decision_function_ = mean
            y_true, y_pred = target, np.argmax(mean, axis=1)
            default = accuracy_score
        else:
            self.oob_prediction_ = mean[:, 0]
            y_true, y_pred = target, mean[:, 0]
            default = r2_score
        score = self.oob_score if callable(self.oob_score) else default
        self.oob_score_ = float(score(y_true, y_pred))

    def _mean(self, X):
        check_is_fitted(self, "_flat")
        X = TB.check_X_predict(self, X)
        W = self._flat["value"].shape[1]
        return TB.predict_sum(self._flat, X, W, self._predict_threads()) / len(self)

    def _predict_threads(self):
        return effective_n_threads(self.n_threads if self.n_threads is not None else self.n_jobs)

    @property
    def feature_importances_(self):
        """Mean decrease in impurity, averaged over trees (scikit-learn's definition)."""
        check_is_fitted(self, "_flat")
        imps = [TB.importances(t, self.n_features_in_) for t in self._trees if len(t["left"]) > 1]
        if not imps:
            return np.zeros(self.n_features_in_)
        m = np.mean(imps, axis=0)
        return m / m.sum() if m.sum() > 0 else m

    @property
    def estimators_(self):
        """The trees as fitted parml DecisionTree estimators (built on first access)."""
        check_is_fitted(self, "_flat")
        return [self._as_tree(t) for t in self._trees]

    def _as_tree(self, nodes):
        est = self._tree_class(
            criterion=self.criterion, max_depth=self.max_depth,
            min_samples_split=self.min_samples_split, min_samples_leaf=self.min_samples_leaf,
            min_weight_fraction_leaf=self.min_weight_fraction_leaf,
            max_features=self.max_features, max_leaf_nodes=self.max_leaf_nodes,
            min_impurity_decrease=self.min_impurity_decrease, max_bins=self.max_bins,
            n_threads=self.n_threads)
        est.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            est.feature_names_in_ = self.feature_names_in_
        if self._is_clf:
            est.classes_, est.n_classes_ = self.classes_, self.n_classes_
        est.n_outputs_, est.max_features_ = 1, self.max_features_
        est._flat = TB.flatten([nodes])
        return est

    def __len__(self):
        return len(self._flat["roots"]) if hasattr(self, "_flat") else 0

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _forest_init(self, n_estimators, criterion, max_depth, min_samples_split, min_samples_leaf,
                 min_weight_fraction_leaf, max_features, max_leaf_nodes, min_impurity_decrease,
                 bootstrap, oob_score, n_jobs, random_state, verbose, warm_start, ccp_alpha,
                 max_samples, monotonic_cst, max_bins, n_threads):
    self.n_estimators = n_estimators
    self.criterion = criterion
    self.max_depth = max_depth
    self.min_samples_split = min_samples_split
    self.min_samples_leaf = min_samples_leaf
    self.min_weight_fraction_leaf = min_weight_fraction_leaf
    self.max_features = max_features
    self.max_leaf_nodes = max_leaf_nodes
    self.min_impurity_decrease = min_impurity_decrease
    self.bootstrap = bootstrap
    self.oob_score = oob_score
    self.n_jobs = n_jobs
    self.random_state = random_state
    self.verbose = verbose
    self.warm_start = warm_start
    self.ccp_alpha = ccp_alpha
    self.max_samples = max_samples
    self.monotonic_cst = monotonic_cst
    self.max_bins = max_bins
    self.n_threads = n_threads


class RandomForestClassifier(TB.ProbaClassifierMixin, ClassifierMixin, _BaseForest):
    """A random forest classifier: scikit-learn's parameters plus ``max_bins`` and
    ``n_threads`` (``n_jobs`` is honoured when n_threads is None). Trees are grown in parallel
    on X binned once; NaN in X means missing. predict_proba is the mean of the trees' leaf
    class fractions, as in scikit-learn."""

    _is_clf = True
    _tree_class = DecisionTreeClassifier
    _parameter_constraints = {**_BaseForest._parameter_constraints,
                              "criterion": [StrOptions({"gini", "entropy", "log_loss"})],
                              "class_weight": [dict, StrOptions({"balanced",
                                                                 "balanced_subsample"}), None]}

    def __init__(self, n_estimators=100, *, criterion="gini", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, min_weight_fraction_leaf=0.0,
                 max_features="sqrt", max_leaf_nodes=None, min_impurity_decrease=0.0,
                 bootstrap=True, oob_score=False, n_jobs=None, random_state=None, verbose=0,
                 warm_start=False, class_weight=None, ccp_alpha=0.0, max_samples=None,
                 monotonic_cst=None, max_bins=255, n_threads=None):
        _forest_init(self, n_estimators, criterion, max_depth, min_samples_split,
                     min_samples_leaf, min_weight_fraction_leaf, max_features, max_leaf_nodes,
                     min_impurity_decrease, bootstrap, oob_score, n_jobs, random_state, verbose,
                     warm_start, ccp_alpha, max_samples, monotonic_cst, max_bins, n_threads)
        self.class_weight = class_weight

    def predict_proba(self, X):
        """Mean over trees of the leaf class fractions, shape (n_samples, n_classes)."""
        return self._mean(X)



class RandomForestRegressor(RegressorMixin, _BaseForest):
    """A random forest regressor (criterion "squared_error"): scikit-learn's parameters plus
    ``max_bins`` and ``n_threads``; see RandomForestClassifier."""

    _is_clf = False
    _tree_class = DecisionTreeRegressor
    _parameter_constraints = {**_BaseForest._parameter_constraints,
                              "criterion": [StrOptions({"squared_error"})]}

    def __init__(self, n_estimators=100, *, criterion="squared_error", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, min_weight_fraction_leaf=0.0,
                 max_features=1.0, max_leaf_nodes=None, min_impurity_decrease=0.0,
                 bootstrap=True, oob_score=False, n_jobs=None, random_state=None, verbose=0,
                 warm_start=False, ccp_alpha=0.0, max_samples=None, monotonic_cst=None,
                 max_bins=255, n_threads=None):
        _forest_init(self, n_estimators, criterion, max_depth, min_samples_split,
                     min_samples_leaf, min_weight_fraction_leaf, max_features, max_leaf_nodes,
                     min_impurity_decrease, bootstrap, oob_score, n_jobs, random_state, verbose,
                     warm_start, ccp_alpha, max_samples, monotonic_cst, max_bins, n_threads)

    def predict(self, X):
        """Mean over trees of the leaf means."""
        return self._mean(X)[:, 0]
