"""What every parml.dask estimator shares: the client, the worker's thread count, partitions of
(X, y, sample_weight) placed on workers, and prediction on dask collections."""

from __future__ import annotations

import numpy as np


def _import_dask():
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as e:  # pragma: no cover - exercised only without dask
        raise ImportError("parml.dask needs Dask: pip install 'parml[dask]' "
                          "(dask[distributed])") from e
    return distributed


def get_client(client=None):
    """The given client, else ``distributed.default_client()`` (ValueError if none)."""
    distributed = _import_dask()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client or None, got "
                            f"{type(client).__name__}")
        return client
    try:
        return distributed.default_client()
    except ValueError as e:
        raise ValueError("parml.dask needs a running Dask client: pass client=... or create "
                         "distributed.Client(...) first") from e


def worker_n_threads(n_threads=None):
    """Threads a kernel may use inside a Dask task: the explicit n_threads if given, else the
    worker's own thread count (Dask's nanny sets OMP_NUM_THREADS=1, which would otherwise pin
    parml to one thread on a multi-core worker; the worker's nthreads never oversubscribes)."""
    if n_threads is not None:
        return int(n_threads)
    try:
        from distributed import get_worker
        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def _as_blocks(a, name):
    """A dask array/dataframe/series, or a numpy array, as a list of delayed row blocks and the
    row count of each block (None where unknown)."""
    import dask.array as da
    if hasattr(a, "to_dask_array") and not isinstance(a, da.Array):  # dask dataframe / series
        a = a.to_dask_array(lengths=True)
    if isinstance(a, da.Array):
        if a.ndim == 2 and a.numblocks[1] != 1:
            a = a.rechunk({1: -1})
        blocks = list(a.to_delayed().ravel())
        return blocks, list(a.chunks[0]), a
    if isinstance(a, np.ndarray) or hasattr(a, "__array__"):
        arr = np.asarray(a)
        return None, [arr.shape[0]] if arr.ndim else None, arr
    raise TypeError(f"{name} must be a dask array, dask dataframe/series or numpy array, got "
                    f"{type(a).__name__}")


def partitions(client, X, y=None, sample_weight=None, *, multi_output=False):
    """Persist (X, y, sample_weight) row partitions on the workers.

    Returns (futures, sizes): one future per partition holding the tuple (X_p, y_p, sw_p) of
    numpy arrays (y_p / sw_p None when not given), and the row count of each. y and
    sample_weight are rechunked to X's row chunks. Raises ValueError for mismatched lengths.
    ``multi_output=True`` lets y be 2-D (n_samples, n_targets), kept whole in its columns.
    """
    import dask
    import dask.array as da
    _import_dask()
    if hasattr(X, "to_dask_array") and not isinstance(X, da.Array):
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=(max(1, len(X)), -1) if np.ndim(X) == 2 else -1)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D")
    X = X.rechunk({1: -1})
    chunks = X.chunks[0]

    def align(a, name, two_d=False):
        if a is None:
            return None
        if hasattr(a, "to_dask_array") and not isinstance(a, da.Array):
            a = a.to_dask_array(lengths=True)
        if not isinstance(a, da.Array):
            a = da.from_array(np.asarray(a), chunks=-1)
        if a.ndim == 2 and a.shape[1] == 1 and not two_d:
            a = a[:, 0]
        if a.ndim != 1 and not (two_d and a.ndim == 2):
            raise ValueError(f"{name} must be 1-D{' or 2-D' if two_d else ''}, got shape "
                             f"{a.shape}")
        if a.shape[0] != X.shape[0]:
            raise ValueError(f"{name} has {a.shape[0]} rows but X has {X.shape[0]}")
        return a.rechunk((chunks,) if a.ndim == 1 else (chunks, -1))

    y = align(y, "y", two_d=multi_output)
    sw = align(sample_weight, "sample_weight")
    xb = X.to_delayed().ravel()
    yb = [None] * len(xb) if y is None else y.to_delayed().ravel()
    wb = [None] * len(xb) if sw is None else sw.to_delayed().ravel()
    parts = [dask.delayed(tuple)([x, yy, ww]) for x, yy, ww in zip(xb, yb, wb)]
    futures = client.compute(parts)
    return futures, [int(c) for c in chunks]


def release(futures):
    """Drop this client's hold on the futures (their memory on the workers is freed once nothing
    else needs it). Safe to call twice."""
    for f in futures or ():
        try:
            f.release()
        except Exception:  # noqa: BLE001, S110 - a closed client has let go of them already
            pass


def tree_sum(arrays):
    """Sum of the arrays in a pairwise tree over their order in the list: ((a0+a1)+(a2+a3))+...

    The order depends on the list only, never on which worker answered first, so a fit gives
    the same bits run after run; the tree keeps rounding error at O(log P) additions."""
    items = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not items:
        raise ValueError("tree_sum needs at least one array")
    while len(items) > 1:
        nxt = [items[i] + items[i + 1] for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def worker_groups(client, futures):
    """{worker address: [partition indices]} from where the (finished) futures live now."""
    import distributed
    with client.as_current():   # wait() otherwise looks for the *default* client
        distributed.wait(futures)
    who = client.who_has(futures)
    groups = {}
    for i, f in enumerate(futures):
        addrs = who.get(f.key) or (None,)
        groups.setdefault(min(addrs), []).append(i)
    return groups


def _run_group(fn, args, *parts):
    return [fn(p, *args) for p in parts]


def run_per_worker(client, fn, futures, args=(), groups=None):
    """fn(part, *args) for every partition, as ONE task per worker that runs its partitions in
    turn. Returns (results in partition order, number of tasks submitted).

    Why one task per worker and not per partition: fn may use every thread of the worker
    (worker_n_threads()); a worker with T threads running T such tasks at once would start T*T
    OpenMP threads. One task per worker keeps kernels at exactly the worker's cores, and also
    costs one scheduler round trip per worker instead of per partition. Tasks are pinned to the
    worker holding the data but allowed elsewhere, so a lost worker's share is recomputed and
    run on a survivor by Dask. ``groups`` (from worker_groups) may be reused between calls."""
    if groups is None:
        groups = worker_groups(client, futures)
    submitted = []
    for addr, idx in groups.items():
        where = {} if addr is None else {"workers": [addr], "allow_other_workers": True}
        fut = client.submit(_run_group, fn, tuple(args), *[futures[i] for i in idx],
                            pure=False, **where)
        submitted.append((idx, fut))
    results = [None] * len(futures)
    try:
        answers = client.gather([f for _, f in submitted])
    finally:
        release([f for _, f in submitted])
    for (idx, _), ans in zip(submitted, answers):
        for i, r in zip(idx, ans):
            results[i] = r
    return results, len(submitted)


def _call_plain(model, method, X):
    """model.method(X) for a numpy block. A model fitted on a dataframe has feature_names_in_;
    the column names were checked on the driver before the blocks lost them, so scikit-learn's
    "X does not have valid feature names" warning would be noise here."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return getattr(model, method)(X)


class DaskPredictMixin:
    """predict / predict_proba / decision_function on dask arrays and dataframes, returning dask
    arrays, computed block by block on the workers with the fitted local model scattered once.
    Numpy input is answered locally by the local model."""

    def to_local(self):
        """The fitted plain parml estimator (no Dask needed to use it)."""
        from sklearn.exceptions import NotFittedError
        if getattr(self, "local_model_", None) is None:
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call "
                                 f"fit first.")
        return self.local_model_

    def _scattered(self):
        client = get_client(getattr(self, "client", None))
        key = id(client)
        cache = getattr(self, "_scatter_cache", None)
        if cache is None or cache[0] != key or cache[2] is not self.local_model_:
            model = self.local_model_
            if "n_threads" in model.get_params(deep=False):
                # a worker with T threads runs T prediction blocks at once: one thread each
                # keeps it at T cores whatever n_threads the model was fitted with (and even
                # without the nanny's OMP_NUM_THREADS=1)
                import copy
                model = copy.copy(model)
                model.n_threads = 1
            fut = client.scatter(model, broadcast=True, hash=False)
            cache = (key, fut, self.local_model_)
            self._scatter_cache = cache
        return cache[1]

    def _map(self, method, X, out_cols):
        import dask.array as da
        model = self.to_local()
        if hasattr(X, "to_dask_array") and not isinstance(X, da.Array):   # dask dataframe
            names = getattr(model, "feature_names_in_", None)
            cols = getattr(X, "columns", None)
            if names is not None and cols is not None and list(cols) != list(names):
                raise ValueError(f"X has columns {list(cols)}, but the model was fitted with "
                                 f"columns {list(names)} (same names, same order needed)")
            # lengths unknown (NaN chunks): stays lazy instead of a pass to count rows
            X = X.to_dask_array()
        if not isinstance(X, da.Array):
            return getattr(model, method)(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D")
        if X.shape[1] != model.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with "
                             f"{model.n_features_in_}")
        if X.numblocks[1] != 1:
            X = X.rechunk({1: -1})
        probe = _call_plain(model, method, np.zeros((1, X.shape[1]), dtype=X.dtype))
        tail = probe.shape[1:]
        fut = self._scattered()

        def block(xb, m, method=method, tail=tail, dtype=probe.dtype):
            if xb.shape[0] == 0:    # an empty chunk: the local model refuses 0 rows
                return np.empty((0,) + tail, dtype=dtype)
            return _call_plain(m, method, xb)

        if probe.ndim == 1:
            return X.map_blocks(block, fut, drop_axis=1, dtype=probe.dtype,
                                meta=np.empty((0,), probe.dtype))
        return X.map_blocks(block, fut, chunks=(X.chunks[0], tail),
                            dtype=probe.dtype, meta=np.empty((0, 0), probe.dtype))

    def predict(self, X):
        """Predictions; a dask array for dask input (lazy), numpy for numpy input."""
        return self._map("predict", X, None)

    def _state_sklearn_attrs(self):
        """Copy the fitted attributes users read (coef_, classes_, ...) from the local model."""
        m = self.local_model_
        for name in ("coef_", "intercept_", "classes_", "n_features_in_", "n_iter_",
                     "n_trees_per_iteration_", "feature_names_in_"):
            if hasattr(m, name):
                setattr(self, name, getattr(m, name))

    def __sklearn_clone__(self):
        """clone() deep-copies parameters, and a Client cannot be copied (sockets, event loop):
        the clone shares the client, as it should; every other parameter is cloned as usual."""
        from sklearn.base import clone
        params = self.get_params(deep=False)
        client = params.pop("client", None)
        params = {k: clone(v, safe=False) for k, v in params.items()}
        if "client" in self.get_params(deep=False):
            params["client"] = client
        return type(self)(**params)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_scatter_cache", None)
        # a Client cannot be pickled (sockets, event loop); the unpickled estimator uses the
        # default client of wherever it is loaded, like client=None
        if state.get("client") is not None:
            state["client"] = None
        return state
