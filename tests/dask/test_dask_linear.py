"""parml.dask linear models against the local estimators on the same data, on the session's
2-worker LocalCluster: coefficients, weights, partition layouts, inputs, threads, bad input."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import parml.dask as PD
import parml.linear_model as L
from parml.dask import _common

LOGISTIC_ATOL = 1e-4      # the target; in practice the fits agree to ~1e-12
LS_RTOL = 1e-8


def classification(n=600, d=6, k=2, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) + rng.uniform(-2, 2, size=d)   # non-zero means, noisy classes
    W = rng.normal(size=(k, d))
    y = (X @ W.T + rng.gumbel(size=(n, k)) * 2).argmax(axis=1)
    return X, y


def regression(n=700, d=5, targets=None, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + 50.0   # far-off-centre means
    w = rng.normal(size=(d,) if targets is None else (d, targets))
    y = X @ w + 3.0 + rng.normal(size=(n,) if targets is None else (n, targets))
    return X, y


def dask_xy(X, y, chunks, sw=None):
    Xd = da.from_array(X, chunks=(tuple(chunks), (X.shape[1],)))
    yd = da.from_array(y, chunks=(tuple(chunks),) + ((y.shape[1],) if y.ndim == 2 else ()))
    swd = None if sw is None else da.from_array(sw, chunks=(tuple(chunks),))
    return Xd, yd, swd


def assert_logistic_close(dist, local):
    np.testing.assert_array_equal(dist.classes_, local.classes_)
    np.testing.assert_allclose(dist.coef_, local.coef_, rtol=0, atol=LOGISTIC_ATOL)
    np.testing.assert_allclose(dist.intercept_, local.intercept_, rtol=0, atol=LOGISTIC_ATOL)


def assert_ls_close(dist, local, rtol=LS_RTOL):
    scale = max(1.0, np.abs(local.coef_).max())
    np.testing.assert_allclose(dist.coef_, local.coef_, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(dist.intercept_, local.intercept_, rtol=rtol,
                               atol=rtol * max(1.0, np.abs(local.intercept_).max()))


# ---------------------------------------------------------------------------------------------
# LogisticRegression

@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_matches_local(client, k, dtype, weighted):
    X, y = classification(k=k)
    X = X.astype(dtype)
    sw = np.random.RandomState(2).uniform(0.1, 3, size=len(y)) if weighted else None
    Xd, yd, swd = dask_xy(X, y, (150, 220, 230), sw)
    dist = PD.LogisticRegression(client=client).fit(Xd, yd, sample_weight=swd)
    local = L.LogisticRegression().fit(X, y, sample_weight=sw)
    assert_logistic_close(dist, local)
    np.testing.assert_array_equal(dist.n_iter_, local.n_iter_)
    assert dist.coef_.shape == (1 if k == 2 else k, X.shape[1])
    assert isinstance(dist.to_local(), L.LogisticRegression)
    stats = dist.fit_stats_
    assert stats["partitions"] == 3 and stats["iterations"] == dist.n_iter_[0]
    assert stats["evaluations"] >= stats["iterations"] and stats["tasks"] > 0


@pytest.mark.parametrize("params", [
    dict(class_weight="balanced"),
    dict(class_weight={0: 1.0, 1: 3.0, 2: 0.5}),
    dict(fit_intercept=False, C=0.1),
    dict(penalty=None, max_iter=300),
    dict(strategy="weights", tol=1e-8),
], ids=["balanced", "dict-weights", "no-intercept", "no-penalty", "weights-strategy"])
def test_logistic_options_match_local(client, params):
    X, y = classification(k=3, seed=3)
    sw = np.random.RandomState(4).uniform(0.5, 2, size=len(y))
    Xd, yd, swd = dask_xy(X, y, (300, 300), sw)
    dist = PD.LogisticRegression(**params).fit(Xd, yd, sample_weight=swd)
    local = L.LogisticRegression(**params).fit(X, y, sample_weight=sw)
    assert_logistic_close(dist, local)


def test_logistic_unequal_and_empty_partitions(client):
    X, y = classification(n=500, k=3, seed=5)
    Xd, yd, _ = dask_xy(X, y, (7, 0, 300, 1, 0, 192))
    dist = PD.LogisticRegression().fit(Xd, yd)
    local = L.LogisticRegression().fit(X, y)
    assert dist.fit_stats_["partitions"] == 6
    assert_logistic_close(dist, local)


def test_logistic_single_class_partitions(client):
    # sorted by label: every partition holds one class only; classes_ come from all of them
    X, y = classification(n=600, k=3, seed=6)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    counts = np.bincount(y)
    Xd, yd, _ = dask_xy(X, y, tuple(counts))
    dist = PD.LogisticRegression(class_weight="balanced").fit(Xd, yd)
    local = L.LogisticRegression(class_weight="balanced").fit(X, y)
    assert_logistic_close(dist, local)


def test_logistic_string_labels_numpy_input(client):
    X, y = classification(n=400, k=3, seed=7)
    labels = np.array(["cat", "dog", "emu"])[y]
    dist = PD.LogisticRegression().fit(X, labels)       # numpy: split over the workers
    local = L.LogisticRegression().fit(X, labels)
    assert dist.fit_stats_["partitions"] == len(client.nthreads())
    assert_logistic_close(dist, local)
    np.testing.assert_array_equal(dist.predict(X), local.predict(X))


def test_logistic_dataframe_input(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = classification(n=500, d=4, seed=8)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["target"] = y
    ddf = dd.from_pandas(df, npartitions=3)
    dist = PD.LogisticRegression().fit(ddf[["a", "b", "c", "d"]], ddf["target"])
    local = L.LogisticRegression().fit(df[["a", "b", "c", "d"]], y)
    assert_logistic_close(dist, local)
    assert list(dist.feature_names_in_) == ["a", "b", "c", "d"]
    assert list(dist.to_local().feature_names_in_) == ["a", "b", "c", "d"]


def test_logistic_is_deterministic_and_refit_forgets(client):
    X, y = classification(n=400, k=3, seed=9)
    Xd, yd, _ = dask_xy(X, y, (100, 100, 200))
    a = PD.LogisticRegression().fit(Xd, yd)
    coef = a.coef_.copy()
    a.fit(Xd, yd)
    np.testing.assert_array_equal(a.coef_, coef)        # fixed-order sums: the same bits
    Xb, yb = classification(n=300, d=3, k=2, seed=10)
    a.fit(*dask_xy(Xb, yb, (150, 150))[:2])
    assert a.coef_.shape == (1, 3) and a.n_features_in_ == 3
    assert not hasattr(a, "feature_names_in_")


def test_logistic_warm_start(client):
    X, y = classification(n=400, k=2, seed=11)
    Xd, yd, _ = dask_xy(X, y, (200, 200))
    est = PD.LogisticRegression(warm_start=True, tol=1e-6).fit(Xd, yd)
    first = est.n_iter_[0]
    est.fit(Xd, yd)
    assert est.n_iter_[0] < first


# ---------------------------------------------------------------------------------------------
# LinearRegression and Ridge

@pytest.mark.parametrize("cls,params", [
    ("LinearRegression", {}),
    ("LinearRegression", dict(fit_intercept=False)),
    ("Ridge", dict(alpha=3.0)),
    ("Ridge", dict(alpha=0.5, fit_intercept=False)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_least_squares_match_local(client, cls, params, dtype, weighted):
    X, y = regression()
    X = X.astype(dtype)
    sw = np.random.RandomState(3).uniform(0, 2, size=len(y)) if weighted else None
    Xd, yd, swd = dask_xy(X, y, (1, 0, 250, 449), sw)
    dist = getattr(PD, cls)(**params).fit(Xd, yd, sample_weight=swd)
    local = getattr(L, cls)(**params).fit(X, y, sample_weight=sw)
    assert_ls_close(dist, local)
    assert np.ndim(dist.coef_) == 1 and np.ndim(dist.intercept_) == 0
    assert isinstance(dist.to_local(), getattr(L, cls))


def test_ridge_multi_output_and_alpha_per_target(client):
    X, y = regression(targets=3)
    Xd, yd, _ = dask_xy(X, y, (300, 400))
    alpha = np.array([0.1, 1.0, 10.0])
    dist = PD.Ridge(alpha=alpha).fit(Xd, yd)
    local = L.Ridge(alpha=alpha).fit(X, y)
    assert dist.coef_.shape == (3, X.shape[1]) and dist.intercept_.shape == (3,)
    assert_ls_close(dist, local)
    lin = PD.LinearRegression().fit(X, y[:, :1])          # (n, 1) y stays 2-D, as locally
    assert lin.coef_.shape == (1, X.shape[1])
    assert_ls_close(lin, L.LinearRegression().fit(X, y[:, :1]))
    rid = PD.Ridge().fit(X, y[:, :1])                     # Ridge ravels it, as locally
    loc = L.Ridge().fit(X, y[:, :1])
    assert rid.coef_.shape == loc.coef_.shape == (X.shape[1],)
    assert rid.predict(X).shape == loc.predict(X).shape == (X.shape[0],)
    assert_ls_close(rid, loc)


def test_ridge_lbfgs_matches_local(client):
    X, y = regression(n=500, d=4)
    X = X - 50.0            # L-BFGS on far-off-centre data is slow for both; not the point here
    Xd, yd, _ = dask_xy(X, y, (200, 300))
    dist = PD.Ridge(alpha=2.0, solver="lbfgs", tol=1e-10).fit(Xd, yd)
    local = L.Ridge(alpha=2.0, solver="lbfgs", tol=1e-10).fit(X, y)
    assert_ls_close(dist, local, rtol=1e-6)
    assert dist.fit_stats_["iterations"] == dist.n_iter_.sum() > 1


def test_linear_regression_rank_deficient(client):
    X, y = regression(n=300, d=3)
    X = np.column_stack([X, X[:, 0]])                     # an exact duplicate column
    dist = PD.LinearRegression().fit(da.from_array(X, chunks=(100, 4)), y)
    local = L.LinearRegression().fit(X, y)
    # both pick the minimum-norm solution: equal weights on the two copies
    np.testing.assert_allclose(dist.coef_[0], dist.coef_[3], rtol=1e-6)
    np.testing.assert_allclose(dist.predict(X), local.predict(X), rtol=1e-7)


def test_least_squares_dataframe_input(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = regression(n=400, d=3)
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"]).assign(x1=lambda f: f.x1.round().astype(int))
    df["y"] = y
    ddf = dd.from_pandas(df, npartitions=4)
    dist = PD.Ridge(alpha=1.0).fit(ddf[["x0", "x1", "x2"]], ddf["y"])
    local = L.Ridge(alpha=1.0).fit(df[["x0", "x1", "x2"]], y)
    assert_ls_close(dist, local)
    assert list(dist.feature_names_in_) == ["x0", "x1", "x2"]


# ---------------------------------------------------------------------------------------------
# Threads

def test_task_sees_worker_thread_count(client):
    nthreads = client.nthreads()
    for addr, n in nthreads.items():
        got = client.submit(_common.worker_n_threads, workers=[addr], pure=False).result()
        assert got == n
        assert client.submit(_common.worker_n_threads, 3, workers=[addr], pure=False).result() == 3
    # and inside the per-worker tasks the fits use, on each worker's own partitions
    futs = client.scatter([(np.zeros((2, 2)),) for _ in range(4)], hash=False)
    groups = _common.worker_groups(client, futs)
    seen, n_tasks = _common.run_per_worker(client, lambda p: _common.worker_n_threads(), futs,
                                           groups=groups)
    assert n_tasks == len(groups)
    who = client.who_has(futs)
    assert seen == [nthreads[min(who[f.key])] for f in futs]
    _common.release(futs)


def test_tree_sum_is_fixed_order():
    parts = [np.array([1e16]), np.array([1.0]), np.array([-1e16]), np.array([1.0])]
    # ((a0 + a1) + (a2 + a3)) whatever order answers arrive in
    assert _common.tree_sum(parts)[0] == (1e16 + 1.0) + (-1e16 + 1.0)
    with pytest.raises(ValueError):
        _common.tree_sum([])


# ---------------------------------------------------------------------------------------------
# Bad input: a clear exception, raised on the driver before any task where possible

def test_nan_in_one_partition_is_a_clear_error(client):
    X, y = classification(n=300)
    X[250, 2] = np.nan
    Xd, yd, _ = dask_xy(X, y, (100, 100, 100))
    est = PD.LogisticRegression()
    with pytest.raises(ValueError, match=r"partition 2 of X contains NaN or infinity"):
        est.fit(Xd, yd)
    assert not hasattr(est, "coef_")
    Xr, yr = regression(n=300)
    yr[5] = np.inf
    with pytest.raises(ValueError, match=r"partition 0 of y contains NaN or infinity"):
        PD.Ridge().fit(*dask_xy(Xr, yr, (100, 200))[:2])


BAD_INPUT = [
    ("X 1-D", ValueError, "2-D"),
    ("X 3-D", ValueError, "2-D"),
    ("y length", ValueError, "rows but X has"),
    ("sw length", ValueError, "rows but X has"),
    ("y 2-D", ValueError, "1-D"),
    ("one class", ValueError, "only one class"),
    ("continuous y", ValueError, "Unknown label type"),
    ("string X", TypeError, "strings are not numbers"),
    ("string dask X", TypeError, "numeric"),
    ("negative sw", ValueError, "negative"),
    ("zero sw", ValueError, "sum to zero"),
    ("no samples", ValueError, "at least one sample"),
    ("y None", ValueError, "requires y"),
]


@pytest.mark.parametrize("case,exc,match", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_logistic_bad_input(client, case, exc, match):
    X, y = classification(n=200)
    sw = None
    if case == "X 1-D":
        X = X[:, 0]
    elif case == "X 3-D":
        X = X[:, :, None]
    elif case == "y length":
        y = y[:-1]
    elif case == "sw length":
        sw = np.ones(199)
    elif case == "y 2-D":
        y = np.column_stack([y, y])
    elif case == "one class":
        y = np.zeros_like(y)
    elif case == "continuous y":
        y = y + 0.5 * np.random.RandomState(0).rand(len(y))
    elif case == "string X":
        X = X.astype(str)
    elif case == "string dask X":
        X = da.from_array(X.astype(str), chunks=(100, 6))
    elif case == "negative sw":
        sw = np.ones(200)
        sw[150] = -1
    elif case == "zero sw":
        sw = np.zeros(200)
    elif case == "no samples":
        X, y = X[:0], y[:0]
    elif case == "y None":
        y = None
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and len(X):
        X = da.from_array(X, chunks=(100, X.shape[1]))
    with pytest.raises(exc, match=match):
        PD.LogisticRegression().fit(X, y, sample_weight=sw)


def test_string_columns_in_dataframe(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": np.arange(10.0), "b": list("abcdefghij")})
    with pytest.raises(TypeError, match=r"non-numeric columns \['b'\]"):
        PD.LogisticRegression().fit(dd.from_pandas(df, npartitions=2), np.arange(10) % 2)
    with pytest.raises(ValueError, match="numeric targets"):
        PD.LinearRegression().fit(np.ones((10, 2)), np.array(list("abcdefghij")))


def test_parameters_are_checked(client):
    X, y = classification(n=100)
    for bad in (dict(solver="sgd"), dict(C=0), dict(penalty="l1"), dict(max_iter=0),
                dict(n_threads=0)):
        with pytest.raises(ValueError):
            PD.LogisticRegression(**bad).fit(X, y)
    for bad in (dict(alpha=-1), dict(solver="svd"), dict(positive=True)):
        with pytest.raises(ValueError):
            PD.Ridge(**bad).fit(X, y.astype(float))
    with pytest.raises(ValueError, match="targets"):
        PD.Ridge(alpha=[1.0, 2.0]).fit(X, np.column_stack([y, y, y]).astype(float))
    with pytest.raises(TypeError, match="distributed.Client"):
        PD.LogisticRegression(client="tcp://127.0.0.1:1").fit(X, y)


def test_no_client_is_a_clear_error(monkeypatch):
    def none():
        raise ValueError("No clients found")
    monkeypatch.setattr(distributed, "default_client", none)
    with pytest.raises(ValueError, match="needs a running Dask client"):
        PD.LogisticRegression().fit(np.ones((4, 2)), [0, 1, 0, 1])


def test_params_match_local_estimators():
    for name in ("LogisticRegression", "LinearRegression", "Ridge"):
        local = getattr(L, name)().get_params()
        dist = getattr(PD, name)().get_params()
        assert dist.pop("client") is None
        assert dist == local


# ---------------------------------------------------------------------------------------------
# Any partition layout gives the local answer (a few examples only: each one is a cluster fit)

def test_any_partition_layout_ridge(client):
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    X, y = regression(n=200, d=4, targets=2)

    @hyp.settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(hyp.HealthCheck))
    @hyp.given(cuts=st.lists(st.integers(0, 200), min_size=0, max_size=6),
               weighted=st.booleans())
    def check(cuts, weighted):
        edges = [0] + sorted(cuts) + [200]
        chunks = tuple(np.diff(edges))   # zeros allowed
        sw = np.random.RandomState(len(cuts)).uniform(0, 2, 200) if weighted else None
        dist = PD.Ridge(alpha=0.3).fit(*dask_xy(X, y, chunks, sw)[:2],
                                       sample_weight=None if sw is None else
                                       da.from_array(sw, chunks=(chunks,)))
        assert_ls_close(dist, L.Ridge(alpha=0.3).fit(X, y, sample_weight=sw))

    check()
