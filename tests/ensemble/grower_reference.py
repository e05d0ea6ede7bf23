"""The Python-driven best-first grower parml had before the native one (hist_grow.h): the same
rules over the same kernels, one kernel call per step. Kept as the reference the native grower
must equal bitwise."""

import heapq

import numpy as np

from parml._kernels import _histogram as K
from parml._core.grower import MIN_GAIN, Tree, leaf_value


def grow_tree_reference(data, g, h, *, rows=None, max_leaf_nodes=31, max_depth=None, min_samples_leaf=20,
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

    def sums(hist):  # sequential sums, bin by bin (as the native grower adds them)
        G = sum(hist["g"][0].tolist())
        N = int(hist["count"][0].sum())
        H = hconst * N if hconst > 0 else sum(hist["h"][0].tolist())
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
    root = tree.add(N, leaf_value(G, H, l2), 0)
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
        li = tree.add(nl, leaf_value(s["gl"], s["hl"], l2), depth)
        ri = tree.add(len(r) - nl, leaf_value(s["gr"], s["hr"], l2), depth)
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
