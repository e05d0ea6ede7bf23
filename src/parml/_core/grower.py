"""Binning, and growing one histogram tree from binned data: best-first (max_leaf_nodes) with an
optional max_depth. The whole tree grows in one native call (include/parml/hist_grow.h): the
smaller child's histogram is built and the sibling's is the parent's minus it; Python only
turns the node arrays into a Tree (tree_from_nodes, which parml.dask's trees go through too)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from parml._kernels import _grower as KG
from parml._kernels import _histogram as K

# The growth rules live in the native grower (hist_grow.h), which local fits drive from their
# rows (grow_tree) and parml.dask from summed histograms (Grower): a split must gain more than
# MIN_GAIN (guards against splitting on rounding noise); leaf values are -G / (H + l2).
MIN_GAIN = KG.MIN_GAIN
leaf_value = KG.leaf_value
Grower = KG.Grower
# a split side needs at least this hessian sum (grow_tree's default; parml.dask uses it too)
MIN_HESSIAN = 1e-3


def random_draws(random_state, saved_state=None):
    """The random generator of a HistGradientBoosting fit, and its state to keep for a warm
    start (which replays it: a fit with random_state=None then holds out the same rows).

    Local and Dask fits draw from it in this order, so that both see the same rows:

    1. the validation split, ``train_test_split(..., random_state=rng)``, when early stopping
       holds rows out;
    2. the seed of the bin-edge sample, ``rng.randint(2**31)``;
    3. the seed of the scorer's training-row subsample, ``rng.randint(2**31)`` (local fits).
    """
    if saved_state is not None:
        rng = np.random.RandomState()
        rng.set_state(saved_state)
    else:
        from sklearn.utils import check_random_state
        rng = check_random_state(random_state)
    return rng, rng.get_state()


@dataclass
class Binned:
    """Binned training data and what the kernels need to know about the bins."""
    B: np.ndarray            # (d, n) uint8
    edges: list              # d float64 arrays: bin b holds edges[b-1] < x <= edges[b]
    missing_bin: int
    nbins: int               # histogram slots per feature (missing_bin + 1)
    is_cat: np.ndarray = None  # uint8 (d,) flags of categorical features (bins = codes), or None
    nb: np.ndarray = field(init=False)  # non-missing bins per feature (int32)

    def __post_init__(self):
        self.nb = np.array([len(e) + 1 for e in self.edges], dtype=np.int32)


def _midpoints(a, b):
    """(a + b) / 2, without overflowing to inf for values near the float64 limit."""
    with np.errstate(over="ignore"):
        m = (a + b) / 2
    bad = ~np.isfinite(m)
    if bad.any():
        m[bad] = a[bad] / 2 + b[bad] / 2
    return m


# bin edges come from at most this many rows
BIN_SUBSAMPLE = 200_000


def bin_sample(n, subsample, seed):
    """Which of n rows (sorted indices) the bin edges are computed from, or None for all: the
    same rows for make_bins and for parml.dask, which gathers them from its partitions."""
    if n <= subsample:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, subsample, replace=False))


def make_bins(X, max_bins=255, subsample=BIN_SUBSAMPLE, random_state=0, n_threads=1, is_cat=None,
              edge_rows=None):
    """Bin edges from quantiles of (a subsample of) X, then X binned: Binned. is_cat: boolean
    mask of categorical features, whose values are integer codes < max_bins (checked by the
    caller): a code is its own bin, negative values are missing. edge_rows: the rows edges are
    computed from (default all; e.g. the rows with positive weight, so that a row of weight 0
    changes nothing)."""
    if not 2 <= max_bins <= 255:
        raise ValueError(f"max_bins must be in 2..255, got {max_bins}")
    n, d = X.shape
    cat = np.zeros(d, dtype=bool) if is_cat is None else np.asarray(is_cat, dtype=bool)
    if cat.any():
        neg = [f for f in np.flatnonzero(cat) if (X[:, f] < 0).any()]
        if neg:  # negative codes mean missing: binned as NaN
            X = X.copy()
            for f in neg:
                X[X[:, f] < 0, f] = np.nan
        top = {f: np.nanmax(X[:, f]) if not np.isnan(X[:, f]).all() else 0.0
               for f in np.flatnonzero(cat)}
    rows = X if edge_rows is None else X[edge_rows]
    pick = bin_sample(len(rows), subsample, random_state)
    if pick is not None:
        rows = rows[pick]
    def feature_edges(f):
        if cat[f]:  # codes 0..top: edges at the half-integers, so bin = code
            return np.arange(int(top[f]), dtype=np.float64) + 0.5
        col = np.sort(rows[:, f].astype(np.float64))   # NaN sorts last
        col = col[:np.searchsorted(col, np.nan)] if np.isnan(col[-1:]).any() else col
        distinct = col[np.r_[True, col[1:] != col[:-1]]] if len(col) else col
        if len(distinct) <= max_bins:
            e = _midpoints(distinct[:-1], distinct[1:])  # each distinct value its own bin
        else:  # quantiles of the sorted column (midpoint rule), without sorting it again
            pos = np.linspace(0, 1, max_bins + 1)[1:-1] * (len(col) - 1)
            e = np.unique(_midpoints(col[np.floor(pos).astype(np.intp)],
                                     col[np.ceil(pos).astype(np.intp)]))
        return np.ascontiguousarray(e, dtype=np.float64)

    if n_threads > 1 and d > 1:  # numpy's sort releases the GIL: features in parallel
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(min(n_threads, d)) as ex:
            edges = list(ex.map(feature_edges, range(d)))
    else:
        edges = [feature_edges(f) for f in range(d)]
    missing_bin = max_bins
    B = K.bin_data(np.ascontiguousarray(X) if not X.flags.c_contiguous else X, edges,
                   missing_bin, n_threads)
    return Binned(B, edges, missing_bin, missing_bin + 1,
                  cat.astype(np.uint8) if cat.any() else None)


@dataclass
class Tree:
    """Nodes in creation order (children after parents); left < 0 marks a leaf. After growth,
    rows_buffer is the partitioned row buffer and leaf_spans maps each leaf to its (start, stop)
    in it (what the native raw-score update reads)."""
    feature: list = field(default_factory=list)
    bin: list = field(default_factory=list)
    threshold: list = field(default_factory=list)
    missing_left: list = field(default_factory=list)
    left: list = field(default_factory=list)
    right: list = field(default_factory=list)
    value: list = field(default_factory=list)
    count: list = field(default_factory=list)
    gain: list = field(default_factory=list)
    depth: list = field(default_factory=list)
    rows_buffer: np.ndarray = None
    leaf_spans: dict = field(default_factory=dict)
    node_cat: np.ndarray = None   # uint8 per node: a categorical split (data with categories)
    cats: np.ndarray = None       # uint32 (nodes, 8): the categories each such split sends left

    def add(self, count, value, depth):
        for a, v in ((self.feature, 0), (self.bin, -1), (self.threshold, 0.0),
                     (self.missing_left, 0), (self.left, -1), (self.right, -1), (self.gain, 0.0)):
            a.append(v)
        self.value.append(value)
        self.count.append(count)
        self.depth.append(depth)
        return len(self.value) - 1

    def arrays(self):
        a = dict(feature=np.array(self.feature, np.int32),
                 threshold=np.array(self.threshold, np.float64),
                 missing_left=np.array(self.missing_left, np.uint8),
                 left=np.array(self.left, np.int32), right=np.array(self.right, np.int32),
                 value=np.array(self.value, np.float64))
        if self.node_cat is not None:
            a["node_cat"] = np.ascontiguousarray(self.node_cat, np.uint8)
            a["cats"] = np.ascontiguousarray(self.cats, np.uint32)
        return a


def tree_from_nodes(nodes, edges, categorical=False):
    """A Tree from a grower's node arrays (grow_tree_native or Grower.nodes()): each split's
    threshold is the upper edge of its bin (bin -1: -inf, the last bin: +inf); categorical:
    keep the categorical splits' sets (their threshold is never read)."""
    tree = Tree()
    split = nodes["left"] >= 0
    th = np.zeros(len(split))
    for j in np.flatnonzero(split):
        e, b = edges[nodes["feature"][j]], int(nodes["bin"][j])
        th[j] = -np.inf if b < 0 else (e[b] if b < len(e) else np.inf)
    if categorical:
        tree.node_cat, tree.cats = nodes["node_cat"], nodes["cats"]
        th[nodes["node_cat"] == 1] = 0.0
    tree.feature = nodes["feature"].tolist()
    tree.bin = nodes["bin"].tolist()
    tree.threshold = th.tolist()
    tree.missing_left = nodes["missing_left"].astype(int).tolist()
    tree.left = nodes["left"].tolist()
    tree.right = nodes["right"].tolist()
    tree.value = nodes["value"].tolist()
    tree.count = nodes["count"].tolist()
    tree.gain = nodes["gain"].tolist()
    tree.depth = nodes["depth"].tolist()
    return tree


def grow_tree(data, g, h, *, rows=None, max_leaf_nodes=31, max_depth=None, min_samples_leaf=20,
              l2=0.0, min_hessian=MIN_HESSIAN, hconst=0.0, n_threads=1, strategy="features"):
    """One tree on gradients g and hessians h (float32, one per training row; h None with
    hconst > 0 for a constant hessian), grown best-first in one native call (hist_grow.h).
    Returns (Tree, leaves) where leaves maps each leaf node to the int32 rows it holds (views of
    tree.rows_buffer, for updating raw predictions without walking the tree)."""
    if rows is not None:
        rows = np.array(rows, dtype=np.int32)  # partitioned in place: never the caller's array
    nodes, buf = KG.grow_tree_native(
        data.B, data.nb, data.missing_bin, data.nbins, g, h, hconst if h is None else 0.0, rows,
        max_leaf_nodes, max_depth, min_samples_leaf, l2, min_hessian, strategy, n_threads,
        data.is_cat)
    tree = tree_from_nodes(nodes, data.edges, data.is_cat is not None)
    tree.rows_buffer = buf
    split = nodes["left"] >= 0
    leaves = np.flatnonzero(~split)
    tree.leaf_spans = {int(j): (int(nodes["lo"][j]), int(nodes["hi"][j])) for j in leaves}
    return tree, {j: buf[a:b] for j, (a, b) in tree.leaf_spans.items()}
