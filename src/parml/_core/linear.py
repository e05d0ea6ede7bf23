"""The linear drivers every linear estimator, local or on Dask, shares: the fused loss and
gradient over row chunks, the regularised objective, scipy's L-BFGS-B with parml's options, the
strategy choice, and the Gram-matrix solve."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import scipy.linalg
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from parml._kernels import _linear
from parml._kernels._tuner import Tuner
from parml._threads import single_threaded_blas

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
    chooser = Tuner(n_threads, "calls")   # (the passes give the same bits on any thread count)

    def fun(theta):
        W = theta[:KD].reshape(K, d)
        b = theta[KD:] if fit_intercept else zeros_b
        nt = chooser.threads()
        t0 = time.perf_counter()
        tot = loss_grad(rows, y, sw, W, np.ascontiguousarray(b), loss, ovr, eps, strategy,
                        nt, out=buf, cw=cw)
        chooser.record(time.perf_counter() - t0)
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


def check_regularised_fit_params(est):
    """ValueError unless est.C, est.tol and est.max_iter are valid (the L-BFGS fits' shared
    parameters: local and Dask LogisticRegression, LinearSVC)."""
    if not (isinstance(est.C, numbers.Real) and not isinstance(est.C, bool) and est.C > 0):
        raise ValueError(f"C must be a positive number, got {est.C!r}")
    if not (isinstance(est.tol, numbers.Real) and est.tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {est.tol!r}")
    if isinstance(est.max_iter, bool) or not isinstance(est.max_iter, numbers.Integral) \
            or est.max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {est.max_iter!r}")


# Normal equations square the condition number; below this reciprocal condition estimate
# (from the Cholesky diagonal) LinearRegression falls back to an SVD least-squares solve.
RCOND_MIN = 1e-10
# Above this many features a d x d Gram matrix (8 d^2 bytes) is not built by "auto".
GRAM_MAX_FEATURES = 8192


class Singular(Exception):
    """Raised by a `singular` handler of solve_gram to give up on the normal equations."""


def solve_gram(G, d, alphas, singular):
    """Coefficients (d, T) from the centred Gram matrix G of [X | Y] ((d + T) x (d + T)): a
    Cholesky solve of (X'X + alpha I) b = X'y per target; when that system is (nearly)
    singular, singular(M, B) gives the target's solution (or raises Singular). Shared by the
    local Ridge / LinearRegression and parml.dask's, which build G from partitions."""
    A, B = G[:d, :d], G[:d, d:]
    T = B.shape[1]
    coef = np.empty((d, T))
    for t in range(T) if np.ndim(alphas) else [None]:
        a = float(alphas if t is None else alphas[t])
        cols = slice(None) if t is None else slice(t, t + 1)
        M = A + a * np.eye(d)
        try:
            L, low = scipy.linalg.cho_factor(M, check_finite=False)
            dg = np.abs(np.diag(L))
            ok = dg.min() > 0 and (dg.min() / dg.max()) ** 2 >= RCOND_MIN
        except np.linalg.LinAlgError:
            ok = False
        if ok:
            coef[:, cols] = scipy.linalg.cho_solve((L, low), B[:, cols], check_finite=False)
        else:
            coef[:, cols] = singular(M, B[:, cols])
    return coef
