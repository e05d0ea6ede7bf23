"""Fingerprints of a fixed set of fits: a hash of every fitted array of every estimator, local
and on a Dask LocalCluster, for a few seeds and thread counts.

They pin the models bit for bit while the code around the kernels is restructured: a refactor
that keeps behaviour keeps every fingerprint. Run as a script:

    python3 tests/fingerprints.py            # print this machine's fingerprints (JSON)
    python3 tests/fingerprints.py --record   # store them in tests/data/fingerprints.json

Results depend on the kernel set (PARML_ISA caps it; Dask workers inherit it), on numpy's and
scipy's BLAS (the script pins OpenBLAS to one thread and, on x86-64, to its Haswell kernels) and
on the library versions, all of which make up the key a recording is stored under.
tests/test_fingerprints.py runs this script once per kernel set and compares.
"""
import hashlib
import json
import os
import platform
import sys
import warnings

PINNED_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_PROC_BIND": "false"}
if platform.machine() in ("x86_64", "AMD64"):
    PINNED_ENV["OPENBLAS_CORETYPE"] = "Haswell"
RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "fingerprints.json")


def environment_key():
    import numpy
    import scipy
    import sklearn
    return (f"{platform.machine()} numpy-{numpy.__version__} scipy-{scipy.__version__} "
            f"sklearn-{sklearn.__version__}")


def _digest(est):
    """sha256 (first 16 hex digits) over every array-valued fitted attribute, in name order:
    public `name_` attributes, and the private fitted state the model predicts with."""
    import numpy as np
    h = hashlib.sha256()

    def put(name, a):
        a = np.ascontiguousarray(a)
        if a.dtype.kind == "O":
            a = a.astype(str)
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())

    for k in sorted(vars(est)):
        v = getattr(est, k)
        if k == "_forest":
            flat = v.flat()
            for f in sorted(flat):
                put(f"{k}.{f}", flat[f])
        elif k == "_flat":
            for f in sorted(v):
                put(f"{k}.{f}", v[f])
        elif k == "_sgd_state":
            for f in ("V", "b", "state", "Q", "A", "Ab"):
                if getattr(v, f) is not None:
                    put(f"{k}.{f}", getattr(v, f))
        elif k == "_baseline" or (k.endswith("_") and not k.startswith("_")):
            if isinstance(v, np.ndarray):
                put(k, v)
            elif isinstance(v, list) and v and all(isinstance(x, np.ndarray) for x in v):
                for i, x in enumerate(v):
                    put(f"{k}.{i}", x)
            elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                put(k, np.asarray(v, np.float64))
    return h.hexdigest()[:16]


def _data(seed, n=600, d=8, kind="reg"):
    import numpy as np
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d))
    z = X[:, 0] * 2 + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.normal(size=n) * 0.3
    if kind == "reg":
        return X, z
    if kind == "binary":
        return X, (z > 0.2).astype(int)
    return X, np.digitize(z, [-1.0, 0.5, 2.0])


def local_fits():
    """(name, estimator, X, y) of the local fits, each at 1 and 2 threads."""
    import numpy as np
    from parml import ensemble as E, linear_model as L, neural_network as N, tree as T
    for seed in (0, 1):
        Xr, yr = _data(seed)
        Xb, yb = _data(seed, kind="binary")
        Xm, ym = _data(seed, kind="multi")
        Xnan = Xr.copy()
        Xnan[np.random.RandomState(seed + 7).rand(*Xnan.shape) < 0.05] = np.nan
        for nt in (1, 2):
            s = f"seed{seed}-t{nt}"
            yield f"LinearRegression-{s}", L.LinearRegression(n_threads=nt), Xr, yr
            yield f"Ridge-{s}", L.Ridge(alpha=0.5, n_threads=nt), Xr, yr
            yield f"LogisticRegression-binary-{s}", L.LogisticRegression(n_threads=nt), Xb, yb
            yield (f"LogisticRegression-multi-{s}",
                   L.LogisticRegression(C=0.5, n_threads=nt), Xm, ym)
            yield f"LinearSVC-{s}", L.LinearSVC(n_threads=nt), Xm, ym
            for bs in (1, 32):
                yield (f"SGDClassifier-b{bs}-{s}",
                       L.SGDClassifier(batch_size=bs, max_iter=5, tol=None, random_state=seed,
                                       average=bs == 32, n_threads=nt), Xm, ym)
                yield (f"SGDRegressor-b{bs}-{s}",
                       L.SGDRegressor(batch_size=bs, max_iter=5, tol=None, random_state=seed,
                                      penalty="elasticnet", n_threads=nt), Xr, yr)
            for solver in ("adam", "lbfgs"):
                yield (f"MLPClassifier-{solver}-{s}",
                       N.MLPClassifier(hidden_layer_sizes=(16, 8), solver=solver, max_iter=20, random_state=seed,
                                       n_threads=nt), Xm, ym)
            yield (f"MLPRegressor-f64-{s}",
                   N.MLPRegressor(hidden_layer_sizes=(12,), max_iter=20, random_state=seed, dtype=np.float64,
                                  n_threads=nt), Xr, yr)
            hgb = dict(max_iter=15, max_leaf_nodes=15, random_state=seed, n_threads=nt)
            yield f"HGBRegressor-{s}", E.HistGradientBoostingRegressor(**hgb), Xnan, yr
            yield (f"HGBRegressor-early-{s}",
                   E.HistGradientBoostingRegressor(early_stopping=True, **hgb), Xnan, yr)
            yield f"HGBClassifier-binary-{s}", E.HistGradientBoostingClassifier(**hgb), Xb, yb
            yield f"HGBClassifier-multi-{s}", E.HistGradientBoostingClassifier(**hgb), Xm, ym
            yield (f"RandomForestClassifier-{s}",
                   E.RandomForestClassifier(20, max_depth=8, random_state=seed, n_threads=nt),
                   Xm, ym)
            yield (f"RandomForestRegressor-{s}",
                   E.RandomForestRegressor(20, max_depth=8, random_state=seed, n_threads=nt),
                   Xr, yr)
            yield (f"DecisionTreeClassifier-{s}",
                   T.DecisionTreeClassifier(max_depth=6, random_state=seed, n_threads=nt),
                   Xm, ym)
            yield (f"DecisionTreeRegressor-{s}",
                   T.DecisionTreeRegressor(max_leaf_nodes=20, random_state=seed, n_threads=nt),
                   Xr, yr)


def dask_fits(client):
    """(name, fitted model) of the Dask fits, on fixed partitions of the same data."""
    import dask.array as da
    import parml.dask as PD

    def darr(X, y):
        return (da.from_array(X, chunks=((250, 150, 200), (X.shape[1],))),
                da.from_array(y, chunks=((250, 150, 200),)))

    for seed in (0, 1):
        Xr, yr = _data(seed)
        Xb, yb = _data(seed, kind="binary")
        Xm, ym = _data(seed, kind="multi")
        hgb = dict(max_iter=10, max_leaf_nodes=15, random_state=seed, early_stopping=False)
        yield (f"dask-HGBRegressor-seed{seed}",
               PD.HistGradientBoostingRegressor(client=client, **hgb).fit(*darr(Xr, yr)))
        yield (f"dask-HGBClassifier-multi-seed{seed}",
               PD.HistGradientBoostingClassifier(client=client, **hgb).fit(*darr(Xm, ym)))
        yield (f"dask-LogisticRegression-seed{seed}",
               PD.LogisticRegression(client=client).fit(*darr(Xb, yb)))
        yield f"dask-Ridge-seed{seed}", PD.Ridge(client=client, alpha=0.5).fit(*darr(Xr, yr))


def compute(with_dask=True):
    import parml
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # convergence warnings of the short fits
        for name, est, X, y in local_fits():
            out[name] = _digest(est.fit(X, y))
        if with_dask:
            import distributed
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                          host="127.0.0.1", dashboard_address=None) as c, \
                    distributed.Client(c) as client:
                for name, m in dask_fits(client):
                    out[name] = _digest(m.to_local() if hasattr(m, "to_local") else m)
    return {"environment": environment_key(), "kernel_set": parml.kernel_set(),
            "fingerprints": out}


def main(argv):
    for k, v in PINNED_ENV.items():
        if os.environ.get(k) != v:   # BLAS reads these at load: start again with them set
            os.execve(sys.executable, [sys.executable] + argv, {**os.environ, **PINNED_ENV})
    try:
        import distributed  # noqa: F401
        with_dask = True
    except ImportError:
        with_dask = False
    res = compute(with_dask)
    if "--record" in argv:
        book = json.load(open(RECORD)) if os.path.exists(RECORD) else {}
        book.setdefault(res["environment"], {})[res["kernel_set"]] = res["fingerprints"]
        os.makedirs(os.path.dirname(RECORD), exist_ok=True)
        with open(RECORD, "w") as f:
            json.dump(book, f, indent=1, sort_keys=True)
            f.write("\n")
    print(json.dumps(res, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
