"""parml.dask HistGradientBoostingClassifier against the local estimator on the same rows:
fit time per boosting iteration, the Dask overhead per iteration, round trips, test AUC.

Data (when the caller passes none): make_classification(n, 28, n_informative=14), 80/20 split,
as `parml bench trees`. Settings: 100 iterations and 31 leaves (quick: 20 and 15), 255 bins,
no early stopping, random_state=0. The local estimator uses all cores of this machine; the
cluster is the caller's (`parml bench dask`: 2 workers x 1 thread on the same machine).

Per-iteration seconds: local = (fit(max_iter=N) - fit(max_iter=1)) / (N - 1), so binning and
setup are left out of both sides; Dask = the median of the fit's own per-iteration timings
(`fit_stats_["iteration_seconds"]`, setup excluded too). Overhead per iteration = Dask - local.
The machine is shared and noisy: quote the overhead and ratios, not absolute times."""
from __future__ import annotations

import statistics
import time
import warnings

import numpy as np


def _data(n, d=28, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n, d, n_informative=14, random_state=seed)
    k = int(0.8 * n)
    return np.ascontiguousarray(X[:k]), y[:k], np.ascontiguousarray(X[k:]), y[k:]


def _n_workers(client):
    return max(1, len(client.scheduler_info()["workers"]))


def bench_hgb(client, X=None, y=None, quick=False, n=200_000):
    """Fit the local and the Dask HGB classifier on the same training rows; a dict of figures.

    X, y: numpy training data with binary y (None: the module's synthetic problem with n
    rows, 80% of them for training); 20% of the rows are held out for the AUCs. The Dask side
    gets X as a dask array with one row chunk per worker."""
    import dask.array as da
    import distributed
    from sklearn.metrics import roc_auc_score

    from parml.dask import HistGradientBoostingClassifier as DaskHGB
    from parml.ensemble import HistGradientBoostingClassifier as LocalHGB

    if X is None:
        Xtr, ytr, Xte, yte = _data(n)
    else:
        X, y = np.ascontiguousarray(X), np.asarray(y)
        k = int(0.8 * len(X))
        Xtr, ytr, Xte, yte = X[:k], y[:k], X[k:], y[k:]
    iters, leaves = (20, 15) if quick else (100, 31)
    params = {"max_leaf_nodes": leaves, "max_bins": 255, "early_stopping": False,
              "random_state": 0}

    def fit_local(m):
        t = time.perf_counter()
        model = LocalHGB(max_iter=m, **params).fit(Xtr, ytr)
        return time.perf_counter() - t, model

    fit_local(2)  # warm-up: imports, thread pool
    t1 = min(fit_local(1)[0] for _ in range(2))
    runs = [fit_local(iters) for _ in range(2)]   # the better of two: the machine is noisy
    t_local, local = min(runs, key=lambda r: r[0])
    local_iter = (t_local - t1) / (iters - 1)

    chunk = -(-len(Xtr) // _n_workers(client))
    with warnings.catch_warnings():     # "large graph": fine for a benchmark's numpy data
        warnings.simplefilter("ignore", UserWarning)
        Xd, yd = client.persist([da.from_array(Xtr, chunks=(chunk, -1)),
                                 da.from_array(ytr, chunks=chunk)])
        distributed.wait([Xd, yd])
    # warm-up: imports and first calls on the workers, outside the timed fit
    DaskHGB(max_iter=2, client=client, **params).fit(Xd[:2000], yd[:2000])
    t = time.perf_counter()
    dm = DaskHGB(max_iter=iters, client=client, **params).fit(Xd, yd)
    t_dask = time.perf_counter() - t
    st = dm.fit_stats_
    dask_iter = statistics.median(st["iteration_seconds"])
    auc_local = roc_auc_score(yte, local.predict_proba(Xte)[:, 1])
    auc_dask = roc_auc_score(yte, dm.to_local().predict_proba(Xte)[:, 1])
    ms = 1e3
    return {
        "rows": len(Xtr), "features": int(Xtr.shape[1]), "iterations": iters,
        "max_leaf_nodes": leaves, "workers": _n_workers(client), "shards": st["shards"],
        "local_fit_s": round(t_local, 3), "dask_fit_s": round(t_dask, 3),
        "dask_setup_s": round(st["setup_seconds"], 3),
        "local_per_iter_ms": round(ms * local_iter, 2),
        "dask_per_iter_ms": round(ms * dask_iter, 2),
        "dask_per_iter_ms_min": round(ms * min(st["iteration_seconds"]), 2),
        "dask_per_iter_ms_max": round(ms * max(st["iteration_seconds"]), 2),
        "overhead_per_iter_ms": round(ms * (dask_iter - local_iter), 2),
        "round_trips_per_iter": round(float(np.mean(st["round_trips"])), 2),
        "auc_local": round(float(auc_local), 5), "auc_dask": round(float(auc_dask), 5),
        "same_model": bool(np.allclose(local.predict_proba(Xte),
                                       dm.to_local().predict_proba(Xte))),
    }


def main(argv=None):
    """`python -m parml.benchmarks._dask_hgb [--quick] [--n N]` on a fresh 2-worker cluster."""
    import argparse
    import json

    import distributed
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=250_000, help="rows before the 80/20 split")
    a = ap.parse_args(argv)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        print(json.dumps(bench_hgb(client, quick=a.quick, n=a.n), indent=1))


if __name__ == "__main__":
    main()
