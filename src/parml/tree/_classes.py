"""DecisionTreeClassifier / DecisionTreeRegressor: scikit-learn's names and parameters, grown
natively on binned features (max_bins per feature), with subtrees built in parallel."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from parml._core import trees as TB
from parml._threads import effective_n_threads


class TreeView:
    """scikit-learn's ``tree_`` attributes (node_count, children_left, feature, threshold,
    value, impurity, n_node_samples, weighted_n_node_samples, max_depth, ...) over parml's node
    arrays; leaves have children -1, feature -2 and threshold -2 as in scikit-learn."""

    def __init__(self, nodes, n_classes=None):
        self._nodes = nodes
        self.node_count = len(nodes["left"])
        self.children_left = nodes["left"]
        self.children_right = nodes["right"]
        self.feature = nodes["feature"]
        self.threshold = nodes["threshold"]
        self.missing_go_to_left = nodes["missing_left"]
        self.impurity = nodes["impurity"]
        self.n_node_samples = nodes["count"]
        self.weighted_n_node_samples = nodes["wsum"]
        v = nodes["value"]
        self.value = v[:, None, :]  # (nodes, n_outputs=1, n_classes or 1)
        self.max_depth = int(nodes["depth"].max()) if self.node_count else 0
        self.n_leaves = int((nodes["left"] < 0).sum())
        self.n_outputs = 1
        self.n_classes = np.array([n_classes or 1])




class _BaseTree(TB.FlatTreesPersistent, BaseEstimator):
    _parameter_constraints: dict = {**TB.TREE_CONSTRAINTS, "splitter": [StrOptions({"best"})]}

    def _fit(self, X, y, sample_weight):
        self._validate_params()
        TB.check_unsupported(self)
        X, y = TB.check_X_fit(self, X, y, self._is_clf)
        nt = effective_n_threads(self.n_threads)
        rng = check_random_state(self.random_state)
        if self._is_clf:
            self.classes_, yi = TB.encode_classes(y)
            self.n_classes_ = len(self.classes_)
            K, target = self.n_classes_, yi
            base_w = TB.base_weights(sample_weight, X, self.class_weight, self.classes_, yi)
        else:
            K, target = 1, np.ascontiguousarray(y, dtype=np.float64)
            base_w = TB.base_weights(sample_weight, X, None, None, None)
        self.n_outputs_ = 1
        data = TB.bins_for(X, self.max_bins, rng.randint(2**31), nt, base_w)
        mf = TB.resolve_max_features(self.max_features, X.shape[1])
        self.max_features_ = mf
        seeds = rng.randint(0, 2**63 - 1, size=1, dtype=np.int64).astype(np.uint64)
        crit = "entropy" if self.criterion == "log_loss" else self.criterion
        trees = TB.build(self, data, target, K, crit, base_w, seeds, max_features=mf,
                         n_threads=nt)
        self._flat = TB.flatten(trees)
        return self

    @property
    def _nodes(self):
        return TB.unflatten(self._flat)[0]

    @property
    def tree_(self):
        """scikit-learn's tree_ view of the node arrays."""
        check_is_fitted(self, "_flat")
        return TreeView(self._nodes, self.n_classes_ if self._is_clf else None)

    def _sum(self, X):
        check_is_fitted(self, "_flat")
        X = TB.check_X_predict(self, X)
        W = self._flat["value"].shape[1]
        return TB.predict_sum(self._flat, X, W, effective_n_threads(self.n_threads))

    @property
    def feature_importances_(self):
        check_is_fitted(self, "_flat")
        return TB.importances(self._nodes, self.n_features_in_)

    def get_depth(self):
        check_is_fitted(self, "_flat")
        return self.tree_.max_depth

    def get_n_leaves(self):
        check_is_fitted(self, "_flat")
        return self.tree_.n_leaves

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class DecisionTreeClassifier(TB.ProbaClassifierMixin, ClassifierMixin, _BaseTree):
    """A decision tree classifier (criterion "gini", "entropy" or "log_loss") with
    scikit-learn's parameters plus ``max_bins`` (split candidates per feature: bin edges from
    quantiles) and ``n_threads`` (subtrees are grown in parallel; the tree is the same for any
    n_threads). NaN in X means missing: each split learns where missing values go.
    ``splitter`` must be "best"; ``ccp_alpha`` must be 0 (pruning is not implemented)."""

    _is_clf = True
    _parameter_constraints = {**_BaseTree._parameter_constraints,
                              "criterion": [StrOptions({"gini", "entropy", "log_loss"})],
                              "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, *, criterion="gini", splitter="best", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, min_weight_fraction_leaf=0.0,
                 max_features=None, random_state=None, max_leaf_nodes=None,
                 min_impurity_decrease=0.0, class_weight=None, ccp_alpha=0.0, monotonic_cst=None,
                 max_bins=255, n_threads=None):
        self.criterion = criterion
        self.splitter = splitter
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.class_weight = class_weight
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        """Grow the tree on X (n_samples, n_features; NaN = missing) and class labels y."""
        return self._fit(X, y, sample_weight)

    def predict_proba(self, X):
        """Class fractions (weighted) of each row's leaf, shape (n_samples, n_classes)."""
        return self._sum(X)



class DecisionTreeRegressor(RegressorMixin, _BaseTree):
    """A decision tree regressor (criterion "squared_error") with scikit-learn's parameters
    plus ``max_bins`` and ``n_threads``; see DecisionTreeClassifier."""

    _is_clf = False
    _parameter_constraints = {**_BaseTree._parameter_constraints,
                              "criterion": [StrOptions({"squared_error"})]}

    def __init__(self, *, criterion="squared_error", splitter="best", max_depth=None,
                 min_samples_split=2, min_samples_leaf=1, min_weight_fraction_leaf=0.0,
                 max_features=None, random_state=None, max_leaf_nodes=None,
                 min_impurity_decrease=0.0, ccp_alpha=0.0, monotonic_cst=None, max_bins=255,
                 n_threads=None):
        self.criterion = criterion
        self.splitter = splitter
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.max_features = max_features
        self.random_state = random_state
        self.max_leaf_nodes = max_leaf_nodes
        self.min_impurity_decrease = min_impurity_decrease
        self.ccp_alpha = ccp_alpha
        self.monotonic_cst = monotonic_cst
        self.max_bins = max_bins
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        """Grow the tree on X (n_samples, n_features; NaN = missing) and targets y."""
        return self._fit(X, y, sample_weight)

    def predict(self, X):
        """The mean target of each row's leaf."""
        return self._sum(X)[:, 0]
