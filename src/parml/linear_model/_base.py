"""Shared pieces of the linear estimators: prediction through the decision kernel, label and
class-weight encoding. The fitting drivers they share with parml.dask are in parml._core.linear."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from parml._core.persist import Persistent, check_class_count
from parml._core.rows import check_X_predict
from parml._kernels import _linear
from parml._threads import effective_n_threads


def check_n_threads(n_threads):
    return effective_n_threads(n_threads)


class LinearModelBase(Persistent, BaseEstimator):
    """Prediction through parml's decision kernel (reads float32 X as given)."""

    def _check_restored(self):
        W = np.atleast_2d(self.coef_)
        if W.shape[-1] != self.n_features_in_:
            raise ValueError(f"coef_ has {W.shape[-1]} columns, n_features_in_ is "
                             f"{self.n_features_in_}")
        if getattr(self, "classes_", None) is not None:
            check_class_count(len(self.classes_), W.shape[0])

    def _coef_2d(self):
        W = np.ascontiguousarray(np.atleast_2d(self.coef_), dtype=np.float64)
        b = np.ascontiguousarray(np.atleast_1d(np.asarray(self.intercept_, dtype=np.float64)))
        if b.shape[0] != W.shape[0]:
            b = np.broadcast_to(b, (W.shape[0],)).copy()
        return W, b

    def _scores(self, X):
        check_is_fitted(self)
        nt = check_n_threads(self.n_threads)
        rows = check_X_predict(self, X, nt)
        W, b = self._coef_2d()
        Z = np.empty((rows.n, W.shape[0]))
        for s, e, c in rows.chunks():
            _linear.decision(c, W, b, Z[s:e], nt)
        return Z


class LinearClassifierBase(ClassifierMixin, LinearModelBase):
    def decision_function(self, X):
        """Signed scores: (n_samples,) for two classes, (n_samples, n_classes) otherwise."""
        Z = self._scores(X)
        return Z[:, 0] if Z.shape[1] == 1 else Z

    def predict(self, X):
        s = self.decision_function(X)
        idx = (s > 0).astype(np.intp) if s.ndim == 1 else s.argmax(axis=1)
        return self.classes_[idx]


def _encode_small_ints(y):
    """np.unique(y, return_inverse=True) for 1-d integer or bool labels in a small range, by
    counting (3.8 ms for 800k labels, against 9 ms for np.unique and 8.5 ms more for
    scikit-learn's target-type check, which such labels always pass); None otherwise."""
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.size and y.dtype.kind in "biu"):
        return None
    dt = y.dtype
    if dt.kind == "b":
        y = y.view(np.uint8)
    lo, hi = int(y.min()), int(y.max())
    span = hi - lo + 1
    if span > max(1024, 4 * y.size) or span > 1 << 22:
        return None
    if y.dtype.itemsize < 8:   # (narrow: y - lo may not fit, e.g. int8 127 - -128)
        y = y.astype(np.intp)
    yo = (y - y.dtype.type(lo)).astype(np.intp, copy=False)   # < span: fits, even for uint64
    present = np.flatnonzero(np.bincount(yo, minlength=span))
    lut = np.zeros(span, dtype=np.intp)
    lut[present] = np.arange(len(present))
    classes = (present.astype(y.dtype) + y.dtype.type(lo)).astype(dt)
    return classes, lut[yo]


def encode_classes(est, y, classes=None):
    """classes_ and integer labels; a single class is a ValueError."""
    from sklearn.utils.multiclass import check_classification_targets
    fast = _encode_small_ints(y) if classes is None else None
    if fast is not None:
        classes, yi = fast
    elif classes is None:
        check_classification_targets(y)
        classes, yi = np.unique(y, return_inverse=True)
    else:
        check_classification_targets(y)
        classes = np.asarray(classes)
        yi = np.searchsorted(classes, y)
        yi = np.clip(yi, 0, len(classes) - 1)
        if not np.array_equal(classes[yi], y):
            raise ValueError(f"y holds labels not in classes={list(classes)}")
    if len(classes) < 2:
        raise ValueError(f"{type(est).__name__} needs samples of at least 2 classes in the data, "
                         f"but the data contains only one class: {classes[0]!r}")
    return classes, yi.astype(np.intp, copy=False)


def _class_weights(class_weight, classes, yi, sw, weighted_balance):
    """scikit-learn's per-class weights (one per class, float64); "balanced" counts samples by
    their weights when weighted_balance."""
    from sklearn.utils.class_weight import compute_class_weight
    cw = compute_class_weight(class_weight, classes=classes, y=classes[yi],
                              sample_weight=sw if weighted_balance else None)
    return np.ascontiguousarray(cw, dtype=np.float64)


def class_sample_weight(class_weight, classes, yi, sw, weighted_balance=True):
    """Multiplies per-class weights into the sample weights (None stays None if no weights).
    "balanced" counts samples by their weights, as scikit-learn's LogisticRegression and
    LinearSVC do (its SGDClassifier counts them unweighted: weighted_balance=False)."""
    if class_weight is None:
        return sw
    w = _class_weights(class_weight, classes, yi, sw, weighted_balance)[yi]
    return w if sw is None else sw * w


def ovr_class_weight(class_weight, classes, yi, sw, K, weighted_balance=True):
    """(sample weights, cw): with one-vs-rest problems (K > 1) and class weights, problem k
    weights its positive rows by class k's weight and its negative rows by 1, as scikit-learn's
    SGDClassifier and liblinear do, so the class weights go to the kernel as cw (one per
    problem) instead of into every row's weight; otherwise (class_sample_weight(...), None)."""
    if K == 1 or class_weight is None:
        return class_sample_weight(class_weight, classes, yi, sw, weighted_balance), None
    return sw, _class_weights(class_weight, classes, yi, sw, weighted_balance)
