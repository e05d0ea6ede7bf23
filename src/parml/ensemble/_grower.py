"""Growing one histogram tree from binned data: best-first (max_leaf_nodes) with an optional
max_depth, on parml's histogram kernels. The smaller child's histogram is built and the
sibling's is the parent's minus it. Python drives; every pass over rows is native."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from parml._kernels import _histogram as K

# a split must gain at least this much (guards against splitting on rounding noise)
MIN_GAIN = 1e-7


@dataclass
class Binned:
    """Binned training data and what the kernels need to know about the bins."""
    B: np.ndarray            # (d, n) uint8
    edges: list              # d float64 arrays: bin b holds edges[b-1] < x <= edges[b]
    missing_bin: int
    nbins: int               # histogram slots per feature (missing_bin + 1)
    nb: np.ndarray = field(init=False)  # non-missing bins per feature (int32)

    def __post_init__(self):
        self.nb = np.array([len(e) + 1 for e in self.edges], dtype=np.int32)


def make_bins(X, max_bins=255, subsample=200_000, random_state=0, n_threads=1):
    """Bin edges from quantiles of (a subsample of) X, then X binned: Binned."""
    if not 2 <= max_bins <= 255:
        raise ValueError(f"max_bins must be in 2..255, got {max_bins}")
    n, d = X.shape
    rows = X
    if n > subsample:
        rng = np.random.default_rng(random_state)
        rows = X[np.sort(rng.choice(n, subsample, replace=False))]
    def feature_edges(f):
        col = np.sort(rows[:, f].astype(np.float64))   # NaN sorts last
        col = col[:np.searchsorted(col, np.nan)] if np.isnan(col[-1:]).any() else col
        distinct = col[np.r_[True, col[1:] != col[:-1]]] if len(col) else col
        if len(distinct) <= max_bins:
            e = (distinct[:-1] + distinct[1:]) / 2  # midpoints: each distinct value its own bin
        else:  # quantiles of the sorted column (midpoint rule), without sorting it again
            pos = np.linspace(0, 1, max_bins + 1)[1:-1] * (len(col) - 1)
            e = np.unique((col[np.floor(pos).astype(np.intp)] + col[np.ceil(pos).astype(np.intp)]) / 2)
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
    return Binned(B, edges, missing_bin, missing_bin + 1)


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

    def add(self, count, value, depth):
        for a, v in ((self.feature, 0), (self.bin, -1), (self.threshold, 0.0),
                     (self.missing_left, 0), (self.left, -1), (self.right, -1), (self.gain, 0.0)):
            a.append(v)
        self.value.append(value)
        self.count.append(count)
        self.depth.append(depth)
        return len(self.value) - 1

    def arrays(self):
        return dict(feature=np.array(self.feature, np.int32),
                    threshold=np.array(self.threshold, np.float64),
                    missing_left=np.array(self.missing_left, np.uint8),
                    left=np.array(self.left, np.int32), right=np.array(self.right, np.int32),
                    value=np.array(self.value, np.float64))


def _leaf_value(G, H, l2):
    return -G / (H + l2) if H + l2 > 0 else 0.0


def grow_tree(data, g, h, *, rows=None, max_leaf_nodes=31, max_depth=None, min_samples_leaf=20,
              l2=0.0, min_hessian=1e-3, hconst=0.0, n_threads=1, strategy="features"):
    """One tree on gradients g and hessians h (float32, one per training row; h None with
    hconst > 0 for a constant hessian). Returns (Tree, leaves) where leaves maps each leaf node
    to the int32 rows it holds (for updating raw predictions without walking the tree)."""
    n = data.B.shape[1]
    all_rows = rows is None  # the root then reads every row in order (no gather)
    rows = np.arange(n, dtype=np.int32) if rows is None else np.ascontiguousarray(rows, np.int32)
    tree = Tree()
    node_rows = {}
    span = {}  # node -> (start, stop) in `rows`: partitions work in place, children are sub-spans

    def hist_of(r, all_rows=False):
        # the kernel gathers the node's g/h itself (in parallel), then builds the histogram
        return K.build_histogram(data.B, None if all_rows else r, g, h, data.nbins, strategy,
                                 n_threads, checked=True, gather=not all_rows)

    def sums(hist):
        G = float(hist["g"][0].sum())
        N = int(hist["count"][0].sum())
        H = hconst * N if hconst > 0 else float(hist["h"][0].sum())
        return G, H, N

    def best_split(hist, G, H, N, depth):
        if N < 2 * min_samples_leaf or (max_depth is not None and depth >= max_depth):
            return None
        s = K.find_splits(hist, data.nb, data.missing_bin, G, H, N, l2=l2,
                          min_hessian=min_hessian, min_leaf=min_samples_leaf, hconst=hconst,
                          n_threads=n_threads)
        f = int(np.argmax(s["gain"]))  # first best in feature order: deterministic
        return (f, s[f]) if s["gain"][f] > MIN_GAIN else None

    root_hist = hist_of(rows, all_rows=all_rows)
    G, H, N = sums(root_hist)
    root = tree.add(N, _leaf_value(G, H, l2), 0)
    node_rows[root] = rows
    span[root] = (0, len(rows))
    heap, hists, n_leaves = [], {root: root_hist}, 1
    cand = best_split(root_hist, G, H, N, 0)
    if cand is not None:
        heapq.heappush(heap, (-cand[1]["gain"], root, cand))
    while heap and n_leaves < max_leaf_nodes:
        _, node, (f, s) = heapq.heappop(heap)
        r = node_rows.pop(node)
        nl = K.partition(data.B, r, f, int(s["bin"]), bool(s["missing_left"]), data.missing_bin,
                         checked=True, n_threads=n_threads)
        lr, rr = r[:nl], r[nl:]
        s0, s1 = span.pop(node)
        span_of = {0: (s0, s0 + nl), 1: (s0 + nl, s1)}
        depth = tree.depth[node] + 1
        li = tree.add(nl, _leaf_value(s["gl"], s["hl"], l2), depth)
        ri = tree.add(len(r) - nl, _leaf_value(s["gr"], s["hr"], l2), depth)
        b = int(s["bin"])
        tree.feature[node], tree.bin[node] = f, b
        e = data.edges[f]
        tree.threshold[node] = -np.inf if b < 0 else (e[b] if b < len(e) else np.inf)
        tree.missing_left[node] = int(s["missing_left"])
        tree.left[node], tree.right[node], tree.gain[node] = li, ri, float(s["gain"])
        n_leaves += 1
        parent_hist = hists.pop(node)
        small, big = (lr, rr) if len(lr) <= len(rr) else (rr, lr)
        hs = hist_of(small)
        hb = K.subtract(parent_hist, hs)
        for side, (idx, rws, hh) in enumerate(((li, lr, hs if small is lr else hb),
                                               (ri, rr, hb if small is lr else hs))):
            node_rows[idx] = rws
            span[idx] = span_of[side]
            Gc, Hc, Nc = sums(hh)
            c = best_split(hh, Gc, Hc, Nc, depth)
            if c is not None:
                hists[idx] = hh
                heapq.heappush(heap, (-c[1]["gain"], idx, c))
    tree.rows_buffer = rows
    tree.leaf_spans = span
    return tree, node_rows
