"""LogisticRegression, LinearRegression and Ridge trained on a Dask cluster: parml's kernels run
inside tasks over each partition, the driver sums what they return (in a fixed order) and decides.

    driver (scipy L-BFGS-B)                  workers (one task per worker and evaluation)
    theta --- submit(W, b) ----------------> for each partition p it holds, in turn:
                                                 parml fused kernel -> [grad W, grad b, loss]_p
    f, g <--- tree_sum over p = 0..P-1 <---- one vector per partition (K*d + K + 1 doubles)

Ridge and LinearRegression need a single round: every partition returns its weight sum, its
weighted column means and its Gram matrix [X | Y]^T W [X | Y] centred at its own means (parml's
GEMM kernel); the driver merges them into the global centred Gram matrix with the parallel-axis
rule (no cancellation from raw moments) and solves exactly as the local estimator does.
"""

from __future__ import annotations

import contextlib
import numbers
import time

import numpy as np
import scipy.linalg
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MultiOutputMixin,
    RegressorMixin,
)

from ._common import (
    DaskPredictMixin,
    get_client,
    partitions,
    release,
    run_per_worker,
    tree_sum,
    worker_groups,
    worker_n_threads,
)

# Evaluations between refreshes of "which worker holds which partition": after a worker is lost
# Dask recomputes its partitions elsewhere; refreshing re-pins tasks to where the data now lives.
REGROUP_EVERY = 10


# ------------------------------------------------------------------------------------------
# Driver-side input handling: everything that can be checked without reading the data.

def _numeric_dtype(t):
    return getattr(t, "kind", "O") in "fiub"


def _is_dask_frame(a):
    import dask.array as da
    return hasattr(a, "to_dask_array") and hasattr(a, "npartitions") and not isinstance(a, da.Array)


def _frame_dtypes_ok(X, name):
    import pandas as pd
    bad = [c for c, t in X.dtypes.items()
           if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))
           or isinstance(t, pd.CategoricalDtype)]
    if bad:
        raise TypeError(f"{name} has non-numeric columns {bad[:10]}; parml's linear models "
                        "need numbers (encode categorical or string columns first)")


def _feature_names(X):
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    cols = list(cols)
    return np.asarray(cols, dtype=object) if cols and all(isinstance(c, str) for c in cols) \
        else None


class _Inputs:
    """X, y, sample_weight as dask arrays with known chunk sizes, plus what fit records."""


def _driver_inputs(client, X, y, sample_weight, *, classifier):
    import dask.array as da

    if y is None:
        raise ValueError("fit requires y, but the target y is None")
    inp = _Inputs()
    inp.feature_names = _feature_names(X)

    # X: dtype and dimension checks first, from metadata only
    if _is_dask_frame(X):
        if X.ndim != 2:
            raise ValueError("X must be 2-D (a dask DataFrame or array), got a dask Series")
        _frame_dtypes_ok(X, "X")
    elif isinstance(X, da.Array):
        if not _numeric_dtype(X.dtype):
            raise TypeError(f"X has dtype {X.dtype}; parml's linear models need numeric "
                            "features (float32, float64, integer or bool)")
    else:
        if hasattr(X, "dtypes") and hasattr(X, "columns"):   # pandas DataFrame
            _frame_dtypes_ok(X, "X")
        X = np.asarray(X)
        if X.dtype.kind in "USV":
            raise TypeError(f"X has dtype {X.dtype}: strings are not numbers; parml's linear "
                            "models need numeric features")
        if not _numeric_dtype(X.dtype):
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"X has dtype {X.dtype} with values that are not numbers; "
                                "parml's linear models need numeric features") from None
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D with shape "
                         f"{X.shape}")

    def as_array(a):
        if a is None or _is_dask_frame(a) or isinstance(a, da.Array):
            return a
        return np.asarray(a)

    y, sw = as_array(y), as_array(sample_weight)    # a scalar weight stays 0-D until n is known

    # Row counts of dask dataframes: one compute for all of them, so X and y read from the same
    # source (df[cols], df["target"]) share the reading instead of each paying a pass.
    frames = [a for a in (X, y, sw) if _is_dask_frame(a)]
    if frames:
        lens = client.gather(client.compute([f.map_partitions(len) for f in frames]))
        conv = {id(f): f.to_dask_array(lengths=tuple(int(v) for v in n))
                for f, n in zip(frames, lens)}
        X, y, sw = (conv.get(id(a), a) if a is not None else None for a in (X, y, sw))
    for a in (X, y, sw):
        if isinstance(a, da.Array) and any(np.isnan(c) for c in a.chunks[0]):
            raise ValueError("a dask array with unknown chunk sizes was given; call "
                             ".compute_chunk_sizes() on it (or pass the dask DataFrame)")

    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(f"Found X with shape {X.shape}; at least one sample and one feature "
                         "are required")
    if not isinstance(X, da.Array):
        # numpy on the driver: cut it into one partition per worker so that every worker works
        n_workers = max(1, len(client.nthreads()))
        X = da.from_array(X, chunks=(-(-n // n_workers), d))

    if getattr(y, "ndim", 1) == 0:
        raise ValueError("y must be 1-D (n_samples,) or 2-D, got a scalar")
    if y.ndim > 2:
        raise ValueError(f"y must be 1-D or 2-D, got {y.ndim} dimensions")
    if classifier and y.ndim == 2 and y.shape[1] != 1:
        raise ValueError(f"y must be 1-D (n_samples,) for a classifier, got shape {y.shape}")
    if not classifier and not _numeric_dtype(y.dtype):
        raise ValueError(f"y has dtype {y.dtype}; a regressor needs numeric targets")
    if sw is not None:
        if np.ndim(sw) == 0:
            sw = np.full(n, float(sw))
        if not _numeric_dtype(sw.dtype):
            raise TypeError(f"sample_weight has dtype {sw.dtype}; it must be numeric")
        if sw.ndim != 1:
            raise ValueError(f"sample_weight must be 1-D (n_samples,), got shape {sw.shape}")
    inp.y_1d = y.ndim == 1
    inp.X, inp.y, inp.sw, inp.n, inp.d = X, y, sw, int(n), int(d)
    return inp


@contextlib.contextmanager
def _clear_task_errors(name):
    """Errors of the cluster itself become one clear RuntimeError (no model is fitted then);
    our own checks inside tasks (ValueError / TypeError naming the partition) pass unchanged."""
    from concurrent.futures import CancelledError

    from distributed.scheduler import KilledWorker
    try:
        yield
    except KilledWorker as e:
        try:
            said = str(e)
        except Exception:  # noqa: BLE001 - formatting must never hide the real error
            said = repr(e.args)
        raise RuntimeError(
            f"parml.dask {name}.fit failed: a task was lost together with its worker more often "
            f"than Dask allows (distributed.scheduler.allowed-failures); no model was fitted. "
            f"Dask said: {said}") from e
    except CancelledError as e:
        raise RuntimeError(f"parml.dask {name}.fit failed: its tasks were cancelled (the client "
                           f"or cluster was closed during the fit); no model was fitted") from e
    except OSError as e:
        raise RuntimeError(f"parml.dask {name}.fit failed: lost the connection to the Dask "
                           f"cluster ({e}); no model was fitted") from e


def _forget_fit(est):
    """A refit (or a failed one) must never leave the previous model's attributes around."""
    for k in [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]:
        delattr(est, k)
    est.__dict__.pop("_scatter_cache", None)


def _local_params(est, cls):
    params = {k: v for k, v in est.get_params(deep=False).items() if k != "client"}
    return cls(**params)


# ------------------------------------------------------------------------------------------
# Task functions: they run on the workers, one partition at a time.

def _prepare(part, i, y_kind, n_targets=1):
    """Validated partition (X float32 / float64 C-contiguous, y, sw float64 or None). Per-
    partition task: 1 thread, since the worker runs as many of these at once as it has threads."""
    from parml._kernels import _linear
    X, y, sw = part
    X = np.asarray(X)
    if X.dtype != np.float32:
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"parml.dask: partition {i} of X holds values that are not numbers "
                            f"(dtype {X.dtype})") from None
    X = np.ascontiguousarray(X)
    if X.ndim != 2:
        raise ValueError(f"parml.dask: partition {i} of X is {X.ndim}-D, expected 2-D")
    if X.shape[0] and not _linear.all_finite(X, 1):
        raise ValueError(f"parml.dask: partition {i} of X contains NaN or infinity; parml's "
                         "linear models need finite values (impute or drop them first)")
    y = np.asarray(y)
    if y_kind == "labels":
        y = y.reshape(-1)
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"parml.dask: partition {i} of y contains NaN or infinity")
    else:
        y = np.ascontiguousarray(y.reshape(y.shape[0], n_targets), dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError(f"parml.dask: partition {i} of y contains NaN or infinity")
    if y.shape[0] != X.shape[0]:   # a dask array whose declared chunks lie about its rows
        raise ValueError(f"parml.dask: partition {i} has {X.shape[0]} rows of X but "
                         f"{y.shape[0]} of y")
    if sw is not None:
        sw = np.ascontiguousarray(np.asarray(sw).reshape(-1), dtype=np.float64)
        if not np.isfinite(sw).all():
            raise ValueError(f"parml.dask: partition {i} of sample_weight contains NaN or "
                             "infinity")
        if (sw < 0).any():
            raise ValueError(f"parml.dask: partition {i} of sample_weight has negative values")
    return X, y, sw


def _label_summary(prep):
    """(labels in this partition, their (weighted) counts): enough to find classes_ and the
    "balanced" class weights without moving y to the driver."""
    _, y, sw = prep
    labels, inv = np.unique(y, return_inverse=True)
    counts = np.bincount(inv.reshape(-1), weights=sw, minlength=len(labels)).astype(np.float64)
    return labels, counts


def _encode(prep, classes, cw, binary):
    """(X, y as the kernel's float64 targets, sample weights with class weights folded in)."""
    X, y, sw = prep
    yi = np.searchsorted(classes, y)
    yk = np.where(yi == 1, 1.0, -1.0) if binary else yi.astype(np.float64)
    if cw is not None:
        w = cw[yi]
        sw = w if sw is None else sw * w      # the local estimator's order of operations
    return X, np.ascontiguousarray(yk), sw


def _target(prep, t):
    X, Y, sw = prep
    return X, np.ascontiguousarray(Y[:, t]), sw


def _weight_sum(prep):
    _, _, sw = prep
    return float(prep[0].shape[0] if sw is None else sw.sum())


def _loss_grad_part(part, W, b, loss, strategy, n_threads):
    """[grad W (K*d), grad b (K), loss] summed over this partition by parml's fused kernel,
    on the worker's threads (one such task per worker runs at a time: see run_per_worker)."""
    from parml._kernels import _linear
    X, yk, sw = part
    K, d = W.shape
    out = np.zeros(K * d + K + 1)
    if X.shape[0]:
        _linear.loss_grad(X, yk, sw, W, b, 1.0, loss, False, 0.0, None, strategy, out,
                          worker_n_threads(n_threads))
    return out


def _moments_part(part, fit_intercept, n_threads):
    """(S_p, mean_p of [X | Y], Gram of [X | Y] centred at mean_p, weighted): one pass of
    col_sums and one of parml's Gram kernel over the partition."""
    from parml._kernels import _linear
    X, Y, sw = part
    n, d = X.shape
    D = d + Y.shape[1]
    G = np.zeros((D, D))
    mu = np.zeros(D)
    if n == 0:
        return 0.0, mu, G
    nt = worker_n_threads(n_threads)
    S = float(n if sw is None else sw.sum())
    if fit_intercept and S > 0:
        sums = np.empty(d)
        _linear.col_sums(X, sw, sums, nt)
        mu[:d] = sums / S
        mu[d:] = (Y.sum(axis=0) if sw is None else sw @ Y) / S
    _linear.gram(X, Y, sw, mu, G, nt)
    return S, mu, G


# ------------------------------------------------------------------------------------------
# Driver-side optimisation

class _Objective:
    """f(theta) -> (value, gradient) of (1/S) sum_i s_i loss_i + ||W||^2 / (2 C S), exactly the
    local estimators' objective (parml._core.linear.objective), with every evaluation one
    round of tasks on the cluster."""

    def __init__(self, client, futures, *, K, d, S, C, fit_intercept, loss, strategy, n_threads):
        self.client, self.futures = client, futures
        self.K, self.d, self.S = K, d, S
        self.reg = 0.0 if not np.isfinite(C) else 1.0 / (C * S)
        self.fit_intercept = fit_intercept
        self.args = (loss, strategy, n_threads)
        self.groups = worker_groups(client, futures)
        self.max_workers = len(self.groups)
        self.evaluations = 0
        self.tasks = 0
        self.seconds = 0.0

    def __call__(self, theta):
        t0 = time.perf_counter()
        K, d = self.K, self.d
        KD = K * d
        if self.evaluations and self.evaluations % REGROUP_EVERY == 0:
            self.groups = worker_groups(self.client, self.futures)
            self.max_workers = max(self.max_workers, len(self.groups))
        W = np.ascontiguousarray(theta[:KD].reshape(K, d))
        b = np.ascontiguousarray(theta[KD:]) if self.fit_intercept else np.zeros(K)
        parts, n_tasks = run_per_worker(self.client, _loss_grad_part, self.futures,
                                        (W, b) + self.args, self.groups)
        tot = tree_sum(parts)
        if not np.isfinite(tot).all():   # never hand L-BFGS garbage: fail loudly instead
            raise FloatingPointError("parml.dask: the loss or gradient summed over the "
                                     "partitions is not finite")
        w = theta[:KD]
        f = tot[-1] / self.S + 0.5 * self.reg * float(w @ w)
        g = np.zeros_like(theta)
        g[:KD] = tot[:KD] / self.S + self.reg * w
        if self.fit_intercept:
            g[KD:] = tot[KD:KD + K] / self.S
        self.evaluations += 1
        self.tasks += n_tasks
        self.seconds += time.perf_counter() - t0
        return f, g


def _lbfgs(fun, x0, *, tol, max_iter, verbose):
    """scipy's L-BFGS-B with the local driver's options (parml._core.linear), so both
    follow the same path up to rounding."""
    from parml._core.linear import run_lbfgs
    return run_lbfgs(fun, x0, tol=tol, max_iter=max_iter, verbose=verbose,
                     what="L-BFGS on Dask", passes="loss+gradient rounds")


def _stats(obj_list, nit, t_start, t_opt, partitions_, extra_tasks):
    evals = sum(o.evaluations for o in obj_list)
    opt_s = sum(o.seconds for o in obj_list)
    workers = max((o.max_workers for o in obj_list), default=0)
    return {"iterations": int(nit), "evaluations": int(evals),
            "fit_seconds": time.perf_counter() - t_start,
            "setup_seconds": t_opt - t_start,
            "optimizer_seconds": opt_s,
            "seconds_per_iteration": opt_s / nit if nit else float("nan"),
            "seconds_per_evaluation": opt_s / evals if evals else float("nan"),
            "tasks": int(sum(o.tasks for o in obj_list) + extra_tasks),
            "partitions": int(partitions_), "workers": int(workers)}


# ------------------------------------------------------------------------------------------
# Estimators

class LogisticRegression(DaskPredictMixin, ClassifierMixin, BaseEstimator):
    """parml's LogisticRegression on a Dask cluster: the same parameters and the same objective
    (L2-regularised, binary or multinomial), data-parallel over the partitions of a dask array
    or dataframe. L-BFGS runs on the driver; each loss + gradient evaluation is one task per
    worker running parml's fused kernel over the partitions it holds, summed in fixed partition
    order. Only ``solver="lbfgs"`` is offered. ``client=None`` uses distributed's default client.

    Fitted attributes as the local estimator (coef_, intercept_, classes_, n_iter_,
    n_features_in_, feature_names_in_), plus ``local_model_`` (a fitted
    parml.linear_model.LogisticRegression, also ``to_local()``) and ``fit_stats_`` (iterations,
    seconds per iteration, tasks, ...). predict / predict_proba / decision_function take dask
    arrays or dataframes and return lazy dask arrays; numpy input is answered locally.
    """

    def __init__(self, penalty="l2", *, C=1.0, tol=1e-4, fit_intercept=True, class_weight=None,
                 random_state=None, solver="lbfgs", max_iter=100, verbose=0, warm_start=False,
                 strategy="auto", n_threads=None, client=None):
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
        self.client = client

    def _check_params(self):
        from parml._core.linear import check_regularised_fit_params
        check_regularised_fit_params(self)
        if self.penalty not in ("l2", None):
            raise ValueError(f"penalty must be 'l2' or None, got {self.penalty!r}")
        if self.solver != "lbfgs":
            raise ValueError(f"parml.dask.LogisticRegression supports solver='lbfgs' only, got "
                             f"{self.solver!r} (use parml.linear_model for 'gd' / 'sgd')")
        if self.n_threads is not None and (isinstance(self.n_threads, bool) or
                                           not isinstance(self.n_threads, numbers.Integral)
                                           or self.n_threads < 1):
            raise ValueError(f"n_threads must be None or a positive integer on Dask workers, "
                             f"got {self.n_threads!r}")

    def fit(self, X, y, sample_weight=None):
        """Fit on a dask array / dataframe (or numpy, which is split over the workers).

        X : (n_samples, n_features) numeric; y : (n_samples,) labels;
        sample_weight : (n_samples,) non-negative, optional. Returns self."""
        import distributed
        from sklearn.utils.multiclass import check_classification_targets

        from parml.linear_model import LogisticRegression as Local
        from parml._core.linear import LOSS, resolve_strategy

        self._check_params()
        old = (getattr(self, "coef_", None), getattr(self, "intercept_", None))
        _forget_fit(self)
        t_start = time.perf_counter()
        client = get_client(self.client)
        inp = _driver_inputs(client, X, y, sample_weight, classifier=True)
        d = inp.d
        futs = prep = enc = []
        with _clear_task_errors(type(self).__name__):
            try:
                futs, sizes = partitions(client, inp.X, inp.y, inp.sw)
                prep = [client.submit(_prepare, f, i, "labels", pure=False)
                        for i, f in enumerate(futs)]
                summaries = client.gather([client.submit(_label_summary, p, pure=False)
                                           for p in prep])
                release(futs)
                classes = np.unique(np.concatenate([s[0] for s in summaries]))
                check_classification_targets(classes)
                if len(classes) < 2:
                    raise ValueError(
                        f"{type(self).__name__} needs samples of at least 2 classes in the "
                        f"data, but the data contains only one class: {classes[0]!r}")
                per_part = []
                for labels, counts in summaries:
                    full = np.zeros(len(classes))
                    full[np.searchsorted(classes, labels)] = counts
                    per_part.append(full)
                counts = tree_sum(per_part)
                cw = None
                if self.class_weight is not None:
                    from sklearn.utils.class_weight import compute_class_weight
                    # y=classes with their (weighted) counts as weights: the same bincount the
                    # local estimator's compute_class_weight does over every sample
                    cw = compute_class_weight(self.class_weight, classes=classes, y=classes,
                                              sample_weight=counts)
                S = float(np.sum(counts if cw is None else counts * cw))
                if not S > 0:
                    raise ValueError("the sample weights sum to zero; nothing to fit")
                K = 1 if len(classes) == 2 else len(classes)
                enc = [client.submit(_encode, p, classes, cw, K == 1, pure=False) for p in prep]
                with client.as_current():
                    distributed.wait(enc)
                release(prep)
                x0 = np.zeros(K * d + K)
                if self.warm_start and old[0] is not None and np.shape(old[0]) == (K, d):
                    x0[:K * d] = np.ravel(old[0])
                    x0[K * d:] = old[1]
                loss = LOSS["log_loss"] if K == 1 else LOSS["multinomial"]
                C = np.inf if self.penalty is None else float(self.C)
                obj = _Objective(client, enc, K=K, d=d, S=S, C=C,
                                 fit_intercept=self.fit_intercept, loss=loss,
                                 strategy=resolve_strategy(self.strategy, K, d),
                                 n_threads=self.n_threads)
                t_opt = time.perf_counter()
                res = _lbfgs(obj, x0, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose)
            finally:
                release(futs)
                release(prep)
                release(enc)
        theta = res.x
        local = _local_params(self, Local)
        local.classes_ = classes
        local.coef_ = np.ascontiguousarray(theta[:K * d].reshape(K, d))
        local.intercept_ = theta[K * d:].copy() if self.fit_intercept else np.zeros(K)
        local.n_iter_ = np.array([res.nit], dtype=np.int32)
        local.n_features_in_ = d
        if inp.feature_names is not None:
            local.feature_names_in_ = inp.feature_names
        self.local_model_ = local
        self._state_sklearn_attrs()
        self.fit_stats_ = _stats([obj], res.nit, t_start, t_opt, len(sizes), 3 * len(sizes))
        return self

    def decision_function(self, X):
        """Signed scores: (n_samples,) for two classes, (n_samples, n_classes) otherwise; a lazy
        dask array for dask input."""
        return self._map("decision_function", X, None)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); a lazy dask array for dask input."""
        return self._map("predict_proba", X, None)

    def predict_log_proba(self, X):
        return self._map("predict_log_proba", X, None)


def _check_tol(est):
    if est.tol is not None and (isinstance(est.tol, bool) or not isinstance(est.tol, numbers.Real)
                                or not est.tol >= 0):
        raise ValueError(f"tol must be a non-negative number, got {est.tol!r}")


def _solve_gram(G, d, alpha, cond):
    """Ridge / least squares from the centred Gram matrix of [X | Y]: Cholesky, as the local
    estimator; when the system is (nearly) singular, the minimum-norm solution of the normal
    equations with eigenvalues below cond * the largest dropped (the local estimator would go
    back to the data for an SVD, which a distributed fit cannot do cheaply)."""
    from parml._core.linear import solve_gram

    def singular(M, B):
        evals, evecs = scipy.linalg.eigh(M, check_finite=False)
        keep = evals > cond * max(evals.max(), 0.0)
        inv = np.where(keep, 1.0 / np.where(keep, evals, 1.0), 0.0)
        return evecs @ (inv[:, None] * (evecs.T @ B))
    return solve_gram(G, d, alpha, singular)


def _fit_least_squares(est, X, y, sample_weight, alpha, solver, local_cls):
    """LinearRegression / Ridge on the cluster: one round of Gram tasks (or L-BFGS rounds)."""
    from parml._core.linear import LOSS, resolve_strategy
    from parml._core.linear import GRAM_MAX_FEATURES

    _forget_fit(est)
    t_start = time.perf_counter()
    client = get_client(est.client)
    inp = _driver_inputs(client, X, y, sample_weight, classifier=False)
    n, d = inp.n, inp.d
    T = 1 if inp.y.ndim == 1 else inp.y.shape[1]
    if np.ndim(alpha):
        if alpha.shape[0] != T:
            raise ValueError(f"alpha has {alpha.shape[0]} values but y has {T} targets")
        if alpha.shape[0] == 1:
            alpha = float(alpha[0])
    if solver == "auto":
        solver = "cholesky" if d <= GRAM_MAX_FEATURES or d <= n // 4 else "lbfgs"
    futs = prep = cols = []
    objs = []
    n_iter = np.ones(T, dtype=np.int32)       # direct solves: one "iteration" per target
    extra_tasks = 0
    with _clear_task_errors(type(est).__name__):
        try:
            futs, sizes = partitions(client, inp.X, inp.y, inp.sw, multi_output=True)
            prep = [client.submit(_prepare, f, i, "targets", T, pure=False)
                    for i, f in enumerate(futs)]
            extra_tasks += len(prep)
            t_opt = time.perf_counter()
            if solver == "cholesky":
                moments, nt = run_per_worker(client, _moments_part, prep,
                                             (est.fit_intercept, est.n_threads))
                extra_tasks += nt
                S_p = np.array([m[0] for m in moments])
                S = float(tree_sum([np.array([s]) for s in S_p])[0])
                if not S > 0:
                    raise ValueError("the sample weights sum to zero; nothing to fit")
                if est.fit_intercept:
                    mean = tree_sum([s * m[1] for s, m in zip(S_p, moments)]) / S
                    # parallel-axis rule: sum of per-partition centred Grams plus the spread of
                    # the partition means around the global mean (exact, no cancellation)
                    G = tree_sum([m[2] + s * np.outer(m[1] - mean, m[1] - mean)
                                  for s, m in zip(S_p, moments)])
                else:
                    mean = np.zeros(d + T)
                    G = tree_sum([m[2] for m in moments])
                tol = getattr(est, "tol", None)
                cond = max(float(tol) if tol else 1e-6, np.finfo(float).eps ** 0.5) ** 2
                coef = _solve_gram(G, d, alpha, cond)
                mx, my = mean[:d], mean[d:]
                intercept = my - mx @ coef
            else:
                sums = client.gather([client.submit(_weight_sum, p, pure=False) for p in prep])
                extra_tasks += len(prep)
                S = float(tree_sum([np.array([s]) for s in sums])[0])
                if not S > 0:
                    raise ValueError("the sample weights sum to zero; nothing to fit")
                coef = np.empty((d, T))
                intercept = np.zeros(T)
                strat = resolve_strategy(est.strategy, 1, d)
                for t in range(T):
                    a = float(alpha if not np.ndim(alpha) else alpha[t])
                    cols = [client.submit(_target, p, t, pure=False) for p in prep]
                    extra_tasks += len(cols)
                    obj = _Objective(client, cols, K=1, d=d, S=S,
                                     C=np.inf if a == 0 else 1.0 / a,
                                     fit_intercept=est.fit_intercept,
                                     loss=LOSS["squared_error"], strategy=strat,
                                     n_threads=est.n_threads)
                    objs.append(obj)
                    res = _lbfgs(obj, np.zeros(d + 1),
                                 tol=est.tol if est.tol is not None else 1e-4,
                                 max_iter=getattr(est, "max_iter", None) or 15000, verbose=0)
                    release(cols)
                    coef[:, t] = res.x[:d]
                    intercept[t] = res.x[d] if est.fit_intercept else 0.0
                    n_iter[t] = res.nit
        finally:
            release(futs)
            release(prep)
            release(cols)
    local = _local_params(est, local_cls)
    if inp.y_1d:
        local.coef_ = np.ascontiguousarray(coef[:, 0])
        local.intercept_ = float(intercept[0]) if est.fit_intercept else 0.0
    elif coef.shape[1] == 1 and local_cls._single_column_as_1d:
        # (the local Ridge's, and scikit-learn's, shapes for a (n, 1) target)
        local.coef_ = np.ascontiguousarray(coef[:, 0])
        local.intercept_ = intercept if est.fit_intercept else 0.0
    else:
        local.coef_ = np.ascontiguousarray(coef.T)
        local.intercept_ = intercept if est.fit_intercept else 0.0
    local.n_iter_ = n_iter
    local.n_features_in_ = d
    if inp.feature_names is not None:
        local.feature_names_in_ = inp.feature_names
    est.local_model_ = local
    est._state_sklearn_attrs()
    nit = int(n_iter.sum()) if objs else 1
    est.fit_stats_ = _stats(objs, nit, t_start, t_opt, len(sizes), extra_tasks)
    if not objs:
        est.fit_stats_.update(seconds_per_iteration=time.perf_counter() - t_opt,
                              optimizer_seconds=time.perf_counter() - t_opt,
                              workers=len(client.nthreads()))
    return est


class _LSMixin(DaskPredictMixin, MultiOutputMixin, RegressorMixin, BaseEstimator):
    def _check_n_threads(self):
        if self.n_threads is not None and (isinstance(self.n_threads, bool) or
                                           not isinstance(self.n_threads, numbers.Integral)
                                           or self.n_threads < 1):
            raise ValueError(f"n_threads must be None or a positive integer on Dask workers, "
                             f"got {self.n_threads!r}")


class LinearRegression(_LSMixin):
    """parml's LinearRegression on a Dask cluster: one round of tasks, each returning its
    partition's weighted centred Gram matrix of [X | y] (parml's GEMM), merged on the driver and
    solved by Cholesky as the local estimator does. Same parameters plus ``client``.
    Rank-deficient X: the minimum-norm solution of the normal equations (eigenvalues below
    tol^2 of the largest dropped)."""

    def __init__(self, *, fit_intercept=True, copy_X=True, tol=1e-6, positive=False,
                 n_threads=None, client=None):
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.positive = positive
        self.n_threads = n_threads
        self.client = client

    def fit(self, X, y, sample_weight=None):
        """X : (n_samples, n_features) numeric dask array / dataframe / numpy; y : (n_samples,)
        or (n_samples, n_targets); sample_weight : (n_samples,), optional. Returns self."""
        from parml.linear_model import LinearRegression as Local
        if self.positive:
            raise ValueError("positive=True is not supported by parml's LinearRegression")
        _check_tol(self)
        self._check_n_threads()
        return _fit_least_squares(self, X, y, sample_weight, 0.0, "cholesky", Local)


class Ridge(_LSMixin):
    """parml's Ridge on a Dask cluster. ``solver``: "auto" / "cholesky" (one round of Gram tasks
    merged on the driver; "auto" switches to "lbfgs" when a d x d Gram matrix would be too big)
    or "lbfgs" (distributed L-BFGS on the fused squared-error kernel, one round per
    evaluation). Same parameters as parml.linear_model.Ridge plus ``client``."""

    def __init__(self, alpha=1.0, *, fit_intercept=True, copy_X=True, max_iter=None, tol=1e-4,
                 solver="auto", positive=False, random_state=None, strategy="auto",
                 n_threads=None, client=None):
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
        self.client = client

    def fit(self, X, y, sample_weight=None):
        """X : (n_samples, n_features) numeric dask array / dataframe / numpy; y : (n_samples,)
        or (n_samples, n_targets); sample_weight : (n_samples,), optional. Returns self."""
        from parml.linear_model import Ridge as Local
        if self.positive:
            raise ValueError("positive=True is not supported by parml's Ridge")
        if self.solver not in ("auto", "cholesky", "lbfgs"):
            raise ValueError(f"solver must be 'auto', 'cholesky' or 'lbfgs', got {self.solver!r}")
        _check_tol(self)
        self._check_n_threads()
        a = np.asarray(self.alpha, dtype=np.float64) if not isinstance(self.alpha, str) else None
        if a is None or a.ndim > 1 or not np.isfinite(a).all() or (a < 0).any():
            raise ValueError(f"alpha must be a non-negative number or 1-D array, got {self.alpha!r}")
        if self.max_iter is not None and (isinstance(self.max_iter, bool) or
                                          not isinstance(self.max_iter, numbers.Integral) or
                                          self.max_iter < 1):
            raise ValueError(f"max_iter must be None or a positive integer, got {self.max_iter!r}")
        return _fit_least_squares(self, X, y, sample_weight, a if a.ndim else float(a),
                                  self.solver, Local)
