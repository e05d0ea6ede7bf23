"""parml on a Dask cluster (``pip install 'parml[dask]'``): estimators that train data-parallel
with parml's kernels inside Dask tasks, and prediction on dask collections.

Dask is imported lazily: ``import parml.dask`` works without it and the first use of an
estimator raises an ImportError that says what to install.
"""

_EXPORTS = {
    "LogisticRegression": "._linear",
    "LinearRegression": "._linear",
    "Ridge": "._linear",
    "HistGradientBoostingClassifier": "._hgb",
    "HistGradientBoostingRegressor": "._hgb",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'parml.dask' has no attribute {name!r}")
