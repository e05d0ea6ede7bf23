"""SGD's shuffle="blocks": a random order of 64-row blocks, rows in order within a block."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import make_classification

from parml.linear_model import SGDClassifier, SGDRegressor
from parml.linear_model._sgd import SHUFFLE_BLOCK, _block_order


@given(n=st.integers(0, 700), sub=st.booleans(), seed=st.integers(0, 2**31))
def test_block_order_is_a_permutation_of_whole_blocks(n, sub, seed):
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(max(n, 1) * 2, n, replace=False)).astype(np.intp) if sub else None
    order = _block_order(n, np.random.RandomState(seed % 2**32), idx)
    base = np.arange(n) if idx is None else idx
    assert np.array_equal(np.sort(order), np.sort(base))
    # each block of SHUFFLE_BLOCK positions of `base` appears once, whole, in order
    pos = np.searchsorted(base, order)
    blk = pos // SHUFFLE_BLOCK
    runs = np.flatnonzero(np.r_[True, blk[1:] != blk[:-1]]) if n else np.zeros(0, int)
    assert len(runs) == len(np.unique(blk))
    for a, b in zip(runs, np.r_[runs[1:], n]):
        assert np.array_equal(pos[a:b], np.arange(pos[a], pos[a] + (b - a)))
        assert pos[a] % SHUFFLE_BLOCK == 0


def test_block_order_shuffles_blocks():
    order = _block_order(64 * 50, np.random.RandomState(0))
    firsts = order[::SHUFFLE_BLOCK] // SHUFFLE_BLOCK
    assert sorted(firsts) == list(range(50)) and list(firsts) != list(range(50))


@pytest.mark.parametrize("loss", ["hinge", "log_loss", "modified_huber"])
def test_blocks_train_as_well_as_rows(loss):
    X, y = make_classification(20_000, 20, n_informative=10, random_state=1)
    X = (X - X.mean(0)) / X.std(0)
    kw = dict(loss=loss, max_iter=5, tol=None, random_state=0)
    rows = SGDClassifier(**kw).fit(X[:15_000], y[:15_000]).score(X[15_000:], y[15_000:])
    blocks = SGDClassifier(shuffle="blocks", **kw).fit(X[:15_000], y[:15_000])
    assert blocks.score(X[15_000:], y[15_000:]) >= rows - 0.01
    again = SGDClassifier(shuffle="blocks", **kw).fit(X[:15_000], y[:15_000])
    assert np.array_equal(blocks.coef_, again.coef_)  # random_state fixes the order


def test_blocks_differ_from_no_shuffle_and_work_for_regression(rng):
    X = rng.standard_normal((3000, 5))
    y = X @ np.arange(1.0, 6.0) + 0.1 * rng.standard_normal(3000)
    a = SGDRegressor(shuffle="blocks", max_iter=3, tol=None, random_state=0).fit(X, y)
    b = SGDRegressor(shuffle=False, max_iter=3, tol=None, random_state=0).fit(X, y)
    assert not np.array_equal(a.coef_, b.coef_)
    np.testing.assert_allclose(a.coef_, np.arange(1.0, 6.0), atol=0.1)


@pytest.mark.parametrize("bad", ["rows", 2, None])
def test_bad_shuffle(bad):
    X, y = make_classification(100, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(ValueError, match="shuffle"):
        SGDClassifier(shuffle=bad).fit(X, y)
