"""LinearRegression and Ridge: exact least squares from the centred Gram matrix (parml's GEMM,
one pass over X, rows streamed for memory maps) and a Cholesky solve; L-BFGS on the fused kernel
for Ridge problems too wide for a Gram matrix."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg
from sklearn.base import MultiOutputMixin, RegressorMixin

from parml._kernels import _linear

from parml._core.linear import (GRAM_MAX_FEATURES, LOSS, Singular, lbfgs, resolve_strategy,
                                solve_gram)
from parml._core.rows import check_sample_weight, check_X_fit

from ._base import LinearModelBase, check_n_threads

def _centres(rows, y2, sw, fit_intercept, nt):
    d, T = rows.d, y2.shape[1]
    if not fit_intercept:
        return np.zeros(d), np.zeros(T), float(rows.n if sw is None else sw.sum())
    S = float(rows.n if sw is None else sw.sum())
    mx = np.zeros(d)
    part = np.empty(d)
    for s, e, c in rows.chunks():
        _linear.col_sums(c, None if sw is None else sw[s:e], part, nt)
        mx += part
    my = (y2.sum(axis=0) if sw is None else sw @ y2)
    return mx / S, my / S, S


def _gram_solve(rows, y2, sw, mx, my, alphas, nt, exact_fallback):
    d, T = rows.d, y2.shape[1]
    G = np.zeros((d + T, d + T))
    mu = np.ascontiguousarray(np.concatenate([mx, my]))
    for s, e, c in rows.chunks():
        _linear.gram(c, np.ascontiguousarray(y2[s:e]), None if sw is None else sw[s:e], mu, G, nt)

    def singular(M, B):
        if exact_fallback is not None:
            raise Singular
        # rank-deficient and streamed: minimum-norm solution of the normal equations
        return scipy.linalg.lstsq(M, B, check_finite=False)[0]
    try:
        return solve_gram(G, d, alphas, singular)
    except Singular:
        return exact_fallback()


def _centred_copy(rows, y2, sw, mx, my):
    X = np.asarray(rows.X, dtype=np.float64) - mx
    Y = y2 - my
    if sw is not None:
        r = np.sqrt(sw)[:, None]
        X *= r
        Y = Y * r
    return X, Y


def _fit(est, X, y, sample_weight, alpha, solver):
    if est.tol is not None and (isinstance(est.tol, bool) or not isinstance(est.tol, numbers.Real)
                                or not est.tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {est.tol!r}")
    nt = check_n_threads(est.n_threads)
    rows, y = check_X_fit(est, X, y, nt, y_numeric=True, multi_output=True)
    if y.ndim > 2:
        raise ValueError(f"y must be 1-D or 2-D, got {y.ndim} dimensions")
    y2 = np.ascontiguousarray(y.reshape(rows.n, -1), dtype=np.float64)
    T, d = y2.shape[1], rows.d
    if np.ndim(alpha):
        alpha = np.asarray(alpha, dtype=np.float64).ravel()
        if alpha.shape[0] != T:
            raise ValueError(f"alpha has {alpha.shape[0]} values but y has {T} targets")
        if alpha.shape[0] == 1:
            alpha = float(alpha[0])
    sw = check_sample_weight(sample_weight, rows.n)
    mx, my, S = _centres(rows, y2, sw, est.fit_intercept, nt)
    if solver == "auto":
        solver = "cholesky" if d <= GRAM_MAX_FEATURES or d <= rows.n // 4 else "lbfgs"
    n_iter = np.ones(T, dtype=np.int32)     # direct solves: one "iteration" per target
    if solver == "lbfgs":
        coef = np.empty((d, T))
        strat = resolve_strategy(est.strategy, 1, d)
        for t in range(T):
            a = float(alpha if not np.ndim(alpha) else alpha[t])
            W, b, n_iter[t] = lbfgs(rows, np.ascontiguousarray(y2[:, t]), sw, loss=LOSS["squared_error"],
                            K=1, ovr=False, eps=0.0, C=np.inf if a == 0 else 1.0 / a,
                            fit_intercept=est.fit_intercept, strategy=strat, n_threads=nt,
                            tol=est.tol if est.tol is not None else 1e-4,
                            max_iter=est.max_iter or 15000, x0=np.zeros(d + 1))
            coef[:, t] = W[0]
            my[t] = b[0]
            mx = np.zeros(d)
        intercept = my
    elif d > rows.n and not rows.streamed and not np.ndim(alpha) and alpha > 0:
        # wide: the n x n kernel matrix is smaller than the d x d Gram matrix
        from parml.ops import matmul
        Xc, Yc = _centred_copy(rows, y2, sw, mx, my)
        Kmat = matmul(Xc, np.ascontiguousarray(Xc.T), n_threads=nt)
        Kmat[np.diag_indices_from(Kmat)] += alpha
        coef = Xc.T @ scipy.linalg.solve(Kmat, Yc, assume_a="pos", check_finite=False)
        intercept = my - mx @ coef
    else:
        fallback = None
        if not rows.streamed and not np.any(alpha):
            def fallback():
                Xc, Yc = _centred_copy(rows, y2, sw, mx, my)
                return scipy.linalg.lstsq(Xc, Yc, cond=getattr(est, "tol", None),
                                          check_finite=False)[0]
        coef = _gram_solve(rows, y2, sw, mx, my, alpha, nt, fallback)
        intercept = my - mx @ coef
    est.n_iter_ = n_iter
    if y.ndim == 1:
        est.coef_ = np.ascontiguousarray(coef[:, 0])
        est.intercept_ = float(intercept[0]) if est.fit_intercept else 0.0
    elif T == 1 and est._single_column_as_1d:
        # scikit-learn's Ridge: y of shape (n, 1) gives coef_ (d,), intercept_ (1,), and 1-D
        # predictions (its LinearRegression keeps (1, d) and (n, 1))
        est.coef_ = np.ascontiguousarray(coef[:, 0])
        est.intercept_ = intercept if est.fit_intercept else 0.0
    else:
        est.coef_ = np.ascontiguousarray(coef.T)
        est.intercept_ = intercept if est.fit_intercept else 0.0   # as scikit-learn
    return est


class _LSBase(MultiOutputMixin, RegressorMixin, LinearModelBase):
    _single_column_as_1d = False

    def predict(self, X):
        Z = self._scores(X)
        return Z[:, 0] if np.ndim(self.coef_) == 1 else Z


class LinearRegression(_LSBase):
    """Ordinary least squares, drop-in for scikit-learn's: the centred Gram matrix [X | y]^T [X | y]
    comes from one pass of parml's GEMM (rows streamed from a memory map if X is one), then a
    Cholesky solve; rank-deficient problems fall back to an SVD least-squares solve."""

    def __init__(self, *, fit_intercept=True, copy_X=True, tol=1e-6, positive=False,
                 n_threads=None):
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.positive = positive
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        if self.positive:
            raise ValueError("positive=True is not supported by parml's LinearRegression")
        return _fit(self, X, y, sample_weight, 0.0, "cholesky")


class Ridge(_LSBase):
    """L2-regularised least squares, drop-in for scikit-learn's. `solver`: "auto" (Gram +
    Cholesky, or the kernel form when there are more features than samples; L-BFGS when the Gram
    matrix would be too big), "cholesky", or "lbfgs" (fused loss + gradient kernel)."""

    _single_column_as_1d = True

    def __init__(self, alpha=1.0, *, fit_intercept=True, copy_X=True, max_iter=None, tol=1e-4,
                 solver="auto", positive=False, random_state=None, strategy="auto",
                 n_threads=None):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.positive = positive
        self.random_state = random_state
        self.strategy = strategy
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        if self.positive:
            raise ValueError("positive=True is not supported by parml's Ridge")
        if self.solver not in ("auto", "cholesky", "lbfgs"):
            raise ValueError(f"solver must be 'auto', 'cholesky' or 'lbfgs', got {self.solver!r}")
        a = np.asarray(self.alpha, dtype=np.float64) if not isinstance(self.alpha, str) else None
        if a is None or a.ndim > 1 or not np.isfinite(a).all() or (a < 0).any():
            raise ValueError(f"alpha must be a non-negative number or 1-D array, got {self.alpha!r}")
        if self.max_iter is not None and (isinstance(self.max_iter, bool) or
                                          not isinstance(self.max_iter, numbers.Integral) or
                                          self.max_iter < 1):
            raise ValueError(f"max_iter must be None or a positive integer, got {self.max_iter!r}")
        return _fit(self, X, y, sample_weight, a if a.ndim else float(a), self.solver)
