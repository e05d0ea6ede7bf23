"""A plain numpy / Python reference of ONE decision tree grown on binned data, used only by the
tests of parml._kernels._tree_build (with every feature evaluated at each node, so no random
draw matters except for ties).

Written from the rules (scikit-learn's, on bins), not from the C code's formulas:

* data: B (d, n) uint8 bins, bin ``missing_bin`` = missing; y class indices (gini, entropy) or
  float targets (squared_error); w per-row weights. Rows with w <= 0 are not in the tree.
* a node is a leaf when depth >= max_depth, n_rows < min_samples_split, n_rows <
  2 * min_samples_leaf, W < 2 * min_weight_leaf (min_weight_leaf = min_weight_fraction_leaf x
  the tree's total weight), impurity <= 1e-12, no admissible split exists, or the best weighted
  impurity decrease / total weight + 1e-12 < min_impurity_decrease.
* candidate splits of a node, per feature, per occupied (non-missing) bin u: "bins <= u left,
  missing right" and "bins <= u left, missing left"; "every value left, missing right" when the
  node has missing rows (the partition "missing alone left" is the same split mirrored). A split
  is admissible when each side has >= min_samples_leaf rows and weight >= min_weight_leaf and > 0.
* gain = W imp(node) - W_L imp(L) - W_R imp(R) with gini (1 - sum p^2), entropy in bits
  (-sum p log2 p) and the weighted variance, each computed directly from its side's rows.
* where missing rows go at predict time when the node had none: the side with more rows (equal
  sides: either, see same_split).

Two uses: ``verify_tree`` walks a tree made by the builder and checks, node by node, that every
stored number is right and every decision (leaf or split, and which split) is one the rules
allow -- robust to ties, since any split within tolerance of the best is accepted and the walk
follows the builder's own partition; ``grow_naive`` grows its own tree (first best split in
(feature, bin, side) order) for data without ties, compared through leaf partitions.
"""

from __future__ import annotations

import numpy as np

PURE = 1e-12  # impurity at or below which a node is a leaf (the builder's documented rule)


# ---- node statistics, straight from the rows -------------------------------------------------
def node_value(crit, y, w, K):
    """Leaf value: class weight fractions (K,) or the weighted mean (1,)."""
    W = w.sum()
    if crit == "squared_error":
        return np.array([np.sum(w * y) / W if W > 0 else 0.0])
    v = np.array([w[y == k].sum() for k in range(K)], dtype=np.float64)
    return v / W if W > 0 else v


def node_impurity(crit, y, w, K):
    W = w.sum()
    if W <= 0:
        return 0.0
    if crit == "squared_error":
        mean = np.sum(w * y) / W
        return float(np.sum(w * (y - mean) ** 2) / W)
    p = node_value(crit, y, w, K)
    if crit == "gini":
        return float(1.0 - np.sum(p * p))
    q = p[p > 0]
    return float(-np.sum(q * np.log2(q)))


def _side_impurities(crit, masks, y, w, K):
    """Impurity of the rows selected by each row of the boolean matrix `masks` (c, m), and
    their weights, computed directly (no running sums)."""
    Wm = masks @ w
    if crit == "squared_error":
        wy = masks @ (w * y)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(Wm > 0, wy / np.where(Wm > 0, Wm, 1), 0.0)
        sse = (masks * w[None, :] * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
        return np.where(Wm > 0, sse / np.where(Wm > 0, Wm, 1), 0.0), Wm
    onehot = (y[:, None] == np.arange(K)[None, :]) * w[:, None]
    cw = masks @ onehot                                   # (c, K) class weights per side
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(Wm[:, None] > 0, cw / np.where(Wm > 0, Wm, 1)[:, None], 0.0)
    if crit == "gini":
        imp = 1.0 - np.sum(p * p, axis=1)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            imp = -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0.0), axis=1)
    return np.where(Wm > 0, imp, 0.0), Wm


def candidates(crit, Bn, y, w, K, missing_bin, min_leaf, min_wleaf):
    """Every admissible split of a node: list of (gain, feature, bin, missing_left, left_mask,
    tie), tie meaning the node has no missing rows and both sides have as many rows (where
    missing values go at predict time is then a convention, see same_split).

    Bn: (d, m) bins of the node's rows; y, w: the node's rows."""
    d, m = Bn.shape
    W = w.sum()
    parent = node_impurity(crit, y, w, K)
    out = []
    for f in range(d):
        b = Bn[f].astype(np.int64)
        miss = b == missing_bin
        n_miss = int(miss.sum())
        vals = np.unique(b[~miss])
        if len(vals) == 0 or (len(vals) == 1 and n_miss == 0):
            continue  # all missing, or constant: no split
        descr, masks = [], []
        for j, u in enumerate(vals):
            last = j == len(vals) - 1
            le = (b <= u) & ~miss
            if not last or n_miss:            # missing right (at the last bin: values vs missing)
                descr.append((u, 0))
                masks.append(le)
            if n_miss and not last:           # missing left
                descr.append((u, 1))
                masks.append(le | miss)
        masks = np.array(masks, dtype=bool)
        mf = masks.astype(np.float64)
        nl = masks.sum(axis=1)
        nr = m - nl
        impL, WL = _side_impurities(crit, mf, y, w, K)
        impR, WR = _side_impurities(crit, 1.0 - mf, y, w, K)
        gain = W * parent - WL * impL - WR * impR
        for c, (u, side) in enumerate(descr):
            if nl[c] < min_leaf or nr[c] < min_leaf:
                continue
            if WL[c] < min_wleaf or WR[c] < min_wleaf or WL[c] <= 0 or WR[c] <= 0:
                continue
            # no missing rows here: missing values at predict time follow the larger side;
            # with equal sides either direction is accepted (see same_split)
            mleft = side if n_miss else int(nl[c] > nr[c])
            tie = not n_miss and nl[c] == nr[c]
            # "every value left, missing right": the builder records it on the feature's last
            # bin (threshold +inf), any bin >= u partitions the node the same way
            all_left = side == 0 and u == vals[-1]
            out.append((float(gain[c]), f, int(u), int(mleft), masks[c], tie, all_left))
    return out


def gain_tolerance(crit, y, w):
    """Absolute tolerance of a gain: rounding of the builder's running sums."""
    if crit == "squared_error":
        return 1e-9 * float(np.sum(w * (np.abs(y) + 1.0) ** 2))
    return 1e-9 * float(np.sum(w) + 1.0)


class Params:
    def __init__(self, max_depth=None, min_samples_split=2, min_samples_leaf=1,
                 min_weight_fraction_leaf=0.0, min_impurity_decrease=0.0, max_leaf_nodes=None):
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.min_weight_fraction_leaf = min_weight_fraction_leaf
        self.min_impurity_decrease = min_impurity_decrease
        self.max_leaf_nodes = max_leaf_nodes


def node_decision(crit, Bn, y, w, K, missing_bin, depth, p: Params, W_root):
    """(impurity, list of admissible candidates, best gain or None, is_leaf)."""
    m = len(y)
    W = w.sum()
    imp = node_impurity(crit, y, w, K)
    min_wleaf = p.min_weight_fraction_leaf * W_root
    if ((p.max_depth is not None and depth >= p.max_depth) or m < p.min_samples_split
            or m < 2 * p.min_samples_leaf or W < 2 * min_wleaf or imp <= PURE):
        return imp, [], None, True
    cands = candidates(crit, Bn, y, w, K, missing_bin, p.min_samples_leaf, min_wleaf)
    if not cands:
        return imp, [], None, True
    best = max(c[0] for c in cands)
    if best / W_root + 1e-12 < p.min_impurity_decrease:
        return imp, cands, best, True
    return imp, cands, best, False


# ---- checking a tree the builder made ---------------------------------------------------------
def same_split(cand, key):
    """Is candidate `cand` the split key = (feature, bin, missing_left)? For a node without
    missing rows and two equal sides, either missing direction is accepted here (scikit-learn
    sends missing values right then, parml left; tested at the estimator level)."""
    if cand[1] != key[0] or not (cand[2] == key[1] or (cand[6] and key[1] >= cand[2])):
        return False
    return cand[5] or cand[3] == key[2]


def verify_tree(nodes, B, y, w, K, crit, missing_bin, p: Params, *, value_rtol=1e-12):
    """Walk the builder's tree `nodes` (dict of arrays from build_trees) over the rows with w > 0
    and assert every node's statistics and decision. Returns the number of leaves.

    Depth-first trees: every split node must hold an admissible split whose gain is the best
    within tolerance, and every leaf must be one the rules make a leaf. Best-first trees
    (p.max_leaf_nodes): a leaf may also be a splittable node left over when the leaf budget ran
    out; the order of expansion (recovered from child ids, which the builder hands out in
    expansion order) must take the largest gain first."""
    rows = np.flatnonzero(w > 0)
    W_root = w[rows].sum()
    best_first = p.max_leaf_nodes is not None
    info = {}  # node id -> (best gain or None, splittable)

    def check(nid, r, depth):
        yn, wn = y[r], w[r]
        Bn = B[:, r]
        assert nodes["count"][nid] == len(r), (nid, nodes["count"][nid], len(r))
        tol_w = 1e-12 * max(1.0, wn.sum())
        assert abs(nodes["wsum"][nid] - wn.sum()) <= tol_w, (nid, nodes["wsum"][nid], wn.sum())
        assert nodes["depth"][nid] == depth, (nid, nodes["depth"][nid], depth)
        v = node_value(crit, yn, wn, K)
        np.testing.assert_allclose(nodes["value"][nid], v, rtol=value_rtol,
                                   atol=value_rtol * (1 + np.abs(v).max()),
                                   err_msg=f"value of node {nid}")
        imp, cands, best, leaf = node_decision(crit, Bn, yn, wn, K, missing_bin, depth, p, W_root)
        scale = 1.0 if crit != "squared_error" else max(1.0, float(np.max(yn ** 2)))
        assert abs(nodes["impurity"][nid] - imp) <= 1e-9 * scale, (nid, nodes["impurity"][nid], imp)
        tol = gain_tolerance(crit, yn, wn)
        is_leaf = nodes["left"][nid] < 0
        info[nid] = (best, not leaf)
        if is_leaf:
            if not leaf and not best_first:
                raise AssertionError(f"node {nid} is a leaf but may split (best gain {best}, "
                                     f"{len(r)} rows, depth {depth})")
            assert nodes["feature"][nid] == -2, (nid, nodes["feature"][nid])
            return 1
        assert not leaf, (f"node {nid} splits but the rules make it a leaf "
                          f"({len(r)} rows, depth {depth}, impurity {imp}, best gain {best})")
        key = (int(nodes["feature"][nid]), int(nodes["bin"][nid]), int(nodes["missing_left"][nid]))
        match = [c for c in cands if same_split(c, key)]
        assert match, f"node {nid}: split {key} is not an admissible split"
        g = match[0][0]
        assert g >= best - tol, f"node {nid}: split {key} gain {g} < best {best}"
        assert abs(nodes["gain"][nid] - g) <= tol, (nid, nodes["gain"][nid], g)
        lmask = match[0][4]
        nl = check(int(nodes["left"][nid]), r[lmask], depth + 1)
        nr = check(int(nodes["right"][nid]), r[~lmask], depth + 1)
        return nl + nr

    n_leaves = check(0, rows, 0)
    # every node reached exactly once
    assert len(info) == len(nodes["left"]), (len(info), len(nodes["left"]))
    if best_first:
        _verify_best_first(nodes, info, p.max_leaf_nodes, n_leaves, gain_tol=1e-9 * (1 + W_root)
                           if crit != "squared_error" else gain_tolerance(crit, y[rows], w[rows]))
    return n_leaves


def _verify_best_first(nodes, info, max_leaf_nodes, n_leaves, gain_tol):
    left = nodes["left"]
    splits = sorted(np.flatnonzero(left >= 0), key=lambda i: left[i])  # expansion order
    assert n_leaves <= max_leaf_nodes
    frontier = {0}
    for s in splits:
        assert s in frontier, f"node {s} expanded before it existed"
        g = info[s][0]
        for o in frontier:
            if info[o][1]:
                assert g >= info[o][0] - gain_tol, (
                    f"best-first expanded node {s} (gain {g}) before node {o} (gain {info[o][0]})")
        frontier.remove(s)
        frontier |= {int(left[s]), int(nodes["right"][s])}
    if n_leaves < max_leaf_nodes:
        rest = [o for o in frontier if info[o][1]]
        assert not rest, f"leaf budget left ({n_leaves} < {max_leaf_nodes}) but {rest} may split"


# ---- a tree of its own ----------------------------------------------------------------------
def grow_naive(B, y, w, K, crit, missing_bin, p: Params):
    """Grow a tree: list of nodes (dicts) with 'rows', 'value', 'feature', 'bin',
    'missing_left', 'left', 'right' (ids; -1 for leaves), 'depth'. Ties: first candidate in
    (feature, bin, missing side) order. Depth-first unless p.max_leaf_nodes (best-first: largest
    gain first, ties to the node created first)."""
    rows = np.flatnonzero(w > 0)
    W_root = w[rows].sum()
    tree = []

    def make(r, depth):
        _, cands, best, leaf = node_decision(crit, B[:, r], y[r], w[r], K, missing_bin, depth,
                                             p, W_root)
        nid = len(tree)
        node = dict(rows=r, depth=depth, value=node_value(crit, y[r], w[r], K), left=-1,
                    right=-1, feature=-2, bin=-1, missing_left=0)
        if not leaf:
            c = next(c for c in cands if c[0] == best)
            node.update(split=c)
        tree.append(node)
        return nid

    def do_split(nid):
        node = tree[nid]
        _, f, u, ml, mask, _, _ = node.pop("split")
        node.update(feature=f, bin=u, missing_left=ml)
        r = node["rows"]
        node["left"] = make(r[mask], node["depth"] + 1)
        node["right"] = make(r[~mask], node["depth"] + 1)
        return node["left"], node["right"]

    root = make(rows, 0)
    if p.max_leaf_nodes is None:
        stack = [root]
        while stack:
            nid = stack.pop()
            if "split" in tree[nid]:
                lft, rgt = do_split(nid)
                stack += [rgt, lft]
    else:
        leaves = 1
        while leaves < p.max_leaf_nodes:
            open_ = [i for i, nd in enumerate(tree) if "split" in nd]
            if not open_:
                break
            nid = max(open_, key=lambda i: (tree[i]["split"][0], -i))
            do_split(nid)
            leaves += 1
        for nd in tree:
            nd.pop("split", None)
    return tree


def naive_leaf_values(tree, n, W):
    """(n, W) leaf value of each training row of a naive tree (NaN for rows not in it)."""
    out = np.full((n, W), np.nan)
    for nd in tree:
        if nd["left"] < 0:
            out[nd["rows"]] = nd["value"]
    return out


# ---- walking trees on binned data -------------------------------------------------------------
def apply_binned(nodes, B, missing_bin, rows=None):
    """Leaf id of each row (columns of B) in a builder tree (local node ids)."""
    n = B.shape[1]
    rows = range(n) if rows is None else rows
    out = []
    for i in rows:
        k = 0
        while nodes["left"][k] >= 0:
            b = int(B[nodes["feature"][k], i])
            go_left = nodes["missing_left"][k] if b == missing_bin else b <= nodes["bin"][k]
            k = nodes["left"][k] if go_left else nodes["right"][k]
        out.append(k)
    return np.array(out, dtype=np.int64)


def oob_sums_naive(trees, inbag, B, missing_bin):
    """Per row: sum of the leaf values of the trees whose in-bag bit for the row is clear, and
    how many such trees; walked tree by tree in order."""
    n = B.shape[1]
    W = trees[0]["value"].shape[1]
    total = np.zeros((n, W))
    count = np.zeros(n, dtype=np.int64)
    for t, nodes in enumerate(trees):
        bits = np.unpackbits(inbag[t], bitorder="little")[:n].astype(bool)
        out = np.flatnonzero(~bits)
        if len(out) == 0:
            continue
        leaves = apply_binned(nodes, B, missing_bin, out)
        total[out] += nodes["value"][leaves]
        count[out] += 1
    return total, count
