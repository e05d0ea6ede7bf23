"""Input handling for the linear models: validation before any kernel runs, and row sources that
stream big or memory-mapped X in chunks instead of copying it."""

from __future__ import annotations

import contextlib
import numbers
import os

import numpy as np
from sklearn.utils.validation import _check_sample_weight, validate_data

from parml._kernels import _linear

# Rows per chunk when streaming: about this many bytes of converted (float) data per chunk.
_STREAM = {"chunk_bytes": 64 << 20}


@contextlib.contextmanager
def stream_chunk_bytes(nbytes):
    """Within the block, stream memory-mapped X in chunks of about `nbytes` bytes (default 64 MiB)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral) or nbytes < 1:
        raise ValueError(f"stream_chunk_bytes needs a positive integer, got {nbytes!r}")
    old = _STREAM["chunk_bytes"]
    _STREAM["chunk_bytes"] = int(nbytes)
    try:
        yield
    finally:
        _STREAM["chunk_bytes"] = old


class Rows:
    """X as float32/float64 C-contiguous row chunks. In-memory arrays are validated (and converted
    if needed) once and served as one chunk; np.memmap inputs are never converted as a whole:
    each chunk is a zero-copy view when the file is float32/float64 row-major, else a converted
    copy of that chunk only."""

    def __init__(self, X, n_threads, chunk_rows=None):
        self.X = X
        self.n, self.d = X.shape
        self.streamed = isinstance(X, np.memmap)
        self.dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        if chunk_rows is None:
            row_bytes = max(1, self.d * self.dtype.itemsize)
            chunk_rows = max(1, _STREAM["chunk_bytes"] // row_bytes)
        self.chunk_rows = int(chunk_rows) if self.streamed else max(self.n, 1)
        self.n_threads = n_threads

    def chunks(self):
        """Yields (start, stop, chunk)."""
        if not self.streamed:
            yield 0, self.n, self.X
            return
        for s in range(0, self.n, self.chunk_rows):
            e = min(s + self.chunk_rows, self.n)
            c = self.X[s:e]
            if c.dtype == self.dtype and c.flags.c_contiguous:
                c = np.asarray(c)  # a view of the mapping, not a copy
            else:
                c = np.ascontiguousarray(c, dtype=self.dtype)
            yield s, e, c

    def check_finite(self, name="X"):
        for _, _, c in self.chunks():
            _require_finite(c, self.n_threads, name)


def _require_finite(X, n_threads, name="X"):
    if not _linear.all_finite(X, n_threads):
        raise ValueError(f"Input {name} contains NaN or infinity; parml's linear models need "
                         "finite values (impute or drop them first).")


def check_memmap_X(est, X, reset):
    """Shape and dtype checks of a memory-mapped X (its values are checked chunk by chunk);
    records n_features_in_ when reset, else compares with it."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D memory-mapped X, got {X.ndim} dimension(s).")
    if X.dtype.kind not in "fiub":
        raise TypeError(f"Memory-mapped X must hold numbers, not dtype {X.dtype}.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"Found array with shape {X.shape}; at least one sample and one "
                         "feature are required.")
    if reset:
        est.n_features_in_ = X.shape[1]
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input.")


def check_X_fit(est, X, y, n_threads, *, y_numeric=False, multi_output=False):
    """Validates X and y for fit. Returns (Rows, y). Memory-mapped X is checked chunk by chunk."""
    if isinstance(X, np.memmap):
        check_memmap_X(est, X, reset=True)
        y = _check_y(y, X.shape[0], y_numeric, multi_output)
        rows = Rows(X, n_threads)
        rows.check_finite()
        return rows, y
    X, y = validate_data(est, X, y, dtype=[np.float64, np.float32], order="C",
                         ensure_all_finite=False, y_numeric=y_numeric, multi_output=multi_output,
                         accept_sparse=False)
    _require_finite(X, n_threads)
    if y_numeric:
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity.")
    return Rows(X, n_threads), y


def _check_y(y, n, y_numeric, multi_output):
    from sklearn.utils.validation import check_array, column_or_1d
    if y is None:
        raise ValueError("This estimator requires y to be passed, but the target y is None.")
    if multi_output:
        y = check_array(y, ensure_2d=False, dtype=np.float64 if y_numeric else None,
                        ensure_all_finite=True)
    else:
        y = column_or_1d(y, warn=True)
        if y_numeric:
            y = np.asarray(y, dtype=np.float64)
            if not np.isfinite(y).all():
                raise ValueError("Input y contains NaN or infinity.")
    if y.shape[0] != n:
        raise ValueError(f"X has {n} samples but y has {y.shape[0]}; they must match.")
    return y


def check_X_predict(est, X, n_threads):
    """Validates X for predict/decision_function: in-memory float32/float64 C-contiguous, finite,
    with the features seen in fit. Memory-mapped X is returned as Rows for chunked prediction."""
    if isinstance(X, np.memmap):
        if X.ndim != 2 or X.shape[1] != est.n_features_in_:
            raise ValueError(f"X has shape {X.shape}, but {type(est).__name__} is expecting "
                             f"{est.n_features_in_} features as input.")
        rows = Rows(X, n_threads)
        rows.check_finite()
        return rows
    if not plain_rows(est, X):
        X = validate_data(est, X, dtype=[np.float64, np.float32], order="C", reset=False,
                          ensure_all_finite=False, accept_sparse=False)
    _require_finite(X, n_threads)
    return Rows(X, n_threads)


def plain_rows(est, X):
    """True when X needs none of scikit-learn's conversions: an exact float32/float64 ndarray,
    2-D, C-contiguous, non-empty, with the fitted feature count, for an estimator fitted without
    feature names. Prediction then skips validate_data (~40 us, most of a one-row predict);
    finiteness is still checked by the caller."""
    return (type(X) is np.ndarray and X.dtype in (np.float64, np.float32) and X.ndim == 2
            and X.flags.c_contiguous and X.shape[0] > 0 and X.shape[1] == est.n_features_in_
            and not hasattr(est, "feature_names_in_"))


def check_sample_weight(sample_weight, n):
    """float64 weights of length n; negative or non-finite ones are a ValueError."""
    if sample_weight is None:
        return None
    sw = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64,
                              ensure_non_negative=True)
    if not np.isfinite(sw).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    return np.ascontiguousarray(sw)


def iter_npy_chunks(X_path, y_path=None, chunk_rows=65536):
    """Iterate over row chunks of `.npy` files on disk without loading them: yields `X_chunk` or
    `(X_chunk, y_chunk)` views of memory maps, ready for `partial_fit`."""
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, numbers.Integral) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    for p in (X_path, y_path):
        if p is not None and not os.path.exists(p):
            raise ValueError(f"No such .npy file: {p!r}")
    X = np.load(X_path, mmap_mode="r")
    y = np.load(y_path, mmap_mode="r") if y_path is not None else None
    if y is not None and y.shape[0] != X.shape[0]:
        raise ValueError(f"{X_path!r} has {X.shape[0]} rows but {y_path!r} has {y.shape[0]}.")
    for s in range(0, X.shape[0], chunk_rows):
        if y is None:
            yield X[s:s + chunk_rows]
        else:
            yield X[s:s + chunk_rows], y[s:s + chunk_rows]
