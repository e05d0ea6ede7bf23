"""parml._kernels._tree_predict against a naive per-row walk written from the forest's rules
(x <= threshold goes left, NaN follows missing_left, leaf values added per output in tree
order): the unpacked walk and the packed lockstep walk (pack_forest), which must give the same
bits, for float32/float64 X with NaN and inf, deep unbalanced trees (the lockstep step cap),
single-leaf trees, several outputs, leaf vectors, any row count and thread count."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parml._kernels import _tree_predict as TP

THREADS = [1, 2, 4]


def random_tree(rng, n_leaves, d, W=1, chain=False, adjacent=True, spike=0):
    """Node arrays of one tree with children after parents. chain: every split's right child
    splits again (depth = n_leaves - 1). spike: then one leaf grows a chain of that many more
    splits (a deep, unbalanced tree: the lockstep step cap). adjacent=False: right child not
    at left + 1 (what pack_forest must refuse)."""
    feature, threshold, ml, left, right = [0], [0.0], [0], [-1], [-1]
    frontier = [0]
    while len(frontier) < n_leaves + spike:
        in_spike = len(frontier) >= n_leaves
        j = frontier.pop(-1 if chain or in_spike else int(rng.integers(len(frontier))))
        left[j], right[j] = len(left), len(left) + 1
        if not adjacent:
            left[j], right[j] = right[j], left[j]
        feature[j] = int(rng.integers(d))
        threshold[j] = float(rng.choice([rng.standard_normal(), 0.0, np.inf, -np.inf]))
        ml[j] = int(rng.integers(2))
        for _ in range(2):
            feature.append(0); threshold.append(0.0); ml.append(0); left.append(-1)
            right.append(-1)
        frontier += [left[j], right[j]] if not chain else [right[j], left[j]][::-1]
    m = len(left)
    value = rng.standard_normal((m, W)) if W > 1 else rng.standard_normal(m)
    return dict(feature=np.array(feature, np.int32), threshold=np.array(threshold),
                missing_left=np.array(ml, np.uint8), left=np.array(left, np.int32),
                right=np.array(right, np.int32), value=value)


def forest(rng, sizes, d, W=1, n_outputs=1, chain_every=0, adjacent=True, spike=0):
    trees = [random_tree(rng, s, d, W, chain=bool(chain_every) and t % chain_every == 0,
                         adjacent=adjacent, spike=spike if t % 2 else 0)
             for t, s in enumerate(sizes)]
    f = {k: np.ascontiguousarray(np.concatenate([t[k] for t in trees])) for k in trees[0]}
    f["roots"] = np.cumsum([0] + [len(t["left"]) for t in trees[:-1]]).astype(np.int64)
    f["tree_output"] = (np.arange(len(trees)) % n_outputs).astype(np.int32) if W == 1 \
        else np.zeros(len(trees), np.int32)
    return f


def naive(X, f, n_outputs):
    W = 1 if f["value"].ndim == 1 else f["value"].shape[1]
    out = np.zeros((len(X), n_outputs))
    for i, x in enumerate(np.asarray(X, np.float64)):
        for t, r in enumerate(f["roots"]):
            j = 0
            while f["left"][r + j] >= 0:
                v = x[f["feature"][r + j]]
                go_left = bool(f["missing_left"][r + j]) if np.isnan(v) \
                    else v <= f["threshold"][r + j]
                j = f["left"][r + j] if go_left else f["right"][r + j]
            if W == 1:
                out[i, f["tree_output"][t]] += f["value"][r + j]
            else:
                out[i] += f["value"][r + j]
    return out


def data(rng, n, d, dtype, nan_frac=0.1):
    X = rng.standard_normal((n, d))
    X[rng.random((n, d)) < nan_frac] = np.nan
    X[rng.random((n, d)) < 0.02] = np.inf
    X[rng.random((n, d)) < 0.02] = -np.inf
    X[rng.random((n, d)) < 0.05] = 0.0   # ties with threshold 0
    return X.astype(dtype)


def run(X, f, n_outputs, packed, n_threads):
    keys = ("feature", "threshold", "missing_left", "left", "right", "value")
    return TP.predict_forest(X, *(f[k] for k in keys), f["roots"], f["tree_output"], n_outputs,
                             n_threads=n_threads, packed=packed)


def pack(f, d, n_outputs):
    return TP.pack_forest(f["feature"], f["threshold"], f["missing_left"], f["left"],
                          f["right"], f["roots"], d, n_outputs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("W,n_outputs", [(1, 1), (1, 3), (3, 3)])
def test_packed_and_unpacked_match_naive_walk(dtype, n_threads, W, n_outputs, rng):
    d = 5
    f = forest(rng, [1, 2, 31, 7, 40, 3, 16], d, W, n_outputs, chain_every=3, spike=25)
    X = data(rng, 2600, d, dtype)   # > 2 blocks of 1024 rows, not a multiple of 4
    want = naive(X, f, n_outputs)
    p = pack(f, d, n_outputs)
    assert p is not None
    a = run(X, f, n_outputs, None, n_threads)
    b = run(X, f, n_outputs, p, n_threads)
    np.testing.assert_array_equal(a, want)
    np.testing.assert_array_equal(b, want)


@pytest.mark.parametrize("nan_frac", [0.0, 0.2])
def test_steps_capped_for_deep_unbalanced_trees(nan_frac, rng):
    """A bushy tree with a 60-split spike (mean leaf depth ~15, depth ~70) walks capped lockstep
    steps, then the branchy finish: still the naive walk's leaves."""
    f = {k: v for k, v in random_tree(rng, 256, 4, spike=60).items()}
    f["roots"], f["tree_output"] = np.array([0], np.int64), np.array([0], np.int32)
    p = pack(f, 4, 1)
    depth = {0: 0}
    for j in range(len(f["left"])):
        if f["left"][j] >= 0:
            depth[f["left"][j]] = depth[f["right"][j]] = depth[j] + 1
    assert p.steps[0] < max(depth.values())
    X = data(rng, 999, 4, np.float64, nan_frac=nan_frac)
    np.testing.assert_array_equal(run(X, f, 1, p, 2), naive(X, f, 1))


def test_single_leaf_forest_and_empty_rows(rng):
    f = forest(rng, [1, 1], 3)
    p = pack(f, 3, 1)
    assert list(p.steps) == [0, 0]
    X = data(rng, 7, 3, np.float64)
    np.testing.assert_array_equal(run(X, f, 1, p, 1), naive(X, f, 1))
    assert run(X[:0], f, 1, p, 2).shape == (0, 1)


def test_pack_refuses_non_adjacent_children(rng):
    f = forest(rng, [5, 4], 3, adjacent=False)
    assert pack(f, 3, 1) is None
    X = data(rng, 50, 3, np.float64)
    np.testing.assert_array_equal(run(X, f, 1, None, 1), naive(X, f, 1))


def test_pack_bad_input(rng):
    f = forest(rng, [5, 4], 3)
    with pytest.raises(ValueError, match="forest"):
        TP.pack_forest(f["feature"], f["threshold"], f["missing_left"], f["left"],
                       f["right"], f["roots"], 1, 1)          # feature out of range
    bad = f["left"].copy()
    bad[0] = 0                                                 # a cycle
    with pytest.raises(ValueError, match="forest"):
        TP.pack_forest(f["feature"], f["threshold"], f["missing_left"], bad, f["right"],
                       f["roots"], 3, 1)
    other = pack(forest(rng, [3], 3), 3, 1)
    with pytest.raises(ValueError, match="another forest"):
        run(data(rng, 4, 3, np.float64), f, 1, other, 1)
    p = pack(f, 3, 1)
    copy = {k: v.copy() for k, v in f.items()}   # equal arrays, but not the packed ones
    with pytest.raises(ValueError, match="another forest"):
        run(data(rng, 4, 3, np.float64), copy, 1, p, 1)
    keys = ("feature", "threshold", "missing_left", "left", "right", "value")
    with pytest.raises(ValueError, match="too narrow"):   # even with the forest checks skipped
        TP.predict_forest(data(rng, 4, 2, np.float64), *(f[k] for k in keys), f["roots"],
                          f["tree_output"], 1, checked=True, packed=p)
    with pytest.raises(TypeError):
        run(data(rng, 4, 3, np.float64), f, 1, "packed", 1)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6), d=st.integers(1, 6),
       n=st.integers(0, 70), f32=st.booleans(), chain_every=st.integers(0, 3),
       spike=st.integers(0, 30), n_threads=st.sampled_from(THREADS),
       seed=st.integers(0, 2**32 - 1))
def test_packed_walk_hypothesis(sizes, d, n, f32, chain_every, spike, n_threads, seed):
    rng = np.random.default_rng(seed)
    f = forest(rng, sizes, d, chain_every=chain_every, spike=spike)
    X = data(rng, n, d, np.float32 if f32 else np.float64)
    p = pack(f, d, 1)
    np.testing.assert_array_equal(run(X, f, 1, p, n_threads), naive(X, f, 1))


def test_hgb_predicts_through_the_packed_walk(rng):
    """The boosting model packs its forest and walks it packed: same sums as the plain walk."""
    from parml.ensemble import HistGradientBoostingRegressor
    X = data(rng, 3000, 5, np.float64, nan_frac=0.05)
    X[np.isinf(X)] = 0.0
    y = np.nan_to_num(X[:, 0]) * 2 + rng.standard_normal(3000)
    m = HistGradientBoostingRegressor(max_iter=20, early_stopping=False).fit(X, y)
    f, packed = m._forest.flat(), m._forest.packed()
    assert packed is not None and packed.source[0] is f["feature"]
    keys = ("feature", "threshold", "missing_left", "left", "right", "value")
    plain = TP.predict_forest(X, *(f[k] for k in keys), f["roots"], f["tree_output"], 1)
    np.testing.assert_array_equal(m._forest.predict(X, np.zeros((len(X), 1)), 2), plain)
