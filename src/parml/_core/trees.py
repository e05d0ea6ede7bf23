"""What DecisionTree* and RandomForest* share: input checks, parameters resolved against the
data, the native build, and the flat node arrays prediction walks."""

from __future__ import annotations

import math
import numbers
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from parml._core.grower import Binned, make_bins
from parml._core.persist import Persistent, check_class_count
from parml._core.rows import plain_rows
from parml._kernels import _tree_build as TB
from parml._kernels import _tree_predict as TP

# node arrays kept per tree; KEYS are what prediction walks (as parml._core.forest.Forest)
KEYS = ("feature", "threshold", "missing_left", "left", "right", "value")
EXTRA = ("bin", "impurity", "wsum", "gain", "count", "depth")

# the growth parameters trees and forests share (scikit-learn's constraints, plus max_bins)
TREE_CONSTRAINTS = {
    "max_depth": [Interval(Integral, 1, None, closed="left"), None],
    "min_samples_split": [Interval(Integral, 2, None, closed="left"),
                          Interval(Real, 0.0, 1.0, closed="right")],
    "min_samples_leaf": [Interval(Integral, 1, None, closed="left"),
                         Interval(Real, 0.0, 1.0, closed="neither")],
    "min_weight_fraction_leaf": [Interval(Real, 0.0, 0.5, closed="both")],
    "max_features": [Interval(Integral, 1, None, closed="left"),
                     Interval(Real, 0.0, 1.0, closed="right"),
                     StrOptions({"sqrt", "log2"}), None],
    "random_state": ["random_state"],
    "max_leaf_nodes": [Interval(Integral, 2, None, closed="left"), None],
    "min_impurity_decrease": [Interval(Real, 0.0, None, closed="left")],
    "ccp_alpha": [Interval(Real, 0.0, None, closed="left")],
    "monotonic_cst": [None],
    "max_bins": [Interval(Integral, 2, 255, closed="both")],
    "n_threads": [None, Integral],
}


def check_unsupported(est):
    """Parameters scikit-learn has and parml does not implement: refused, never ignored."""
    if est.ccp_alpha != 0:
        raise ValueError(f"ccp_alpha={est.ccp_alpha!r}: cost-complexity pruning is not "
                         f"implemented in parml; use max_leaf_nodes, max_depth or "
                         f"min_impurity_decrease to limit the tree")
    if est.monotonic_cst is not None:
        raise ValueError("monotonic_cst is not implemented in parml's trees; pass None")


def check_X_fit(est, X, y, classifier):
    X, y = validate_data(est, X, y, dtype=[np.float64, np.float32], order="C",
                         ensure_all_finite="allow-nan", y_numeric=not classifier,
                         multi_output=False)
    if np.isinf(X).any():
        raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
    if not classifier:
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
    return X, y


def check_X_predict(est, X):
    if not plain_rows(est, X):  # plain float rows skip scikit-learn's validation (latency)
        X = validate_data(est, X, dtype=[np.float64, np.float32], order="C",
                          ensure_all_finite="allow-nan", reset=False)
    if np.isinf(X).any():
        raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
    return X


def encode_classes(y):
    from sklearn.utils.multiclass import check_classification_targets
    check_classification_targets(y)
    classes, yi = np.unique(y, return_inverse=True)
    return classes, yi.astype(np.int32)


def base_weights(sample_weight, X, class_weight, classes, yi, weighted_balance=False):
    """sample_weight x class_weight per row (None when both are trivial). weighted_balance:
    "balanced" counts classes by sample weight (scikit-learn's forests; its trees count rows)."""
    sw = None
    if sample_weight is not None:
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if class_weight is not None and class_weight != "balanced_subsample":
        from sklearn.utils.class_weight import compute_class_weight
        cw = compute_class_weight(class_weight, classes=classes, y=classes[yi],
                                  sample_weight=sw if weighted_balance else None)
        sw = cw[yi] if sw is None else sw * cw[yi]
    if sw is not None:
        sw = np.ascontiguousarray(sw, dtype=np.float64)
        if not sw.sum() > 0:
            raise ValueError("Sample weights (times class weights) must not all be zero.")
    return sw


def resolve_counts(value, n, name, floor):
    """scikit-learn's int-or-fraction rule for min_samples_split / min_samples_leaf."""
    if isinstance(value, numbers.Integral):
        return int(value)
    return max(floor, int(math.ceil(value * n)))


def resolve_max_features(mf, d):
    if mf is None:
        return d
    if isinstance(mf, str):
        return max(1, int(math.sqrt(d)) if mf == "sqrt" else int(math.log2(d)))
    if isinstance(mf, numbers.Integral):
        if mf > d:
            raise ValueError(f"max_features must be <= n_features ({d}), got {mf}")
        return int(mf)
    return max(1, int(mf * d))


def bins_for(X, max_bins, random_state, n_threads, weights=None):
    """X binned; edges from the rows of positive weight only (a row of weight 0 must change
    nothing, not even a threshold)."""
    rows = None if weights is None or (weights > 0).all() else np.flatnonzero(weights > 0)
    return make_bins(X, max_bins, random_state=random_state, n_threads=n_threads, edge_rows=rows)


class Standardized:
    """Regression targets as (y - mean) / scale for the build, so purity and overflow
    thresholds do not depend on y's units; leaf values and impurities are mapped back."""

    def __init__(self, y, w):
        ok = w is None or (w > 0)
        yy = y if w is None else y[ok]
        self.mean = float(np.mean(yy)) if len(yy) else 0.0
        scale = float(np.max(np.abs(yy - self.mean))) if len(yy) else 0.0
        self.scale = scale if scale > 0 and np.isfinite(scale) else 1.0
        self.y = np.ascontiguousarray((y - self.mean) / self.scale)

    def restore(self, trees):
        with np.errstate(over="ignore"):  # variances of targets near 1e308 are inf, as they are
            for t in trees:
                t["value"] = t["value"] * self.scale + self.mean
                t["impurity"] = t["impurity"] * self.scale * self.scale
                t["gain"] = t["gain"] * self.scale * self.scale
        return trees


def n_bootstrap(max_samples, n, weights):
    """scikit-learn's bootstrap size: all n rows; an int; or a fraction of n (of the total weight
    when rows are weighted), at least 1."""
    if max_samples is None:
        return n
    if isinstance(max_samples, numbers.Integral):
        if max_samples > n:
            raise ValueError(f"max_samples must be <= n_samples={n}, got {max_samples}")
        return int(max_samples)
    total = n if weights is None else float(weights.sum())
    return max(int(max_samples * total), 1)


def rebin(X, edges, missing_bin, n_threads):
    """X binned on edges computed earlier (a warm start continues on the first fit's bins)."""
    from parml._kernels import _histogram as H
    B = H.bin_data(X, edges, missing_bin, n_threads)
    return Binned(B, edges, missing_bin, missing_bin + 1)


def build(est, data, y, K, criterion, base_w, seeds, *, max_features, bootstrap=False,
          n_boot=0, balanced_subsample=False, n_threads=1):
    """Grow len(seeds) trees natively: list of per-tree node dicts (thresholds filled in from
    the bin edges). With bootstrap, rows are drawn in proportion to base_w (uniformly without
    weights) and each tree weighs them by their counts, as scikit-learn >= 1.8 does."""
    n = data.B.shape[1]
    std = None
    mid = float(est.min_impurity_decrease)
    if criterion == "squared_error":
        std = Standardized(y, base_w)
        y = std.y
        mid = mid / std.scale / std.scale  # decreases scale with the targets' squared scale
    cdf = None if base_w is None or not bootstrap else np.cumsum(base_w)
    trees, _ = TB.build_trees(
        data.B, data.nb, data.missing_bin, y, K, criterion, base_w, seeds,
        bootstrap=bootstrap, n_boot=n_boot, balanced_subsample=balanced_subsample, cdf=cdf,
        max_depth=est.max_depth,
        min_samples_split=resolve_counts(est.min_samples_split, n, "min_samples_split", 2),
        min_samples_leaf=resolve_counts(est.min_samples_leaf, n, "min_samples_leaf", 1),
        min_weight_fraction_leaf=float(est.min_weight_fraction_leaf),
        min_impurity_decrease=mid,
        max_leaf_nodes=est.max_leaf_nodes, max_features=max_features, n_threads=n_threads)
    if std is not None:
        std.restore(trees)
    # threshold of a split on bin b: x <= edges[b] goes left (the last bin is open: +inf)
    width = max((len(e) for e in data.edges), default=0) + 1
    E = np.full((len(data.edges), width), np.inf)
    for f, e in enumerate(data.edges):
        E[f, :len(e)] = e
    for t in trees:
        split = t["left"] >= 0
        th = np.full(len(t["left"]), -2.0)  # scikit-learn's TREE_UNDEFINED for leaves
        th[split] = E[t["feature"][split], t["bin"][split]]
        t["threshold"] = th
    return trees


def flatten(trees):
    """All trees as one set of node arrays (every per-node array, so single trees can be taken
    back out as views) plus roots and tree_output (what predict_forest walks)."""
    flat = {k: np.ascontiguousarray(np.concatenate([t[k] for t in trees]))
            for k in KEYS + EXTRA}
    sizes = [len(t["left"]) for t in trees]
    flat["roots"] = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    flat["tree_output"] = np.zeros(len(trees), dtype=np.int32)
    return flat


def unflatten(flat):
    """Per-tree dicts of views into the flat arrays (no copies: a loaded model stays mapped)."""
    bounds = list(flat["roots"]) + [len(flat["left"])]
    return [{k: flat[k][int(bounds[t]):int(bounds[t + 1])] for k in KEYS + EXTRA}
            for t in range(len(flat["roots"]))]


def check_flat(flat, n_features, W):
    """ValueError unless flat holds a forest prediction can walk (parml.load uses this)."""
    missing = [k for k in KEYS + EXTRA + ("roots", "tree_output") if k not in flat]
    if missing:
        raise ValueError(f"forest: node arrays {missing} are missing")
    m = len(flat["left"])
    for k in EXTRA:
        if flat[k].shape != (m,):
            raise ValueError(f"forest: {k} must have one entry per node")
    if flat["value"].shape != (m, W):
        raise ValueError(f"forest: value must have shape ({m}, {W})")
    value = flat["value"] if W > 1 else np.ascontiguousarray(flat["value"][:, 0])
    TP.check_forest(flat["feature"], flat["threshold"], flat["missing_left"], flat["left"],
                    flat["right"], value, flat["roots"], flat["tree_output"], n_features, W)


class FlatTreesPersistent(Persistent):
    """Decision trees and random forests store their node arrays, flat (``_flat``)."""

    def _save_state(self, put):
        for f, a in self._flat.items():
            put(f"_flat.{f}", a)
        return {"_flat": {"keys": sorted(self._flat), "width": int(self._flat["value"].shape[1])}}

    def _restore_state(self, extra, take):
        e = extra.pop("_flat")
        flat = {f: take(f"_flat.{f}") for f in e["keys"]}
        d = getattr(self, "n_features_in_", None)
        if not isinstance(d, int) or d < 1 or not isinstance(e.get("width"), int) \
                or e["width"] < 1:
            raise ValueError("n_features_in_ or the leaf width is invalid")
        check_flat(flat, d, e["width"])
        self._flat = flat

    def _check_restored(self):
        if getattr(self, "classes_", None) is not None:
            check_class_count(len(self.classes_), self._flat["value"].shape[1],
                              one_for_two=False)


def predict_sum(flat, X, W, n_threads):
    """Sum over trees of each row's leaf value(s): (n, W) float64."""
    value = flat["value"] if W > 1 else np.ascontiguousarray(flat["value"][:, 0])
    return TP.predict_forest(X, flat["feature"], flat["threshold"], flat["missing_left"],
                             flat["left"], flat["right"], value, flat["roots"],
                             flat["tree_output"], W, n_threads=n_threads, checked=True)


def importances(tree, d):
    """scikit-learn's mean decrease in impurity of one tree, normalised to sum 1."""
    imp = np.zeros(d)
    split = tree["left"] >= 0
    np.add.at(imp, tree["feature"][split], tree["gain"][split])
    total = imp.sum()
    return imp / total if total > 0 else imp


def oob(data, flat, seeds, n_boot, base_w, W, n_threads):
    """Out-of-bag (mean leaf values, rows with at least one out-of-bag tree). The in-bag rows
    are regenerated from the trees' seeds, as drawn at fit."""
    cdf = None if base_w is None else np.cumsum(base_w)
    inbag = TB.inbag_bits(seeds, data.B.shape[1], n_boot, cdf, n_threads)
    total, count = TB.oob_sums(data.B, data.missing_bin, flat, inbag, W, n_threads)
    if (count == 0).any():
        warnings.warn("Some inputs do not have OOB scores. This probably means too few trees "
                      "were used to compute any reliable OOB estimates.", UserWarning)
    return total / np.maximum(count, 1)[:, None], count > 0


class ProbaClassifierMixin:
    """predict_log_proba and predict from predict_proba (trees and forests)."""

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels (the class with the largest probability)."""
        proba = self.predict_proba(X)  # raises NotFittedError first
        return self.classes_[np.argmax(proba, axis=1)]
