"""Shared pieces of the linear estimators: prediction through the decision kernel, the fused
loss + gradient driven over row chunks, the L-BFGS driver and the strategy choice."""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from parml._core.persist import Persistent, check_class_count
from parml._kernels import _linear
from parml._threads import FasterOfTwo, effective_n_threads, single_threaded_blas

from ._data import check_X_predict

LOSS = _linear.LOSS_IDS
STRATEGIES = ("auto", "samples", "weights")

# "auto": the samples strategy reads X once and reduces per-task partial gradients of K*d
# doubles; the weights strategy reads X twice but needs no partials. Partials stop fitting in a
# core's L2 (1 MiB here) past ~64K weights; below that samples won on every shape measured
# (bench/linear.py, tall 1M x 100 and wide 10k x 5000).
AUTO_WEIGHTS_MIN_KD = 1 << 16


def resolve_strategy(strategy, K, d):
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "auto":
        strategy = "weights" if K * d >= AUTO_WEIGHTS_MIN_KD else "samples"
    return _linear.STRATEGIES[strategy]


def check_n_threads(n_threads):
    return effective_n_threads(n_threads)


def loss_grad(rows, y, sw, W, b, loss, ovr, eps, strategy, n_threads, out=None, cw=None):
    """Sum over all rows (streamed chunk by chunk) of the loss and its gradient:
    returns a float64 vector [grad W (K*d), grad b (K), loss]. cw: one-vs-rest weights of each
    problem's positive class, or None."""
    K, d = W.shape
    total = None
    buf = np.empty(K * d + K + 1) if out is None else out
    for s, e, c in rows.chunks():
        _linear.loss_grad(c, y[s:e], None if sw is None else sw[s:e], W, b, 1.0, loss, ovr, eps,
                          None, strategy, buf, n_threads, cw=cw)
        if total is None:
            total = buf.copy() if rows.streamed else buf
        else:
            total += buf
    return total


def objective(rows, y, sw, *, loss, K, ovr, eps, C, fit_intercept, strategy, n_threads,
              cw=None):
    """f(theta) -> (value, gradient) of (1/S) sum_i sw_i loss_i + ||W||^2 / (2 C S), theta =
    [W (K*d, row-major), b (K)]; S = sum of weights, intercepts not penalised. Each call is one
    fused pass over X (streamed chunk by chunk)."""
    d = rows.d
    S = float(rows.n if sw is None else sw.sum())
    reg = 0.0 if not np.isfinite(C) else 1.0 / (C * S)
    KD = K * d
    zeros_b = np.zeros(K)
    buf = np.empty(KD + K + 1)
    chooser = FasterOfTwo(n_threads)   # (the passes give the same bits on any thread count)

    def fun(theta):
        W = theta[:KD].reshape(K, d)
        b = theta[KD:] if fit_intercept else zeros_b
        nt = chooser.next()
        t0 = time.perf_counter()
        tot = loss_grad(rows, y, sw, W, np.ascontiguousarray(b), loss, ovr, eps, strategy,
                        nt, out=buf, cw=cw)
        chooser.record(nt, time.perf_counter() - t0)
        f = tot[-1] / S + 0.5 * reg * float(theta[:KD] @ theta[:KD])
        g = np.zeros_like(theta)   # the intercept part stays 0 without an intercept
        g[:KD] = tot[:KD] / S + reg * theta[:KD]
        if fit_intercept:
            g[KD:] = tot[KD:KD + K] / S
        return f, g

    return fun


def run_lbfgs(fun, x0, *, tol, max_iter, verbose=0, what="L-BFGS",
              passes="loss+gradient passes"):
    """scipy's L-BFGS-B on fun (loss, gradient) with parml's options (scikit-learn's gtol and
    ftol), warning when it stops at max_iter. parml.dask's LogisticRegression uses it too."""
    with single_threaded_blas():   # (scipy's tiny BLAS calls must not leave spinning workers)
        res = minimize(fun, x0, method="L-BFGS-B", jac=True,
                       options={"maxiter": max_iter, "maxls": 50, "gtol": tol,
                                "ftol": 64 * np.finfo(float).eps})
    if not res.success and res.nit >= max_iter:
        warnings.warn(f"L-BFGS did not converge in {max_iter} iterations ({res.message}); "
                      "increase max_iter or scale the data.", ConvergenceWarning, stacklevel=4)
    if verbose:
        print(f"{what}: {res.nit} iterations, {res.nfev} {passes}, {res.message}")
    return res


def lbfgs(rows, y, sw, *, loss, K, ovr, eps, C, fit_intercept, strategy, n_threads, tol,
          max_iter, x0, verbose=0, cw=None):
    """Minimises `objective` with scipy's L-BFGS-B. Returns (W, b, n_iter)."""
    d = rows.d
    KD = K * d
    fun = objective(rows, y, sw, loss=loss, K=K, ovr=ovr, eps=eps, C=C,
                    fit_intercept=fit_intercept, strategy=strategy, n_threads=n_threads, cw=cw)
    res = run_lbfgs(fun, x0, tol=tol, max_iter=max_iter, verbose=verbose)
    theta = res.x
    W = np.ascontiguousarray(theta[:KD].reshape(K, d))
    b = theta[KD:].copy() if fit_intercept else np.zeros(K)
    return W, b, int(res.nit)


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
