"""Trees against scikit-learn, LightGBM and XGBoost (same run, alternating, contention-probed).

Sections:
  hgb      histogram gradient boosting, the reference problem: make_classification(1M, 28,
           n_informative=14), 80/20, 100 iterations, 31 leaves, 255 bins, no early stopping;
           fit and predict_proba (200k rows) time and test AUC at 1 and 2 threads
  memory   peak memory of each library's HGB fit (a fresh process per library; RSS high-water
           mark during fit minus RSS with the data loaded)
  rf       random forest, 200k x 28, 100 fully grown trees: parml vs scikit-learn
  busy     2 threads vs 1 with another process busy on one core (HGB and RF, 200k x 28)
  latency  one-row predict of a 100-tree, 31-leaf model
LightGBM and XGBoost are measured when installed (pip install lightgbm xgboost)."""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from . import harness as H

ITERS, LEAVES, BINS = 100, 31, 255


def _data(n, d=28, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n, d, n_informative=14, random_state=seed)
    k = int(0.8 * n)
    return (np.ascontiguousarray(X[:k]), y[:k], np.ascontiguousarray(X[k:]), y[k:])


def _have(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def hgb_model(lib, nt, iters=ITERS):
    """An unfitted HGB model of `lib` with the benchmark's settings, and a context to fit it in."""
    if lib == "parml":
        from parml.ensemble import HistGradientBoostingClassifier
        return HistGradientBoostingClassifier(max_iter=iters, max_leaf_nodes=LEAVES,
                                              max_bins=BINS, early_stopping=False,
                                              n_threads=nt), contextlib.nullcontext()
    if lib == "sklearn":
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits
        return HistGradientBoostingClassifier(max_iter=iters, max_leaf_nodes=LEAVES,
                                              max_bins=BINS, early_stopping=False), \
            threadpool_limits(nt, user_api="openmp")
    if lib == "lightgbm":
        import lightgbm
        return lightgbm.LGBMClassifier(n_estimators=iters, num_leaves=LEAVES, max_bin=BINS,
                                       learning_rate=0.1, n_jobs=nt, verbose=-1), \
            contextlib.nullcontext()
    if lib == "xgboost":
        import xgboost
        return xgboost.XGBClassifier(n_estimators=iters, tree_method="hist",
                                     grow_policy="lossguide", max_leaves=LEAVES, max_depth=0,
                                     max_bin=BINS, learning_rate=0.1, n_jobs=nt), \
            contextlib.nullcontext()
    raise ValueError(lib)


def _fit(lib, nt, X, y, iters=ITERS):
    m, ctx = hgb_model(lib, nt, iters)
    with ctx, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return m.fit(X, y)


def _proba(lib, m, X, nt):
    if lib == "sklearn":
        from threadpoolctl import threadpool_limits
        with threadpool_limits(nt, user_api="openmp"):
            return m.predict_proba(X)
    return m.predict_proba(X)


def libs():
    return ["parml", "sklearn"] + [lib for lib in ("lightgbm", "xgboost") if _have(lib)]


def bench_hgb(data, repeats, probe):
    from sklearn.metrics import roc_auc_score
    Xtr, ytr, Xte, yte = data
    rows = []
    for nt in (1, 2):
        res, n_clean = H.alternate_calls({lib: (lambda lib=lib: _fit(lib, nt, Xtr, ytr))
                                          for lib in libs()}, repeats, probe)
        models = {lib: r["result"] for lib, r in res.items()}
        pred, _ = H.alternate_calls({lib: (lambda lib=lib: _proba(lib, models[lib], Xte, nt))
                                     for lib in libs()}, repeats, probe)
        ref_fit = res["lightgbm"]["median"] if "lightgbm" in res else None
        ref_pred = pred["xgboost"]["median"] if "xgboost" in pred else None
        for lib in libs():
            auc = roc_auc_score(yte, pred[lib]["result"][:, 1])
            rows.append([lib, nt, f"{res[lib]['median']:.2f} s",
                         "-" if ref_fit is None else f"{res[lib]['median'] / ref_fit:.2f}",
                         f"{pred[lib]['median']:.3f} s",
                         "-" if ref_pred is None else f"{pred[lib]['median'] / ref_pred:.2f}",
                         f"{auc:.4f}", f"{n_clean}/{repeats}"])
    return rows


_MEM_CHILD = r"""
import json, sys, warnings
import numpy as np
from parml.benchmarks.trees import _fit
lib, nt, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
X = np.load(path + "/X.npy"); y = np.load(path + "/y.npy")
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
base = status("VmRSS:")
_fit(lib, nt, X, y)
print(json.dumps({"base": base, "peak": status("VmHWM:")}))
"""


def bench_memory(data, nt=2):
    """Each library's fit in a fresh process: peak RSS during fit minus RSS with data loaded.
    The high-water mark (VmHWM) is reset after loading (/proc/self/clear_refs), so the
    difference is what the fit added at its peak. (ru_maxrss would not do: Linux keeps it
    across fork and exec, so a child reports its parent's peak.)"""
    Xtr, ytr = data[0], data[1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "X.npy"), Xtr)
        np.save(os.path.join(tmp, "y.npy"), ytr)
        out = {}
        for lib in libs():
            r = subprocess.run([sys.executable, "-c", _MEM_CHILD, lib, str(nt), tmp],
                               capture_output=True, text=True, check=True)
            m = json.loads(r.stdout.strip().splitlines()[-1])
            out[lib] = (m["peak"] - m["base"]) / 2**20
        ref = out.get("lightgbm")
        for lib, mib in out.items():
            rows.append([lib, f"{Xtr.nbytes / 2**20:.0f} MiB", f"{mib:.0f} MiB",
                         "-" if ref is None else f"{mib / ref:.2f}"])
    return rows


def _rf(lib, nt, X, y, n_estimators=100):
    if lib == "parml":
        from parml.ensemble import RandomForestClassifier
        return RandomForestClassifier(n_estimators, random_state=0, n_threads=nt).fit(X, y)
    from sklearn.ensemble import RandomForestClassifier
    return RandomForestClassifier(n_estimators, random_state=0, n_jobs=nt).fit(X, y)


def bench_rf(data, repeats, probe, sklearn_threads=(2,)):
    Xtr, ytr, Xte, yte = data
    sides = {f"parml t{nt}": (lambda nt=nt: _rf("parml", nt, Xtr, ytr)) for nt in (1, 2)}
    sides.update({f"sklearn t{nt}": (lambda nt=nt: _rf("sklearn", nt, Xtr, ytr))
                  for nt in sklearn_threads})
    res, n_clean = H.alternate_calls(sides, repeats, probe)
    ref = res[f"sklearn t{sklearn_threads[-1]}"]["median"]
    rows = []
    for name, r in res.items():
        t0 = time.perf_counter()
        acc = r["result"].score(Xte, yte)
        pt = time.perf_counter() - t0
        rows.append([name, f"{r['median']:.2f} s", f"{r['median'] / ref:.3f}", f"{acc:.4f}",
                     f"{pt:.2f} s", f"{n_clean}/{repeats}"])
    return rows


def bench_busy(data, repeats, probe):
    """t2/t1 with another process spinning on one core, for HGB (every library) and RF."""
    Xtr, ytr = data[0], data[1]
    rows = []
    with H.BusyCore():
        for lib in libs():
            res, n_clean = H.alternate_calls({f"t{nt}": (lambda nt=nt: _fit(lib, nt, Xtr, ytr))
                                              for nt in (1, 2)}, repeats, probe)
            t1, t2 = res["t1"]["median"], res["t2"]["median"]
            rows.append(["HGB", lib, f"{t1:.2f} s", f"{t2:.2f} s", f"{t2 / t1:.2f}"])
        res, _ = H.alternate_calls({f"t{nt}": (lambda nt=nt: _rf("parml", nt, Xtr, ytr, 30))
                                    for nt in (1, 2)}, repeats, probe)
        t1, t2 = res["t1"]["median"], res["t2"]["median"]
        rows.append(["RF (30 trees)", "parml", f"{t1:.2f} s", f"{t2:.2f} s", f"{t2 / t1:.2f}"])
    return rows


def bench_latency(data, calls=2000):
    """Median seconds of one predict_proba call on one row, 100 trees of 31 leaves."""
    Xtr, ytr, Xte, _ = data
    rows = []
    for lib in libs():
        m = _fit(lib, 1, Xtr[:50_000], ytr[:50_000])
        if lib == "lightgbm":
            m.set_params(n_jobs=1)
        x = Xte[:1].copy()
        fn = (lambda: m.get_booster().inplace_predict(x)) if lib == "xgboost" else \
            (lambda: m.predict_proba(x))
        for _ in range(50):
            fn()
        ts = []
        for _ in range(calls):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        api = "booster.inplace_predict" if lib == "xgboost" else "predict_proba"
        rows.append([lib, api, f"{statistics.median(ts) * 1e6:.1f} us",
                     f"{np.percentile(ts, 99) * 1e6:.1f} us"])
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="parml bench trees", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200k / 50k rows, 1 repeat")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--rows", type=int, default=None, help="HGB rows (default 1M)")
    ap.add_argument("--rf-rows", type=int, default=None, help="RF and busy rows (default 200k)")
    ap.add_argument("--only", choices=["hgb", "memory", "rf", "busy", "latency"], default=None)
    ap.add_argument("--out", default=os.path.join("bench", "results"))
    args = ap.parse_args(argv)
    n = args.rows or (200_000 if args.quick else 1_000_000)
    n_rf = args.rf_rows or (50_000 if args.quick else 200_000)
    repeats = args.repeats or (1 if args.quick else 2)
    info = H.machine_info()
    print(f"# Trees: parml vs {', '.join(libs()[1:])}; CPU: {info['cpu']}")
    probe = H.ContentionProbe(2)
    payload = {"machine": info, "rows": n, "rf_rows": n_rf}
    tables = []
    want = (lambda s: args.only in (None, s))
    big = _data(n) if want("hgb") or want("memory") else None
    small = _data(n_rf) if want("rf") or want("busy") or want("latency") else None
    if want("hgb"):
        r = bench_hgb(big, repeats, probe)
        tables.append(f"## HistGradientBoosting, {len(big[0])} training rows x 28, {ITERS} "
                      f"iterations, {LEAVES} leaves\n\n" + H.markdown_table(
                          ["library", "threads", "fit", "fit / LightGBM", "predict_proba "
                           f"{len(big[2])} rows", "predict / XGBoost", "test AUC", "clean"], r))
        payload["hgb"] = r
    if want("memory"):
        r = bench_memory(big)
        tables.append("## Peak memory added by an HGB fit (2 threads, fresh process each)\n\n" +
                      H.markdown_table(["library", "X", "peak added", "/ LightGBM"], r))
        payload["memory"] = r
    if want("rf"):
        r = bench_rf(small, repeats, probe)
        tables.append(f"## RandomForestClassifier, {len(small[0])} rows x 28, 100 fully grown "
                      "trees\n\n" + H.markdown_table(
                          ["library", "fit", "/ sklearn 2 threads", "test accuracy",
                           "predict+score", "clean"], r))
        payload["rf"] = r
    if want("busy"):
        r = bench_busy(small, max(2, repeats), probe)
        tables.append(f"## 2 threads vs 1 with another process busy on one core "
                      f"({len(small[0])} rows)\n\n" + H.markdown_table(
                          ["model", "library", "1 thread", "2 threads", "t2 / t1"], r))
        payload["busy"] = r
    if want("latency"):
        r = bench_latency(small)
        tables.append("## One-row predict, 100 trees x 31 leaves (1 thread)\n\n" +
                      H.markdown_table(["library", "call", "median", "p99"], r))
        payload["latency"] = r
    print()
    table = "\n\n".join(tables)
    print(table)
    H.write_results(args.out, "trees", payload, table)
    print(f"\nresults: {args.out}/trees.json, trees.md")
    return 0
