"""parml._kernels._linear and _sgd against independent float64 numpy references: the fused loss +
gradient for every loss, finite differences, thread-count determinism, strategies, row subsets,
SGD epochs (per-sample, mini-batch, Hogwild), prediction, column sums, finiteness and weighted
Gram matrices, each on every kernel set this CPU supports; the loss ids against losses.h, and
the SGD settings' and arrays' checks."""
import os
import pickle
import re

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from parml import _isa, get_include, supported_kernel_sets
from parml._kernels import _linear as L
from parml._kernels import _sgd as S

DTYPES = [np.float32, np.float64]
THREADS = [1, 2, 4]
LOSSES = list(L.LOSS_IDS)
CLASSIF = ["log_loss", "hinge", "squared_hinge", "modified_huber", "perceptron"]
SMOOTH = ["squared_error", "log_loss", "multinomial", "huber"]
EPS = {"huber": 1.0, "epsilon_insensitive": 0.5, "squared_epsilon_insensitive": 0.5}
SAMPLES, WEIGHTS, HOGWILD = (L.STRATEGIES[k] for k in ("samples", "weights", "hogwild"))
CONSTANT = S.SCHEDULES["constant"]
ROWOPS = list(supported_kernel_sets())     # every kernel set this CPU supports


def rowops_ctx(which):
    return _isa.use(which)


@pytest.fixture(params=ROWOPS)
def rowops(request):
    with _isa.use(request.param):
        assert L.rowops_name() == request.param
        yield request.param


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_axpby_matches_numpy(dtype, rowops, rng):
    for d in list(range(1, 20)) + [31, 32, 33, 100, 257]:
        x = rng.standard_normal(d).astype(dtype)
        g = rng.standard_normal(d)
        a, c = rng.standard_normal(), rng.uniform(0.0, 1.0)
        want = c * g + a * x.astype(np.float64)
        L.row_axpby(a, x, c, g)
        np.testing.assert_allclose(g, want, rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match="same length"):
        L.row_axpby(1.0, np.ones(3, dtype), 0.5, np.ones(4))


def test_rowops_follow_the_kernel_set():
    before = L.rowops_name()
    assert before == _isa.kernel_set()
    for name in ROWOPS:
        with rowops_ctx(name):
            assert L.rowops_name() == name
        assert L.rowops_name() == before


# ------------------------------------------------------------------------------------------------
# float64 numpy reference, written from the loss definitions (not from the C code)

def ref_point(name, z, y, eps):
    """(loss, d loss / d z) element-wise, for one output."""
    if name == "squared_error":
        r = z - y
        return 0.5 * r * r, r
    if name in ("huber", "epsilon_insensitive", "squared_epsilon_insensitive"):
        r = z - y
        a = np.abs(r)
        if name == "huber":
            return np.where(a <= eps, 0.5 * r * r, eps * a - 0.5 * eps * eps), np.clip(r, -eps, eps)
        m = np.maximum(0.0, a - eps)
        if name == "epsilon_insensitive":
            return m, np.sign(r) * (a > eps)
        return m * m, 2.0 * np.sign(r) * m
    p = y * z
    if name == "log_loss":
        # log(1 + e^-p); derivative -y sigmoid(-p) = -y / (1 + e^p)
        return np.logaddexp(0.0, -p), -y * np.exp(-np.logaddexp(0.0, p))
    if name == "hinge":
        return np.maximum(0.0, 1.0 - p), np.where(p < 1.0, -y, 0.0)
    if name == "squared_hinge":
        m = np.maximum(0.0, 1.0 - p)
        return m * m, -2.0 * y * m
    if name == "modified_huber":
        loss = np.where(p >= 1.0, 0.0, np.where(p >= -1.0, (1.0 - p) ** 2, -4.0 * p))
        dl = np.where(p >= 1.0, 0.0, np.where(p >= -1.0, -2.0 * y * (1.0 - p), -4.0 * y))
        return loss, dl
    if name == "perceptron":
        return np.maximum(0.0, -p), np.where(p <= 0.0, -y, 0.0)
    raise AssertionError(name)


def ref_scores_dl(name, X, y, sw, W, b, wscale, ovr, eps, cw=None, clip=None):
    """Per-row losses (n,) and d loss / d z (n x K), sample weights applied, and in one-vs-rest
    the weight cw[k] of problem k's positive rows; d loss / d z first clipped to +-clip (SGD)."""
    X64 = np.asarray(X, dtype=np.float64)
    n, K = X64.shape[0], W.shape[0]
    Z = wscale * (X64 @ W.T) + b
    if name == "multinomial":
        cls = y.astype(np.intp)
        m = Z.max(axis=1, keepdims=True) if n else np.zeros((0, 1))
        lse = np.log(np.exp(Z - m).sum(axis=1, keepdims=True)) + m
        loss = lse[:, 0] - Z[np.arange(n), cls]
        D = np.exp(Z - lse)
        D[np.arange(n), cls] -= 1.0
    elif ovr:
        Y = np.where(y[:, None] == np.arange(K)[None, :], 1.0, -1.0)
        loss, D = ref_point(name, Z, Y, eps)
        if clip is not None:
            D = np.clip(D, -clip, clip)
        if cw is not None:
            cwt = np.where(Y > 0, np.asarray(cw)[None, :], 1.0)
            loss, D = loss * cwt, D * cwt
        loss = loss.sum(axis=1)
    else:
        assert K == 1
        loss, D = ref_point(name, Z[:, 0], y, eps)
        D = D[:, None]
        if clip is not None:
            D = np.clip(D, -clip, clip)
    if sw is not None:
        loss = loss * sw
        D = D * sw[:, None]
    return loss, D


def ref_loss_grad(name, X, y, sw, W, b, wscale=1.0, ovr=False, eps=0.0, cw=None):
    """(out, tol): the expected [grad W, grad b, loss] and an element-wise error bound (1e-10 of
    the sum of absolute terms, plus 1e-10 per row for the rounding of the scores themselves)."""
    X64 = np.asarray(X, dtype=np.float64)
    n = X64.shape[0]
    loss, D = ref_scores_dl(name, X, y, sw, W, b, wscale, ovr, eps, cw)
    aX = np.abs(X64)
    out = np.concatenate([(D.T @ X64).ravel(), D.sum(axis=0), [loss.sum()]])
    bound = np.concatenate([((np.abs(D) + 1.0).T @ aX).ravel(), np.abs(D).sum(axis=0) + n,
                            [np.abs(loss).sum() + n]])
    return out, 1e-10 * bound + 1e-300


def assert_out(out, ref, tol, what=""):
    err = np.abs(out - ref)
    bad = ~(err <= tol)
    assert not bad.any(), (f"{what}: {bad.sum()} of {out.size} entries off, first at "
                           f"{np.argmax(bad)}: got {out[bad][0]!r}, want {ref[bad][0]!r}")


def make_problem(rng, name, n, d, K, dtype, ovr, sw=False, zscale=2.0):
    """X, y, sw, W, b; scores spread ~zscale, so every branch of the piecewise losses is hit."""
    X = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((K, d)) * (zscale / np.sqrt(d))
    b = rng.standard_normal(K) * 0.5
    if name == "multinomial" or ovr:
        y = rng.integers(0, K, n).astype(np.float64)
    elif name in CLASSIF:
        y = rng.choice([-1.0, 1.0], n)
    else:
        y = rng.standard_normal(n) * 2.0
    w = rng.uniform(0.1, 3.0, n) if sw else None
    return X, y, w, W, b


def run_loss_grad(X, y, sw, W, b, name, ovr=False, wscale=1.0, idx=None, strategy=SAMPLES,
                  n_threads=1, cw=None):
    K, d = W.shape
    out = np.full(K * d + K + 1, np.nan)
    tot = L.loss_grad(X, y, sw, W, b, wscale, L.LOSS_IDS[name], ovr, EPS.get(name, 0.0), idx,
                      strategy, out, n_threads, cw=cw)
    assert tot == out[-1]
    return out


# (loss, K, ovr): every loss as one output, the classification losses one-vs-rest, multinomial
CONFIGS = ([(nm, 1, False) for nm in LOSSES if nm != "multinomial"]
           + [(nm, 3, True) for nm in CLASSIF] + [("multinomial", 3, False),
                                                  ("multinomial", 2, False)])


@pytest.mark.parametrize("name,K,ovr", CONFIGS, ids=[f"{c[0]}-K{c[1]}" for c in CONFIGS])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_sw", [False, True])
@pytest.mark.parametrize("strategy", [SAMPLES, WEIGHTS], ids=["samples", "weights"])
def test_loss_grad_matches_reference(name, K, ovr, dtype, use_sw, strategy, rowops, rng):
    for n, d in [(257, 13), (120, 37)]:          # d = 8+5, 32+5: unrolled loops plus tails
        X, y, sw, W, b = make_problem(rng, name, n, d, K, dtype, ovr, use_sw)
        if use_sw:
            sw[::7] = 0.0                          # zero weights are legal
        out = run_loss_grad(X, y, sw, W, b, name, ovr, strategy=strategy)
        ref, tol = ref_loss_grad(name, X, y, sw, W, b, 1.0, ovr, EPS.get(name, 0.0))
        assert_out(out, ref, tol, f"{name} n={n} d={d}")
        # the data must exercise the loss: a nonzero gradient, and for piecewise losses both sides
        _, D = ref_scores_dl(name, X, y, None, W, b, 1.0, ovr, EPS.get(name, 0.0))
        assert np.abs(D).max() > 0.1
        if name not in SMOOTH + ["multinomial"]:
            assert (D == 0).any() and (D != 0).any()
        if name == "modified_huber":                 # all three pieces
            assert (np.abs(D) == 4).any() and ((np.abs(D) > 0) & (np.abs(D) < 4)).any()


@pytest.mark.parametrize("name,K,ovr", [("squared_error", 1, False), ("log_loss", 3, True),
                                         ("hinge", 1, False), ("multinomial", 4, False)])
@pytest.mark.parametrize("strategy", [SAMPLES, WEIGHTS], ids=["samples", "weights"])
def test_loss_grad_wide_columns(name, K, ovr, strategy, rng):
    # d >= 128 splits the weights strategy's columns over tasks (segments start mid-row);
    # d = 2000 with K > 1 also makes the samples strategy reduce its partials in parallel
    for n, d, dtype in [(150, 300, np.float64), (140, 203, np.float32), (700, 2000, np.float64)]:
        X, y, sw, W, b = make_problem(rng, name, n, d, K, dtype, ovr, sw=True)
        ref, tol = ref_loss_grad(name, X, y, sw, W, b, 1.0, ovr, EPS.get(name, 0.0))
        outs = [run_loss_grad(X, y, sw, W, b, name, ovr, strategy=strategy, n_threads=t)
                for t in (1, 4)]
        assert_out(outs[0], ref, tol, f"{name} d={d}")
        assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("name,K,ovr", [("squared_error", 1, False), ("log_loss", 1, False),
                                         ("huber", 1, False), ("log_loss", 3, True),
                                         ("multinomial", 3, False)])
def test_gradient_finite_differences(name, K, ovr, rng):
    n, d = 60, 7
    X, y, sw, W, b = make_problem(rng, name, n, d, K, np.float64, ovr, sw=True, zscale=1.0)
    out = run_loss_grad(X, y, sw, W, b, name, ovr)

    def f(W_, b_):
        return run_loss_grad(X, y, sw, W_, b_, name, ovr)[-1]

    h = 1e-6
    num = np.empty(K * d + K)
    for j in range(K * d):
        Wp, Wm = W.copy(), W.copy()
        Wp.flat[j] += h
        Wm.flat[j] -= h
        num[j] = (f(Wp, b) - f(Wm, b)) / (2 * h)
    for k in range(K):
        bp, bm = b.copy(), b.copy()
        bp[k] += h
        bm[k] -= h
        num[K * d + k] = (f(W, bp) - f(W, bm)) / (2 * h)
    np.testing.assert_allclose(out[:-1], num, rtol=1e-5, atol=1e-5 * np.abs(num).max())


DET_CASES = [("squared_error", 1, False), ("log_loss", 1, False), ("log_loss", 3, True),
             ("multinomial", 3, False), ("modified_huber", 1, False)]


@pytest.mark.parametrize("name,K,ovr", DET_CASES, ids=[f"{c[0]}-K{c[1]}" for c in DET_CASES])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_identical_across_threads_and_strategies_agree(name, K, ovr, dtype, rowops, rng):
    n, d = 3000, 50                                # n*K*d >= 131072: runs in parallel
    X, y, sw, W, b = make_problem(rng, name, n, d, K, dtype, ovr, sw=True)
    ref, tol = ref_loss_grad(name, X, y, sw, W, b, 1.0, ovr, EPS.get(name, 0.0))
    res = {}
    for strategy in (SAMPLES, WEIGHTS):
        outs = [run_loss_grad(X, y, sw, W, b, name, ovr, strategy=strategy, n_threads=t)
                for t in THREADS]
        for o in outs[1:]:
            assert np.array_equal(o, outs[0]), f"strategy {strategy} depends on n_threads"
        assert_out(outs[0], ref, tol, f"strategy {strategy}")
        res[strategy] = outs[0]
    # different summation orders, same sums: 1e-12 of the sum of absolute terms
    assert_out(res[SAMPLES], res[WEIGHTS], tol * 1e-2 + 1e-300, "samples vs weights")


@pytest.mark.parametrize("strategy", [SAMPLES, WEIGHTS], ids=["samples", "weights"])
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_idx_subset_equals_rows(strategy, n_threads, dtype, rowops, rng):
    for name, K, ovr, n, m in [("log_loss", 3, True, 3000, 2500),
                               ("multinomial", 3, False, 400, 37), ("huber", 1, False, 50, 1)]:
        X, y, sw, W, b = make_problem(rng, name, n, 45, K, dtype, ovr, sw=True)
        idx = rng.permutation(n)[:m].astype(np.intp)
        idx[-1] = idx[0]                            # a repeated row counts twice
        out = run_loss_grad(X, y, sw, W, b, name, ovr, idx=idx, strategy=strategy,
                            n_threads=n_threads)
        Xs, ys, sws = np.ascontiguousarray(X[idx]), y[idx], sw[idx]
        ref, tol = ref_loss_grad(name, Xs, ys, sws, W, b, 1.0, ovr, EPS.get(name, 0.0))
        assert_out(out, ref, tol, f"{name} idx")
        sub = run_loss_grad(Xs, ys, sws, W, b, name, ovr, strategy=strategy, n_threads=n_threads)
        assert_out(out, sub, tol * 1e-2 + 1e-300, f"{name} idx vs X[idx]")
    # an empty index set: loss 0, zero gradient
    out = run_loss_grad(X, y, sw, W, b, "huber", idx=np.empty(0, np.intp), strategy=strategy,
                        n_threads=n_threads)
    assert np.all(out == 0)


@pytest.mark.parametrize("name,K,ovr", [("squared_error", 1, False), ("hinge", 3, True),
                                         ("multinomial", 3, False), ("log_loss", 1, False)])
@pytest.mark.parametrize("wscale", [0.0, 0.37, -2.5])
@pytest.mark.parametrize("strategy", [SAMPLES, WEIGHTS], ids=["samples", "weights"])
def test_wscale_multiplies_scores(name, K, ovr, wscale, strategy, rng):
    X, y, sw, W, b = make_problem(rng, name, 200, 19, K, np.float64, ovr, sw=True)
    out = run_loss_grad(X, y, sw, W, b, name, ovr, wscale=wscale, strategy=strategy)
    # the gradient is with respect to the effective weights wscale * W
    ref, tol = ref_loss_grad(name, X, y, sw, wscale * W, b, 1.0, ovr, EPS.get(name, 0.0))
    assert_out(out, ref, tol, f"wscale={wscale}")
    ref2, _ = ref_loss_grad(name, X, y, sw, W, b, wscale, ovr, EPS.get(name, 0.0))
    assert_out(out, ref2, tol, f"wscale={wscale} (scaled scores)")


@given(n=st.integers(0, 300), d=st.integers(1, 70), K=st.sampled_from([1, 3]),
       name=st.sampled_from(LOSSES), dtype=st.sampled_from(DTYPES), use_sw=st.booleans(),
       strategy=st.sampled_from([SAMPLES, WEIGHTS]), n_threads=st.sampled_from(THREADS),
       ops=st.sampled_from(ROWOPS), seed=st.integers(0, 2 ** 32 - 1))
@example(n=0, d=5, K=3, name="log_loss", dtype=np.float64, use_sw=True, strategy=WEIGHTS,
         n_threads=2, ops=ROWOPS[-1], seed=0)
@example(n=0, d=1, K=1, name="multinomial", dtype=np.float32, use_sw=False, strategy=SAMPLES,
         n_threads=1, ops="generic", seed=0)
@example(n=1, d=70, K=3, name="multinomial", dtype=np.float32, use_sw=True, strategy=WEIGHTS,
         n_threads=4, ops=ROWOPS[-1], seed=1)
def test_loss_grad_shapes_hypothesis(n, d, K, name, dtype, use_sw, strategy, n_threads, ops, seed):
    rng = np.random.default_rng(seed)
    ovr = K > 1 and name != "multinomial"           # K = 3: one-vs-rest (any loss) or softmax
    X, y, sw, W, b = make_problem(rng, name, n, d, K, dtype, ovr, use_sw)
    with rowops_ctx(ops):
        out = run_loss_grad(X, y, sw, W, b, name, ovr, strategy=strategy, n_threads=n_threads)
    if n == 0:
        assert np.all(out == 0)
        return
    ref, tol = ref_loss_grad(name, X, y, sw, W, b, 1.0, ovr, EPS.get(name, 0.0))
    assert_out(out, ref, tol, f"{name} n={n} d={d} K={K}")


@given(n=st.integers(1, 90), d=st.one_of(st.integers(1, 40), st.integers(700, 3200)),
       dtype=st.sampled_from(DTYPES), use_sw=st.booleans(), use_idx=st.booleans(),
       n_threads=st.sampled_from(THREADS), ops=st.sampled_from(ROWOPS),
       seed=st.integers(0, 2 ** 32 - 1))
def test_binary_log_loss_blocks_hypothesis(n, d, dtype, use_sw, use_idx, n_threads, ops, seed):
    """The binary log loss runs its own loop (blocks of 4 to 16 rows, 4 rows per dot4/axpy4,
    pipelined): row counts around every block and group size, rows narrow and wide (blocks
    shrink to 4 rows past 6 KiB), a row subset in shuffled order, against the reference."""
    rng = np.random.default_rng(seed)
    X, y, sw, W, b = make_problem(rng, "log_loss", n, d, 1, dtype, False, use_sw)
    idx = rng.permutation(n)[: max(1, n - 3)].astype(np.intp) if use_idx else None
    with rowops_ctx(ops):
        out = run_loss_grad(X, y, sw, W, b, "log_loss", False, idx=idx, n_threads=n_threads)
    if idx is not None:
        X, y, sw = X[idx], y[idx], None if sw is None else sw[idx]
    ref, tol = ref_loss_grad("log_loss", X, y, sw, W, b, 1.0, False)
    assert_out(out, ref, tol, f"n={n} d={d}")


@pytest.mark.parametrize("name,K,ovr", [("log_loss", 1, False), ("log_loss", 3, True),
                                         ("multinomial", 3, False), ("modified_huber", 1, False),
                                         ("squared_hinge", 1, False)])
def test_loss_grad_extreme_scores(name, K, ovr, rng):
    # scores of several hundred: the log and softmax losses must neither overflow nor lose the
    # linear tail (log(1 + e^-p) ~ -p, gradient exactly -y)
    X, y, sw, W, b = make_problem(rng, name, 200, 10, K, np.float64, ovr, zscale=400.0)
    for strategy in (SAMPLES, WEIGHTS):
        out = run_loss_grad(X, y, sw, W, b, name, ovr, strategy=strategy)
        assert np.all(np.isfinite(out))
        ref, tol = ref_loss_grad(name, X, y, sw, W, b, 1.0, ovr, 0.0)
        assert_out(out, ref, tol, name)


def test_loss_grad_empty_X():
    for strategy in (SAMPLES, WEIGHTS):
        X = np.empty((0, 5))
        out = run_loss_grad(X, np.empty(0), None, np.ones((3, 5)), np.ones(3), "log_loss", True,
                            strategy=strategy)
        assert np.all(out == 0)


# ------------------------------------------------------------------------------------------------
# SGD epochs

def sgd_call(X, y, sw, order, V, b, state, name, ovr=False, *, eta0=0.01, alpha=0.0, l2frac=0.0,
             schedule=CONSTANT, power_t=0.5, opt_init=1.0, A=None, Ab=None, avg_start=0.0,
             fit_intercept=True, batch=1, strategy=SAMPLES, n_threads=1, need_loss=True, cw=None):
    params = S.SGDParams(loss=L.LOSS_IDS[name], ovr=ovr, epsilon=EPS.get(name, 0.0),
                         schedule=schedule, eta0=eta0, power_t=power_t, alpha=alpha,
                         opt_init=opt_init, l1frac=0.0, l2frac=l2frac, avg_start=avg_start,
                         fit_intercept=fit_intercept, batch=batch, strategy=strategy)
    return S.sgd_epoch(X, y, sw, order, V, b, state, None, A, Ab, params, n_threads,
                       need_loss=need_loss, cw=cw)


def ref_sgd(X, y, sw, order, W, b, name, ovr=False, *, eta_of_t, alpha=0.0, l2=False,
            fit_intercept=True, batch=1, t0=1.0, avg_start=None, cw=None, clip=1e12):
    """Plain numpy SGD on K x d weights: per-sample (batch 1) or mini-batch means of the gradient;
    L2 decay w *= 1 - eta alpha before the step, the step using the gradient at the old weights.
    Returns W, b, summed loss, averaged W and b."""
    X = np.asarray(X, dtype=np.float64)
    W = np.array(W, dtype=np.float64, ndmin=2)
    b = np.array(b, dtype=np.float64, ndmin=1)
    rows = np.arange(X.shape[0]) if order is None else order
    t, total = t0, 0.0
    A, Ab, cnt = np.zeros_like(W), np.zeros_like(b), 0
    for p in range(0, len(rows), batch):
        B = rows[p:p + batch]
        _, D = ref_scores_dl(name, X[B], y[B], None if sw is None else sw[B], W, b, 1.0, ovr,
                             EPS.get(name, 0.0), cw, clip=clip)
        # the epoch's loss is unweighted, as scikit-learn's SGD sums it for its stopping rule
        loss, _ = ref_scores_dl(name, X[B], y[B], None, W, b, 1.0, ovr, EPS.get(name, 0.0))
        total += loss.sum()
        eta = eta_of_t(t)
        if l2:
            W *= max(0.0, 1.0 - eta * alpha)           # a step can at most zero the weights
        W -= eta * (D.T @ X[B]) / len(B)
        if fit_intercept:
            b -= eta * D.mean(axis=0)
        if avg_start is not None and t >= avg_start:
            A += (W - A) / (cnt + 1)
            Ab += (b - Ab) / (cnt + 1)
            cnt += 1
        t += 1
    return W, b, total, A, Ab


def assert_weights(V, b, state, W, bb):
    np.testing.assert_allclose(state[0] * V, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, bb, rtol=1e-10, atol=1e-12)


def sgd_problem(rng, name, n, d, dtype, sw=False, K=1):
    """X, y (+-1 labels, real targets, or class indices when K > 1) from a noisy linear model."""
    X = rng.standard_normal((n, d)).astype(dtype)
    Wt = rng.standard_normal((K, d)) / np.sqrt(d)
    Z = X.astype(np.float64) @ Wt.T + 0.3
    if K > 1:
        y = np.argmax(Z + 0.3 * rng.standard_normal((n, K)), axis=1).astype(np.float64)
    elif name == "squared_error":
        y = Z[:, 0] + 0.1 * rng.standard_normal(n)
    else:
        y = np.where(Z[:, 0] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y, (rng.uniform(0.2, 2.0, n) if sw else None)


# one output (the C step loop of sgd_step.h: squared, log, hinge, huber) and several (the
# generic loop: one-vs-rest, multinomial)
SGD_CASES = [("squared_error", 1, False), ("log_loss", 1, False), ("hinge", 1, False),
             ("huber", 1, False), ("log_loss", 3, True), ("multinomial", 3, False)]
SGD_IDS = [f"{c[0]}-K{c[1]}" for c in SGD_CASES]


@pytest.mark.parametrize("name,K,ovr", SGD_CASES, ids=SGD_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [0.0, 0.05, 10.0, 60.0],
                         ids=["no-l2", "l2", "l2-renorm", "l2-clip"])
@pytest.mark.parametrize("order_kind", ["none", "permutation", "subset"])
def test_sgd_per_sample_matches_reference(name, K, ovr, dtype, alpha, order_kind, rowops, rng):
    # eta alpha = 0.2 per step drives the lazy scale below 1e-9 (folded into V); 1.2 clips it to 0
    l2 = alpha > 0
    n, d = 300, 21
    X, y, sw = sgd_problem(rng, name, n, d, dtype, sw=order_kind != "none", K=K)
    order = {"none": None, "permutation": rng.permutation(n),
             "subset": rng.permutation(n)[:111]}[order_kind]
    order = None if order is None else order.astype(np.intp)
    W0, b0 = rng.standard_normal((K, d)) * 0.1, rng.standard_normal(K) * 0.2
    scale0 = 1.0 if order_kind == "none" else 0.25        # a lazy scale carried in: W = scale V
    V, b, state = W0 / scale0, b0.copy(), np.array([scale0, 1.0, 0.0, 0.0])
    tot = sgd_call(X, y, sw, order, V, b, state, name, ovr, eta0=0.02, alpha=alpha,
                   l2frac=1.0 if l2 else 0.0)
    W, bb, rtot, _, _ = ref_sgd(X, y, sw, order, W0, b0, name, ovr, eta_of_t=lambda t: 0.02,
                                alpha=alpha, l2=l2)
    assert_weights(V, b, state, W, bb)
    np.testing.assert_allclose(tot, rtot, rtol=1e-10)
    assert state[1] == 1.0 + (n if order is None else len(order))
    if alpha == 0.05:
        assert state[0] < scale0                     # the decay went into the lazy scale
    elif alpha == 0:
        assert state[0] == scale0


@pytest.mark.parametrize("name", ["squared_hinge", "modified_huber", "epsilon_insensitive"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_one_output_no_intercept(name, dtype, rowops, rng):
    n, d = 250, 13
    X, y, sw = sgd_problem(rng, "squared_error" if "eps" in name else name, n, d, dtype, sw=True)
    order = rng.permutation(n).astype(np.intp)
    V, b, state = np.zeros((1, d)), np.array([0.4]), np.array([1.0, 1.0, 0.0, 0.0])
    tot = sgd_call(X, y, sw, order, V, b, state, name, eta0=0.03, alpha=0.02, l2frac=1.0,
                   fit_intercept=False)
    W, bb, rtot, _, _ = ref_sgd(X, y, sw, order, np.zeros(d), 0.4, name, eta_of_t=lambda t: 0.03,
                                alpha=0.02, l2=True, fit_intercept=False)
    assert_weights(V, b, state, W, bb)
    assert b[0] == 0.4
    np.testing.assert_allclose(tot, rtot, rtol=1e-10)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge", "log_loss"])
@pytest.mark.parametrize("strategy", [SAMPLES, WEIGHTS], ids=["samples", "weights"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_grad_ovr_class_weights(name, strategy, dtype, rowops, rng):
    # one-vs-rest class_weight as scikit-learn's SGD and liblinear weight it: problem k's
    # positive rows by cw[k], its negative rows by 1 (times the sample weights)
    n, d, K = 300, 9, 3
    X, y, sw = sgd_problem(rng, name, n, d, dtype, sw=True, K=K)
    W, b, cw = rng.standard_normal((K, d)) * 0.3, rng.standard_normal(K) * 0.2, [3.0, 0.5, 1.7]
    out = run_loss_grad(X, y, sw, W, b, name, True, strategy=strategy, n_threads=2,
                        cw=np.array(cw))
    want, tol = ref_loss_grad(name, X, y, sw, W, b, ovr=True, cw=cw)
    assert np.all(np.abs(out - want) <= tol)
    plain = run_loss_grad(X, y, sw, W, b, name, True, strategy=strategy)
    assert not np.allclose(out, plain)


@pytest.mark.parametrize("batch", [1, 16])
def test_sgd_ovr_class_weights(batch, rng):
    n, d, K, cw = 240, 10, 3, [2.5, 0.4, 1.0]
    X, y, sw = sgd_problem(rng, "hinge", n, d, np.float64, sw=True, K=K)
    order = rng.permutation(n).astype(np.intp)
    V, b, state = np.zeros((K, d)), np.zeros(K), np.array([1.0, 1.0, 0.0, 0.0])
    tot = sgd_call(X, y, sw, order, V, b, state, "hinge", True, eta0=0.05, alpha=0.01,
                   l2frac=1.0, batch=batch, cw=np.array(cw))
    W, bb, rtot, _, _ = ref_sgd(X, y, sw, order, np.zeros((K, d)), np.zeros(K), "hinge", True,
                                eta_of_t=lambda t: 0.05, alpha=0.01, l2=True, batch=batch, cw=cw)
    assert_weights(V, b, state, W, bb)
    np.testing.assert_allclose(tot, rtot, rtol=1e-10)   # unweighted, as scikit-learn sums it
    with pytest.raises(ValueError, match="needs ovr and 3 values"):
        sgd_call(X, y, sw, order, V, b, state, "hinge", True, cw=np.ones(2))
    with pytest.raises(ValueError, match="needs ovr"):
        sgd_call(X, np.where(y > 0, 1.0, -1.0), sw, order, V[:1], b[:1], state, "hinge", False,
                 cw=np.ones(1))


@pytest.mark.parametrize("batch", [1, 16])
def test_sgd_conventions_off_weights_the_loss(batch, rng):
    # LogisticRegression(solver='sgd') minimises a weighted objective: with sgd_conventions
    # off the epoch returns the weighted loss (and the same steps)
    n, d = 200, 8
    X, y, sw = sgd_problem(rng, "log_loss", n, d, np.float64, sw=True)
    V, b, state = np.zeros((1, d)), np.zeros(1), np.array([1.0, 1.0, 0.0, 0.0])
    params = S.SGDParams(loss=L.LOSS_IDS["log_loss"], schedule=CONSTANT, eta0=0.05, batch=batch,
                         strategy=SAMPLES, sgd_conventions=False)
    tot = S.sgd_epoch(X, y, sw, None, V, b, state, None, None, None, params, 1, True)
    W = np.zeros((1, d))
    bb = np.zeros(1)
    want = 0.0
    for p in range(0, n, batch):
        B = slice(p, p + batch)
        loss, D = ref_scores_dl("log_loss", X[B], y[B], sw[B], W, bb, 1.0, False, 0.0)
        want += loss.sum()
        W -= 0.05 * (D.T @ X[B]) / len(X[B])
        bb -= 0.05 * D.mean(axis=0)
    np.testing.assert_allclose(tot, want, rtol=1e-10)
    assert_weights(V, b, state, W, bb)


@pytest.mark.parametrize("K,ovr", [(1, False), (2, True)])
@pytest.mark.parametrize("batch", [1, 8])
def test_sgd_clips_dloss(K, ovr, batch, rng):
    # squared loss on targets ~1e14: d loss / d z is clipped to +-1e12 before the step, as in
    # scikit-learn (whose squared losses otherwise blow the weights up on badly scaled data)
    n, d = 40, 5
    X = rng.standard_normal((n, d))
    name = "squared_error" if K == 1 else "squared_hinge"
    y = rng.standard_normal(n) * 1e14 if K == 1 else rng.integers(0, 2, n).astype(np.float64)
    b0 = np.zeros(K) if K == 1 else np.array([3e12, -3e12])
    V, b, state = np.zeros((K, d)), b0.copy(), np.array([1.0, 1.0, 0.0, 0.0])
    sgd_call(X, y, None, None, V, b, state, name, ovr, eta0=1e-13, batch=batch)
    W, bb, _, _, _ = ref_sgd(X, y, None, None, np.zeros((K, d)), b0, name, ovr,
                             eta_of_t=lambda t: 1e-13, batch=batch)
    assert_weights(V, b, state, W, bb)
    Wu, _, _, _, _ = ref_sgd(X, y, None, None, np.zeros((K, d)), b0, name, ovr,
                             eta_of_t=lambda t: 1e-13, batch=batch, clip=None)
    assert not np.allclose(state[0] * V, Wu, rtol=1e-3)   # the clip did act


@pytest.mark.parametrize("schedule", ["optimal", "invscaling"])
def test_sgd_schedules(schedule, rng):
    n, d = 200, 9
    X, y, _ = sgd_problem(rng, "log_loss", n, d, np.float64)
    alpha, eta0, power_t, opt_init = 0.01, 0.1, 0.35, 50.0
    if schedule == "optimal":
        eta_of_t = lambda t: 1.0 / (alpha * (opt_init + t - 1.0))   # noqa: E731
    else:
        eta_of_t = lambda t: eta0 / t ** power_t                     # noqa: E731
    for t0 in (1.0, 17.0):
        for batch in (1, 8):
            V, b, state = np.zeros((1, d)), np.zeros(1), np.array([1.0, t0, 0.0, 0.0])
            sgd_call(X, y, None, None, V, b, state, "log_loss", eta0=eta0, alpha=alpha,
                     l2frac=1.0, schedule=S.SCHEDULES[schedule], power_t=power_t,
                     opt_init=opt_init, batch=batch)
            W, bb, _, _, _ = ref_sgd(X, y, None, None, np.zeros(d), 0.0, "log_loss",
                                     eta_of_t=eta_of_t, alpha=alpha, l2=True, t0=t0, batch=batch)
            assert_weights(V, b, state, W, bb)
            assert state[1] == t0 + -(-n // batch)


@pytest.mark.parametrize("batch", [1, 16])
def test_sgd_averaging_and_no_intercept(batch, rng):
    n, d, K, start = 160, 11, 3, 40.0
    X, y, _ = sgd_problem(rng, "log_loss", n, d, np.float64, K=K)
    V, b, state = np.zeros((K, d)), np.array([0.5, -0.5, 0.1]), np.array([1.0, 1.0, 0.0, 0.0])
    A, Ab = np.zeros((K, d)), np.zeros(K)
    sgd_call(X, y, None, None, V, b, state, "log_loss", True, eta0=0.03, alpha=0.01, l2frac=1.0,
             A=A, Ab=Ab, avg_start=start, fit_intercept=False, batch=batch)
    W, bb, _, Ar, Abr = ref_sgd(X, y, None, None, np.zeros((K, d)), [0.5, -0.5, 0.1], "log_loss",
                                True, eta_of_t=lambda t: 0.03, alpha=0.01, l2=True,
                                fit_intercept=False, batch=batch, avg_start=start)
    assert np.array_equal(b, [0.5, -0.5, 0.1])
    assert_weights(V, b, state, W, bb)
    np.testing.assert_allclose(A, Ar, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(Ab, Abr, rtol=1e-10, atol=1e-12)
    assert state[3] == max(0, -(-n // batch) - start + 1)


@pytest.mark.parametrize("name,K,ovr", SGD_CASES, ids=SGD_IDS)
@pytest.mark.parametrize("strategy", [SAMPLES, WEIGHTS], ids=["samples", "weights"])
@pytest.mark.parametrize("alpha", [0.0, 0.1, 25.0], ids=["no-l2", "l2", "l2-clip"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_minibatch_matches_reference(name, K, ovr, strategy, alpha, dtype, rowops, rng):
    l2 = alpha > 0
    n, d, batch = 530, 30, 64                       # last batch partial (18 rows)
    X, y, sw = sgd_problem(rng, name, n, d, dtype, sw=True, K=K)
    W0, b0 = rng.standard_normal((K, d)) * 0.1, np.full(K, -0.1)
    for order in (None, rng.permutation(n).astype(np.intp)):
        V, b, state = W0.copy(), b0.copy(), np.array([1.0, 1.0, 0.0, 0.0])
        tot = sgd_call(X, y, sw, order, V, b, state, name, ovr, eta0=0.05, alpha=alpha,
                       l2frac=1.0 if l2 else 0.0, batch=batch, strategy=strategy, n_threads=2)
        W, bb, rtot, _, _ = ref_sgd(X, y, sw, order, W0, b0, name, ovr, eta_of_t=lambda t: 0.05,
                                    alpha=alpha, l2=l2, batch=batch)
        assert_weights(V, b, state, W, bb)
        np.testing.assert_allclose(tot, rtot, rtol=1e-10)
        assert state[1] == 1.0 + -(-n // batch)


def _minibatch_runs(X, y, sw, order, K, name, ovr, batch, l2frac):
    """V, b, state and loss of one mini-batch epoch for each strategy and thread count."""
    res = {}
    for strategy in (SAMPLES, WEIGHTS):
        for t in THREADS:
            V = np.full((K, X.shape[1]), 0.01)
            b, state = np.zeros(K), np.array([1.0, 1.0, 0.0, 0.0])
            tot = sgd_call(X, y, sw, order, V, b, state, name, ovr, eta0=0.05, alpha=0.01,
                           l2frac=l2frac, batch=batch, strategy=strategy, n_threads=t)
            res[strategy, t] = (V, b, state, tot)
    return res


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["tall", "wide"])
def test_sgd_minibatch_deterministic(dtype, case, rowops, rng):
    if case == "tall":      # batch*K*d >= 131072: each batch's gradient runs in parallel
        n, d, K, batch, name, ovr = 2300, 150, 1, 1000, "log_loss", False
    else:                   # K*d >= 65536: the weight update runs in parallel too
        n, d, K, batch, name, ovr = 70, 22000, 3, 32, "log_loss", True
    X, y, sw = sgd_problem(rng, name, n, d, dtype, sw=True, K=K)
    order = rng.permutation(n).astype(np.intp)
    res = _minibatch_runs(X, y, sw, order, K, name, ovr, batch, 1.0)
    for strategy in (SAMPLES, WEIGHTS):
        V1, b1, s1, l1 = res[strategy, 1]
        for t in THREADS[1:]:
            V, b, s, tot = res[strategy, t]
            assert np.array_equal(V, V1) and np.array_equal(b, b1)
            assert np.array_equal(s, s1) and tot == l1
    (Vs, bs, ss, ls), (Vw, bw, sw_, lw) = res[SAMPLES, 1], res[WEIGHTS, 1]
    ws, ww = ss[0] * Vs, sw_[0] * Vw
    assert np.abs(ws - ww).max() <= 1e-12 * np.abs(ws).max()
    np.testing.assert_allclose(bw, bs, rtol=1e-12, atol=1e-12 * np.abs(bs).max())
    np.testing.assert_allclose(lw, ls, rtol=1e-12)
    # and both are right
    W, bb, _, _, _ = ref_sgd(X, y, sw, order, np.full((K, d), 0.01), np.zeros(K), name, ovr,
                             eta_of_t=lambda t: 0.05, alpha=0.01, l2=True, batch=batch)
    assert_weights(Vs, bs, ss, W, bb)


def _mean_loss(name, X, y, w, b):
    return ref_point(name, X.astype(np.float64) @ w + b, y, 0.0)[0].mean()


@pytest.mark.parametrize("name", ["squared_error", "log_loss"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_hogwild_learns(name, dtype, rng):
    n, d = 4000, 20
    X, y, _ = sgd_problem(rng, name, n, d, dtype)
    V, b = np.zeros((1, d)), np.zeros(1)
    state = np.array([0.5, 1.0, 0.0, 0.0])
    tot = sgd_call(X, y, None, rng.permutation(n).astype(np.intp), V, b, state, name, eta0=0.01,
                   alpha=1e-4, l2frac=1.0, strategy=HOGWILD, n_threads=2)
    assert np.isfinite(tot) and tot > 0
    assert state[1] == 1.0 + n
    w = state[0] * V[0]
    before = _mean_loss(name, X, y, np.zeros(d), 0.0)
    after = _mean_loss(name, X, y, w, b[0])
    assert np.all(np.isfinite(w)) and after < 0.6 * before
    assert tot < n * before


def test_sgd_hogwild_folds_lazy_scale(rng):
    # with eta = 0 nothing moves, so even Hogwild is deterministic: the lazy scale is folded into
    # V (state[0] becomes 1) and the loss is that of the starting weights
    n, d = 500, 13
    X, y, _ = sgd_problem(rng, "log_loss", n, d, np.float64)
    V0 = rng.standard_normal((1, d))
    V, b, state = V0.copy(), np.array([0.3]), np.array([0.5, 1.0, 0.0, 0.0])
    tot = sgd_call(X, y, None, None, V, b, state, "log_loss", eta0=0.0, alpha=0.1, l2frac=1.0,
                   strategy=HOGWILD, n_threads=2)
    assert state[0] == 1.0 and state[1] == 1.0 + n
    np.testing.assert_array_equal(V, 0.5 * V0)
    assert b[0] == 0.3
    np.testing.assert_allclose(tot, n * _mean_loss("log_loss", X, y, 0.5 * V0[0], 0.3),
                               rtol=1e-10)


def test_sgd_hogwild_one_thread_is_serial_sgd(rng):
    # Hogwild with one thread, or too few rows for its shards, is exact per-sample SGD
    n, d = 150, 12
    X, y, _ = sgd_problem(rng, "squared_error", n, d, np.float64)
    for t, rows in [(1, n), (4, 7)]:
        V, b, state = np.zeros((1, d)), np.zeros(1), np.array([1.0, 1.0, 0.0, 0.0])
        sgd_call(X[:rows], y[:rows], None, None, V, b, state, "squared_error", eta0=0.02,
                 strategy=HOGWILD, n_threads=t, batch=8)
        W, bb, _, _, _ = ref_sgd(X[:rows], y[:rows], None, None, np.zeros(d), 0.0,
                                 "squared_error", eta_of_t=lambda t: 0.02)
        assert_weights(V, b, state, W, bb)


@pytest.mark.parametrize("name,K,ovr", SGD_CASES, ids=SGD_IDS)
@pytest.mark.parametrize("batch,strategy,n_threads", [(1, SAMPLES, 1), (16, SAMPLES, 2),
                                                      (16, WEIGHTS, 2), (1, HOGWILD, 2)],
                         ids=["per-sample", "mb-samples", "mb-weights", "hogwild"])
def test_sgd_need_loss_false(name, K, ovr, batch, strategy, n_threads, rng):
    # need_loss=False skips only the log loss's value: same steps, and the epoch loss sums the
    # other losses as before (the log loss contributes 0)
    n, d = 200, 15
    X, y, sw = sgd_problem(rng, name, n, d, np.float64, sw=True, K=K)
    order = rng.permutation(n).astype(np.intp)
    eta0 = 0.0 if strategy == HOGWILD else 0.05      # Hogwild is deterministic only when still
    res = []
    for need in (True, False):
        V, b, state = np.full((K, d), 0.05), np.full(K, 0.1), np.array([1.0, 1.0, 0.0, 0.0])
        tot = sgd_call(X, y, sw, order, V, b, state, name, ovr, eta0=eta0, alpha=0.01,
                       l2frac=1.0, batch=batch, strategy=strategy, n_threads=n_threads,
                       need_loss=need)
        res.append((V, b, state, tot))
    (V1, b1, s1, l1), (V2, b2, s2, l2) = res
    assert np.array_equal(V1, V2) and np.array_equal(b1, b2) and np.array_equal(s1, s2)
    _, _, rtot, _, _ = ref_sgd(X, y, sw, order, np.full((K, d), 0.05), np.full(K, 0.1), name, ovr,
                               eta_of_t=lambda t: eta0, alpha=0.01, l2=True, batch=batch)
    np.testing.assert_allclose(l1, rtot, rtol=1e-10)
    if name == "log_loss":
        assert l2 == 0.0
    else:
        assert l2 == l1


def test_sgd_empty_epoch():
    V, b, state = np.ones((1, 3)), np.ones(1), np.array([1.0, 5.0, 0.0, 0.0])
    tot = sgd_call(np.empty((0, 3)), np.empty(0), None, None, V, b, state, "log_loss", batch=4)
    assert tot == 0.0 and np.all(V == 1) and b[0] == 1 and state[1] == 5.0


# ------------------------------------------------------------------------------------------------
# decision, col_sums, all_finite, gram

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
def test_decision(dtype, n_threads, rowops, rng):
    for n, d, K in [(1, 1, 1), (37, 13, 3), (100, 40, 1), (3000, 50, 4), (5, 100, 2)]:
        X = rng.standard_normal((n, d)).astype(dtype)
        W, b = rng.standard_normal((K, d)), rng.standard_normal(K)
        Z = np.full((n, K), np.nan)
        L.decision(X, W, b, Z, n_threads)
        ref = X.astype(np.float64) @ W.T + b
        bound = np.abs(X.astype(np.float64)) @ np.abs(W.T) + np.abs(b)
        assert np.all(np.abs(Z - ref) <= 1e-13 * bound + 1e-300), (n, d, K)
        if n_threads == 1:
            Z2 = np.full((n, K), np.nan)
            L.decision(X, W, b, Z2, 4)
            assert np.array_equal(Z, Z2)
    Z = np.full((0, 2), np.nan)
    L.decision(np.empty((0, 3), dtype), np.ones((2, 3)), np.ones(2), Z, n_threads)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("use_sw", [False, True])
def test_col_sums(dtype, n_threads, use_sw, rowops, rng):
    for n, d in [(1, 1), (17, 9), (300, 33), (5000, 40), (40, 1000)]:
        X = rng.standard_normal((n, d)).astype(dtype)
        sw = rng.uniform(0, 3, n) if use_sw else None
        out = np.full(d, np.nan)
        L.col_sums(X, sw, out, n_threads)
        X64 = X.astype(np.float64)
        w = sw if use_sw else np.ones(n)
        ref = w @ X64
        bound = w @ np.abs(X64)
        assert np.all(np.abs(out - ref) <= 1e-12 * bound + 1e-300), (n, d)
        out2 = np.full(d, np.nan)
        L.col_sums(X, sw, out2, 1)
        assert np.array_equal(out, out2)
    out = np.full(4, np.nan)
    L.col_sums(np.empty((0, 4), dtype), None, out, n_threads)
    assert np.all(out == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite(dtype, bad, rowops, rng):
    for d in [1, 2, 5, 7, 8, 9, 13, 16, 17, 31, 32, 33, 37, 63, 64, 65, 100]:
        n = 5
        X = rng.standard_normal((n, d)).astype(dtype)
        X[1, 0] = np.finfo(dtype).max              # huge but finite
        assert L.all_finite(X, 1) is True
        for pos in (0, n * d - 1, (n * d) // 2, d - 1, (n - 1) * d, 2 * d + d // 2):
            Y = X.copy()
            Y.flat[pos] = bad
            assert L.all_finite(Y, 2) is False, (d, pos)
    # parallel shape (n*d >= 131072): bad value in the very last element, and in a middle row
    X = rng.standard_normal((3000, 77)).astype(dtype)
    for t in THREADS:
        assert L.all_finite(X, t) is True
    for pos in (X.size - 1, 0, X.size // 2 + 3):
        Y = X.copy()
        Y.flat[pos] = bad
        for t in THREADS:
            assert L.all_finite(Y, t) is False
    assert L.all_finite(np.empty((0, 3), dtype), 2) is True
    assert L.all_finite(np.empty((3, 0), dtype), 2) is True


def ref_gram(X, Y, sw, mu):
    Z = np.asarray(X, dtype=np.float64)
    if Y is not None:
        Z = np.hstack([Z, Y])
    Z = Z - mu
    if sw is not None:
        Z = Z * np.sqrt(sw)[:, None]
    return Z.T @ Z, np.abs(Z).T @ np.abs(Z)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("shape", [(5, 3, 0), (300, 30, 2), (3000, 100, 1), (1000, 381, 3),
                                   (50, 400, 0), (300, 398, 2)],
                         ids=["tiny", "narrow", "narrow-split", "narrow-edge", "wide", "wide-2blk"])
def test_gram(dtype, n_threads, shape, rng):
    n, d, T = shape
    X = rng.standard_normal((n, d)).astype(dtype) + 1.5
    Y = rng.standard_normal((n, T)) * 3.0 if T else None
    for use_sw in (False, True):
        sw = rng.uniform(0, 2, n) if use_sw else None
        mu = rng.standard_normal(d + T)
        G0 = rng.standard_normal((d + T, d + T))
        G = G0.copy()
        L.gram(X, Y, sw, mu, G, n_threads)
        ref, bound = ref_gram(X, Y, sw, mu)
        assert np.all(np.abs(G - G0 - ref) <= 1e-12 * bound + 1e-14 * np.abs(G0)), (shape, use_sw)
        G1 = G0.copy()
        L.gram(X, Y, sw, mu, G1, 1)
        assert np.array_equal(G, G1)
    G = np.zeros((d + T, d + T))
    L.gram(np.empty((0, d), dtype), None if T == 0 else np.empty((0, T)), None, np.zeros(d + T),
           G, n_threads)
    assert np.all(G == 0)


@pytest.mark.parametrize("strategy", ["samples", "weights"])
def test_zero_features_do_not_crash(strategy):
    """d = 0 once divided by a zero block width (SIGFPE); now only the intercepts learn."""
    y = np.array([1.0, 2.0, 3.0])
    out = np.empty(3)
    loss = L.loss_grad(np.empty((3, 0)), y, None, np.empty((2, 0)), np.zeros(2), 1.0,
                       L.LOSS_IDS["squared_error"], True, 0.0, None, L.STRATEGIES[strategy], out, 1)
    assert np.isfinite(loss)
    V, b, st = np.empty((1, 0)), np.zeros(1), np.array([1.0, 1.0, 0.0, 0.0])
    params = S.SGDParams(loss=L.LOSS_IDS["squared_error"], schedule=S.SCHEDULES["constant"],
                         eta0=0.1, power_t=0.5, batch=4, strategy=L.STRATEGIES[strategy])
    S.sgd_epoch(np.empty((10, 0)), np.full(10, 2.0), None, None, V, b, st, None, None, None,
                params, 1)
    assert 0.0 < b[0] <= 2.0   # the intercept moved toward the target


# ------------------------------------------------------------------------------------------------
# ids from the headers, and the checks before native code runs

# the Python loss names and the header's names for them (PARML_L_<name>)
LOSS_HEADER_NAMES = {"squared_error": "SQUARED", "log_loss": "LOG", "hinge": "HINGE",
                     "squared_hinge": "SQHINGE", "modified_huber": "MODHUBER",
                     "perceptron": "PERCEPTRON", "huber": "HUBER", "epsilon_insensitive": "EPSINS",
                     "squared_epsilon_insensitive": "SQEPSINS", "multinomial": "MULTINOMIAL"}


def header_enum(path, prefix):
    """{name: value} of the C enum in the header `path` whose names start with `prefix`
    (explicit values or C's implicit count from the previous one)."""
    with open(path) as f:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", f.read(), flags=re.S)
    bodies = [b for b in re.findall(r"enum\s*\{(.*?)\}", text, re.S) if prefix in b]
    assert len(bodies) == 1, f"{path}: {len(bodies)} enums with {prefix} names"
    out, value = {}, 0
    for item in filter(None, (x.strip() for x in bodies[0].split(","))):
        name, _, given = item.partition("=")
        value = int(given.strip(), 0) if given.strip() else value
        out[name.strip()] = value
        value += 1
    return out


def test_loss_ids_are_the_headers_enum():
    enum = header_enum(os.path.join(get_include(), "parml", "losses.h"), "PARML_L_")
    losses = {k: v for k, v in enum.items() if k.startswith("PARML_L_")}
    assert enum["PARML_N_LOSSES"] == len(losses) == L.N_LOSSES == len(set(losses.values()))
    # every Python name is one header loss with the header's id, and every header loss has one
    assert len(set(L.LOSS_IDS.values())) == len(L.LOSS_IDS)
    assert {"PARML_L_" + LOSS_HEADER_NAMES[k]: v for k, v in L.LOSS_IDS.items()} == losses


def test_schedule_and_strategy_ids_are_the_headers():
    here = get_include()
    sch = header_enum(os.path.join(here, "parml", "sgd_step.h"), "PARML_SCH_")
    assert {k: v for k, v in S.SCHEDULES.items() if k != "adaptive"} == {
        "constant": sch["PARML_SCH_CONSTANT"], "optimal": sch["PARML_SCH_OPTIMAL"],
        "invscaling": sch["PARML_SCH_INVSCALING"]}
    assert S.SCHEDULES["adaptive"] == sch["PARML_SCH_CONSTANT"]   # (the driver divides eta0)
    strat = header_enum(os.path.join(here, "parml", "linear_grad.h"), "PARML_LIN_SAMPLES")
    assert L.STRATEGIES == {"samples": strat["PARML_LIN_SAMPLES"],
                            "weights": strat["PARML_LIN_WEIGHTS"],
                            "hogwild": strat["PARML_LIN_HOGWILD"]}


@pytest.mark.parametrize("kw, err, match", [
    (dict(), TypeError, "loss"),
    (dict(loss=L.N_LOSSES), ValueError, "loss must be one of"),
    (dict(loss=-1), ValueError, "loss must be one of"),
    (dict(loss="log_loss"), TypeError, "loss must be an integer"),
    (dict(loss=1.0), TypeError, "loss must be an integer"),
    (dict(ovr=2), TypeError, "ovr must be a bool"),
    (dict(epsilon=-0.1), ValueError, "epsilon must be a finite number >= 0"),
    (dict(schedule=3), ValueError, "schedule must be one of"),
    (dict(eta0=-1e-3), ValueError, "eta0"),
    (dict(eta0=np.inf), ValueError, "eta0"),
    (dict(eta0="0.1"), TypeError, "eta0 must be a real number"),
    (dict(power_t=np.nan), ValueError, "power_t must be a finite number"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(opt_init=np.inf), ValueError, "opt_init"),
    (dict(l1frac=1.5), ValueError, r"l1frac must be a finite number in \[0, 1\]"),
    (dict(l2frac=-0.5), ValueError, "l2frac"),
    (dict(avg_start=-1.0), ValueError, "avg_start"),
    (dict(fit_intercept=None), TypeError, "fit_intercept must be a bool"),
    (dict(batch=0), ValueError, "batch must be >= 1"),
    (dict(batch=2.0), TypeError, "batch must be an integer"),
    (dict(batch=True), TypeError, "batch must be an integer"),
    (dict(strategy=3), ValueError, "strategy must be one of"),
    (dict(sgd_conventions="yes"), TypeError, "sgd_conventions must be a bool"),
])
def test_sgd_params_reject_bad_values(kw, err, match):
    args = dict(loss=L.LOSS_IDS["hinge"])
    args.update(kw)
    if not kw:
        del args["loss"]
    with pytest.raises(err, match=match):
        S.SGDParams(**args)


def test_sgd_params_read_only_and_pickled():
    p = S.SGDParams(loss=L.LOSS_IDS["huber"], ovr=np.False_, epsilon=1.5,
                    schedule=S.SCHEDULES["optimal"], eta0=0.2, power_t=0.3, alpha=1e-3,
                    opt_init=7.0, l1frac=0.25, l2frac=0.75, avg_start=10.0, fit_intercept=False, batch=np.int64(16),
                    strategy=L.STRATEGIES["weights"], sgd_conventions=False)
    assert (p.loss, p.epsilon, p.batch, p.strategy, p.fit_intercept) == \
        (L.LOSS_IDS["huber"], 1.5, 16, L.STRATEGIES["weights"], False)
    with pytest.raises(AttributeError):
        p.eta0 = 1.0
    q = pickle.loads(pickle.dumps(p))
    assert repr(q) == repr(p)
    for k in range(L.N_LOSSES):                   # every header loss is accepted
        assert S.SGDParams(loss=k).loss == k


def test_sgd_epoch_checks_its_arguments(rng):
    n, d, K = 20, 4, 2
    X, y = rng.standard_normal((n, d)), rng.integers(0, K, n).astype(np.float64)
    params = S.SGDParams(loss=L.LOSS_IDS["hinge"], ovr=True)

    def call(**kw):
        a = dict(X=X, y=y, sw=None, order=None, V=np.zeros((K, d)), b=np.zeros(K),
                 state=np.array([1.0, 1.0, 0.0, 0.0]), Q=None, A=None, Ab=None, params=params,
                 n_threads=1)
        a.update(kw)
        return S.sgd_epoch(a.pop("X"), a.pop("y"), a.pop("sw"), a.pop("order"), a.pop("V"),
                           a.pop("b"), a.pop("state"), a.pop("Q"), a.pop("A"), a.pop("Ab"),
                           a.pop("params"), a.pop("n_threads"), **a)

    call()
    bad = [(dict(y=y[:5]), ValueError, "y has 5 values for the 20 rows"),
           (dict(sw=np.ones(3)), ValueError, "sw has 3 values"),
           (dict(V=np.zeros((K, d + 1))), ValueError, "V has 5 columns for the 4 features"),
           (dict(V=np.zeros((0, d)), b=np.zeros(0)), ValueError, "at least one row"),
           (dict(b=np.zeros(K + 1)), ValueError, "b has 3 values"),
           (dict(state=np.ones(3)), ValueError, "state must hold 4 values"),
           (dict(Q=np.zeros((K, d - 1))), ValueError, "Q must be 2 x 4"),
           (dict(A=np.zeros((K, d)), Ab=None), ValueError, "A and Ab"),
           (dict(A=np.zeros((K, d)), Ab=np.zeros(K + 2)), ValueError, "Ab has 4 values"),
           (dict(A=np.zeros((K + 1, d)), Ab=np.zeros(K)), ValueError, "A must be 2 x 4"),
           (dict(n_threads=0), ValueError, "n_threads must be >= 1"),
           (dict(cw=np.ones(K + 1)), ValueError, "needs ovr and 2 values"),
           (dict(params=None), TypeError, "params"),
           (dict(params={"loss": 1}), TypeError, "params"),
           (dict(y=None), TypeError, "y"),
           (dict(_pipe_test_mode=5), ValueError, "_pipe_test_mode must be 0 to 4"),
           (dict(_pipe_min_bytes=-1), ValueError, "_pipe_min_bytes must be >= 0")]
    for kw, err, match in bad:
        with pytest.raises(err, match=match):
            call(**kw)
