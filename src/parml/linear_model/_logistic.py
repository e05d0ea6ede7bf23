"""LogisticRegression on the fused loss + gradient kernel."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, softmax

from parml._core.linear import (LOSS, check_regularised_fit_params, lbfgs, objective,
                                resolve_strategy)
from parml._core.rows import check_sample_weight, check_X_fit

from ._base import LinearClassifierBase, check_n_threads, class_sample_weight, encode_classes

SOLVERS = ("lbfgs", "gd", "sgd")


class LogisticRegression(LinearClassifierBase):
    """L2-regularised logistic regression (binary, or multinomial for more than two classes).

    Minimises (1/S) sum_i s_i log_loss_i + ||W||^2 / (2 C S), as scikit-learn does. Every loss and
    gradient evaluation is one parallel pass over X (parml's fused kernel), not X @ w followed by
    X.T @ r. `solver`: "lbfgs" (scipy's L-BFGS-B, default), "gd" (full-batch gradient descent
    with backtracking), "sgd" (mini-batch SGD, `max_iter` epochs). X may be an np.memmap: it is
    streamed in chunks, never copied whole.
    """

    def __init__(self, penalty="l2", *, C=1.0, tol=1e-4, fit_intercept=True, class_weight=None,
                 random_state=None, solver="lbfgs", max_iter=100, verbose=0, warm_start=False,
                 strategy="auto", n_threads=None):
        self.penalty = penalty
        self.C = C
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.strategy = strategy
        self.n_threads = n_threads

    def fit(self, X, y, sample_weight=None):
        check_regularised_fit_params(self)
        if self.penalty not in ("l2", None):
            raise ValueError(f"penalty must be 'l2' or None, got {self.penalty!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        nt = check_n_threads(self.n_threads)
        rows, y = check_X_fit(self, X, y, nt)
        classes, yi = encode_classes(self, y)
        sw = check_sample_weight(sample_weight, rows.n)
        sw = class_sample_weight(self.class_weight, classes, yi, sw)
        C = np.inf if self.penalty is None else float(self.C)
        K = 1 if len(classes) == 2 else len(classes)
        if K == 1:
            loss, yk = LOSS["log_loss"], np.where(yi == 1, 1.0, -1.0)
        else:
            loss, yk = LOSS["multinomial"], yi.astype(np.float64)
        strategy = resolve_strategy(self.strategy, K, rows.d)
        x0 = np.zeros(K * rows.d + K)
        if self.warm_start and getattr(self, "coef_", None) is not None \
                and self.coef_.shape == (K, rows.d):
            x0[:K * rows.d] = self.coef_.ravel()
            x0[K * rows.d:] = self.intercept_
        common = dict(loss=loss, K=K, ovr=False, eps=0.0, C=C, fit_intercept=self.fit_intercept,
                      strategy=strategy, n_threads=nt, tol=self.tol, max_iter=self.max_iter,
                      x0=x0)
        if self.solver == "lbfgs":
            W, b, nit = lbfgs(rows, yk, sw, verbose=self.verbose, **common)
        elif self.solver == "gd":
            W, b, nit = _gradient_descent(rows, yk, sw, **common)
        else:
            from ._sgd import sgd_solve
            S = float(rows.n if sw is None else sw.sum())
            W, b, nit = sgd_solve(rows, yk, sw, loss=loss, K=K, ovr=False,
                                  alpha=0.0 if not np.isfinite(C) else 1.0 / (C * S),
                                  fit_intercept=self.fit_intercept, strategy=self.strategy,
                                  n_threads=nt, tol=self.tol, max_iter=self.max_iter,
                                  random_state=self.random_state, W0=x0[:K * rows.d].reshape(K, rows.d),
                                  b0=x0[K * rows.d:])
        self.classes_ = classes
        self.coef_ = W
        self.intercept_ = b if self.fit_intercept else np.zeros(K)
        self.n_iter_ = np.array([nit], dtype=np.int32)
        return self

    def predict_proba(self, X):
        s = self.decision_function(X)
        if s.ndim == 1:
            p = expit(s)
            return np.column_stack([1.0 - p, p])
        return softmax(s, axis=1)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))


def _gradient_descent(rows, y, sw, *, loss, K, ovr, eps, C, fit_intercept, strategy, n_threads,
                      tol, max_iter, x0):
    """Full-batch gradient descent with Armijo backtracking; stops when max |grad| <= tol."""
    d = rows.d
    KD = K * d
    fg = objective(rows, y, sw, loss=loss, K=K, ovr=ovr, eps=eps, C=C,
                   fit_intercept=fit_intercept, strategy=strategy, n_threads=n_threads)

    theta = x0.copy()
    f, g = fg(theta)
    step = 1.0
    it = 0
    for it in range(1, max_iter + 1):
        if np.max(np.abs(g)) <= tol:
            it -= 1
            break
        gg = float(g @ g)
        while True:
            cand = theta - step * g
            fc, gc = fg(cand)
            if fc <= f - 0.5 * step * gg or step < 1e-12:
                break
            step *= 0.5
        theta, f, g = cand, fc, gc
        step *= 2.0   # let the step grow back
    W = np.ascontiguousarray(theta[:KD].reshape(K, d))
    return W, theta[KD:].copy(), it
