"""parml._kernels._mlp against the float64 numpy reference in mlp_naive.py (scikit-learn's
formulas): the element-wise pieces (bias + activation, activation derivative, loss + output
delta), the loss and gradient of optimizer="none", central finite differences, Adam and SGD
epochs over shuffled row orders, bitwise thread-count independence, inference, row subsets,
divergence handling, input validation and the thread tuner, each with every GEMM kernel this CPU
supports.

The only comparisons of the kernel with itself are the thread-identity tests."""
import os
import pickle
import sys

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp_naive import (  # noqa: E402
    AdamNaive, SGDNaive, act_grad_naive, act_naive, epoch_naive, forward_naive, loss_grad_naive,
    loss_rows_naive)

import parml
from parml._kernels import _gemm, _kernel_sets  # noqa: E402
from parml._kernels import _mlp  # noqa: E402
from parml._kernels._tuner import Tuner  # noqa: E402

DTYPES = [np.float32, np.float64]
THREADS = [1, 2, 4]
HIDDEN = ["identity", "relu", "tanh", "logistic"]
OUTPUTS = ["softmax", "logistic", "identity", "exp"]
KERNEL_IDS = list(parml.supported_kernel_sets())        # every kernel set this CPU supports
KERNELS = [_gemm.KERNEL_NAMES.index(name) for name in KERNEL_IDS]
# relative tolerance (scaled by the largest reference entry) of gradients / parameters
# (float32 worst cases seen over thousands of random networks: gradients 7e-6, epoch parameters
# 2.3e-7, optimiser moments 6.6e-6, losses 1.5e-7)
GTOL = {np.float64: 1e-10, np.float32: 5e-5}
# ... of parameters and optimiser moments after an epoch
PTOL = {np.float64: 1e-11, np.float32: 1e-5}
MTOL = {np.float64: 1e-11, np.float32: 5e-5}
# relative tolerance of a loss (always accumulated in double by the kernel)
LTOL = {np.float64: 1e-11, np.float32: 3e-6}

kernels = pytest.mark.parametrize("kid", KERNELS, ids=KERNEL_IDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])


# ------------------------------------------------------------------------------------------------
# helpers

def make_net(rng, units, dtype, scale=1.0):
    """scikit-learn's Glorot-uniform initialisation (times scale), C-contiguous, in dtype."""
    coefs, intercepts = [], []
    for a, b in zip(units[:-1], units[1:]):
        s = scale * np.sqrt(6.0 / (a + b))
        coefs.append(rng.uniform(-s, s, (a, b)).astype(dtype))
        intercepts.append(rng.uniform(-s, s, b).astype(dtype))
    return coefs, intercepts


def make_targets(rng, n, k, output, dtype):
    if output == "softmax":
        Y = np.eye(k)[rng.integers(0, k, n)]
    elif output == "logistic":
        Y = rng.random((n, k)) < 0.5
    elif output == "exp":
        Y = rng.poisson(1.5, (n, k))
    else:
        Y = rng.standard_normal((n, k))
    return np.ascontiguousarray(Y, dtype=dtype)


def make_data(rng, n, units, output, dtype):
    X = rng.standard_normal((n, units[0])).astype(dtype)
    return X, make_targets(rng, n, units[-1], output, dtype)


def copies(arrays, dtype=None):
    return [np.array(a, dtype=dtype if dtype is not None else a.dtype, copy=True) for a in arrays]


def zero_moments(coefs, intercepts):
    return [[np.zeros_like(c) for c in coefs], [np.zeros_like(b) for b in intercepts],
            [np.zeros_like(c) for c in coefs], [np.zeros_like(b) for b in intercepts]]


def assert_close(actual, desired, rtol, what=""):
    """|actual - desired| <= rtol * (|desired| + max |desired|): relative to the array's scale."""
    desired = np.asarray(desired, dtype=np.float64)
    scale = float(np.abs(desired).max(initial=0.0))
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), desired, rtol=rtol,
                               atol=rtol * max(scale, 1e-300), err_msg=what)


def assert_list_close(actual, desired, rtol, what):
    assert len(actual) == len(desired)
    for l, (a, d) in enumerate(zip(actual, desired)):
        assert a.shape == d.shape, (what, l)
        assert_close(a, d, rtol, f"{what}[{l}]")


def tuner(n_threads):
    return Tuner(n_threads, "batches", adapt=False)


def kernel_grads(coefs, intercepts, X, Y, sw, hidden, output, alpha=0.0, n_threads=1, kid=0):
    """(loss, coef grads, intercept grads) from one optimizer="none" batch over all rows; checks
    that nothing was updated."""
    c, b = copies(coefs), copies(intercepts)
    rc, loss_sum, done, t, (gW, gb) = _mlp.train_epoch(
        c, b, X, Y, sw, None, len(X), hidden=hidden, output=output, optimizer="none",
        alpha=alpha, tuner=tuner(n_threads), kernel_id=kid, return_grads=True)
    assert rc == 0 and done == len(X) and t == 0
    for new, old in zip(c + b, coefs + intercepts):
        assert np.array_equal(new, old), "optimizer='none' changed the parameters"
    return loss_sum / done, gW, gb


# ------------------------------------------------------------------------------------------------
# 1. element-wise pieces

@dtypes
@kernels
@pytest.mark.parametrize("act", HIDDEN + ["softmax", "exp"])
def test_bias_act(rng, dtype, kid, act):
    """Each kernel set's variant against the float64 reference, and bitwise equal to the generic
    set's (the variants differ in vector width only). 37 columns: whole vectors and a tail."""
    Z = (3 * rng.standard_normal((9, 37))).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    want = act_naive(Z.astype(np.float64) + b.astype(np.float64), act)
    generic = Z.copy()
    _mlp.bias_act(generic, b, act, kernel_id=KERNELS[0])
    _mlp.bias_act(Z, b, act, kernel_id=kid)
    assert Z.dtype == dtype
    assert_close(Z, want, 1e-13 if dtype == np.float64 else 2e-6, act)
    np.testing.assert_array_equal(Z, generic)
    if act == "softmax":
        assert_close(Z.sum(axis=1), np.ones(9), 1e-13 if dtype == np.float64 else 1e-6)


@dtypes
def test_bias_act_softmax_huge_logits(dtype):
    big = 1e300 if dtype == np.float64 else 1e37
    Z = np.array([[1000.0, 999.0, -1000.0],
                  [big, 0.0, -big],
                  [-1e4, -1e4 - 1, -1e4 - 2],
                  [88.0, 89.0, 90.0]], dtype=dtype)
    b = np.array([0.0, 0.0, 0.0], dtype=dtype)
    Z0 = Z.astype(np.float64)
    with np.errstate(over="raise", invalid="raise", under="ignore"):
        want = np.exp(Z0 - Z0.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    _mlp.bias_act(Z, b, "softmax")
    assert np.all(np.isfinite(Z))
    assert_close(Z, want, 1e-15 if dtype == np.float64 else 1e-7)
    # the bias takes part in the maximum: huge logits arriving through b
    Z = np.zeros((2, 3), dtype=dtype)
    b = np.array([500.0, 1000.0, 999.0], dtype=dtype)
    _mlp.bias_act(Z, b, "softmax")
    want = act_naive(b.astype(np.float64)[None, :].repeat(2, 0), "softmax")
    assert np.all(np.isfinite(Z))
    assert_close(Z, want, 1e-15 if dtype == np.float64 else 1e-7)


@dtypes
def test_bias_act_saturation(dtype):
    """logistic and tanh saturate to exactly 0 / 1 / -1 without NaN; relu(0) = 0."""
    Z = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]], dtype=dtype)
    b = np.zeros(5, dtype=dtype)
    L = Z.copy()
    _mlp.bias_act(L, b, "logistic")
    assert L[0, 0] == 0 and L[0, -1] == 1 and L[0, 2] == 0.5
    assert np.all((L >= 0) & (L <= 1))
    T = Z.copy()
    _mlp.bias_act(T, b, "tanh")
    np.testing.assert_array_equal(T, [[-1, -1, 0, 1, 1]])
    R = Z.copy()
    _mlp.bias_act(R, b, "relu")
    np.testing.assert_array_equal(R, [[0, 0, 0, 800, 1e4]])


@dtypes
@kernels
@pytest.mark.parametrize("act", HIDDEN)
def test_act_grad(rng, dtype, kid, act):
    Z = rng.standard_normal((8, 7))
    Z[0, :2] = 0.0                      # relu's kink: derivative 0 at a == 0
    A = act_naive(Z, act).astype(dtype)
    D = rng.standard_normal((8, 7)).astype(dtype)
    want = D.astype(np.float64) * act_grad_naive(A.astype(np.float64), act)
    generic = D.copy()
    _mlp.act_grad(generic, A, act, kernel_id=KERNELS[0])
    _mlp.act_grad(D, A, act, kernel_id=kid)
    assert_close(D, want, 1e-15 if dtype == np.float64 else 1e-7, act)
    np.testing.assert_array_equal(D, generic)


def _probs(rng, n, k, output):
    if output == "softmax":
        return act_naive(rng.standard_normal((n, k)), "softmax")
    if output == "logistic":
        return act_naive(rng.standard_normal((n, k)), "logistic")
    if output == "exp":
        return np.exp(rng.standard_normal((n, k)))
    return rng.standard_normal((n, k))


@dtypes
@pytest.mark.parametrize("output", OUTPUTS)
def test_loss_delta(rng, dtype, output):
    n, k = 11, 4
    P = _probs(rng, n, k, output).astype(dtype)
    Y = make_targets(rng, n, k, output, dtype)
    if output in ("softmax", "logistic"):
        Y[0] = 0.25                     # soft labels use both branches of the log loss
    w = rng.uniform(0.1, 3.0, n).astype(dtype)
    want_loss = loss_rows_naive(P, Y, output) * w.astype(np.float64)
    want_delta = (P.astype(np.float64) - Y) * w[:, None]
    got = _mlp.loss_delta(P, Y, w, output)
    assert got.dtype == np.float64 and got.shape == (n,)
    assert_close(got, want_loss, 1e-14 if dtype == np.float64 else 1e-6, "loss")
    assert_close(P, want_delta, 1e-15 if dtype == np.float64 else 1e-6, "delta")


@dtypes
def test_loss_delta_clips_probabilities(dtype):
    """Probabilities 0 and 1 are clipped to [eps, 1 - eps] of the dtype, as scikit-learn does."""
    eps = np.finfo(dtype).eps
    # softmax: certain and wrong -> -log(eps); certain and right -> -log(1 - eps)
    P = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)
    Y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=dtype)
    got = _mlp.loss_delta(P.copy(), Y, np.ones(2, dtype), "softmax")
    np.testing.assert_allclose(got, [-np.log(float(eps)), -np.log1p(-float(eps))], rtol=1e-14)
    np.testing.assert_allclose(got, loss_rows_naive(P, Y, "softmax"), rtol=1e-14)
    assert np.all(np.isfinite(got))
    # logistic: both wrong at 0 and 1 -> 2 (-log eps); both right -> 2 (-log(1 - eps))
    P = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=dtype)
    w = np.array([2.0, 1.0], dtype=dtype)
    got = _mlp.loss_delta(P.copy(), Y, w, "logistic")
    np.testing.assert_allclose(got, [2 * 2 * -np.log(float(eps)), 2 * -np.log1p(-float(eps))],
                               rtol=1e-12)
    np.testing.assert_allclose(got, loss_rows_naive(P, Y, "logistic") * w, rtol=1e-14)


@dtypes
def test_loss_delta_poisson_zero_counts(dtype):
    """Poisson with y = 0: the loss is just p (0 log 0 taken as 0), the delta p - y."""
    P = np.array([[0.5, 2.0, 1e-30], [3.0, 0.25, 1.0]], dtype=dtype)
    Y = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 1.0]], dtype=dtype)
    w = np.array([1.0, 0.5], dtype=dtype)
    want = np.array([0.5 + 2.0 + float(dtype(1e-30)),
                     2 * np.log(2 / 3) - 2 + 3 + 0.25 + 0.0]) * [1.0, 0.5]
    P0 = P.astype(np.float64)
    got = _mlp.loss_delta(P, Y, w, "exp")
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_allclose(got, loss_rows_naive(P0, Y, "exp") * w, rtol=1e-14)
    np.testing.assert_allclose(P, (P0 - Y) * w[:, None], rtol=1e-7)


def test_squared_loss_averages_over_outputs():
    P = np.array([[1.0, 2.0, 3.0]])
    Y = np.array([[0.0, 0.0, 0.0]])
    got = _mlp.loss_delta(P.copy(), Y, np.ones(1), "identity")
    np.testing.assert_allclose(got, [(1 + 4 + 9) / (2 * 3)], rtol=1e-15)


def test_elementwise_bad_shapes():
    Z = np.zeros((3, 4))
    with pytest.raises(ValueError):
        _mlp.bias_act(Z, np.zeros(3), "relu")
    with pytest.raises(ValueError):
        _mlp.bias_act(np.zeros((3, 8))[:, ::2], np.zeros(4), "relu")
    with pytest.raises((ValueError, TypeError)):
        _mlp.bias_act(Z, np.zeros(4, np.float32), "relu")
    with pytest.raises(ValueError):
        _mlp.act_grad(Z, np.zeros((3, 5)), "tanh")
    with pytest.raises(ValueError):
        _mlp.loss_delta(Z, np.zeros((3, 4)), np.ones(2), "softmax")
    with pytest.raises(ValueError):
        _mlp.loss_delta(Z, np.zeros((2, 4)), np.ones(3), "softmax")
    # empty inputs are no-ops
    _mlp.bias_act(np.zeros((0, 4)), np.zeros(4), "softmax")
    assert _mlp.loss_delta(np.zeros((0, 3)), np.zeros((0, 3)), np.ones(0), "softmax").shape == (0,)


# ------------------------------------------------------------------------------------------------
# 2. loss and gradient (optimizer="none") against the reference and finite differences

@dtypes
@kernels
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_loss_grad_vs_naive(rng, dtype, kid, hidden, output):
    units = [6, 9, 7, 4]
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, 57, units, output, dtype)
    sw = rng.uniform(0.2, 2.0, len(X)).astype(dtype)
    for weights in (None, sw):
        want_loss, want_gW, want_gb = loss_grad_naive(coefs, intercepts, X, Y, weights, hidden,
                                                      output, 1e-2)
        for nt in THREADS:
            loss, gW, gb = kernel_grads(coefs, intercepts, X, Y, weights, hidden, output,
                                        alpha=1e-2, n_threads=nt, kid=kid)
            what = f"weights={weights is not None} threads={nt}"
            assert abs(loss - want_loss) <= LTOL[dtype] * abs(want_loss), what
            assert_list_close(gW, want_gW, GTOL[dtype], "coef grad " + what)
            assert_list_close(gb, want_gb, GTOL[dtype], "intercept grad " + what)
            assert all(g.dtype == dtype for g in gW + gb)


@dtypes
@kernels
def test_loss_grad_no_hidden_layer(rng, dtype, kid):
    """One weight matrix (a generalised linear model)."""
    coefs, intercepts = make_net(rng, [5, 3], dtype)
    X, Y = make_data(rng, 40, [5, 3], "softmax", dtype)
    want_loss, want_gW, want_gb = loss_grad_naive(coefs, intercepts, X, Y, None, "relu",
                                                  "softmax", 0.1)
    loss, gW, gb = kernel_grads(coefs, intercepts, X, Y, None, "relu", "softmax", 0.1, 2, kid)
    assert abs(loss - want_loss) <= LTOL[dtype] * abs(want_loss)
    assert_list_close(gW, want_gW, GTOL[dtype], "gW")
    assert_list_close(gb, want_gb, GTOL[dtype], "gb")


def test_loss_grad_matches_scikit_learn_backprop(rng):
    """The reference itself against scikit-learn's private _backprop (float64, one config per
    output), so that mlp_naive is not the only witness of 'scikit-learn's formulas'."""
    mlp = pytest.importorskip("sklearn.neural_network._multilayer_perceptron")
    units = [5, 8, 6, 3]
    for hidden, output, loss_name, cls in [("relu", "softmax", "log_loss", mlp.MLPClassifier),
                                           ("tanh", "logistic", "log_loss", mlp.MLPClassifier),
                                           ("logistic", "identity", "squared_error",
                                            mlp.MLPRegressor),
                                           ("relu", "exp", "poisson", mlp.MLPRegressor)]:
        coefs, intercepts = make_net(rng, units, np.float64)
        X, Y = make_data(rng, 30, units, output, np.float64)
        sw = rng.uniform(0.5, 2.0, 30)
        est = cls(hidden_layer_sizes=units[1:-1], activation=hidden, alpha=0.03)
        if loss_name != "log_loss":
            try:
                est.set_params(loss=loss_name)
            except ValueError:
                pytest.skip("this scikit-learn has no loss=" + loss_name)
        est.coefs_, est.intercepts_ = copies(coefs), copies(intercepts)
        est.n_layers_, est.out_activation_ = len(units), output
        est.loss = loss_name
        acts = [X] + [None] * (len(units) - 1)
        deltas = [None] * (len(units) - 1)
        try:
            sk_loss, sk_gW, sk_gb = est._backprop(
                X, Y, sw, acts, deltas, [np.empty_like(c) for c in coefs],
                [np.empty_like(b) for b in intercepts])
        except (TypeError, AttributeError, KeyError) as e:  # private API moved
            pytest.skip(f"scikit-learn's _backprop not usable here: {e}")
        loss, gW, gb = kernel_grads(coefs, intercepts, X, Y, sw, hidden, output, 0.03)
        assert abs(loss - sk_loss) <= 1e-11 * abs(sk_loss), output
        assert_list_close(gW, sk_gW, 1e-10, output + " gW")
        assert_list_close(gb, sk_gb, 1e-10, output + " gb")


def _fd_grads(coefs, intercepts, X, Y, sw, hidden, output, alpha, h=1e-6):
    """Central differences of the reference loss (float64)."""
    params = copies(coefs, np.float64) + copies(intercepts, np.float64)
    L = len(coefs)
    out = [np.empty_like(p) for p in params]
    for p, g in zip(params, out):
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = loss_grad_naive(params[:L], params[L:], X, Y, sw, hidden, output, alpha)[0]
            p[i] = old - h
            down = loss_grad_naive(params[:L], params[L:], X, Y, sw, hidden, output, alpha)[0]
            p[i] = old
            g[i] = (up - down) / (2 * h)
    return out[:L], out[L:]


FD_NETS = {1: [4, 5, 3], 2: [3, 4, 5, 3], 3: [3, 4, 3, 4, 3]}


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("hidden,output", [("tanh", "softmax"), ("logistic", "logistic"),
                                           ("relu", "exp"), ("identity", "identity"),
                                           ("tanh", "identity")])
def test_grad_vs_finite_differences(rng, depth, hidden, output):
    """float64 gradients against central differences of the loss. scikit-learn's squared loss
    averages over outputs, but its output delta (p - y) does not divide by n_outputs, so for the
    identity output the gradient is that of the loss only with a single output: those cases use
    one output (see test_squared_loss_gradient_convention)."""
    units = list(FD_NETS[depth])
    if output == "identity":
        units[-1] = 1
    coefs, intercepts = make_net(rng, units, np.float64)
    X, Y = make_data(rng, 13, units, output, np.float64)
    sw = rng.uniform(0.5, 2.0, len(X))
    if hidden == "relu":  # keep pre-activations away from the kink
        for z in forward_naive(coefs, intercepts, X, "identity", "identity")[1:-1]:
            assert np.abs(z).min() > 1e-4
    _, gW, gb = kernel_grads(coefs, intercepts, X, Y, sw, hidden, output, alpha=0.05)
    fW, fb = _fd_grads(coefs, intercepts, X, Y, sw, hidden, output, 0.05)
    assert_list_close(gW, fW, 1e-6, "coef grad vs finite differences")
    assert_list_close(gb, fb, 1e-6, "intercept grad vs finite differences")


def test_squared_loss_gradient_convention(rng):
    """With k > 1 identity outputs and alpha = 0 the kernel's gradient (scikit-learn's) is k
    times the gradient of the loss it reports (which averages over the outputs)."""
    units, k = [3, 5, 3], 3
    coefs, intercepts = make_net(rng, units, np.float64)
    X, Y = make_data(rng, 10, units, "identity", np.float64)
    _, gW, gb = kernel_grads(coefs, intercepts, X, Y, None, "tanh", "identity")
    fW, fb = _fd_grads(coefs, intercepts, X, Y, None, "tanh", "identity", 0.0)
    assert_list_close([g / k for g in gW], fW, 1e-6, "gW / k")
    assert_list_close([g / k for g in gb], fb, 1e-6, "gb / k")


# ------------------------------------------------------------------------------------------------
# 3. Adam and SGD epochs

OPTS = {"adam": dict(optimizer="adam", lr=0.01),
        "sgd_nesterov": dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True),
        "sgd_plain": dict(optimizer="sgd", lr=0.05, momentum=0.8, nesterov=False)}
PAIRS = [("relu", "softmax"), ("tanh", "logistic"), ("logistic", "identity"), ("identity", "exp")]


def naive_opt(name, params):
    kw = OPTS[name]
    if kw["optimizer"] == "adam":
        return AdamNaive(params, kw["lr"])
    return SGDNaive(params, kw["lr"], kw["momentum"], kw["nesterov"])


def _epoch_case(rng, dtype, kid, opt, hidden, output, n_threads, *, n=203, batch=32,
                weights=True, order="shuffle", alpha=1e-3, t0=0):
    units = [7, 12, 5]
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, n, units, output, dtype)
    if output == "exp":
        coefs[-1] *= 0.3  # keep exp(z) moderate for an lr of 0.05
    sw = rng.uniform(0.3, 2.0, n).astype(dtype) if weights else None
    if order == "shuffle":
        order = rng.permutation(n).astype(np.int64)
    c64, b64 = copies(coefs, np.float64), copies(intercepts, np.float64)
    ref = naive_opt(opt, c64 + b64)
    if opt == "adam":
        ref.t = t0
    want = epoch_naive(c64, b64, X, Y, sw, order, batch, hidden, output, alpha, ref)
    c, b = copies(coefs), copies(intercepts)
    moments = zero_moments(c, b)
    rc, loss_sum, done, t = _mlp.train_epoch(
        c, b, X, Y, sw, order, batch, hidden=hidden, output=output, alpha=alpha, t=t0,
        moments=moments, tuner=tuner(n_threads), kernel_id=kid, **OPTS[opt])
    return (rc, loss_sum, done, t), (c, b, moments), (want, c64, b64, ref)


@dtypes
@kernels
@pytest.mark.parametrize("hidden,output", PAIRS)
@pytest.mark.parametrize("opt", list(OPTS))
def test_epoch_vs_naive(rng, dtype, kid, opt, hidden, output):
    n, batch = 203, 32
    n_batches = -(-n // batch)
    for nt in THREADS:
        (rc, loss_sum, done, t), (c, b, mom), (want, c64, b64, ref) = _epoch_case(
            rng, dtype, kid, opt, hidden, output, nt, n=n, batch=batch, weights=nt != 2)
        assert rc == 0 and done == n
        assert t == (n_batches if opt == "adam" else 0)
        assert abs(loss_sum - want) <= 10 * LTOL[dtype] * abs(want), (nt, loss_sum, want)
        assert_list_close(c, c64, PTOL[dtype], f"coefs threads={nt}")
        assert_list_close(b, b64, PTOL[dtype], f"intercepts threads={nt}")
        L, tol = len(c), MTOL[dtype]
        if opt == "adam":
            assert_list_close(mom[0], ref.m[:L], tol, "adam m (coefs)")
            assert_list_close(mom[1], ref.m[L:], tol, "adam m (intercepts)")
            assert_list_close(mom[2], ref.v[:L], tol, "adam v (coefs)")
            assert_list_close(mom[3], ref.v[L:], tol, "adam v (intercepts)")
        else:
            assert_list_close(mom[0], ref.vel[:L], tol, "sgd velocity (coefs)")
            assert_list_close(mom[1], ref.vel[L:], tol, "sgd velocity (intercepts)")


@pytest.mark.parametrize("n,batch", [(203, 32), (50, 1), (64, 64), (10, 500), (33, 7)])
def test_epoch_batch_sizes_and_adam_step_count(rng, n, batch):
    """Batch sizes 1, == n, > n (clamped), not dividing n; Adam resumes from a step count t."""
    for opt in ("adam", "sgd_nesterov"):
        (rc, loss_sum, done, t), (c, b, _), (want, c64, b64, _) = _epoch_case(
            rng, np.float64, KERNELS[-1], opt, "tanh", "softmax", 2, n=n, batch=batch, t0=5)
        n_batches = -(-n // min(batch, n))
        assert rc == 0 and done == n
        assert t == (5 + n_batches if opt == "adam" else 5)
        assert abs(loss_sum - want) <= 1e-10 * abs(want)
        assert_list_close(c + b, c64 + b64, PTOL[np.float64], opt)


@dtypes
def test_epoch_order_none_and_strided_x(rng, dtype):
    """order=None trains on the rows in order; X may be a view with strided (or reversed) rows."""
    units = [6, 10, 3]
    coefs, intercepts = make_net(rng, units, dtype)
    big = rng.standard_normal((90, 11)).astype(dtype)
    Y = make_targets(rng, 90, 3, "softmax", dtype)
    for X, Yv in ((big[:, 2:8], Y), (big[::-1, :6], np.ascontiguousarray(Y[::-1]))):
        assert not X.flags.c_contiguous
        c64, b64 = copies(coefs, np.float64), copies(intercepts, np.float64)
        ref = AdamNaive(c64 + b64, 0.01)
        want = epoch_naive(c64, b64, np.array(X), Yv, None, None,
                           16, "relu", "softmax", 0.0, ref)
        for nt in THREADS:
            c, b = copies(coefs), copies(intercepts)
            rc, loss_sum, done, t = _mlp.train_epoch(
                c, b, X, Yv, None, None, 16, hidden="relu", output="softmax", optimizer="adam",
                lr=0.01, moments=zero_moments(c, b), tuner=tuner(nt), kernel_id=KERNELS[-1])
            assert rc == 0 and done == 90 and t == 6
            assert abs(loss_sum - want) <= 10 * LTOL[dtype] * abs(want)
            assert_list_close(c + b, c64 + b64, PTOL[dtype], f"threads={nt}")


# ------------------------------------------------------------------------------------------------
# 4. results do not depend on the thread count

def _identity_run(X, Y, sw, order, coefs, intercepts, tn, kid, opt, hidden, batch):
    c, b = copies(coefs), copies(intercepts)
    moments = zero_moments(c, b)
    res = _mlp.train_epoch(c, b, X, Y, sw, order, batch, hidden=hidden, output="softmax",
                           alpha=1e-4, moments=moments, tuner=tn, kernel_id=kid, **OPTS[opt])
    return res, c + b + moments[0] + moments[1] + moments[2] + moments[3]


@dtypes
@kernels
@pytest.mark.parametrize("opt,hidden", [("adam", "relu"), ("sgd_plain", "tanh")])
def test_wide_layers_share_packed_operands(rng, dtype, kid, opt, hidden):
    """Layers wide enough that each step packs W, W^T and the deltas once for all of its row
    chunks and weight blocks (and keeps the packed W current as it updates W): ragged panels
    (200, 136 and 60 columns), an output delta wide enough to be packed too, batches deeper than
    one packed block (300 rows) and a short last batch. Against the float64 reference, and
    bitwise the same on 1, 2, 3 and 4 threads and as when every product packs its own operands
    (the path taken when memory for the shared copies is short)."""
    units, n, batch = [90, 200, 136, 60], 700, 300
    coefs, intercepts = make_net(rng, units, dtype, scale=0.5)
    X, Y = make_data(rng, n, units, "softmax", dtype)
    sw = rng.uniform(0.5, 1.5, n).astype(dtype)
    order = rng.permutation(n).astype(np.int64)
    c64, b64 = copies(coefs, np.float64), copies(intercepts, np.float64)
    ref = naive_opt(opt, c64 + b64)
    want = epoch_naive(c64, b64, X, Y, sw, order, batch, hidden, "softmax", 1e-3, ref)
    results = []
    for nt, share in ((1, True), (2, True), (3, True), (4, True), (1, False), (2, False)):
        c, b = copies(coefs), copies(intercepts)
        moments = zero_moments(c, b)
        rc, loss_sum, done, _ = _mlp.train_epoch(
            c, b, X, Y, sw, order, batch, hidden=hidden, output="softmax", alpha=1e-3,
            moments=moments, tuner=tuner(nt), kernel_id=kid, share_packs=share, **OPTS[opt])
        assert rc == 0 and done == n
        assert abs(loss_sum - want) <= 10 * LTOL[dtype] * abs(want), (nt, loss_sum, want)
        assert_list_close(c, c64, 10 * PTOL[dtype], f"coefs threads={nt}")
        assert_list_close(b, b64, 10 * PTOL[dtype], f"intercepts threads={nt}")
        results.append((loss_sum, c + b + moments[0] + moments[2]))
    for loss_sum, params in results[1:]:
        assert loss_sum == results[0][0]
        for p, q in zip(params, results[0][1]):
            assert np.array_equal(p, q)


@dtypes
@kernels
@pytest.mark.parametrize("opt,hidden", [("adam", "relu"), ("sgd_nesterov", "tanh")])
def test_bitwise_identical_across_threads(rng, dtype, kid, opt, hidden):
    units, n, batch = [64, 96, 48, 5], 1100, 128
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, n, units, "softmax", dtype)
    sw = rng.uniform(0.5, 1.5, n).astype(dtype)
    order = rng.permutation(n).astype(np.int64)
    for weights, ordr in ((None, order), (sw, None)):
        base, base_params = _identity_run(X, Y, weights, ordr, coefs, intercepts, tuner(1), kid,
                                          opt, hidden, batch)
        assert base[0] == 0 and base[2] == n and np.isfinite(base[1])
        tuners = [tuner(2), tuner(4), Tuner(4, "batches", adapt=True),
                  Tuner(2, "batches", adapt=True)]
        for tn in tuners:
            res, params = _identity_run(X, Y, weights, ordr, coefs, intercepts, tn, kid, opt,
                                        hidden, batch)
            assert res == base, tn.stats()
            for p, q in zip(params, base_params):
                assert np.array_equal(p, q), tn.stats()
        # the batches really ran on several threads, and the adaptive tuners also on one
        assert tuners[0].stats()["units_many"] == -(-n // batch)
        for tn in tuners[2:]:
            s = tn.stats()
            assert s["units_many"] >= 4 and s["units_one"] >= 4, s


@dtypes
@kernels
@pytest.mark.parametrize("opt,hidden", [("adam", "relu"), ("sgd_nesterov", "tanh"),
                                        ("adam", "logistic")])
def test_elementwise_variants_bitwise_identical(rng, dtype, kid, opt, hidden):
    """The same GEMM kernel with each kernel set's element-wise variant (activations, their
    derivatives, the L2 sums and the fused optimiser update) trains bitwise the same network as
    with the generic set's; the epoch against the float64 reference is test_epoch_vs_naive's.
    Widths 13 and 37 leave vector tails; two threads cut W into several update blocks."""
    units, n, batch = [13, 37, 21, 4], 300, 64
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, n, units, "softmax", dtype)
    order = rng.permutation(n).astype(np.int64)
    gemm = KERNELS[-1]
    runs = []
    for ew in (KERNELS[0], kid):
        c, b = copies(coefs), copies(intercepts)
        moments = zero_moments(c, b)
        res = _mlp.train_epoch(c, b, X, Y, None, order, batch, hidden=hidden, output="softmax",
                               alpha=1e-3, moments=moments, tuner=tuner(2), kernel_id=gemm,
                               elementwise_id=ew, **OPTS[opt])
        assert res[0] == 0 and res[2] == n
        runs.append((res, c + b + [m for part in moments for m in part]))
    assert runs[1][0] == runs[0][0]
    for p, q in zip(runs[1][1], runs[0][1]):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(runs[0][1][0], coefs[0])     # the epoch did train


def test_elementwise_id_refused_when_unsupported(rng):
    coefs, intercepts = make_net(rng, [3, 4, 2], np.float64)
    X, Y = make_data(rng, 10, [3, 4, 2], "softmax", np.float64)
    for bad in (len(_gemm.KERNEL_NAMES), 99):
        with pytest.raises(ValueError, match="elementwise_id"):
            _mlp.train_epoch(copies(coefs), copies(intercepts), X, Y, None, None, 4,
                             optimizer="none", elementwise_id=bad)
        with pytest.raises(ValueError, match="kernel id"):
            _mlp.bias_act(np.zeros((2, 3)), np.zeros(3), "relu", kernel_id=bad)
    missing = [i for i in range(len(_gemm.KERNEL_NAMES)) if not _kernel_sets.supported(i)]
    for bad in missing:      # a set this CPU lacks (avx512 or neon on an AVX2 machine)
        with pytest.raises(ValueError, match="not a kernel set this CPU supports"):
            _mlp.act_grad(np.zeros((2, 3)), np.zeros((2, 3)), "relu", kernel_id=bad)


@dtypes
@kernels
def test_grads_and_forward_bitwise_identical_across_threads(rng, dtype, kid):
    units, n = [64, 96, 48, 5], 700
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, n, units, "logistic", dtype)
    base = kernel_grads(coefs, intercepts, X, Y, None, "tanh", "logistic", 1e-3, 1, kid)
    fwd = _mlp.forward(coefs, intercepts, X, "tanh", "logistic", n_threads=1, kernel_id=kid)
    for nt in (2, 4):
        got = kernel_grads(coefs, intercepts, X, Y, None, "tanh", "logistic", 1e-3, nt, kid)
        assert got[0] == base[0]
        for p, q in zip(got[1] + got[2], base[1] + base[2]):
            assert np.array_equal(p, q)
        assert np.array_equal(
            _mlp.forward(coefs, intercepts, X, "tanh", "logistic", n_threads=nt, kernel_id=kid),
            fwd)


# ------------------------------------------------------------------------------------------------
# 5. inference

@dtypes
@kernels
@pytest.mark.parametrize("n", [1, 7, 256, 257, 1000])
def test_forward_vs_naive(rng, dtype, kid, n):
    units = [5, 17, 9, 3]
    X = rng.standard_normal((n, units[0])).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for hidden, output in [("relu", "softmax"), ("tanh", "logistic"), ("logistic", "identity"),
                           ("identity", "exp")]:
        coefs, intercepts = make_net(rng, units, dtype)
        want = forward_naive(copies(coefs, np.float64), copies(intercepts, np.float64),
                             X.astype(np.float64), hidden, output)[-1]
        for nt in THREADS:
            got = _mlp.forward(coefs, intercepts, X, hidden, output, n_threads=nt, kernel_id=kid)
            assert got.shape == (n, 3) and got.dtype == dtype
            assert_close(got, want, tol, f"{hidden}/{output} threads={nt}")


@dtypes
def test_forward_layouts(rng, dtype):
    """Rows must be contiguous; the row stride may be anything (wider parent, reversed, zero)."""
    units = [6, 20, 4]
    coefs, intercepts = make_net(rng, units, dtype)
    big = rng.standard_normal((300, 15)).astype(dtype)
    views = {"column slice": big[:, 3:9], "row step": big[::3, :6], "reversed": big[::-1, 9:],
             "broadcast row": np.broadcast_to(big[0, :6], (270, 6)),
             "read-only": np.frombuffer(big[:, :6].tobytes(), dtype).reshape(300, 6)}
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, X in views.items():
        want = forward_naive(copies(coefs, np.float64), copies(intercepts, np.float64),
                             np.array(X, np.float64), "tanh", "softmax")[-1]
        for nt in (1, 3):
            got = _mlp.forward(coefs, intercepts, X, "tanh", "softmax", n_threads=nt,
                               kernel_id=KERNELS[-1])
            assert_close(got, want, tol, name)
    # read-only parameters are fine for inference
    ro_c, ro_b = copies(coefs), copies(intercepts)
    for a in ro_c + ro_b:
        a.flags.writeable = False
    assert_close(_mlp.forward(ro_c, ro_b, big[:, :6], "tanh", "softmax"),
                 forward_naive(copies(coefs, np.float64), copies(intercepts, np.float64),
                               np.array(big[:, :6], np.float64), "tanh", "softmax")[-1], tol)
    # a row stride that is not a whole number of elements is refused
    raw = np.zeros(300 * 6 * X.itemsize + 64, np.uint8)
    odd = np.ndarray((50, 6), dtype=dtype, buffer=raw, strides=(6 * X.itemsize + 1, X.itemsize))
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, odd, "tanh", "softmax")
    # non-contiguous rows (column step, Fortran order) are refused, not misread
    for X in (big[:, ::2][:, :6], np.asfortranarray(big[:, :6])):
        with pytest.raises(ValueError):
            _mlp.forward(coefs, intercepts, X, "tanh", "softmax")
        with pytest.raises(ValueError):
            _mlp.train_epoch(copies(coefs), copies(intercepts), X,
                             make_targets(rng, 300, 4, "softmax", dtype), None, None, 10,
                             optimizer="none")


def test_forward_out_argument_and_edge_sizes(rng):
    coefs, intercepts = make_net(rng, [4, 6, 2], np.float64)
    X = rng.standard_normal((300, 4))
    out = np.full((300, 2), np.nan)
    got = _mlp.forward(coefs, intercepts, X, "relu", "identity", out=out, n_threads=2)
    assert got is out
    assert_close(out, forward_naive(coefs, intercepts, X, "relu", "identity")[-1], 1e-13)
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, X, "relu", "identity", out=np.empty((300, 3)))
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, X, "relu", "identity", out=np.empty((300, 2), np.float32))
    empty = _mlp.forward(coefs, intercepts, X[:0], "relu", "identity", n_threads=4)
    assert empty.shape == (0, 2)
    # thread counts beyond the number of chunks, or below 1, are clamped
    for nt in (0, -3, 64):
        assert_close(_mlp.forward(coefs, intercepts, X, "relu", "identity", n_threads=nt),
                     out, 1e-13, f"n_threads={nt}")


def test_forward_refuses_read_only_out(rng):
    coefs, intercepts = make_net(rng, [4, 6, 2], np.float64)
    X = rng.standard_normal((10, 4))
    out = np.zeros((10, 2))
    out.flags.writeable = False
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, X, "relu", "identity", out=out)


# ------------------------------------------------------------------------------------------------
# 6. property test over shapes

@st.composite
def mlp_cases(draw):
    depth = draw(st.integers(1, 3))
    units = [draw(st.integers(1, 40)) for _ in range(depth + 2)]
    n = draw(st.integers(1, 300))
    batch = draw(st.integers(1, n))
    return dict(units=units, n=n, batch=batch,
                hidden=draw(st.sampled_from(HIDDEN)), output=draw(st.sampled_from(OUTPUTS)),
                dtype=draw(st.sampled_from(DTYPES)), kid=draw(st.sampled_from(KERNELS)),
                nt=draw(st.sampled_from(THREADS)), weights=draw(st.booleans()),
                alpha=draw(st.sampled_from([0.0, 1e-3])), seed=draw(st.integers(0, 2**32 - 1)))


def _case(units, n, batch, hidden="relu", output="softmax", dtype=np.float64, kid=0, nt=1,
          weights=False, alpha=0.0, seed=0):
    return dict(units=units, n=n, batch=batch, hidden=hidden, output=output, dtype=dtype, kid=kid,
                nt=nt, weights=weights, alpha=alpha, seed=seed)


@settings(max_examples=60)
@given(case=mlp_cases())
# one softmax output: p == 1 exactly and the loss is only the clipping term -log(1 - eps) of the
# dtype (this found the reference clipping float32 with float64's eps)
@example(case=_case([1, 1, 1], 1, 1, "identity", "softmax", np.float32))
@example(case=_case([40, 40, 40, 40, 40], 300, 7, "tanh", "logistic", nt=4, kid=KERNELS[-1],
                    weights=True, alpha=1e-3))
@example(case=_case([17, 3, 33, 1], 300, 300, "logistic", "identity", np.float32, nt=2))
def test_property_grads_vs_naive(case):
    """optimizer="none" over batches: loss_sum is the sum over batches of (batch loss x rows) and
    the returned gradient is the last batch's."""
    rng = np.random.default_rng(case["seed"])
    dtype, units, n, batch = case["dtype"], case["units"], case["n"], case["batch"]
    hidden, output, alpha = case["hidden"], case["output"], case["alpha"]
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, n, units, output, dtype)
    sw = rng.uniform(0.2, 2.0, n).astype(dtype) if case["weights"] else None
    c, b = copies(coefs), copies(intercepts)
    rc, loss_sum, done, t, (gW, gb) = _mlp.train_epoch(
        c, b, X, Y, sw, None, batch, hidden=hidden, output=output, optimizer="none", alpha=alpha,
        tuner=tuner(case["nt"]), kernel_id=case["kid"], return_grads=True)
    assert rc == 0 and done == n and t == 0
    want_sum = 0.0
    for s in range(0, n, batch):
        rows = slice(s, min(s + batch, n))
        loss, wW, wb = loss_grad_naive(coefs, intercepts, X[rows], Y[rows],
                                       None if sw is None else sw[rows], hidden, output, alpha)
        want_sum += loss * (rows.stop - rows.start)
    assert abs(loss_sum - want_sum) <= (20 * LTOL[dtype]) * abs(want_sum) + 1e-300
    if dtype == np.float64:
        assert_list_close(gW, wW, GTOL[dtype], "last batch coef grad")
        assert_list_close(gb, wb, GTOL[dtype], "last batch intercept grad")
    else:
        # float32: the output delta p - y cancels when p is near y (p ~ 1 has an ulp of 6e-8),
        # so besides 1e-4 of the gradient's scale allow an absolute floor of a few float32 ulps
        # of the activations (hypothesis found 1.8e-7 on gradients of 1.7e-5 with saturated
        # logistic outputs; scikit-learn's float32 MLP rounds the same way)
        for a, d in zip(gW + gb, wW + wb):
            np.testing.assert_allclose(np.asarray(a, np.float64), d, rtol=1e-4,
                                       atol=1e-4 * np.abs(d).max(initial=0.0) + 2e-6)
    for new, old in zip(c + b, coefs + intercepts):
        assert np.array_equal(new, old)


# ------------------------------------------------------------------------------------------------
# 7. row subsets and repeated rows

@dtypes
@kernels
@pytest.mark.parametrize("kind", ["subset", "repeats", "longer", "single", "empty"])
def test_order_subsets(rng, dtype, kid, kind):
    n = 120
    units = [5, 11, 4]
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, n, units, "softmax", dtype)
    sw = rng.uniform(0.3, 2.0, n).astype(dtype)
    order = {"subset": rng.choice(n, 70, replace=False),
             "repeats": rng.choice(n, 90, replace=True),
             "longer": rng.choice(n, 260, replace=True),      # more rows than X
             "single": np.array([17]),
             "empty": np.array([], dtype=np.int64)}[kind].astype(np.int64)
    if kind == "repeats":
        order[:5] = order[5]                                  # certainly repeated
    m = len(order)
    for nt in (1, 4):
        c64, b64 = copies(coefs, np.float64), copies(intercepts, np.float64)
        ref = AdamNaive(c64 + b64, 0.01)
        want = epoch_naive(c64, b64, X[order], Y[order], sw[order], None, 16, "tanh", "softmax",
                           1e-3, ref)
        c, b = copies(coefs), copies(intercepts)
        rc, loss_sum, done, t = _mlp.train_epoch(
            c, b, X, Y, sw, order, 16, hidden="tanh", output="softmax", optimizer="adam", lr=0.01,
            alpha=1e-3, moments=zero_moments(c, b), tuner=tuner(nt), kernel_id=kid)
        assert rc == 0 and done == m and t == -(-m // 16)
        assert abs(loss_sum - want) <= 10 * LTOL[dtype] * abs(want)
        assert_list_close(c + b, c64 + b64, PTOL[dtype], f"{kind} threads={nt}")
        if kind == "empty":
            assert loss_sum == 0
            for new, old in zip(c + b, coefs + intercepts):
                assert np.array_equal(new, old)


# ------------------------------------------------------------------------------------------------
# 8. divergence

@dtypes
@pytest.mark.parametrize("output", ["softmax", "identity"])
@pytest.mark.parametrize("opt", ["adam", "sgd_nesterov"])
def test_nonfinite_first_batch_changes_nothing(rng, dtype, output, opt):
    """Weights so large that the first batch's loss overflows (inf, or NaN through softmax)."""
    units = [4, 6, 3]
    huge = 1e200 if dtype == np.float64 else 1e30
    coefs, intercepts = make_net(rng, units, dtype)
    coefs = [np.ascontiguousarray(cf * dtype(huge)) for cf in coefs]
    X, Y = make_data(rng, 40, units, output, dtype)
    c, b = copies(coefs), copies(intercepts)
    moments = zero_moments(c, b)
    rc, loss_sum, done, t = _mlp.train_epoch(
        c, b, X, Y, None, None, 8, hidden="relu", output=output, moments=moments, t=3,
        tuner=tuner(2), **OPTS[opt])
    assert rc == _mlp.STATUS_NONFINITE
    assert done == 0 and loss_sum == 0 and t == 3
    for new, old in zip(c + b, coefs + intercepts):
        assert np.array_equal(new, old)
    assert all(not m.any() for group in moments for m in group)


@dtypes
@pytest.mark.parametrize("opt", ["adam", "sgd_plain"])
def test_nonfinite_mid_epoch_keeps_completed_batches(rng, dtype, opt):
    """A huge learning rate: the first batch's update is applied (huge but finite weights), the
    second batch's loss overflows and it makes no update; the epoch stops there."""
    units, batch = [3, 4, 1], 10
    lr = 1e100 if dtype == np.float64 else 1e25
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, 50, units, "identity", dtype)
    kw = dict(OPTS[opt], lr=lr)
    if opt == "sgd_plain":
        kw["momentum"] = 0.0
    c64, b64 = copies(coefs, np.float64), copies(intercepts, np.float64)
    ref = (AdamNaive(c64 + b64, lr) if opt == "adam"
           else SGDNaive(c64 + b64, lr, momentum=0.0, nesterov=False))
    want = epoch_naive(c64, b64, X[:batch], Y[:batch], None, None, batch, "identity",
                       "identity", 0.0, ref)
    c, b = copies(coefs), copies(intercepts)
    rc, loss_sum, done, t = _mlp.train_epoch(
        c, b, X, Y, None, None, batch, hidden="identity", output="identity",
        moments=zero_moments(c, b), tuner=tuner(2), **kw)
    assert rc == _mlp.STATUS_NONFINITE
    assert done == batch
    assert t == (1 if opt == "adam" else 0)
    assert abs(loss_sum - want) <= 10 * LTOL[dtype] * abs(want)
    assert all(np.all(np.isfinite(p)) for p in c + b)
    assert max(np.abs(p).max() for p in c) > lr / 1e3  # the first update did happen
    assert_list_close(c + b, c64 + b64, 1e-10 if dtype == np.float64 else 1e-4, "after batch 1")


# A batch whose weights are all zero has no gradient (0/0): the kernel skips it (no update, no
# loss) instead of dividing by zero; scikit-learn raises ZeroDivisionError there.
@pytest.mark.parametrize("opt", ["adam", "sgd_plain"])
def test_zero_weight_batch_is_not_applied(rng, opt):
    units, batch = [3, 4, 2], 4
    coefs, intercepts = make_net(rng, units, np.float64)
    X, Y = make_data(rng, 8, units, "softmax", np.float64)
    sw = np.ones(8)
    sw[batch:] = 0.0                                    # the second batch weighs nothing
    c64, b64 = copies(coefs), copies(intercepts)
    epoch_naive(c64, b64, X[:batch], Y[:batch], sw[:batch], None, batch, "relu", "softmax", 0.0,
                naive_opt(opt, c64 + b64))
    c, b = copies(coefs), copies(intercepts)
    rc, loss_sum, done, t = _mlp.train_epoch(
        c, b, X, Y, sw, None, batch, hidden="relu", output="softmax",
        moments=zero_moments(c, b), tuner=tuner(1), **OPTS[opt])
    assert all(np.all(np.isfinite(p)) for p in c + b), "parameters became NaN"
    assert rc == 0 and done == 8 and np.isfinite(loss_sum)
    assert_list_close(c + b, c64 + b64, 1e-12, "after the first batch")


# ------------------------------------------------------------------------------------------------
# 9. bad input to the wrappers

def _valid_call(rng, dtype=np.float64):
    units = [4, 5, 3]
    coefs, intercepts = make_net(rng, units, dtype)
    X, Y = make_data(rng, 20, units, "softmax", dtype)
    kw = dict(hidden="relu", output="softmax", optimizer="adam", lr=1e-3,
              moments=zero_moments(coefs, intercepts), tuner=tuner(2))
    return [coefs, intercepts, X, Y, None, None, 8], kw


def _bad_inputs():
    def dtype_mix(a, k):
        a[2] = a[2].astype(np.float32)

    def x_int(a, k):
        a[2] = a[2].astype(np.int64)

    def y_shape(a, k):
        a[3] = a[3][:, :2].copy()

    def y_rows(a, k):
        a[3] = a[3][:-1].copy()

    def y_fortran(a, k):
        a[3] = np.asfortranarray(a[3])

    def y_dtype(a, k):
        a[3] = a[3].astype(np.float32)

    def sw_len(a, k):
        a[4] = np.ones(19)

    def sw_dtype(a, k):
        a[4] = np.ones(20, np.float32)

    def order_high(a, k):
        a[5] = np.array([0, 5, 20], np.int64)

    def order_negative(a, k):
        a[5] = np.array([3, -1], np.int64)

    def order_int32(a, k):
        a[5] = np.arange(10, dtype=np.int32)

    def order_2d(a, k):
        a[5] = np.arange(10, dtype=np.int64).reshape(2, 5)

    def order_strided(a, k):
        a[5] = np.arange(20, dtype=np.int64)[::2]

    def batch_zero(a, k):
        a[6] = 0

    def batch_negative(a, k):
        a[6] = -4

    def moments_missing(a, k):
        k["moments"] = None

    def moments_three(a, k):
        k["moments"] = k["moments"][:3]

    def moments_shape(a, k):
        k["moments"][2][0] = np.zeros((4, 4))

    def moments_dtype(a, k):
        k["moments"][1][1] = k["moments"][1][1].astype(np.float32)

    def moments_layers(a, k):
        k["moments"][0] = k["moments"][0][:1]

    def coef_shape(a, k):
        a[0][1] = np.zeros((4, 3))

    def coef_fortran(a, k):
        a[0][0] = np.asfortranarray(np.zeros((4, 5)))

    def coef_readonly(a, k):
        a[0][0].flags.writeable = False

    def intercept_shape(a, k):
        a[1][0] = np.zeros(4)

    def intercept_count(a, k):
        a[1] = a[1][:1]

    def no_layers(a, k):
        a[0], a[1] = [], []

    def x_columns(a, k):
        a[2] = np.ascontiguousarray(a[2][:, :3])

    def x_1d(a, k):
        a[2] = a[2][:, 0].copy()

    def optimizer_name(a, k):
        k["optimizer"] = "rmsprop"

    def kernel_id(a, k):
        k["kernel_id"] = 7

    def kernel_negative(a, k):
        k["kernel_id"] = -1

    return [f for name, f in sorted(locals().items())]


@pytest.mark.parametrize("mutate", _bad_inputs(), ids=lambda f: f.__name__)
def test_bad_input_raises(rng, mutate):
    args, kw = _valid_call(rng)
    mutate(args, kw)
    before = copies(args[0] + args[1]) if all(isinstance(a, np.ndarray) for a in
                                              args[0] + args[1]) else None
    with pytest.raises((ValueError, TypeError)):
        _mlp.train_epoch(*args, **kw)
    if before is not None:  # nothing was updated before the error
        for new, old in zip(args[0] + args[1], before):
            assert np.array_equal(new, old)


def test_bad_activation_name_raises(rng):
    """Unknown activation names raise (KeyError from the lookup table, not ValueError)."""
    args, kw = _valid_call(rng)
    for key in ("hidden", "output"):
        with pytest.raises((KeyError, ValueError)):
            _mlp.train_epoch(*args, **dict(kw, **{key: "swish"}))
    with pytest.raises((KeyError, ValueError)):
        _mlp.forward(args[0], args[1], args[2], "swish", "softmax")


def test_forward_bad_input(rng):
    coefs, intercepts = make_net(rng, [4, 5, 3], np.float64)
    X = rng.standard_normal((10, 4))
    with pytest.raises(TypeError):
        _mlp.forward(coefs, intercepts, X.astype(np.int32))
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, X.astype(np.float32))
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, X[:, :3].copy())
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts[:1], X)
    with pytest.raises(ValueError):
        _mlp.forward([], [], X)
    with pytest.raises(ValueError):
        _mlp.forward(coefs, intercepts, X, kernel_id=99)


@pytest.mark.parametrize("where", ["hidden", "input"])
def test_zero_width_layer_refused_or_correct(rng, where):
    units = [3, 0, 2] if where == "hidden" else [0, 4, 2]
    coefs, intercepts = make_net(rng, units, np.float64)
    X = rng.standard_normal((6, 5))[:, :units[0]]        # rows contiguous: accepted as X
    Y = make_targets(rng, 6, 2, "softmax", np.float64)
    c, b = copies(coefs), copies(intercepts)
    try:
        rc, _, done, _ = _mlp.train_epoch(c, b, X, Y, None, None, 6, hidden="tanh",
                                          optimizer="sgd", lr=0.5, momentum=0.0,
                                          moments=zero_moments(c, b))
    except ValueError:
        return                                            # refusing the shape is fine too
    c64, b64 = copies(coefs), copies(intercepts)
    epoch_naive(c64, b64, np.array(X), Y, None, None, 6, "tanh", "softmax", 0.0,
                SGDNaive(c64 + b64, 0.5, momentum=0.0, nesterov=False))
    assert rc == 0 and done == 6
    assert_list_close(b, b64, 1e-12, "intercepts after one SGD step")


def test_sgd_ignores_second_moments_and_none_ignores_moments(rng):
    """SGD uses only [MW, Mb] (velocities): junk in VW/Vb is fine; "none" needs no moments."""
    args, kw = _valid_call(rng)
    kw.update(optimizer="sgd", moments=kw["moments"][:2] + [None, None])
    assert _mlp.train_epoch(*args, **kw)[0] == 0
    kw.update(optimizer="none", moments=None)
    assert _mlp.train_epoch(*args, **kw)[0] == 0


def test_read_only_inputs_are_accepted(rng):
    """X, Y, sample_weight and order are only read: read-only arrays work."""
    args, kw = _valid_call(rng)
    args[4] = np.ones(20)
    args[5] = np.arange(20, dtype=np.int64)[::-1].copy()
    for i in (2, 3, 4, 5):
        args[i].flags.writeable = False
    status, _, rows_done, _ = _mlp.train_epoch(*args, **kw)
    assert status == 0 and rows_done == 20


def test_read_only_moments_refused(rng):
    args, kw = _valid_call(rng)
    for group in kw["moments"]:
        for m in group:
            m.flags.writeable = False
    with pytest.raises(ValueError):
        _mlp.train_epoch(*args, **kw)


# ------------------------------------------------------------------------------------------------
# 10. the thread tuner

def _tuner_epoch(rng, tn, n=300, batch=30):
    args, kw = _valid_call(rng)
    X = rng.standard_normal((n, 4))
    Y = make_targets(rng, n, 3, "softmax", np.float64)
    args[2:7] = [X, Y, None, None, batch]
    kw["tuner"] = tn
    rc, _, done, _ = _mlp.train_epoch(*args, **kw)
    assert rc == 0 and done == n


@pytest.mark.parametrize("adapt", [True, False])
def test_tuner_single_thread(rng, adapt):
    for n_threads in (1, 0, -5):
        tn = Tuner(n_threads, "batches", adapt=adapt)
        assert tn.n_threads == 1
        _tuner_epoch(rng, tn)
        _tuner_epoch(rng, tn, n=95, batch=30)
        s = tn.stats()
        assert s["units_many"] == 0 and s["units_one"] == 10 + 4
        assert s["switches"] == 0 and s["best"] == 1


def test_tuner_counts_batches(rng):
    tn = Tuner(3, "batches", adapt=False)
    _tuner_epoch(rng, tn, n=95, batch=30)            # 3 full batches and one of 5 rows
    assert tn.stats() == {"units_many": 4, "units_one": 0, "switches": 0, "best": 3}
    _tuner_epoch(rng, tn, n=300, batch=30)           # the state survives between epochs
    assert tn.stats()["units_many"] == 14
    # adaptive: 4 batches probing n threads, then 4 probing one, then the faster of the two
    tn = Tuner(2, "batches")
    _tuner_epoch(rng, tn, n=300, batch=30)
    s = tn.stats()
    assert s["units_many"] + s["units_one"] == 10
    assert s["units_many"] >= 4 and s["units_one"] >= 4
    assert s["best"] in (1, 2) and s["switches"] in (0, 1)


def test_tuner_pickle(rng):
    used = Tuner(4, "batches", adapt=False)
    _tuner_epoch(rng, used)
    for tn in (used, Tuner(3, "batches"), Tuner(1, "batches")):
        back = pickle.loads(pickle.dumps(tn))
        assert type(back) is Tuner and back.n_threads == tn.n_threads
        assert back.stats()["units_many"] == back.stats()["units_one"] == 0
    # the adapt setting survives: a non-adaptive tuner never probes one thread
    back = pickle.loads(pickle.dumps(used))
    _tuner_epoch(rng, back)
    assert back.stats()["units_one"] == 0 and back.stats()["units_many"] == 10
    back = pickle.loads(pickle.dumps(Tuner(4, "batches", adapt=True)))
    _tuner_epoch(rng, back)
    assert back.stats()["units_one"] >= 4
