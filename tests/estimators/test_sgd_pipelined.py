"""Shuffled per-sample SGD on 2+ threads runs pipelined (_sgd_pipeline.pyx): the caller
steps, a second thread copies blocks of upcoming shuffled rows into a ring, and each block is
stepped from the ring or straight from X, whichever is ready. The steps are the same on the same
values in the same order, so the model must be bit-identical to the 1-thread epoch for every
loss, penalty, dtype, weighting and averaging, and for every mix of the two reads: the real
(timing-dependent) mix, all from X (the gatherer idles), all from the ring (the stepper
gathers), and the steps run after the pool job (as when a helper takes both tasks), with the
ring empty or filled by the gatherer first. The tests lower the 12 MiB threshold so that small
data runs pipelined too, with a last block that is not full.

The mode and the threshold are arguments of the epoch kernel (sgd_epoch's keyword-only
_pipe_test_mode and _pipe_min_bytes), never module state: tests of the estimators hand them in by
patching the SGD driver's reference to the kernel."""
import functools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.datasets import make_classification, make_regression

from parml._kernels import _linear
from parml._kernels import _sgd as K
from parml._kernels import _sgd_pipeline
from parml.linear_model import SGDClassifier, SGDRegressor
from parml.linear_model import _sgd as driver

N = 32 * 375 + 17   # d = 20: blocks of 32 rows, the last one short; the ring wraps 3 times
MODES = K.PIPE_TEST_MODES   # name: id, "real" being the production race between the threads


def _pipe(mode):
    """sgd_epoch's test arguments: run pipelined from any size, reading blocks as `mode` says."""
    return dict(_pipe_test_mode=MODES[mode], _pipe_min_bytes=0)


def _clf_data(dtype, n_classes=2, n=N):
    X, y = make_classification(n, 20, n_informative=10, n_classes=n_classes, random_state=0)
    return ((X - X.mean(0)) / X.std(0)).astype(dtype), y


def _same(a, b):
    for k in ("coef_", "intercept_"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert a.n_iter_ == b.n_iter_


@pytest.fixture(params=list(MODES))
def mode(request, monkeypatch):
    """Every test runs pipelined (threshold 0) in each mode, and checks that it did: blocks were
    stepped, from the ring and/or from X as the mode says. The estimators' epochs get the mode
    through the driver's kernel reference; tests that call the kernel pass _pipe(mode)."""
    monkeypatch.setattr(driver, "sgd_epoch",
                        functools.partial(K.sgd_epoch, **_pipe(request.param)))
    ring0, x0 = _sgd_pipeline.block_counts()
    yield request.param
    ring, x = _sgd_pipeline.block_counts()
    assert ring + x > ring0 + x0, "no epoch ran pipelined"
    if request.param in ("all_from_x", "stepped_after_job"):
        assert ring == ring0 and x > x0
    elif request.param == "all_from_ring":
        assert x == x0 and ring > ring0
    elif request.param == "ring_filled_then_stepped_after_job":
        assert x > x0 and ring > ring0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", [
    dict(loss="hinge"),
    dict(loss="log_loss", penalty="elasticnet", l1_ratio=0.3),
    dict(loss="modified_huber", penalty="l1", average=True),
    dict(loss="squared_hinge", learning_rate="invscaling", eta0=0.01),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_classifier_pipelined_epoch_identical_to_one_thread(mode, dtype, kw, weighted):
    X, y = _clf_data(dtype)
    sw = np.random.default_rng(0).uniform(0.1, 2.0, len(y)) if weighted else None
    one = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=1, **kw)
    two = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=2, **kw)
    _same(one.fit(X, y, sample_weight=sw), two.fit(X, y, sample_weight=sw))
    if mode == "real":   # and it trains: scikit-learn's SGD (same settings) as the oracle
        from sklearn.linear_model import SGDClassifier as SkSGD
        sk = SkSGD(max_iter=3, tol=None, random_state=0, **kw).fit(X, y, sample_weight=sw)
        assert two.score(X, y) > sk.score(X, y) - 0.05


@pytest.mark.parametrize("n_threads", [2, 4])
def test_multiclass_and_early_stopping_pipelined(mode, n_threads):
    X, y = _clf_data(np.float64, n_classes=3)
    kw = dict(max_iter=20, tol=1e-3, random_state=1, early_stopping=True, n_iter_no_change=2)
    _same(SGDClassifier(n_threads=1, **kw).fit(X, y),
          SGDClassifier(n_threads=n_threads, **kw).fit(X, y))


def test_regressor_pipelined_identical(mode):
    X, y = make_regression(N, 20, noise=1.0, random_state=0)
    y = (y - y.mean()) / y.std()
    kw = dict(max_iter=3, tol=None, random_state=0, loss="huber")
    _same(SGDRegressor(n_threads=1, **kw).fit(X, y), SGDRegressor(n_threads=2, **kw).fit(X, y))


def _epochs(X, ypm, order, nt, sw=None, epochs=2, **pipe):
    V, b = np.zeros((1, X.shape[1])), np.zeros(1)
    state = np.array([1.0, 1.0, 0.0, 0.0])
    params = K.SGDParams(loss=_linear.LOSS_IDS["log_loss"], schedule=K.SCHEDULES["invscaling"],
                         eta0=0.01, power_t=0.25, alpha=1e-4, opt_init=0.0, l2frac=1.0,
                         batch=1, strategy=_linear.STRATEGIES["samples"])
    tot = [K.sgd_epoch(X, ypm, sw, order, V, b, state, None, None, None, params, nt, **pipe)
           for _ in range(epochs)]
    return tot, V, b, state


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_epoch_loss_is_the_one_thread_sum(mode, dtype):
    """The epoch's summed loss (what tol-based stopping reads) is added row by row in visiting
    order on every path: equal bits, so n_iter_ cannot differ."""
    X, y = _clf_data(dtype)
    ypm = np.where(y == 1, 1.0, -1.0)
    order = np.random.default_rng(5).permutation(len(y)).astype(np.intp)
    runs = [_epochs(X, ypm, order, nt, **_pipe(mode)) for nt in (1, 2, 1, 2)]
    for tot, V, b, state in runs[1:]:
        assert tot == runs[0][0]
        assert np.array_equal(V, runs[0][1]) and np.array_equal(b, runs[0][2])
        assert np.array_equal(state, runs[0][3])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 700), d=st.one_of(st.integers(1, 70), st.integers(500, 2100)), f32=st.booleans(), weighted=st.booleans(),
       seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(list(MODES)))
def test_any_shape_any_mix_identical(n, d, f32, weighted, seed, mode):
    """Hypothesis shapes, from one row and one feature up: blocks of 4 to 32 rows, partial last
    blocks, fewer rows than a block, rings of a few slots that wrap (wide rows), rows too wide to
    pipeline (over 16 KiB); each mode."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32 if f32 else np.float64)
    ypm = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    sw = rng.uniform(0.1, 2.0, n) if weighted else None
    order = rng.permutation(n).astype(np.intp)
    a = _epochs(X, ypm, order, 1, sw, **_pipe(mode))
    b = _epochs(X, ypm, order, 2, sw, **_pipe(mode))
    assert a[0] == b[0]
    for u, v in zip(a[1:], b[1:]):
        assert np.array_equal(u, v)


def test_tol_stopping_identical(mode):
    X, y = _clf_data(np.float64)
    kw = dict(loss="log_loss", max_iter=60, tol=1e-4, random_state=4)
    one = SGDClassifier(n_threads=1, **kw).fit(X, y)
    two = SGDClassifier(n_threads=2, **kw).fit(X, y)
    assert 1 < one.n_iter_ < 60
    _same(one, two)


def test_real_threshold_and_the_gatherer_is_used():
    """At the default threshold, 12+ MiB of rows run pipelined, and in the real mode the
    gatherer fills ring blocks that the stepper reads (a few fits: the second thread must get
    scheduled at all)."""
    assert K.PIPELINE_MIN_BYTES == 12 * 2**20
    n = K.PIPELINE_MIN_BYTES // (20 * 8) + 1000
    X, y = _clf_data(np.float64, n=n)
    ring0, x0 = _sgd_pipeline.block_counts()
    for _ in range(20):
        SGDClassifier(max_iter=1, tol=None, random_state=0, n_threads=2).fit(X, y)
        ring, x = _sgd_pipeline.block_counts()
        if ring > ring0:
            break
    assert ring > ring0, "the gatherer never filled a ring block the stepper used"
    # below the threshold the epoch is the plain 1-thread one
    small = X[: n // 2]
    SGDClassifier(max_iter=1, tol=None, random_state=0, n_threads=2).fit(small, y[: n // 2])
    assert _sgd_pipeline.block_counts() == (ring, x)


@pytest.mark.parametrize("kw, match", [(dict(_pipe_test_mode=5), "_pipe_test_mode"),
                                       (dict(_pipe_test_mode=-1), "_pipe_test_mode"),
                                       (dict(_pipe_min_bytes=-1), "_pipe_min_bytes")])
def test_test_arguments_reject_bad_values(kw, match):
    X, y = _clf_data(np.float64, n=100)
    with pytest.raises(ValueError, match=match):
        _epochs(X, np.where(y == 1, 1.0, -1.0), None, 2, **kw)


def test_test_arguments_are_per_call(mode):
    """A call in a test mode leaves no setting behind: the next call without the arguments runs
    the production epoch (here: data under the threshold, so not pipelined at all)."""
    X, y = _clf_data(np.float64, n=500)
    ypm = np.where(y == 1, 1.0, -1.0)
    order = np.random.default_rng(1).permutation(len(y)).astype(np.intp)
    _epochs(X, ypm, order, 2, **_pipe(mode))        # (pipelined: the fixture's check)
    counts = _sgd_pipeline.block_counts()
    _epochs(X, ypm, order, 2)
    assert _sgd_pipeline.block_counts() == counts
