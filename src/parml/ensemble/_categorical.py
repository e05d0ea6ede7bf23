"""categorical_features for HistGradientBoosting, as scikit-learn reads it.

A categorical feature holds category codes: non-negative integers below max_bins; NaN and
negative values are missing. Its bin is its code, and a split sends a set of categories left
(hist.h: categories with enough rows, ordered by G / (H + smooth), every prefix tried in both
directions). At prediction, NaN, negative, non-integer and categories not seen in training
follow the split's missing direction.

The spec: None (no categorical feature), "from_dtype" (a dataframe's categorical columns;
none for arrays), a boolean mask, integer indices, or feature names. A dataframe's categorical
columns are encoded by their categories, remembered at fit, so prediction maps each value to the
same code even when the prediction frame orders its categories differently."""

from __future__ import annotations

import numpy as np


def categorical_columns(X):
    """Indices of a dataframe's columns with a categorical dtype (pandas "category", polars
    Categorical / Enum); none for arrays."""
    dtypes = getattr(X, "dtypes", None)
    if getattr(X, "columns", None) is None or dtypes is None:
        return []
    return [i for i, dt in enumerate(list(dtypes))
            if str(dt).lower().startswith(("category", "categorical", "enum"))]


def _n_features(X):
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[1])
    a = np.asarray(X, dtype=object)
    return int(a.shape[1]) if a.ndim == 2 else None


def resolve_mask(spec, X):
    """The spec as a boolean mask over X's features, or None when no feature is categorical.
    X is the data as passed to fit (a dataframe's dtypes and column names are read)."""
    if spec is None:
        return None
    d = _n_features(X)
    if isinstance(spec, str):  # "from_dtype"
        cols = categorical_columns(X)
        if not cols:
            return None
        mask = np.zeros(d, dtype=bool)
        mask[cols] = True
        return mask
    arr = np.asarray(spec)
    if arr.size == 0:
        return None
    if arr.dtype == bool:
        if arr.ndim != 1 or (d is not None and len(arr) != d):
            raise ValueError(f"categorical_features as a boolean mask needs one entry per "
                             f"feature ({d}), got shape {arr.shape}")
        return arr.copy() if arr.any() else None
    mask = np.zeros(d, dtype=bool)
    if arr.dtype.kind in "iu":
        if arr.ndim != 1 or arr.min() < 0 or arr.max() >= d:
            raise ValueError(f"categorical_features indices must be in [0, {d - 1}], got {spec!r}")
        mask[arr] = True
        return mask
    if arr.dtype.kind in "UO":
        names = getattr(X, "columns", None)
        if names is None:
            raise ValueError("categorical_features given by name needs X with feature names "
                             "(a dataframe)")
        names = [str(c) for c in names]
        for s in arr.ravel():
            if str(s) not in names:
                raise ValueError(f"categorical feature {str(s)!r} is not a column of X")
            mask[names.index(str(s))] = True
        return mask
    raise ValueError(f"categorical_features must be None, 'from_dtype', a boolean mask, "
                     f"integer indices or feature names; got {spec!r}")


def encode_frame(X, categories, fit):
    """X with its categorical dataframe columns replaced by float codes (NaN: missing).

    categories: {column index: categories} remembered at fit (filled when fit=True). At predict,
    values are mapped by the remembered categories; unseen ones become NaN (missing). Arrays
    and non-categorical columns are taken as codes already (index into those categories)."""
    cols = categorical_columns(X)
    if fit:
        categories.clear()
    if not cols:  # arrays (or plain columns) hold the codes themselves
        return X
    import pandas as pd
    X = X.copy()
    for i in cols:
        col = X.iloc[:, i]
        if fit:
            categories[i] = list(col.cat.categories)
        elif i not in categories:
            raise ValueError(f"column {X.columns[i]!r} is categorical but was not at fit")
        # position in the remembered categories; -1 (unseen, NaN) is missing
        codes = pd.Index(categories[i]).get_indexer(col.astype(object))
        X[X.columns[i]] = np.where(codes < 0, np.nan, codes.astype(np.float64))
    return X


def check_codes(X, mask, max_bins):
    """ValueError unless every categorical column holds integer codes below max_bins (NaN and
    negative values mean missing)."""
    for f in np.flatnonzero(mask):
        col = X[:, f]
        ok = col[np.isfinite(col) & (col >= 0)]
        if len(ok) and (ok != np.floor(ok)).any():
            raise ValueError(f"categorical feature {f} holds non-integer values; categories must "
                             f"be integer codes (e.g. from OrdinalEncoder)")
        if len(ok) and ok.max() >= max_bins:
            raise ValueError(f"categorical feature {f} is expected to be encoded with values < "
                             f"max_bins={max_bins}; its largest value is {ok.max():g}")


def known_categories(B, mask, missing_bin):
    """(d, 8) uint32: per categorical feature, the set of categories seen in the binned training
    data (zero rows for numeric features)."""
    known = np.zeros((B.shape[0], 8), dtype=np.uint32)
    for f in np.flatnonzero(mask):
        seen = np.flatnonzero(np.bincount(B[f], minlength=256)[:missing_bin])
        for v in seen:
            known[f, v >> 5] |= np.uint32(1 << (int(v) & 31))
    return known
