"""parml._kernels._histogram against independent numpy references: binning (np.searchsorted),
node histograms (np.bincount) for both strategies and any thread count, the subtraction trick,
best split per feature (a brute-force scan over row masks, written from the split rules, not from
the C code), stable partitioning, and bad input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parml import _isa, supported_kernel_sets
from parml._kernels import _grower as KG
from parml._kernels import _histogram as K

HBIN, SPLIT = K.HBIN, K.SPLIT
XDTYPES = [np.float32, np.float64]
THREADS = [1, 2, 4]
STRATEGIES = ["features", "samples"]
SAMPLE_BLOCK = 16384   # documented block of the samples strategy: more rows exercise its threads


# ------------------------------------------------------------------------------------------------
# references

def ref_bin(X, edges, missing_bin):
    X = np.asarray(X)
    n, d = X.shape
    B = np.empty((d, n), dtype=np.uint8)
    for f in range(d):
        x = X[:, f].astype(np.float64)
        b = np.searchsorted(np.asarray(edges[f], dtype=np.float64), x, side="left")
        b[np.isnan(x)] = missing_bin
        B[f] = b
    return B


def ref_hist(B, rows, og, oh, nbins):
    d, n = B.shape
    idx = np.arange(n) if rows is None else np.asarray(rows)
    out = np.zeros((d, nbins), dtype=HBIN)
    for f in range(d):
        b = B[f, idx].astype(np.intp)
        out["count"][f] = np.bincount(b, minlength=nbins)
        out["g"][f] = np.bincount(b, weights=og.astype(np.float64), minlength=nbins)
        if oh is not None:
            out["h"][f] = np.bincount(b, weights=oh.astype(np.float64), minlength=nbins)
    return out


def assert_hist_close(H, R, scale_g=1.0, scale_h=1.0):
    assert H.dtype == HBIN and H.shape == R.shape
    np.testing.assert_array_equal(H["count"], R["count"])
    np.testing.assert_allclose(H["g"], R["g"], rtol=1e-10, atol=1e-11 * (1 + scale_g))
    np.testing.assert_allclose(H["h"], R["h"], rtol=1e-10, atol=1e-11 * (1 + scale_h))


def assert_hist_identical(A, B):
    for k in ("g", "h", "count", "pad"):
        np.testing.assert_array_equal(A[k], B[k])
    assert A["g"].tobytes() == B["g"].tobytes() and A["h"].tobytes() == B["h"].tobytes()


def ref_split_candidates(bcol, g, h, nb, missing_bin, *, hconst, l2, min_hessian, min_leaf):
    """Every allowed threshold of one feature, evaluated by brute force over row masks.

    bcol: the node's bins for the feature; g, h: float64 per node row. Returns (cands, G, H, N,
    has_missing) with cands a list of dicts (b, ml, gain, gl, hl, gr, hr, nl, nr)."""
    N = len(bcol)
    miss = bcol == missing_bin
    has_missing = bool(miss.any())
    hrow = np.full(N, float(hconst)) if hconst > 0 else h
    G, H = float(g.sum()), (hconst * N if hconst > 0 else float(h.sum()))
    parent = G * G / (H + l2)
    cands = []
    dirs = [False, True] if has_missing else [False]
    for ml in dirs:
        if ml:
            thresholds = range(-1, nb - 1)          # -1: only the missing rows go left
        else:                                       # nb-1: only the missing rows go right
            thresholds = range(0, nb if has_missing else nb - 1)
        for b in thresholds:
            left = np.where(miss, ml, bcol <= b)
            nl = int(left.sum())
            nr = N - nl
            gl, gr = float(g[left].sum()), float(g[~left].sum())
            if hconst > 0:
                hl, hr = hconst * nl, hconst * nr
            else:
                hl, hr = float(hrow[left].sum()), float(hrow[~left].sum())
            if nl < min_leaf or nr < min_leaf or hl < min_hessian or hr < min_hessian:
                continue
            gain = gl * gl / (hl + l2) + gr * gr / (hr + l2) - parent
            cands.append(dict(b=b, ml=ml, gain=gain, gl=gl, hl=hl, gr=gr, hr=hr, nl=nl, nr=nr))
    return cands, G, H, N, has_missing


def check_split(s, cands, has_missing, tol, exact=False):
    """s: one SPLIT record; cands from ref_split_candidates."""
    if not cands:
        assert s["gain"] == -np.inf and s["bin"] == -1
        return
    best = max(c["gain"] for c in cands)
    key = (int(s["bin"]), bool(s["missing_left"]) if has_missing else False)
    match = [c for c in cands if (c["b"], c["ml"]) == key]
    assert len(match) == 1, f"split {key} is not an allowed threshold"
    c = match[0]
    if exact:   # dyadic data: every sum is exact, so are the gains and their ties
        assert s["gain"] == c["gain"] == best
        if has_missing and any(x["gain"] == best and not x["ml"] for x in cands):
            assert not s["missing_left"]            # documented: ties send missing rows right
    else:
        assert c["gain"] >= best - tol, "kernel chose a clearly worse threshold"
        assert abs(s["gain"] - best) <= tol
        assert abs(s["gain"] - c["gain"]) <= tol
    assert s["nl"] == c["nl"] and s["nr"] == c["nr"]
    np.testing.assert_allclose([s["gl"], s["hl"], s["gr"], s["hr"]],
                               [c["gl"], c["hl"], c["gr"], c["hr"]], rtol=1e-9, atol=tol)
    if not has_missing:    # unseen NaN goes to the larger side
        assert bool(s["missing_left"]) == (c["nl"] >= c["nr"])


def gain_tol(g, h, l2, hconst, min_hessian):
    # scale of the score terms: |sum g|^2 / (smallest admissible hessian + l2)
    denom = max(min(min_hessian, hconst if hconst > 0 else min_hessian) + l2, 1e-3)
    return 1e-9 * (1.0 + float(np.abs(g).sum()) ** 2 / denom)


# ------------------------------------------------------------------------------------------------
# data

def make_X(rng, n, d, dtype, nan_frac=0.1, all_nan_cols=()):
    X = rng.standard_normal((n, d)).astype(dtype)
    X[rng.random((n, d)) < nan_frac] = np.nan
    for f in all_nan_cols:
        X[:, f] = np.nan
    return X


def make_edges(rng, X, nedges):
    """Sorted float64 edges taken from the column's values (so X holds values equal to edges)."""
    edges = []
    for f in range(X.shape[1]):
        col = X[:, f][~np.isnan(X[:, f])].astype(np.float64)
        k = nedges[f] if np.ndim(nedges) else nedges
        pool = np.concatenate([col, rng.standard_normal(k)]) if k else np.zeros(0)
        e = np.unique(rng.choice(pool, size=k)) if k else np.zeros(0)
        edges.append(e)
    return edges


def make_node(rng, n, d, nbins_max=32, nan_frac=0.1, dtype=np.float64):
    """B, edges, nb, missing_bin, per-row g, h (float32) for a random data set."""
    missing_bin = nbins_max - 1
    X = make_X(rng, n, d, dtype, nan_frac)
    edges = make_edges(rng, X, rng.integers(0, missing_bin, size=d))
    B = ref_bin(X, edges, missing_bin)
    nb = np.array([len(e) + 1 for e in edges], dtype=np.int32)
    g = rng.standard_normal(n).astype(np.float32)
    h = rng.uniform(0.05, 1.0, n).astype(np.float32)
    return B, nb, missing_bin, g, h


# ------------------------------------------------------------------------------------------------
# 1. binning

@pytest.mark.parametrize("dtype", XDTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("n", [1, 1023, 1024, 3001])
def test_bin_matches_searchsorted(dtype, n_threads, n, rng):
    d = 6
    X = make_X(rng, n, d, dtype, nan_frac=0.1, all_nan_cols=(2,))
    X[rng.random((n, d)) < 0.02] = np.inf
    X[rng.random((n, d)) < 0.02] = -np.inf
    X[:, 2] = np.nan
    nedges = [0, 1, 3, 40, 254, 17]     # a single bin, ..., the widest feature
    edges = make_edges(rng, X, nedges)
    missing_bin = 255
    B = K.bin_data(X, edges, missing_bin, n_threads)
    assert B.dtype == np.uint8 and B.shape == (d, n) and B.flags.c_contiguous
    np.testing.assert_array_equal(B, ref_bin(X, edges, missing_bin))
    assert (B[0][~np.isnan(X[:, 0])] == 0).all()
    assert (B[2] == missing_bin).all()


@pytest.mark.parametrize("dtype", XDTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_bin_ties_go_to_lower_bin(dtype, n_threads, rng):
    e = np.array([-1.5, -0.25, 0.0, 0.5, 2.0, 2.0, 7.0])      # dyadic: exact in float32 too
    X = rng.choice(e, size=(2500, 2)).astype(dtype)
    X[:, 1] = np.nextafter(X[:, 1], dtype(np.inf))             # just above an edge: next bin
    B = K.bin_data(X, [e, e], 9, n_threads)
    # x == e[b] lands in bin b (the first edge >= x); duplicate edges: the first one
    first = {v: int(np.argmax(e == v)) for v in e}
    np.testing.assert_array_equal(B[0], [first[v] for v in X[:, 0].astype(np.float64)])
    np.testing.assert_array_equal(B, ref_bin(X, [e, e], 9))
    zero = np.array([[-0.0], [0.0]], dtype=dtype)
    np.testing.assert_array_equal(K.bin_data(zero, [np.array([0.0])], 3, n_threads), [[0, 0]])


@pytest.mark.parametrize("dtype", XDTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_bin_strided_row_views(dtype, n_threads, rng):
    base = make_X(rng, 6000, 9, dtype)
    edges_all = make_edges(rng, base, 30)
    views = {
        "every 3rd row": (base[::3], slice(None)),
        "reversed rows": (base[::-1], slice(None)),
        "column block": (base[:, 2:7], slice(2, 7)),
        "rows and columns": (base[1::2, 4:5], slice(4, 5)),
        "read-only": (np.frombuffer(base.tobytes(), dtype=dtype).reshape(base.shape),
                      slice(None)),
    }
    for name, (V, cols) in views.items():
        edges = edges_all[cols]
        B = K.bin_data(V, edges, 31, n_threads)
        np.testing.assert_array_equal(B, ref_bin(V, edges, 31), err_msg=name)


def test_bin_float32_compares_in_float64():
    # a float32 value just below a float64 edge that rounds to it in float32: still bin 0
    e = np.array([0.1])
    x = np.array([[np.float32(0.1)], [np.nextafter(np.float32(0.1), np.float32(0))]], np.float32)
    np.testing.assert_array_equal(K.bin_data(x, [e], 2), ref_bin(x, [e], 2))


def test_bin_empty_slices():
    X = np.zeros((10, 3))
    assert K.bin_data(X[:0], [np.zeros(1)] * 3, 2).shape == (3, 0)
    assert K.bin_data(X[:, :0], [], 2).shape == (0, 10)


@pytest.mark.parametrize("dtype", XDTYPES)
def test_bin_accepts_any_c_contiguous_array(dtype, rng):
    x = rng.standard_normal(50).astype(dtype)
    e = [np.array([-0.5, 0.0, 0.5])]
    col = x[:, None]                          # strides (itemsize, 0), C-contiguous
    assert col.flags.c_contiguous
    np.testing.assert_array_equal(K.bin_data(col, e, 4), ref_bin(col, e, 4))
    empty = np.zeros((0, 3), dtype)           # strides (0, 0), C-contiguous
    assert K.bin_data(empty, e * 3, 4).shape == (3, 0)
    assert K.bin_data(np.zeros((5, 0), dtype), [], 4).shape == (0, 5)


@st.composite
def bin_cases(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 4))
    missing_bin = draw(st.integers(1, 255))
    nedges = [draw(st.integers(0, min(missing_bin - 1, 12))) for _ in range(d)]
    return n, d, missing_bin, nedges, draw(st.sampled_from(XDTYPES)), \
        draw(st.sampled_from([0.0, 0.3, 1.0])), draw(st.sets(st.integers(0, d - 1))), \
        draw(st.integers(1, 3)), draw(st.sampled_from(THREADS)), draw(st.integers(0, 2**32 - 1))


@given(bin_cases())
def test_bin_hypothesis(case):
    n, d, missing_bin, nedges, dtype, nan_frac, nan_cols, step, n_threads, seed = case
    rng = np.random.default_rng(seed)
    base = make_X(rng, n * step, d, dtype, nan_frac, tuple(nan_cols))
    X = base[::step]
    edges = make_edges(rng, X, nedges)
    B = K.bin_data(X, edges, missing_bin, n_threads)
    np.testing.assert_array_equal(B, ref_bin(X, edges, missing_bin))


# ------------------------------------------------------------------------------------------------
# 2. histograms

def node_inputs(rng, n, d, nbins, subset, wide=False):
    """wide: magnitudes over 16 decades, so float64 sums round and their order shows (sums of
    plain float32 normals are exact in float64, whatever the order)."""
    B = rng.integers(0, nbins, size=(d, n), dtype=np.uint8)
    g_all = rng.standard_normal(n)
    h_all = rng.uniform(0.0, 2.0, n)
    if wide:
        g_all *= 10.0 ** rng.uniform(-8, 8, n)
        h_all *= 10.0 ** rng.uniform(-8, 8, n)
    g_all, h_all = g_all.astype(np.float32), h_all.astype(np.float32)
    if subset:
        rows = rng.permutation(n)[: max(1, n // 3)].astype(np.int32)   # unsorted subset
        return B, rows, g_all[rows], h_all[rows], g_all, h_all
    return B, None, g_all, h_all, g_all, h_all


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("subset", [False, True])
@pytest.mark.parametrize("const_h", [False, True])
@pytest.mark.parametrize("n,d,nbins", [(1, 1, 1), (500, 7, 32), (3000, 13, 256),
                                       (40000, 3, 64)])
def test_hist_matches_bincount(strategy, n_threads, subset, const_h, n, d, nbins, rng):
    B, rows, og, oh, _, _ = node_inputs(rng, n, d, nbins, subset)
    oh = None if const_h else oh
    H = K.build_histogram(B, rows, og, oh, nbins, strategy, n_threads)
    R = ref_hist(B, rows, og, oh, nbins)
    assert_hist_close(H, R, np.abs(og).sum(), 0 if oh is None else oh.sum())
    if const_h:
        assert (H["h"] == 0).all()
    assert (H["pad"] == 0).all()
    assert (H["count"].sum(axis=1) == len(og)).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("subset", [False, True])
@pytest.mark.parametrize("n,d", [(3000, 17), (3 * SAMPLE_BLOCK + 1234, 5)])
def test_hist_identical_across_threads(strategy, subset, n, d, rng):
    B, rows, og, oh, _, _ = node_inputs(rng, n, d, 200, subset, wide=True)
    ref = K.build_histogram(B, rows, og, oh, 200, strategy, 1)
    for t in (2, 3, 4, 8):
        assert_hist_identical(K.build_histogram(B, rows, og, oh, 200, strategy, t), ref)
    for t in (1, 4):
        assert_hist_identical(K.build_histogram(B, rows, og, None, 200, strategy, t),
                              K.build_histogram(B, rows, og, None, 200, strategy, 1))


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("n", [700, 3 * SAMPLE_BLOCK + 5])
def test_hist_strategies_agree(n_threads, n, rng):
    B, rows, og, oh, _, _ = node_inputs(rng, n, 4, 128, subset=False, wide=True)
    F = K.build_histogram(B, rows, og, oh, 128, "features", n_threads)
    S = K.build_histogram(B, rows, og, oh, 128, "samples", n_threads)
    assert_hist_close(S, F, np.abs(og).sum(), oh.sum())


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_hist_row_permutation_invariance(strategy, n_threads, rng):
    n = SAMPLE_BLOCK + 999
    B, rows, og, oh, g_all, h_all = node_inputs(rng, n, 6, 64, subset=True)
    H1 = K.build_histogram(B, rows, og, oh, 64, strategy, n_threads)
    p = rng.permutation(len(rows))
    H2 = K.build_histogram(B, np.ascontiguousarray(rows[p]), og[p].copy(), oh[p].copy(), 64,
                           strategy, n_threads)
    assert_hist_close(H2, H1, np.abs(og).sum(), oh.sum())
    # all rows as an explicit (permuted) list == rows=None
    allrows = rng.permutation(n).astype(np.int32)
    H3 = K.build_histogram(B, allrows, g_all[allrows], h_all[allrows], 64, strategy, n_threads)
    H4 = K.build_histogram(B, None, g_all, h_all, 64, strategy, n_threads)
    assert_hist_close(H3, H4, np.abs(g_all).sum(), h_all.sum())


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hist_out_argument(strategy, rng):
    B, rows, og, oh, _, _ = node_inputs(rng, 3000, 5, 16, subset=True)
    out = np.frombuffer(rng.bytes(5 * 16 * HBIN.itemsize), dtype=HBIN).reshape(5, 16).copy()
    res = K.build_histogram(B, rows, og, oh, 16, strategy, 2, out=out)
    assert res is out
    assert_hist_close(out, ref_hist(B, rows, og, oh, 16), np.abs(og).sum(), oh.sum())
    out2 = np.frombuffer(rng.bytes(5 * 16 * HBIN.itemsize), dtype=HBIN).reshape(5, 16).copy()
    K.build_histogram(B, rows, og, None, 16, strategy, 2, out=out2)
    assert (out2["h"] == 0).all() and (out2["pad"] == 0).all()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hist_empty_node(strategy):
    B = np.zeros((3, 10), np.uint8)
    H = K.build_histogram(B, np.zeros(0, np.int32), np.zeros(0, np.float32),
                          np.zeros(0, np.float32), 4, strategy, 2)
    assert H.shape == (3, 4) and (H["count"] == 0).all() and (H["g"] == 0).all()
    H = K.build_histogram(np.zeros((3, 0), np.uint8), None, np.zeros(0, np.float32), None, 4,
                          strategy, 2)
    assert (H["count"] == 0).all()
    assert K.build_histogram(np.zeros((0, 10), np.uint8), None, np.zeros(10, np.float32), None,
                             4, strategy, 2).shape == (0, 4)


@given(n=st.integers(1, 60), d=st.integers(1, 4), nbins=st.integers(1, 256),
       subset=st.booleans(), const_h=st.booleans(), strategy=st.sampled_from(STRATEGIES),
       n_threads=st.sampled_from(THREADS), seed=st.integers(0, 2**32 - 1))
def test_hist_hypothesis(n, d, nbins, subset, const_h, strategy, n_threads, seed):
    rng = np.random.default_rng(seed)
    B, rows, og, oh, _, _ = node_inputs(rng, n, d, nbins, subset)
    oh = None if const_h else oh
    H = K.build_histogram(B, rows, og, oh, nbins, strategy, n_threads)
    assert_hist_close(H, ref_hist(B, rows, og, oh, nbins), np.abs(og).sum(),
                      0 if oh is None else oh.sum())


VECTOR_SETS = [s for s in supported_kernel_sets() if s != "generic"]


@pytest.mark.skipif(not VECTOR_SETS, reason="no vector kernel set on this CPU: only the scalar "
                    "loop runs")
@pytest.mark.parametrize("kernel_set", VECTOR_SETS)
@given(n=st.sampled_from([1, 300, 511, 512, 513, 2000, 17000, 40000]), d=st.integers(1, 11),
       nbins=st.integers(1, 256), subset=st.booleans(), const_h=st.booleans(),
       strategy=st.sampled_from(STRATEGIES), n_threads=st.sampled_from(THREADS),
       seed=st.integers(0, 2**32 - 1))
def test_hist_vector_loop_bit_identical_to_scalar(kernel_set, n, d, nbins, subset, const_h,
                                                  strategy, n_threads, seed):
    """Each set's vector loop (hist_simd.h, hist_neon.h: groups of 4/2/1 features per pass,
    from 512 rows) adds the same float64 values in the same order as the generic set's scalar
    loop: equal bytes, not just close (wide magnitudes, so a reordered sum would show)."""
    rng = np.random.default_rng(seed)
    B, rows, og, oh, g_all, h_all = node_inputs(rng, n, d, nbins, subset, wide=True)
    oh = None if const_h else oh
    hf = None if const_h else h_all
    with _isa.use(kernel_set):
        assert K.hist_loop() == "vector"
        A = K.build_histogram(B, rows, og, oh, nbins, strategy, n_threads)
        G = None if rows is None else K.build_histogram(B, rows, g_all, hf, nbins, strategy,
                                                        n_threads, gather=True)
    with _isa.use("generic"):
        assert K.hist_loop() == "scalar"
        S = K.build_histogram(B, rows, og, oh, nbins, strategy, n_threads)
    assert_hist_identical(A, S)
    if G is not None:
        assert_hist_identical(G, S)
    assert_hist_close(S, ref_hist(B, rows, og, oh, nbins), np.abs(og).sum(),
                      0 if oh is None else oh.sum())


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_hist_loop_of_every_set_matches_bincount(kernel_set, strategy, n_threads, rng):
    """Each set's loop (the scalar one in the generic set) against the reference, on sizes the
    vector loop takes."""
    for n, d, nbins, subset in [(3000, 13, 256, False), (40000, 3, 64, True)]:
        B, rows, og, oh, _, _ = node_inputs(rng, n, d, nbins, subset)
        H = K.build_histogram(B, rows, og, oh, nbins, strategy, n_threads)
        assert_hist_close(H, ref_hist(B, rows, og, oh, nbins), np.abs(og).sum(), oh.sum())


# ------------------------------------------------------------------------------------------------
# subtraction and partition

def ref_partition(B, rows, feature, bin, missing_left, missing_bin):
    b = B[feature, rows].astype(np.int64)
    left = np.where(b == missing_bin, bool(missing_left), b <= bin)
    return np.concatenate([rows[left], rows[~left]]).astype(np.int32), int(left.sum())


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("missing_left", [False, True])
def test_subtraction_identity_after_partition(strategy, n_threads, missing_left, rng):
    n, d = SAMPLE_BLOCK + 4321, 5
    B, nb, missing_bin, g, h = make_node(rng, n, d, nbins_max=64)
    rows = rng.permutation(n)[: n // 2 + 17].astype(np.int32)
    P = K.build_histogram(B, rows, g[rows], h[rows], 64, strategy, n_threads)
    f = 1
    thr = int(nb[f] // 2)
    left_rows = rows.copy()
    nl = K.partition(B, left_rows, f, thr, missing_left, missing_bin)
    L, R = left_rows[:nl], left_rows[nl:]
    HL = K.build_histogram(B, L, g[L], h[L], 64, strategy, n_threads)
    HR = K.build_histogram(B, R, g[R], h[R], 64, strategy, n_threads)
    S = K.subtract(P, HL)
    assert S.dtype == HBIN and S.shape == P.shape
    np.testing.assert_array_equal(S["count"], HR["count"])
    assert (S["pad"] == 0).all()
    np.testing.assert_allclose(S["g"], HR["g"], rtol=1e-9, atol=1e-9 * np.abs(g).sum())
    np.testing.assert_allclose(S["h"], HR["h"], rtol=1e-9, atol=1e-9 * h.sum())
    # the split feature's histogram: each bin entirely on one side
    side = np.where(np.arange(64) == missing_bin, missing_left, np.arange(64) <= thr)
    assert (HL["count"][f][~side] == 0).all() and (HR["count"][f][side] == 0).all()
    # out= and in place
    out = np.empty_like(P)
    assert K.subtract(P, HL, out=out) is out
    np.testing.assert_array_equal(out["count"], HR["count"])
    P2 = P.copy()
    K.subtract(P2, HL, out=P2)
    np.testing.assert_array_equal(P2["g"], S["g"])
    # with a constant hessian too
    Pc = K.build_histogram(B, rows, g[rows], None, 64, strategy, n_threads)
    HLc = K.build_histogram(B, L, g[L], None, 64, strategy, n_threads)
    Sc = K.subtract(Pc, HLc)
    np.testing.assert_array_equal(Sc["count"], HR["count"])
    assert (Sc["h"] == 0).all()


def test_subtract_matches_fieldwise(rng):
    P = np.zeros((4, 7), HBIN)
    C = np.zeros((4, 7), HBIN)
    P["g"], P["h"] = rng.standard_normal((4, 7)), rng.random((4, 7)) + 1
    C["g"], C["h"] = rng.standard_normal((4, 7)), rng.random((4, 7))
    C["count"] = rng.integers(0, 100, (4, 7))
    P["count"] = C["count"] + rng.integers(0, 100, (4, 7))
    P["pad"] = 7
    S = K.subtract(P, C)
    np.testing.assert_array_equal(S["g"], P["g"] - C["g"])
    np.testing.assert_array_equal(S["h"], P["h"] - C["h"])
    np.testing.assert_array_equal(S["count"], P["count"] - C["count"])


@pytest.mark.parametrize("missing_left", [False, True])
def test_partition_matches_numpy(missing_left, rng):
    n, d = 2000, 3
    B, nb, missing_bin, _, _ = make_node(rng, n, d, nbins_max=20, nan_frac=0.2)
    for f in range(d):
        for thr in sorted({-1, 0, int(nb[f]) // 2, int(nb[f]) - 2, int(nb[f]) - 1}):
            for rows in (rng.permutation(n)[:777].astype(np.int32),
                         np.arange(n, dtype=np.int32), np.zeros(0, np.int32),
                         np.array([5], np.int32)):
                expect, enl = ref_partition(B, rows, f, thr, missing_left, missing_bin)
                got = rows.copy()
                nl = K.partition(B, got, f, thr, missing_left, missing_bin)
                assert nl == enl
                np.testing.assert_array_equal(got, expect)
    # the edge thresholds: only the missing rows on one side
    f = 0
    rows = np.arange(n, dtype=np.int32)
    miss = B[f] == missing_bin
    got = rows.copy()
    nl = K.partition(B, got, f, -1, True, missing_bin)
    assert nl == miss.sum() and (B[f, got[:nl]] == missing_bin).all()
    got = rows.copy()
    nl = K.partition(B, got, f, int(nb[f]) - 1, False, missing_bin)
    assert nl == n - miss.sum() and (B[f, got[nl:]] == missing_bin).all()


@given(n=st.integers(1, 60), nbins=st.integers(1, 10), m=st.integers(0, 60),
       thr=st.integers(-1, 10), ml=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_partition_hypothesis(n, nbins, m, thr, ml, seed):
    rng = np.random.default_rng(seed)
    missing_bin = nbins
    B = rng.integers(0, nbins + 1, size=(2, n), dtype=np.uint8)
    rows = rng.integers(0, n, size=m).astype(np.int32)     # duplicates are harmless here
    expect, enl = ref_partition(B, rows, 1, thr, ml, missing_bin)
    nl = K.partition(B, rows, 1, thr, ml, missing_bin)
    assert nl == enl
    np.testing.assert_array_equal(rows, expect)


# ------------------------------------------------------------------------------------------------
# 3. split finding

def run_split_case(B, rows, nb, missing_bin, nbins, g, h, *, l2, min_hessian, min_leaf,
                   hconst, allowed, n_threads, exact=False, hist=None):
    og = g[rows].astype(np.float32)
    oh = None if hconst > 0 else h[rows].astype(np.float32)
    if hist is None:
        hist = ref_hist(B, rows, og, oh, nbins)
    d = B.shape[0]
    gd = og.astype(np.float64)
    hd = None if oh is None else oh.astype(np.float64)
    G = float(gd.sum())
    H = hconst * len(rows) if hconst > 0 else float(hd.sum())
    S = K.find_splits(hist, nb, missing_bin, G, H, len(rows), l2=l2, min_hessian=min_hessian,
                      min_leaf=min_leaf, hconst=hconst, allowed=allowed, n_threads=n_threads)
    assert S.dtype == SPLIT and S.shape == (d,)
    tol = gain_tol(gd, hd, l2, hconst, min_hessian)
    for f in range(d):
        if allowed is not None and not allowed[f]:
            assert S[f]["gain"] == -np.inf and S[f]["bin"] == -1
            continue
        cands, _, _, _, has_missing = ref_split_candidates(
            B[f, rows], gd, hd, int(nb[f]), missing_bin, hconst=hconst, l2=l2,
            min_hessian=min_hessian, min_leaf=min_leaf)
        check_split(S[f], cands, has_missing, tol, exact=exact)
    return S


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("l2", [0.0, 1.5])
@pytest.mark.parametrize("hconst", [0.0, 0.5])
@pytest.mark.parametrize("min_leaf,min_hessian", [(1, 1e-3), (20, 1e-3), (1, 4.0)])
def test_find_splits_brute_force(n_threads, l2, hconst, min_leaf, min_hessian, rng):
    n, d, nbins = 400, 9, 40
    B, nb, missing_bin, g, h = make_node(rng, n, d, nbins_max=nbins, nan_frac=0.15)
    B[3] = np.where(B[3] == missing_bin, 0, B[3])    # a feature without missing rows
    B[4] = missing_bin                               # an all-missing feature
    nb[5] = 1
    B[5] = np.where(B[5] == missing_bin, missing_bin, 0)   # a single bin (+ missing)
    nb[6] = 1
    B[6] = 0                                              # a single bin, nothing to split
    g = g + np.where(B[0] == missing_bin, 3.0, 0.0).astype(np.float32)   # missing matters
    rows = rng.permutation(n)[:300].astype(np.int32)
    allowed = np.ones(d, np.uint8)
    allowed[7] = 0
    S = run_split_case(B, rows, nb, missing_bin, nbins, g, h, l2=l2,
                       min_hessian=min_hessian, min_leaf=min_leaf, hconst=hconst,
                       allowed=allowed, n_threads=n_threads)
    assert S[4]["gain"] == -np.inf and S[6]["gain"] == -np.inf and S[7]["gain"] == -np.inf
    # thread count never changes the result
    S1 = run_split_case(B, rows, nb, missing_bin, nbins, g, h, l2=l2,
                        min_hessian=min_hessian, min_leaf=min_leaf, hconst=hconst,
                        allowed=allowed, n_threads=1)
    assert S.tobytes() == S1.tobytes()


@pytest.mark.parametrize("n_threads", THREADS)
def test_find_splits_exact_dyadic(n_threads, rng):
    """g, h multiples of 1/8: every sum is exact in any order, so gains (and ties) are too."""
    n, d, nbins = 300, 6, 12
    B, nb, missing_bin, _, _ = make_node(rng, n, d, nbins_max=nbins, nan_frac=0.2)
    g = (rng.integers(-16, 17, n) / 8).astype(np.float32)
    h = (rng.integers(1, 9, n) / 8).astype(np.float32)
    rows = np.arange(n, dtype=np.int32)
    for l2, min_leaf, min_hessian, hconst in [(0.0, 1, 1e-3, 0.0), (1.0, 30, 2.0, 0.0),
                                              (0.0, 7, 1e-3, 0.25), (0.5, 1, 8.0, 0.5)]:
        run_split_case(B, rows, nb, missing_bin, nbins, g, h, l2=l2,
                       min_hessian=min_hessian, min_leaf=min_leaf, hconst=hconst,
                       allowed=None, n_threads=n_threads, exact=True)


def hand_hist(counts, g, h, missing=(0, 0.0, 0.0), nbins=None):
    nb = len(counts)
    nbins = nbins or nb + 1
    H = np.zeros((1, nbins), HBIN)
    H["count"][0, :nb], H["g"][0, :nb], H["h"][0, :nb] = counts, g, h
    H["count"][0, nb], H["g"][0, nb], H["h"][0, nb] = missing
    return H, np.array([nb], np.int32), nb


def split1(H, nb, mb, **kw):
    G, Hs, N = H["g"].sum(), H["h"].sum(), int(H["count"].sum())
    if kw.get("hconst", 0) > 0:
        Hs = kw["hconst"] * N
    return K.find_splits(H, nb, mb, G, Hs, N, **kw)[0]


def test_find_splits_min_leaf_and_min_hessian_are_inclusive():
    H, nb, mb = hand_hist([2, 3, 1, 4], [1.0, -1.0, 2.0, -2.0], [1.0, 1.5, 0.5, 2.0])
    # only bin 1 leaves >= 5 rows on both sides (5 | 5)
    s = split1(H, nb, mb, min_leaf=5)
    assert s["bin"] == 1 and s["nl"] == 5 and s["nr"] == 5
    assert split1(H, nb, mb, min_leaf=6)["gain"] == -np.inf
    # hessians: 1 | 4 | 4.5 on the left; min_hessian 2.5 allows bin 1 only (2.5 | 2.5)
    s = split1(H, nb, mb, min_hessian=2.5, min_leaf=1)
    assert s["bin"] == 1 and s["hl"] == 2.5 and s["hr"] == 2.5
    assert split1(H, nb, mb, min_hessian=2.5 + 1e-12)["gain"] == -np.inf
    # constant hessian 0.5: h = count / 2 -> 1 | 2.5 | 3; min_hessian 2.5 allows bin 1 only
    s = split1(H, nb, mb, min_hessian=2.5, hconst=0.5)
    assert s["bin"] == 1 and s["hl"] == 2.5 and s["hr"] == 2.5
    assert split1(H, nb, mb, min_hessian=2.6, hconst=0.5)["gain"] == -np.inf


def test_find_splits_missing_direction():
    # non-missing bins: g 4 | -4; missing rows g +4: they belong with bin 0
    H, nb, mb = hand_hist([5, 5], [4.0, -4.0], [5.0, 5.0], missing=(5, 4.0, 5.0))
    s = split1(H, nb, mb, min_hessian=0.0)
    assert s["bin"] == 0 and s["missing_left"] == 1
    assert (s["gl"], s["hl"], s["nl"], s["gr"], s["hr"], s["nr"]) == (8, 10, 10, -4, 5, 5)
    assert s["gain"] == pytest.approx(64 / 10 + 16 / 5 - 16 / 15)
    # missing rows g -4: they belong with bin 1 -> missing right
    H, nb, mb = hand_hist([5, 5], [4.0, -4.0], [5.0, 5.0], missing=(5, -4.0, 5.0))
    s = split1(H, nb, mb, min_hessian=0.0)
    assert s["bin"] == 0 and s["missing_left"] == 0
    assert (s["gl"], s["nl"], s["gr"], s["nr"]) == (4, 5, -8, 10)
    # the only useful split isolates the missing rows: bins 0, 1 alike, missing rows different
    H, nb, mb = hand_hist([5, 5], [1.0, 1.0], [5.0, 5.0], missing=(5, -9.0, 5.0))
    s = split1(H, nb, mb, min_hessian=0.0)
    assert (int(s["bin"]), bool(s["missing_left"])) in [(1, False), (-1, True)]
    if s["missing_left"]:
        assert s["nl"] == 5 and s["gl"] == -9.0
    else:
        assert s["nl"] == 10 and s["gl"] == 2.0
    assert s["gain"] == pytest.approx(4 / 10 + 81 / 5 - 49 / 15)
    # a single non-missing bin: the only split is missing vs the rest
    H, nb, mb = hand_hist([5], [1.0], [5.0], missing=(3, -2.0, 3.0))
    s = split1(H, nb, mb)
    assert (int(s["bin"]), bool(s["missing_left"])) in [(0, False), (-1, True)]
    assert s["gain"] == pytest.approx(1 / 5 + 4 / 3 - 1 / 8)


def test_find_splits_unseen_missing_goes_to_larger_side():
    # no missing rows in the node: missing_left says where unseen NaN goes (the larger side)
    H, nb, mb = hand_hist([6, 1, 1, 2], [6.0, 1.0, 1.0, -8.0], [6.0, 1.0, 1.0, 2.0])
    s = split1(H, nb, mb)
    assert s["bin"] == 2 and s["nl"] == 8 and s["nr"] == 2 and s["missing_left"] == 1
    H, nb, mb = hand_hist([2, 1, 1, 6], [-8.0, 1.0, 1.0, 6.0], [2.0, 1.0, 1.0, 6.0])
    s = split1(H, nb, mb)
    assert s["bin"] == 0 and s["nl"] == 2 and s["nr"] == 8 and s["missing_left"] == 0
    H, nb, mb = hand_hist([5, 5], [3.0, -3.0], [1.0] * 2)      # nl == nr: left
    assert split1(H, nb, mb)["missing_left"] == 1


def test_find_splits_none_allowed():
    H, nb, mb = hand_hist([1], [1.0], [1.0])                 # one row, one bin
    s = split1(H, nb, mb)
    assert s["gain"] == -np.inf and s["bin"] == -1
    H, nb, mb = hand_hist([0, 0], [0.0, 0.0], [0.0, 0.0], missing=(4, 1.0, 4.0))   # all missing
    s = split1(H, nb, mb)
    assert s["gain"] == -np.inf and s["bin"] == -1
    H, nb, mb = hand_hist([3, 4], [1.0, -1.0], [1.0, 1.0])
    s = K.find_splits(H, nb, mb, 0.0, 2.0, 7, allowed=np.zeros(1, np.uint8))[0]
    assert s["gain"] == -np.inf and s["bin"] == -1
    assert K.find_splits(np.zeros((0, 4), HBIN), np.zeros(0, np.int32), 3, 0, 0, 0).shape == (0,)


@st.composite
def split_cases(draw):
    n = draw(st.integers(1, 60))
    d = draw(st.integers(1, 3))
    nbins = draw(st.integers(2, 12))
    return dict(
        n=n, d=d, nbins=nbins, nan_frac=draw(st.sampled_from([0.0, 0.2, 1.0])),
        all_nan=draw(st.sets(st.integers(0, d - 1))),
        subset=draw(st.booleans()),
        l2=draw(st.sampled_from([0.0, 0.1, 2.0])),
        min_leaf=draw(st.integers(1, max(1, n // 2 + 1))),
        min_hessian=draw(st.sampled_from([0.0, 1e-3, 0.5, 3.0])),
        hconst=draw(st.sampled_from([0.0, 0.0, 0.25, 1.0])),
        allowed=draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=d, max_size=d))),
        dyadic=draw(st.booleans()),
        n_threads=draw(st.sampled_from(THREADS)),
        seed=draw(st.integers(0, 2**32 - 1)))


@given(split_cases())
def test_find_splits_hypothesis(c):
    rng = np.random.default_rng(c["seed"])
    n, d, nbins = c["n"], c["d"], c["nbins"]
    missing_bin = nbins - 1
    X = make_X(rng, n, d, np.float64, c["nan_frac"], tuple(c["all_nan"]))
    edges = make_edges(rng, X, rng.integers(0, missing_bin, size=d))
    B = ref_bin(X, edges, missing_bin)
    nb = np.array([len(e) + 1 for e in edges], dtype=np.int32)
    if c["dyadic"]:
        g = (rng.integers(-16, 17, n) / 8).astype(np.float32)
        h = (rng.integers(1, 9, n) / 8).astype(np.float32)
    else:
        g = rng.standard_normal(n).astype(np.float32)
        h = rng.uniform(0.05, 1.0, n).astype(np.float32)
    rows = (rng.permutation(n)[: rng.integers(1, n + 1)] if c["subset"]
            else np.arange(n)).astype(np.int32)
    allowed = None if c["allowed"] is None else np.array(c["allowed"], np.uint8)
    min_hessian = c["min_hessian"]
    if min_hessian == 0.0 and c["l2"] == 0.0:
        min_hessian = 1e-3               # keep empty-hessian sides (0 / 0) out of the comparison
    run_split_case(B, rows, nb, missing_bin, nbins, g, h, l2=c["l2"],
                   min_hessian=min_hessian, min_leaf=c["min_leaf"], hconst=c["hconst"],
                   allowed=allowed, n_threads=c["n_threads"], exact=c["dyadic"])


# ------------------------------------------------------------------------------------------------
# the kernels together: find a split, partition by it, the children's sums are the split's sums

@pytest.mark.parametrize("dtype", XDTYPES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_pipeline_split_partition_consistent(dtype, strategy, n_threads, rng):
    n, d, nbins = 5000, 6, 64
    missing_bin = nbins - 1
    X = make_X(rng, n, d, dtype, nan_frac=0.1, all_nan_cols=(5,))
    edges = make_edges(rng, X, [0, 3, 20, 62, 10, 4])
    B = K.bin_data(X, edges, missing_bin, n_threads)
    nb = np.array([len(e) + 1 for e in edges], np.int32)
    g = (np.nan_to_num(X[:, 2].astype(np.float64), nan=2.0) > 0.3).astype(np.float32) - 0.5
    g += rng.standard_normal(n).astype(np.float32) * 0.1
    h = rng.uniform(0.1, 1.0, n).astype(np.float32)
    rows = np.sort(rng.permutation(n)[:4000]).astype(np.int32)
    og, oh = g[rows], h[rows]
    hist = K.build_histogram(B, rows, og, oh, nbins, strategy, n_threads)
    S = K.find_splits(hist, nb, missing_bin, float(og.astype(np.float64).sum()),
                      float(oh.astype(np.float64).sum()), len(rows), l2=1.0, min_leaf=10,
                      n_threads=n_threads)
    assert S[5]["gain"] == -np.inf                  # all missing
    assert S[0]["bin"] in (0, -1)                   # one bin: missing rows vs the rest
    assert int(np.argmax(S["gain"])) == 2           # g was made from feature 2
    for f in range(0, 5):
        s = S[f]
        part = rows.copy()
        nl = K.partition(B, part, f, int(s["bin"]), bool(s["missing_left"]), missing_bin)
        assert nl == s["nl"] and len(rows) - nl == s["nr"]
        L, R = part[:nl], part[nl:]
        np.testing.assert_allclose([g[L].astype(np.float64).sum(), h[L].astype(np.float64).sum(),
                                    g[R].astype(np.float64).sum(), h[R].astype(np.float64).sum()],
                                   [s["gl"], s["hl"], s["gr"], s["hr"]], rtol=1e-9, atol=1e-8)
        HL = K.build_histogram(B, L, g[L], h[L], nbins, strategy, n_threads)
        HR = K.subtract(hist, HL)
        assert_hist_close(HR, ref_hist(B, R, g[R], h[R], nbins), np.abs(og).sum(), oh.sum())


# ------------------------------------------------------------------------------------------------
# 5. bad input: an exception, never a crash

BAD = (ValueError, TypeError)


def test_bin_data_bad_input():
    X = np.zeros((10, 3))
    e = [np.zeros(2)] * 3
    for bad_X in (X.astype(np.int64), X.astype(np.float16), X[:, 0], X[None], X[:, ::2],
                  np.asfortranarray(np.zeros((10, 3))), X.astype(">f8"), X.tolist()):
        with pytest.raises(BAD):
            K.bin_data(bad_X, e[: (np.shape(bad_X)[1] if np.ndim(bad_X) == 2 else 3)], 3)
    with pytest.raises(BAD):
        K.bin_data(X, e[:2], 3)                     # one edge array per feature
    with pytest.raises(BAD):
        K.bin_data(X, e, 0)                         # missing_bin 1..255
    with pytest.raises(BAD):
        K.bin_data(X, e, 256)
    with pytest.raises(BAD):
        K.bin_data(X, e, 2)                         # 2 edges -> bins 0..2 collide with 2
    with pytest.raises(BAD):
        K.bin_data(X, [np.zeros(255)] * 3, 255)


def test_build_histogram_bad_input():
    n, d, nbins = 20, 3, 8
    B = np.zeros((d, n), np.uint8)
    rows = np.arange(5, dtype=np.int32)
    og = np.zeros(5, np.float32)
    ok = dict(B=B, rows=rows, og=og, oh=og, nbins=nbins)
    K.build_histogram(**ok)    # the baseline is accepted
    bad = [
        dict(B=B.astype(np.int8)), dict(B=B.astype(np.int64)), dict(B=B[0]), dict(B=B.T),
        dict(B=np.zeros((d, 2 * n), np.uint8)[:, ::2]), dict(B=B.tolist()),
        dict(rows=rows.astype(np.int64)), dict(rows=rows.astype(np.uint32)),
        dict(rows=rows[None]), dict(rows=np.arange(10, dtype=np.int32)[::2]),
        dict(rows=np.array([0, 1, 2, 3, n], np.int32)),
        dict(rows=np.array([0, 1, -1, 3, 4], np.int32)),
        dict(rows=np.array([0, 1, 2, 3, 2**31 - 1], np.int32)),
        dict(og=og.astype(np.float64)), dict(og=np.zeros(4, np.float32)),
        dict(og=np.zeros(20, np.float32)), dict(oh=og.astype(np.float64)),
        dict(oh=np.zeros(6, np.float32)), dict(og=None),
        dict(nbins=0), dict(nbins=257), dict(nbins=-1),
        dict(B=np.full((d, n), 8, np.uint8)),                         # bins >= nbins
        dict(B=np.full((d, n), 255, np.uint8), nbins=255),
        dict(strategy="rows"),
        dict(out=np.zeros((d, nbins + 1), HBIN)), dict(out=np.zeros((d, nbins), np.float64)),
        dict(out=np.zeros((d, 2 * nbins), HBIN)[:, ::2]),
        dict(out=np.zeros((nbins, d), HBIN).T),
    ]
    ro = np.zeros((d, nbins), HBIN)
    ro.flags.writeable = False
    bad.append(dict(out=ro))
    for kw in bad:
        args = {**ok, **kw}
        with pytest.raises(BAD):
            K.build_histogram(args["B"], args["rows"], args["og"], args["oh"], args["nbins"],
                              args.get("strategy", "features"), 2, out=args.get("out"))
    assert (ro["count"] == 0).all()
    # rows=None: og must cover all n rows
    with pytest.raises(BAD):
        K.build_histogram(B, None, og, None, nbins)


def test_subtract_bad_input():
    P = np.zeros((3, 8), HBIN)
    for a, b, out in [(P, np.zeros((3, 7), HBIN), None), (P, np.zeros((3, 8)), None),
                      (np.zeros((3, 8)), P, None), (P.tolist(), P, None),
                      (P, P, np.zeros((3, 7), HBIN)), (P, P, np.zeros((8, 3), HBIN).T),
                      (np.zeros((3, 16), HBIN)[:, ::2], P, None)]:
        with pytest.raises(BAD):
            K.subtract(a, b, out)
    ro = np.zeros((3, 8), HBIN)
    ro.flags.writeable = False
    with pytest.raises(BAD):
        K.subtract(P, P, out=ro)
    with pytest.raises(BAD):
        K.subtract(ro, P, out=ro)


def test_find_splits_bad_input():
    H = np.zeros((2, 8), HBIN)
    nb = np.array([3, 4], np.int32)
    K.find_splits(H, nb, 7, 0.0, 1.0, 1)     # the baseline is accepted
    cases = [
        (np.zeros((2, 8)), nb, 7, {}), (H[0], nb, 7, {}),
        (np.zeros((2, 16), HBIN)[:, ::2], nb, 7, {}),
        (H, nb.astype(np.int64), 7, {}), (H, nb[:1], 7, {}), (H, np.array([0, 3], np.int32), 7, {}),
        (H, np.array([3, 8], np.int32), 7, {}), (H, np.array([3, 9], np.int32), 8, {}),
        (H, nb, 8, {}), (H, nb, -1, {}), (H, nb, 3, {}),      # nb 4 > missing_bin 3
        (H, nb, 7, dict(allowed=np.ones(2, bool))), (H, nb, 7, dict(allowed=np.ones(3, np.uint8))),
        (H, nb, 7, dict(allowed=np.ones(4, np.uint8)[::2])),
        (H.tolist(), nb, 7, {}),
    ]
    for hist, nbs, mb, kw in cases:
        with pytest.raises(BAD):
            K.find_splits(hist, nbs, mb, 0.0, 1.0, 1, **kw)


def test_partition_bad_input():
    B = np.zeros((2, 10), np.uint8)
    rows = np.arange(10, dtype=np.int32)
    K.partition(B, rows.copy(), 1, 0, True, 5)
    ro = rows.copy()
    ro.flags.writeable = False
    cases = [
        (B, rows.astype(np.int64), 0), (B, ro, 0), (B, np.arange(20, dtype=np.int32)[::2], 0),
        (B, rows.tolist(), 0), (B, rows[None].copy(), 0),
        (B, np.array([0, 10], np.int32), 0), (B, np.array([-1, 0], np.int32), 0),
        (B, rows.copy(), 2), (B, rows.copy(), -1),
        (B.astype(np.int16), rows.copy(), 0), (B[0].copy(), rows.copy(), 0),
        (np.zeros((2, 20), np.uint8)[:, ::2], rows.copy(), 0),
    ]
    for b, r, f in cases:
        with pytest.raises(BAD):
            K.partition(b, r, f, 0, True, 5)
    np.testing.assert_array_equal(ro, np.arange(10))


# ---- the kernel's own gather of g/h (gather=True) and the parallel partition of large nodes ----

@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("const_h", [False, True])
@pytest.mark.parametrize("n", [700, 3 * SAMPLE_BLOCK + 77])
def test_hist_gather_equals_pregathered(strategy, n_threads, const_h, n, rng):
    """gather=True takes per-row g/h and must give bitwise the histogram of g[rows], h[rows]."""
    B, rows, og, oh, g_all, h_all = node_inputs(rng, n, 6, 64, True)
    rows = np.sort(rows) if n > 1000 else rows  # sorted (the grower's) and unsorted orders
    oh_pre = None if const_h else h_all[rows]
    want = K.build_histogram(B, rows, g_all[rows], oh_pre, 64, strategy, n_threads)
    got = K.build_histogram(B, rows, g_all, None if const_h else h_all, 64, strategy, n_threads,
                            gather=True)
    assert_hist_identical(got, want)
    with pytest.raises(ValueError, match="og"):  # per-row arrays of the wrong length
        K.build_histogram(B, rows, g_all[:-1], None, 64, strategy, n_threads, gather=True)


PART_BLOCK = 32768  # documented block of the parallel partition


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("missing_left", [False, True])
@pytest.mark.parametrize("m", [PART_BLOCK - 1, 2 * PART_BLOCK + 3, 5 * PART_BLOCK])
def test_partition_parallel_matches_numpy(n_threads, missing_left, m, rng):
    n = 6 * PART_BLOCK
    B, nb, missing_bin, _, _ = make_node(rng, n, 2, nbins_max=40, nan_frac=0.1)
    rows = np.sort(rng.permutation(n)[:m]).astype(np.int32)
    for thr in (-1, int(nb[1]) // 3, int(nb[1]) - 1):
        expect, enl = ref_partition(B, rows, 1, thr, missing_left, missing_bin)
        got = rows.copy()
        nl = K.partition(B, got, 1, thr, missing_left, missing_bin, n_threads=n_threads)
        assert nl == enl
        np.testing.assert_array_equal(got, expect)


# ------------------------------------------------------------------------------------------------
# categorical features (is_cat / cats): bins are category codes, a split is a set of bins going
# left. The documented rule (hist.h): categories with at least CAT_SUPPORT rows (the missing bin
# counts as a category when it has that many) are ordered by G / (H + CAT_SMOOTH) (ties: lower
# bin first); every prefix of that order, in both directions, is a candidate left set; categories
# below the support always go right. Same gain, min_samples_leaf and min_hessian rules as ordinal
# splits. Missing direction: the missing bin's side when the node has missing rows, else the
# larger child (ties left). The reference below is written from that text; gains are computed by
# brute force over row masks.

CAT_SUPPORT, CAT_SMOOTH = 10, 10.0


def cat_set(cats):
    """The set of bins in a 256-bit uint32[8] bitset."""
    bits = np.unpackbits(np.asarray(cats, np.uint32).view(np.uint8), bitorder="little")
    return frozenset(np.flatnonzero(bits).tolist())


def cat_bits(bins):
    out = np.zeros(8, np.uint32)
    for b in bins:
        out[b >> 5] |= np.uint32(1 << (b & 31))
    return out


def ref_cat_candidates(bcol, g, h, hist_f, nb, missing_bin, *, hconst, l2, min_hessian,
                       min_leaf):
    """Candidate left sets of one categorical feature by the documented rule, in scan order
    (prefixes of the ascending order, then of the descending one), with brute-force sums.
    hist_f: the feature's histogram as given to the kernel (the sort keys are read from it)."""
    N = len(bcol)
    has_missing = bool((bcol == missing_bin).any())
    hcat = (lambda b: hconst * float(hist_f["count"][b])) if hconst > 0 else \
        (lambda b: float(hist_f["h"][b]))
    used = [b for b in range(nb) if hist_f["count"][b] >= CAT_SUPPORT]
    if hist_f["count"][missing_bin] >= CAT_SUPPORT:
        used.append(missing_bin)
    order = sorted(used, key=lambda b: (float(hist_f["g"][b]) / (hcat(b) + CAT_SMOOTH), b))
    G = float(g.sum())
    H = hconst * N if hconst > 0 else float(h.sum())
    parent = G * G / (H + l2)
    cands = []
    for seq in (order, order[::-1]):
        for k in range(1, len(seq) + 1):
            s = frozenset(seq[:k])
            left = np.isin(bcol, list(s))
            nl = int(left.sum())
            nr = N - nl
            if nr == 0:             # every row left: no split
                continue
            gl, gr = float(g[left].sum()), float(g[~left].sum())
            if hconst > 0:
                hl, hr = hconst * nl, hconst * nr
            else:
                hl, hr = float(h[left].sum()), float(h[~left].sum())
            if nl < min_leaf or nr < min_leaf or hl < min_hessian or hr < min_hessian:
                continue
            gain = gl * gl / (hl + l2) + gr * gr / (hr + l2) - parent
            cands.append(dict(set=s, gain=gain, gl=gl, hl=hl, gr=gr, hr=hr, nl=nl, nr=nr))
    return cands, has_missing


def check_cat_split(s, cands, has_missing, missing_bin, tol, exact=False):
    if not cands:
        assert s["gain"] == -np.inf and s["is_cat"] == 0
        return
    assert s["is_cat"] == 1 and s["bin"] == -1
    bits = cat_set(s["cats"])
    chosen = bits if has_missing else bits - {missing_bin}
    match = [c for c in cands if c["set"] == chosen]
    assert match, f"left set {sorted(chosen)} is not a candidate of the documented rule"
    c = match[0]
    best = max(x["gain"] for x in cands)
    if exact:   # dyadic data: exact sums; ties go to the first candidate in scan order
        assert s["gain"] == c["gain"] == best
        assert chosen == next(x["set"] for x in cands if x["gain"] == best)
    else:
        assert c["gain"] >= best - tol and abs(s["gain"] - best) <= tol
    assert (s["nl"], s["nr"]) == (c["nl"], c["nr"])
    np.testing.assert_allclose([s["gl"], s["hl"], s["gr"], s["hr"]],
                               [c["gl"], c["hl"], c["gr"], c["hr"]], rtol=1e-9, atol=tol)
    if has_missing:
        assert bool(s["missing_left"]) == (missing_bin in chosen)
    else:   # no missing rows here: unseen NaN goes to the larger child
        assert bool(s["missing_left"]) == (c["nl"] >= c["nr"])
        assert (missing_bin in bits) == bool(s["missing_left"])


def make_cat_node(rng, n, d, nbins, dyadic=False):
    """Category codes with skewed frequencies (some categories below the support), features
    with no, few (< support) and many missing rows; g carries per-category effects."""
    missing_bin = nbins - 1
    B = np.empty((d, n), np.uint8)
    nb = np.empty(d, np.int32)
    eff = rng.standard_normal((d, nbins)) * 2
    for f in range(d):
        k = int(rng.integers(2, min(missing_bin, 40) + 1))
        w = rng.pareto(1.2, k) + 0.02
        B[f] = rng.choice(k, n, p=w / w.sum())
        few, many = int(rng.integers(1, CAT_SUPPORT)), int(rng.integers(CAT_SUPPORT, n // 4))
        nmiss = (0, few, many)[f % 3]
        B[f, rng.permutation(n)[:nmiss]] = missing_bin
        nb[f] = k
    if dyadic:
        g = (rng.integers(-16, 17, n) / 8).astype(np.float32)
        h = (rng.integers(1, 9, n) / 8).astype(np.float32)
    else:
        g = (eff[np.arange(d)[:, None], B].sum(0) + rng.standard_normal(n)).astype(np.float32)
        h = rng.uniform(0.05, 1.0, n).astype(np.float32)
    return B, nb, missing_bin, g, h


def run_cat_case(B, rows, nb, missing_bin, g, h, is_cat, *, l2, min_hessian, min_leaf, hconst,
                 n_threads, exact=False):
    nbins = missing_bin + 1
    og = g[rows].astype(np.float32)
    oh = None if hconst > 0 else h[rows].astype(np.float32)
    hist = ref_hist(B, rows, og, oh, nbins)
    gd = og.astype(np.float64)
    hd = None if oh is None else oh.astype(np.float64)
    G = float(gd.sum())
    H = hconst * len(rows) if hconst > 0 else float(hd.sum())
    S = K.find_splits(hist, nb, missing_bin, G, H, len(rows), l2=l2, min_hessian=min_hessian,
                      min_leaf=min_leaf, hconst=hconst, is_cat=is_cat, n_threads=n_threads)
    tol = gain_tol(gd, hd, l2, hconst, min_hessian)
    for f in range(B.shape[0]):
        if is_cat[f]:
            cands, has_missing = ref_cat_candidates(
                B[f, rows], gd, hd, hist[f], int(nb[f]), missing_bin, hconst=hconst, l2=l2,
                min_hessian=min_hessian, min_leaf=min_leaf)
            check_cat_split(S[f], cands, has_missing, missing_bin, tol, exact=exact)
        else:   # ordinal features are untouched by is_cat
            cands, _, _, _, has_missing = ref_split_candidates(
                B[f, rows], gd, hd, int(nb[f]), missing_bin, hconst=hconst, l2=l2,
                min_hessian=min_hessian, min_leaf=min_leaf)
            check_split(S[f], cands, has_missing, tol, exact=exact)
            assert S[f]["is_cat"] == 0
    return S


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("l2", [0.0, 1.5])
@pytest.mark.parametrize("hconst", [0.0, 0.5])
@pytest.mark.parametrize("min_leaf,min_hessian", [(1, 1e-3), (25, 1e-3), (1, 6.0)])
def test_find_splits_categorical_brute_force(n_threads, l2, hconst, min_leaf, min_hessian, rng):
    n, d, nbins = 700, 9, 48
    B, nb, missing_bin, g, h = make_cat_node(rng, n, d, nbins)
    is_cat = np.ones(d, np.uint8)
    is_cat[[2, 7]] = 0            # ordinal features among them
    rows = rng.permutation(n)[:600].astype(np.int32)
    S = run_cat_case(B, rows, nb, missing_bin, g, h, is_cat, l2=l2, min_hessian=min_hessian,
                     min_leaf=min_leaf, hconst=hconst, n_threads=n_threads)
    assert S[is_cat == 1]["is_cat"].any()
    S1 = run_cat_case(B, rows, nb, missing_bin, g, h, is_cat, l2=l2, min_hessian=min_hessian,
                      min_leaf=min_leaf, hconst=hconst, n_threads=1)
    assert S.tobytes() == S1.tobytes()


@pytest.mark.parametrize("seed", range(4))
def test_find_splits_categorical_exact_dyadic(seed):
    """g, h multiples of 1/8: exact sums, so exact gains and the documented tie order."""
    rng = np.random.default_rng(seed)
    B, nb, missing_bin, g, h = make_cat_node(rng, 500, 6, 24, dyadic=True)
    rows = np.arange(500, dtype=np.int32)
    for l2, min_leaf, min_hessian, hconst in [(0.0, 1, 1e-3, 0.0), (1.0, 30, 2.0, 0.0),
                                              (0.0, 7, 1e-3, 0.25), (0.5, 1, 8.0, 0.5)]:
        run_cat_case(B, rows, nb, missing_bin, g, h, np.ones(6, np.uint8), l2=l2,
                     min_hessian=min_hessian, min_leaf=min_leaf, hconst=hconst, n_threads=2,
                     exact=True)


def cat1(H, nb, mb, **kw):
    G, Hs, N = float(H["g"].sum()), float(H["h"].sum()), int(H["count"].sum())
    if kw.get("hconst", 0) > 0:
        Hs = kw["hconst"] * N
    kw.setdefault("min_hessian", 0.0)
    return K.find_splits(H, nb, mb, G, Hs, N, is_cat=np.ones(1, np.uint8), **kw)[0]


def test_find_splits_categorical_support_is_ten_rows_inclusive():
    # categories 0 and 2 alike, 1 and 3 alike: the best set groups {0, 2} against {1, 3}
    counts, g = [10, 10, 10, 10], [5.0, -5.0, 5.0, -5.0]
    s = cat1(*hand_hist(counts, g, counts))
    assert cat_set(s["cats"]) - {4} in ({0, 2}, {1, 3}) and s["nl"] == s["nr"] == 20
    # category 3 with 9 rows is below the support: it can only go right, even though it is
    # like category 1
    counts = [10, 10, 10, 9]
    s = cat1(*hand_hist(counts, g, counts))
    left = cat_set(s["cats"]) - {4}
    assert 3 not in left and left == {0, 2}
    assert (s["nl"], s["nr"], s["gl"], s["gr"]) == (20, 19, 10.0, -10.0)
    # the support counts rows, not hessians: 10 rows of tiny hessian still count
    s = cat1(*hand_hist([10, 10, 10, 10], g, [0.01, 10.0, 0.01, 10.0]))
    assert cat_set(s["cats"]) - {4} in ({0, 2}, {1, 3})


def test_find_splits_categorical_one_supported_category_and_no_split():
    # one category with support, the others below it: left = that one, right = the rest
    s = cat1(*hand_hist([12, 3, 4], [6.0, -2.0, -2.0], [12.0, 3.0, 4.0]))
    assert s["is_cat"] == 1 and cat_set(s["cats"]) - {3} == {0} and s["nl"] == 12
    # no category with support: no split
    s = cat1(*hand_hist([9, 9, 9], [6.0, -6.0, 1.0], [9.0, 9.0, 9.0]))
    assert s["gain"] == -np.inf and s["is_cat"] == 0
    # a single category holding every row: nothing to split
    s = cat1(*hand_hist([0, 30, 0], [0.0, 3.0, 0.0], [0.0, 30.0, 0.0]))
    assert s["gain"] == -np.inf and s["is_cat"] == 0


def test_find_splits_categorical_order_is_smoothed():
    """A (10 rows of tiny hessian, G -0.5) is extreme by G/H (-50) but sits between B and C by
    G/(H+10): the smoothed order B < A < C never offers {A} alone, the much better split by gain
    (25 against 0.7), so the kernel must not find it."""
    H, nb, mb = hand_hist([30, 10, 30], [-3.0, -0.5, 3.0], [30.0, 0.01, 30.0])
    s = cat1(H, nb, mb)
    left = cat_set(s["cats"]) - {mb}
    assert left in ({0, 1}, {2})                      # B A | C, the best smoothed prefix
    G, Ht = -0.5, 60.01
    assert s["gain"] == pytest.approx(9 / 30 + 12.25 / 30.01 - G * G / Ht)
    assert s["gain"] < 1.0


def test_find_splits_categorical_both_directions():
    """Order by G/(H+10): A=0 < B=1 < C=2 < D=3, and E=4 below the support (always right). E is
    like A, B, C, so the best split sends D alone left: only the descending scan finds it (the
    ascending one would put E with D)."""
    counts = [20, 20, 20, 20, 5]
    g = [-10.0, -9.0, -8.0, 40.0, -3.0]
    s = cat1(*hand_hist(counts, g, counts))
    assert cat_set(s["cats"]) - {5} == {3}
    assert (s["nl"], s["gl"]) == (20, 40.0)
    # mirrored: D smallest key, alone left found by the ascending scan
    g = [10.0, 9.0, 8.0, -40.0, 3.0]
    s = cat1(*hand_hist(counts, g, counts))
    assert cat_set(s["cats"]) - {5} == {3}


def test_find_splits_categorical_missing_is_a_category():
    # missing rows (>= support) behave like category 1: they are grouped with it
    H, nb, mb = hand_hist([15, 15, 15], [7.5, -7.5, 7.5], [15.0] * 3, missing=(12, -6.0, 12.0))
    s = cat1(H, nb, mb)
    assert cat_set(s["cats"]) in ({1, mb}, {0, 2})
    assert bool(s["missing_left"]) == (mb in cat_set(s["cats"]))
    assert {s["nl"], s["nr"]} == {27, 30}
    # below the support the missing rows go right, whatever their gradients
    H, nb, mb = hand_hist([15, 15, 15], [7.5, -7.5, 7.5], [15.0] * 3, missing=(9, 90.0, 9.0))
    s = cat1(H, nb, mb)
    assert mb not in cat_set(s["cats"]) and s["missing_left"] == 0
    # the missing rows alone against everything else
    H, nb, mb = hand_hist([15, 15], [1.0, 1.0], [15.0] * 2, missing=(10, -20.0, 10.0))
    s = cat1(H, nb, mb)
    left = cat_set(s["cats"])
    assert left in ({mb}, {0, 1}) and s["missing_left"] == (left == {mb})
    # no missing rows: unseen NaN goes to the larger child (ties: left), stored in the set
    s = cat1(*hand_hist([30, 10, 10], [-3.0, 5.0, 5.0], [30.0, 10.0, 10.0]))
    assert cat_set(s["cats"]) == {0, 3} and s["missing_left"] == 1
    s = cat1(*hand_hist([10, 10, 30], [5.0, 5.0, -3.0], [10.0, 10.0, 30.0]))
    assert s["missing_left"] == (s["nl"] >= s["nr"])
    assert (3 in cat_set(s["cats"])) == bool(s["missing_left"])


def test_find_splits_categorical_min_leaf_and_min_hessian_are_inclusive():
    counts, g, h = [10, 12, 14], [-5.0, 1.0, 6.0], [2.0, 3.0, 4.0]
    s = cat1(*hand_hist(counts, g, h))
    assert cat_set(s["cats"]) - {3} == {0}                   # -5 | 7: the best, nl = 10
    s = cat1(*hand_hist(counts, g, h), min_leaf=12)           # left 10 rows is too few
    assert s["nl"] >= 12 and s["nr"] >= 12
    assert cat_set(s["cats"]) - {3} in ({2}, {0, 1})
    assert cat1(*hand_hist(counts, g, h), min_leaf=19)["gain"] == -np.inf
    s = cat1(*hand_hist(counts, g, h), min_hessian=4.0)       # hl 2 < 4: {0} refused
    assert min(s["hl"], s["hr"]) >= 4.0 and cat_set(s["cats"]) - {3} != {0}
    assert cat1(*hand_hist(counts, g, h), min_hessian=4.5)["gain"] == -np.inf
    # a constant hessian: keys and sums use hconst * count
    s = cat1(*hand_hist(counts, g, h), hconst=0.5)
    assert s["hl"] == 0.5 * s["nl"] and s["hr"] == 0.5 * s["nr"]


def ref_partition_cats(B, rows, feature, cats):
    left = np.isin(B[feature, rows], sorted(cat_set(cats)))
    return np.concatenate([rows[left], rows[~left]]).astype(np.int32), int(left.sum())


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("m", [1000, 2 * PART_BLOCK + 3, 5 * PART_BLOCK])
def test_partition_categorical_matches_numpy(n_threads, m, rng):
    n = 6 * PART_BLOCK
    B, nb, missing_bin, _, _ = make_node(rng, n, 2, nbins_max=256, nan_frac=0.1)
    rows = np.sort(rng.permutation(n)[:m]).astype(np.int32)
    rows = rows if m > PART_BLOCK else rng.permutation(rows).astype(np.int32)
    for bins in ([], [0], [missing_bin], [0, 3, 31, 32, 100, 200], list(range(0, 255, 2)),
                 list(range(256))):
        cats = cat_bits(bins)
        expect, enl = ref_partition_cats(B, rows, 1, cats)
        for thr, ml in ((-1, True), (int(nb[1]) - 1, False)):   # ignored with cats
            got = rows.copy()
            nl = K.partition(B, got, 1, thr, ml, missing_bin, n_threads=n_threads, cats=cats)
            assert nl == enl
            np.testing.assert_array_equal(got, expect)


def cat_grow_data(rng, n=40000, d=6):
    """Two categorical features (one with missing rows), the rest ordinal."""
    B, nb, missing_bin, g, h = make_node(rng, n, d, nbins_max=64, nan_frac=0.05)
    is_cat = np.zeros(d, np.uint8)
    is_cat[[0, 3]] = 1
    for f, k in ((0, 30), (3, 12)):
        w = rng.pareto(1.0, k) + 0.01
        B[f] = rng.choice(k, n, p=w / w.sum())
        nb[f] = k
    B[0, rng.random(n) < 0.03] = missing_bin
    eff = rng.standard_normal(64) * 3
    g = (g + eff[B[0]] - eff[B[3]]).astype(np.float32)
    return B, nb, missing_bin, g, h, is_cat


@pytest.mark.parametrize("const_h", [False, True])
def test_grow_tree_native_categorical_identical_across_threads(const_h, rng):
    B, nb, missing_bin, g, h, is_cat = cat_grow_data(rng)
    nbins = missing_bin + 1
    runs = []
    for strategy in STRATEGIES:
        for nt in THREADS:
            nodes, rows = KG.grow_tree_native(B, nb, missing_bin, nbins, g, None if const_h else h,
                                             1.0 if const_h else 0.0, None, 31, None, 20, 0.0,
                                             1e-3, strategy, nt, is_cat=is_cat)
            runs.append((nodes, rows))
    nodes0, rows0 = runs[0]
    for nodes, rows in runs[1:]:
        assert nodes.keys() == nodes0.keys()
        for k in nodes0:
            assert nodes[k].tobytes() == nodes0[k].tobytes(), k
        np.testing.assert_array_equal(rows, rows0)
    # categorical splits are used, only on categorical features, and each one's children hold
    # exactly the rows whose bins are (not) in its set
    cat_nodes = np.flatnonzero(nodes0["node_cat"] == 1)
    assert len(cat_nodes) > 0
    assert all(is_cat[nodes0["feature"][j]] for j in cat_nodes)
    split = np.flatnonzero(nodes0["left"] >= 0)
    assert all(not is_cat[nodes0["feature"][j]] for j in split if not nodes0["node_cat"][j])
    for j in cat_nodes:
        f, s = nodes0["feature"][j], sorted(cat_set(nodes0["cats"][j]))
        L, R = nodes0["left"][j], nodes0["right"][j]
        assert np.isin(B[f, rows0[nodes0["lo"][L]:nodes0["hi"][L]]], s).all()
        assert not np.isin(B[f, rows0[nodes0["lo"][R]:nodes0["hi"][R]]], s).any()
        assert (missing_bin in s) == bool(nodes0["missing_left"][j])
        assert nodes0["bin"][j] == -1
    # without is_cat the same data grows ordinal splits only
    nodes, _ = KG.grow_tree_native(B, nb, missing_bin, nbins, g, h, 0.0, None, 31, None, 20, 0.0,
                                  1e-3)
    assert not nodes["node_cat"].any() and not nodes["cats"].any()


def test_categorical_kernels_bad_input():
    H = np.zeros((2, 8), HBIN)
    nb = np.array([3, 4], np.int32)
    for bad in (np.ones(2, bool), np.ones(3, np.uint8), np.ones(4, np.uint8)[::2], [1, 1]):
        with pytest.raises(BAD):
            K.find_splits(H, nb, 7, 0.0, 1.0, 1, is_cat=bad)
    B = np.zeros((2, 10), np.uint8)
    rows = np.arange(10, dtype=np.int32)
    for bad in (np.zeros(8, np.int32), np.zeros(7, np.uint32), np.zeros((1, 8), np.uint32),
                np.zeros(16, np.uint32)[::2]):
        with pytest.raises(BAD):
            K.partition(B, rows.copy(), 0, 0, True, 5, cats=bad)
    g = np.zeros(10, np.float32)
    with pytest.raises(BAD):
        KG.grow_tree_native(B, np.array([2, 2], np.int32), 5, 6, g, None, 1.0, None, 4, None, 1,
                           0.0, 1e-3, is_cat=np.ones(3, np.uint8))
