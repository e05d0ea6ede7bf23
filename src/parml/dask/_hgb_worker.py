"""The worker side of parml.dask's histogram gradient boosting: input checks and the bin-edge
sample as plain Dask tasks, and the `Shard` actor that keeps one worker's binned rows, raw
scores and row-to-node assignment between the driver's rounds."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

import numpy as np

from parml._kernels import _histogram as K
from parml._core.forest import Forest

from ._common import worker_n_threads

# ---- memory allocator inside Dask workers ----------------------------------------------------
# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536. That also freezes glibc's mmap
# threshold at 128 KiB, so every temporary of 128 KiB or more (gathered gradients, histograms, a
# node's rows) is a fresh mmap whose pages fault in one by one, and the heap is trimmed back
# after almost every call: a 100k-row boosting iteration took 1.5-2x as long in a worker as in
# a plain process. During a shard call both thresholds are raised, so temporaries reuse heap
# memory; after the call they are put back (glibc's 128 KiB mmap threshold, which the variable
# had frozen, and the variable's own trim threshold): whenever parml's code is not running the
# worker's allocator is exactly as Dask configured it.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT_MMAP = 128 * 1024
_CALL_MMAP, _CALL_TRIM = 64 << 20, 256 << 20


def _mallopt():
    """(mallopt, the trim threshold to restore) under glibc with the variable set, else None."""
    value = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if not sys.platform.startswith("linux") or value is None:
        return None  # without the variable glibc adapts its thresholds itself
    try:
        return ctypes.CDLL(None).mallopt, int(value)
    except (OSError, AttributeError, ValueError):  # not glibc, or an odd value: leave it
        return None


_MALLOPT = _mallopt()


@contextlib.contextmanager
def heap_temporaries():
    if _MALLOPT is None:
        yield
        return
    mallopt, trim = _MALLOPT
    mallopt(_M_MMAP_THRESHOLD, _CALL_MMAP)
    mallopt(_M_TRIM_THRESHOLD, _CALL_TRIM)
    try:
        yield
    finally:
        mallopt(_M_TRIM_THRESHOLD, trim)
        mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_MMAP)


def on_heap(fn):
    """fn run under heap_temporaries()."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with heap_temporaries():
            return fn(*args, **kwargs)
    return wrapper


# ---- per-partition tasks ---------------------------------------------------------------------


def as_float_X(X):
    """X as the local fit's validate_data(dtype=[float64, float32], order="C") leaves it, with
    its refusal of infinity (NaN means missing)."""
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"X must be numeric; could not convert {X.dtype} to float: {e}") \
                from e
    if np.isinf(X).any():
        raise ValueError("Input X contains infinity; NaN means missing, infinity is refused.")
    return np.ascontiguousarray(X)


def checked_y(y, is_clf):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if is_clf:
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError("Input y contains NaN.")
        if y.dtype.kind == "O" and any(v is None or (isinstance(v, float) and np.isnan(v))
                                       for v in y):
            raise ValueError("Input y contains NaN or None.")
        return y
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"y must be numeric for a regressor: {e}") from e
    if not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or infinity.")
    return y


def checked_sw(sw):
    if sw is None:
        return None
    sw = np.asarray(sw, dtype=np.float64)
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (sw < 0).any():
        raise ValueError("Negative values in data passed to sample_weight")
    return sw


def check_partition(part, is_clf, want_y):
    """Validate one (X, y, sample_weight) partition (a clear ValueError for bad input) and
    summarise it: rows, features, labels with their row counts (classifier) or the range of
    y (regressor, for the loss's own check), and y itself when the driver draws the
    stratified early-stopping split."""
    X, y, sw = part
    X = as_float_X(X)
    y = checked_y(y, is_clf)
    checked_sw(sw)
    out = {"n": X.shape[0], "d": X.shape[1], "y": y if want_y else None}
    if is_clf:
        out["classes"], out["counts"] = np.unique(y, return_counts=True)
    elif len(y):
        out["range"] = (float(y.min()), float(y.max()))
    return out


def take_train_rows(part, val_mask, idx):
    """Rows idx (sorted) of this partition's training rows: its share of the bin-edge sample."""
    X = as_float_X(part[0])
    if val_mask is not None:
        X = X[~val_mask]
    return X[idx]


def encode_y(y, classes, n_outputs):
    """Targets as the (n, n_outputs) float64 matrix the loss reads (the local encoding)."""
    if classes is None:
        return np.asarray(y, dtype=np.float64).reshape(-1, 1)
    yi = np.searchsorted(classes, y)
    if n_outputs == 1:
        return yi.reshape(-1, 1).astype(np.float64)
    return np.eye(n_outputs)[yi]


# ---- the actor ---------------------------------------------------------------------------------


class Shard:
    """The training rows of the partitions placed on one worker, binned once and kept there.

    Lives as a Dask actor: the driver calls `stats`, `begin` and `expand` on it directly, one
    message each way with no scheduler hop, which keeps a round at a few milliseconds (a round
    of ordinary tasks costs about 20 ms on the 2-vCPU test machine). Its state is a function of
    (partitions, bin edges, baseline, trees so far) only, so the driver rebuilds a lost shard
    on another worker from exactly those (`spec`) and the fit goes on unchanged.

    spec: n_threads, est (the unfitted local estimator: its loss methods), is_clf, classes,
    n_outputs, class_weight (per class, or None), edges, missing_bin, nbins, baseline (None
    before boosting starts), trees ([(arrays, output)] boosted so far), iter_done.
    """

    @on_heap
    def __init__(self, parts, val_masks, spec):
        self.nt = worker_n_threads(spec["n_threads"])
        self.est = spec["est"]
        self.is_clf = spec["is_clf"]
        self.K = spec["n_outputs"]
        self.missing_bin, self.nbins = spec["missing_bin"], spec["nbins"]
        edges = spec["edges"]
        self.d = len(edges)
        cw = spec.get("class_weight")
        rebuild = spec.get("baseline") is not None
        Bs, Ys, Ws, Xvs, Yvs, Wvs, Xts = [], [], [], [], [], [], []
        for (X, y, sw), mask in zip(parts, val_masks):
            X = as_float_X(X)
            y = checked_y(y, self.is_clf)
            Y = encode_y(y, spec["classes"], self.K)
            sw = checked_sw(sw)
            if cw is not None:  # the local order: sample weight times class weight
                w = cw[np.searchsorted(spec["classes"], y)]
                sw = w if sw is None else sw * w
            if mask is not None:  # validation rows stay raw: scored like the local fit's
                Xvs.append(X[mask])
                Yvs.append(Y[mask])
                Wvs.append(None if sw is None else sw[mask])
                X, Y = np.ascontiguousarray(X[~mask]), Y[~mask]
                sw = None if sw is None else sw[~mask]
            Bs.append(K.bin_data(X, edges, self.missing_bin, self.nt))
            Ys.append(Y)
            Ws.append(sw)
            if rebuild:
                Xts.append(X)
        self.B = np.ascontiguousarray(np.concatenate(Bs, axis=1)) if Bs \
            else np.zeros((self.d, 0), np.uint8)
        self.Y = np.concatenate(Ys) if Ys else np.zeros((0, self.K))
        self.sw = None if not Ws or Ws[0] is None else np.concatenate(Ws)
        self.validation = bool(val_masks) and val_masks[0] is not None
        self.Xv = self.Yv = self.swv = None
        if self.validation:
            self.Xv = np.ascontiguousarray(np.concatenate(Xvs))
            self.Yv = np.concatenate(Yvs)
            self.swv = None if Wvs[0] is None else np.concatenate(Wvs)
        self.n = self.B.shape[1]
        self._native_gradients()
        # the local estimator's rule for the histogram strategy, on this worker's threads
        self.strategy = "features" if self.d >= 2 * self.nt else "samples"
        self.raw = self.raw_val = None
        self.iter_done = 0
        self.rows = {}
        self.g = self.h = None
        if rebuild:
            self._replay(spec, Xts)

    def _native_gradients(self):
        """The local fit's gradient kernel for this loss when it has one (parml._kernels._boost:
        float32 g and h with the weights applied, bit-identical to the numpy formulas and
        faster); None: the loss's numpy gradients, as the local fit then uses."""
        self.kind = None
        loss = self.est._loss_fn() if hasattr(self.est, "_loss_fn") else None
        if loss is None or not hasattr(loss, "native"):
            return
        try:
            from parml._kernels import _boost
        except ImportError:
            return
        self.kind, self._boost = loss.native(self.K), _boost
        if self.kind is None:
            return
        Y = self.Y
        self.y_native = np.ascontiguousarray(Y[:, 0] if self.K == 1 else np.argmax(Y, axis=1),
                                             np.float64)
        self.g_buf = np.empty((self.K, self.n), np.float32)
        const_h = self.kind == "squared_error" and self.sw is None
        self.h_buf = None if const_h else np.empty((self.K, self.n), np.float32)

    def _gradients(self):
        """Per output: float32 (g, h) at the current raw scores, sample weights folded in (h
        None: constant hessian 1), exactly as the local fit computes them."""
        if self.kind is not None:
            self._boost.gradients(self.kind, self.raw, self.y_native, self.sw, self.g_buf,
                                  self.h_buf, self.nt)
            return [(self.g_buf[k], None if self.h_buf is None else self.h_buf[k])
                    for k in range(self.K)]
        out = []
        for g, h in self.est._gradients(self.raw, self.Y):
            if self.sw is not None:
                g = g * self.sw
                h = (h if h is not None else np.ones_like(g)) * self.sw
            out.append((np.ascontiguousarray(g, np.float32),
                        None if h is None else np.ascontiguousarray(h, np.float32)))
        return out

    def __sizeof__(self):  # what Dask's memory accounting should see
        arrays = (self.B, self.Y, self.sw, self.raw, self.raw_val, self.Xv)
        return sum(a.nbytes for a in arrays if a is not None)

    def _init_raw(self, baseline):
        self.raw = np.tile(np.asarray(baseline, np.float64), (self.n, 1))
        if self.validation:
            self.raw_val = np.tile(np.asarray(baseline, np.float64), (len(self.Xv), 1))

    def _replay(self, spec, Xts):
        """Raw scores after spec["iter_done"] iterations, by walking the trees over the raw
        rows one tree at a time: each row gets the same additions in the same order as in the
        fit itself (baseline, then each tree's leaf value), so the scores are bit-identical."""
        self._init_raw(spec["baseline"])
        blocks, start = [], 0
        for Xt in Xts:
            blocks.append((Xt, self.raw[start:start + len(Xt)]))  # views into self.raw
            start += len(Xt)
        if self.validation:
            blocks.append((self.Xv, self.raw_val))
        for arrays, k in spec["trees"]:
            one = Forest(self.K)
            one.add(arrays, k)
            for X, out in blocks:
                one.predict(X, out, self.nt)
        self.iter_done = spec["iter_done"]

    def _loss_sums(self, raw, Y, sw):
        """(weighted loss total, weight total): the driver divides the sums over shards."""
        w = float(len(Y)) if sw is None else float(sw.sum())
        if len(Y) == 0 or w <= 0:
            return 0.0, 0.0
        return self.est._loss(raw, Y, sw) * w, w

    # ---- driver calls ------------------------------------------------------------------------
    @on_heap
    def stats(self):
        """(weight total, weighted sum of Y per output): the driver's baseline."""
        if self.sw is None:
            return float(self.n), self.Y.sum(axis=0)
        return float(self.sw.sum()), (self.Y * self.sw[:, None]).sum(axis=0)

    @on_heap
    def begin(self, it, update, baseline, grow, want_scores):
        """Start iteration `it`: add the previous iteration's leaf values to the raw scores
        (unless done already: the driver repeats `begin` after rebuilding a lost shard), score
        the model so far, and (grow) compute gradients and each tree's root histogram.

        update: None or {"splits": instructions still to apply, "leaves": [(output,
        {sid: value})], "trees": [(arrays, output)] (for the validation rows)}.
        Returns (scores or None, packed root histograms (K, d, nbins) or None)."""
        if self.raw is None:
            self._init_raw(baseline)
        if update is not None and self.iter_done == it - 1:
            self._split(update["splits"])
            for k, values in update["leaves"]:
                for sid, v in values.items():
                    self.raw[self.rows[(k, sid)], k] += v
            if self.validation:
                for arrays, k in update["trees"]:
                    one = Forest(self.K)
                    one.add(arrays, k)
                    one.predict(self.Xv, self.raw_val, self.nt)
            self.iter_done = it
        if self.iter_done != it:
            raise RuntimeError(f"parml.dask: shard at iteration {self.iter_done}, driver at {it} "
                               f"(internal error)")
        self.rows = {}
        scores = None
        if want_scores:
            scores = (self._loss_sums(self.raw, self.Y, self.sw),
                      self._loss_sums(self.raw_val, self.Yv, self.swv)
                      if self.validation else None)
        if not grow:
            return scores, None
        grads = self._gradients()
        self.g, self.h = [g for g, _ in grads], [h for _, h in grads]
        hists = np.empty((self.K, self.d, self.nbins), dtype=K.HBIN)
        all_rows = np.arange(self.n, dtype=np.int32)
        for k in range(self.K):
            self.rows[(k, 0)] = all_rows
            K.build_histogram(self.B, None, self.g[k], self.h[k], self.nbins, self.strategy,
                              self.nt, out=hists[k], checked=True)
        return scores, pack(hists, self.h[0] is None)

    @on_heap
    def expand(self, it, instructions):
        """Split nodes' rows; for each split that asks for one, build the histogram of the
        child the driver says is smaller (by the global counts, the local grower's choice).
        instructions: tuples (output, sid, feature, bin, missing_left, left sid, right sid,
        small is left, histogram wanted). Returns those histograms, (m, d, nbins), packed."""
        if self.iter_done != it:
            raise RuntimeError(f"parml.dask: shard at iteration {self.iter_done}, driver at {it} "
                               f"(internal error)")
        return self._split(instructions)

    def _split(self, instructions):
        m = sum(1 for ins in instructions if ins[-1])
        out = np.empty((m, self.d, self.nbins), dtype=K.HBIN)
        i = 0
        for k, sid, f, b, ml, lsid, rsid, small_left, want in instructions:
            r = self.rows.pop((k, sid))
            # the root's rows are shared by the K trees of an iteration: partition a copy
            r = r.copy() if sid == 0 else r
            nl = K.partition(self.B, r, f, b, ml, self.missing_bin, checked=True)
            lr, rr = r[:nl], r[nl:]
            self.rows[(k, lsid)], self.rows[(k, rsid)] = lr, rr
            if want:
                small = lr if small_left else rr
                g, h = self.g[k], self.h[k]
                K.build_histogram(self.B, small, g[small], None if h is None else h[small],
                                  self.nbins, self.strategy, self.nt, out=out[i], checked=True)
                i += 1
        return pack(out, not self.h or self.h[0] is None)


def pack(hists, hconst):
    """Histograms for the wire without the pad field, and without h under a constant hessian
    (all zeros then): 12 or 20 bytes a bin instead of 24."""
    fields = ("g", "count") if hconst else ("g", "h", "count")
    return {f: np.ascontiguousarray(hists[f]) for f in fields}


def sum_packed(packed):
    """The shards' packed histograms added in shard order (fixed: the same bits every run), as
    HBIN records; and whether the hessian is constant (no h sent)."""
    total = {k: v.copy() for k, v in packed[0].items()}
    for p in packed[1:]:
        for k in total:
            total[k] += p[k]
    out = np.zeros(total["g"].shape, dtype=K.HBIN)
    for k, v in total.items():
        out[k] = v
    return out, "h" not in total
