"""Input handling for the MLPs: validation before any kernel runs, conversion to the training
dtype, and a row source that serves in-memory arrays whole and streams an np.memmap in chunks."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_array, column_or_1d, validate_data

from parml._kernels import _linear
from parml._core.rows import _STREAM, check_memmap_X, plain_rows


def _finite(X, n_threads, name, dtype):
    if not _linear.all_finite(X, n_threads):
        raise ValueError(f"Input {name} contains NaN or infinity, or values too large for "
                         f"{np.dtype(dtype).name}; the MLP needs finite values (impute, drop or "
                         "scale them first).")


def _as_dtype(X, dtype, n_threads, name="X"):
    """X (float32/float64, C-contiguous) as dtype, checked finite before and after converting."""
    _finite(X, n_threads, name, X.dtype)
    if X.dtype != dtype:
        with np.errstate(over="ignore"):  # overflow is reported just below, as a ValueError
            X = X.astype(dtype)
        _finite(X, n_threads, name, dtype)
    return X


class Source:
    """The training rows. In-memory X is one converted array; a memmap is read in chunks of about
    64 MiB (parml.linear_model.stream_chunk_bytes), each converted on its own, so the data are
    never copied whole."""

    def __init__(self, X, dtype, n_threads, sample_weight):
        self.X = X
        self.n, self.n_features = X.shape
        self.dtype = np.dtype(dtype)
        self.n_threads = n_threads
        self.streamed = isinstance(X, np.memmap)
        rows = max(1, _STREAM["chunk_bytes"] // max(1, self.n_features * self.dtype.itemsize))
        self.chunk_rows = rows if self.streamed else max(self.n, 1)
        self.sample_weight = sample_weight

    def align_chunks(self, batch):
        """Make streamed chunks whole multiples of the batch size, so that without shuffling the
        batches are exactly those of the in-memory fit."""
        if self.streamed:
            self.chunk_rows = max(batch, self.chunk_rows // batch * batch)

    def chunk(self, s, e):
        c = self.X[s:e]
        if self.streamed:
            if c.dtype == self.dtype and c.flags.c_contiguous:
                return np.asarray(c)  # a view of the mapping
            with np.errstate(over="ignore"):
                return np.ascontiguousarray(c, dtype=self.dtype)
        return c

    def check_finite(self):
        if self.streamed:
            for s in range(0, self.n, self.chunk_rows):
                _finite(self.chunk(s, s + self.chunk_rows), self.n_threads, "X", self.dtype)

    def take(self, rows):
        """X[rows] as a converted in-memory array (rows sorted)."""
        return np.ascontiguousarray(self.X[rows], dtype=self.dtype)

    def epoch_parts(self, Y, order, sorted_rows, max_rows=None):
        """Yields (X part, Y part, weight part, order within the part or None) for the kernel.

        In memory, one part (or slices of max_rows). A memmap is walked chunk by chunk; with an
        order, its entries are grouped by chunk keeping their relative order (a shuffled order
        restricted to a chunk is a shuffle of that chunk), chunks in order of first appearance."""
        sw = self.sample_weight
        step = self.chunk_rows if max_rows is None else min(self.chunk_rows, max_rows)
        if order is None:
            for s in range(0, self.n, step):
                e = min(s + step, self.n)
                yield (self.chunk(s, e), Y[s:e], None if sw is None else sw[s:e], None)
            return
        if not self.streamed:
            yield self.X, Y, sw, order
            return
        cid = order // self.chunk_rows
        grouped = order[np.argsort(cid, kind="stable")]
        gcid = grouped // self.chunk_rows
        bounds = np.flatnonzero(np.diff(gcid)) + 1
        parts = {int(g[0] // self.chunk_rows): g for g in np.split(grouped, bounds) if len(g)}
        ids, first = np.unique(cid, return_index=True)
        seq = ids.tolist() if sorted_rows else ids[np.argsort(first)].tolist()
        for c in seq:
            s = c * self.chunk_rows
            e = min(s + self.chunk_rows, self.n)
            local = np.ascontiguousarray(parts[c] - s, dtype=np.int64)
            yield (self.chunk(s, e), Y[s:e], None if sw is None else sw[s:e], local)


def training_source(est, X, y, sample_weight, dtype, n_threads, *, reset, y_numeric):
    """Validates X, y and sample_weight for fit/partial_fit. Returns (Source, y)."""
    if isinstance(X, np.memmap):
        check_memmap_X(est, X, reset)
        if y is None:
            raise ValueError("This estimator requires y to be passed, but the target y is None.")
        y = check_array(y, ensure_2d=False, dtype=np.float64 if y_numeric else None,
                        ensure_all_finite=True)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]}; they must match.")
    else:
        X, y = validate_data(est, X, y, dtype=(np.float64, np.float32), order="C",
                             multi_output=True, y_numeric=y_numeric, ensure_all_finite=False,
                             accept_sparse=False, reset=reset)
        X = _as_dtype(X, dtype, n_threads)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    sw = None
    if sample_weight is not None:
        sw = _check_sample_weight(sample_weight, np.empty((X.shape[0], 0)), dtype=np.float64,
                                  ensure_non_negative=True)
        if not np.isfinite(sw).all():
            raise ValueError("sample_weight contains NaN or infinity.")
        if sw.sum() <= 0:
            raise ValueError("sample_weight sums to zero: at least one sample needs weight.")
        sw = np.ascontiguousarray(sw, dtype=dtype)
    src = Source(X, dtype, n_threads, sw)
    src.check_finite()
    return src, y


def check_predict_X(est, X, dtype, n_threads):
    """Validated X for prediction, as a list of converted row blocks (one unless memory-mapped)."""
    if isinstance(X, np.memmap):
        check_memmap_X(est, X, reset=False)
        src = Source(X, dtype, n_threads, None)
        src.check_finite()
        return (src.chunk(s, s + src.chunk_rows) for s in range(0, src.n, src.chunk_rows))
    if not plain_rows(est, X):
        X = validate_data(est, X, dtype=(np.float64, np.float32), order="C", reset=False,
                          ensure_all_finite=False, accept_sparse=False)
    return [_as_dtype(X, dtype, n_threads)]
