"""parml.dask against the local estimators on the same data and the same cores (same run,
alternating, contention-probed): local parml on 2 threads vs a 2-worker LocalCluster
(threads_per_worker=1, processes=True) on this machine.

Reports, for LogisticRegression: fit time, L-BFGS iterations, seconds per iteration, the overhead
per iteration (Dask's time per iteration minus the local one), the floor of that overhead (one
empty round of tasks), bytes moved per iteration, and the largest coefficient difference. If
parml.benchmarks._dask_hgb is present, its HistGradientBoosting rows follow (per boosting
iteration). Data: make_classification(rows, 28), 4 partitions, persisted on the workers first.

Needs parml[dask]. The machine is shared and noisy and the cluster's processes share its cores
with the driver: quote ratios and orders of magnitude, not absolute times."""
import argparse
import os
import statistics
import time
import warnings

import numpy as np

from . import harness as H


def _noop_part(part, size):
    return np.zeros(size)


def _round_floor(client, futures, size, rounds=20):
    """Seconds of one round of per-worker tasks that do no work: the fixed cost of an L-BFGS
    evaluation on the cluster (submit, schedule, run, gather, on this machine's loopback)."""
    from parml.dask._common import run_per_worker, worker_groups
    groups = worker_groups(client, futures)
    run_per_worker(client, _noop_part, futures, (size,), groups)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run_per_worker(client, _noop_part, futures, (size,), groups)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _hgb_rows(client, X, y, quick):
    """The HistGradientBoosting part, if that module exists (written separately)."""
    try:
        from . import _dask_hgb
    except ImportError:
        return None
    return _dask_hgb.bench_hgb(client, X, y, quick)


def _format_rows(rows):
    if not rows:
        return ""
    if isinstance(rows, dict):
        rows = [rows]
    if isinstance(rows, (list, tuple)) and all(isinstance(r, dict) for r in rows):
        header = list(dict.fromkeys(k for r in rows for k in r))
        return H.markdown_table(header, [[r.get(k, "") for k in header] for r in rows])
    if isinstance(rows, (list, tuple)):
        return "\n".join(" | ".join(map(str, r)) if isinstance(r, (list, tuple)) else str(r)
                         for r in rows)
    return str(rows)


def bench_logistic(client, X, y, probe, repeats, n_partitions):
    import dask.array as da
    import distributed

    import parml.dask as PD
    import parml.linear_model as L
    from parml.dask._common import partitions, release

    n, d = X.shape
    K = 1 if len(np.unique(y)) == 2 else len(np.unique(y))
    t0 = time.perf_counter()
    rows_per = -(-n // n_partitions)
    Xd = da.from_array(X, chunks=(rows_per, d))
    yd = da.from_array(y, chunks=rows_per)
    with warnings.catch_warnings():     # "large graph": fine for a benchmark's numpy data
        warnings.simplefilter("ignore", UserWarning)
        Xd, yd = client.persist([Xd, yd])
        distributed.wait([Xd, yd])
    ship_s = time.perf_counter() - t0

    # warm-up: imports and first-call costs on the workers, outside the timed runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        PD.LogisticRegression(max_iter=3).fit(Xd[:1000], yd[:1000])
    futs, _ = partitions(client, Xd, yd)
    floor = _round_floor(client, futs, K * d + K + 1)
    release(futs)

    fns = {"local": lambda: L.LogisticRegression(n_threads=2).fit(X, y),
           "dask": lambda: PD.LogisticRegression().fit(Xd, yd)}
    res, n_clean = H.alternate_calls(fns, repeats, probe)
    local, dist = res["local"]["result"], res["dask"]["result"]
    st = dist.fit_stats_
    nit_l, nit_d = int(local.n_iter_[0]), int(dist.n_iter_[0])
    per_it_l = res["local"]["median"] / nit_l
    per_it_d = st["optimizer_seconds"] / nit_d
    bytes_up = st["workers"] * (K * d + K) * 8
    bytes_down = st["partitions"] * (K * d + K + 1) * 8
    coef_diff = float(np.abs(dist.coef_ - local.coef_).max())
    rows = [
        ["local parml, 2 threads", f"{res['local']['median']:.3f} s", nit_l,
         f"{per_it_l * 1e3:.2f} ms", "-", "-"],
        [f"parml.dask, 2 workers x 1 thread, {st['partitions']} partitions",
         f"{res['dask']['median']:.3f} s (setup {st['setup_seconds']:.3f} s, last run)", nit_d,
         f"{per_it_d * 1e3:.2f} ms", f"{(per_it_d - per_it_l) * 1e3:+.2f} ms",
         f"{bytes_up + bytes_down} B"],
    ]
    payload = {"rows": n, "features": d, "classes": K if K > 1 else 2,
               "partitions": st["partitions"], "workers": st["workers"],
               "persist_seconds": ship_s, "local": {"median_s": res["local"]["median"],
                                                     "times": res["local"]["times"],
                                                     "iterations": nit_l},
               "dask": {"median_s": res["dask"]["median"], "times": res["dask"]["times"],
                        "iterations": nit_d, "fit_stats": st},
               "seconds_per_iteration": {"local": per_it_l, "dask": per_it_d},
               "overhead_per_iteration_s": per_it_d - per_it_l,
               "empty_round_s": floor, "bytes_per_evaluation": bytes_up + bytes_down,
               "max_abs_coef_diff": coef_diff, "clean_repeats": n_clean, "repeats": repeats}
    return rows, payload, floor, coef_diff, ship_s


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench dask", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="50k rows instead of 400k, 2 repeats")
    ap.add_argument("--rows", type=int, default=None, help="rows of data (default 400000)")
    ap.add_argument("--features", type=int, default=28)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=os.path.join("bench", "results"))
    args = ap.parse_args(argv)
    try:
        import distributed
    except ImportError:
        print("parml bench dask needs Dask: pip install 'parml[dask]'")
        return 1
    from sklearn.datasets import make_classification

    n = args.rows or (50_000 if args.quick else 400_000)
    repeats = args.repeats or (2 if args.quick else 3)
    info = H.machine_info()
    print(f"# parml.dask vs local parml; CPU: {info['cpu']}; {n} x {args.features}")
    X, y = make_classification(n, args.features, n_informative=args.features // 2,
                               random_state=0)
    X = np.ascontiguousarray(X)
    probe = H.ContentionProbe(2)
    payload = {"machine": info}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        rows, lp, floor, coef_diff, ship_s = bench_logistic(client, X, y, probe, repeats,
                                                            args.partitions)
        payload["logistic"] = lp
        table = ("## LogisticRegression (L-BFGS)\n\n" + H.markdown_table(
            ["where", "fit (median)", "L-BFGS iterations", "per iteration",
             "overhead per iteration", "bytes per evaluation"], rows)
            + f"\n\nempty round of tasks (overhead floor): {floor * 1e3:.2f} ms; "
              f"max |coef dask - coef local| = {coef_diff:.1e}; "
              f"persisting the data on the workers first: {ship_s:.2f} s; "
              f"clean repeats: {lp['clean_repeats']}/{lp['repeats']}")
        hgb = _hgb_rows(client, X, y, args.quick)
        if hgb is not None:
            payload["hgb"] = hgb
            table += "\n\n## HistGradientBoosting (per boosting iteration)\n\n" + _format_rows(hgb)
    print()
    print(table)
    H.write_results(args.out, "dask", payload, table)
    print(f"\nresults: {args.out}/dask.json, dask.md")
    return 0
