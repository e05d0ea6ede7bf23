"""Linear models on parml's fused, parallel loss + gradient kernels (drop-in for scikit-learn's).

Every estimator takes ``n_threads`` (None: all CPUs this process may use) and accepts an
``np.memmap`` X, which is streamed in chunks rather than copied."""

from parml._core.rows import iter_npy_chunks, stream_chunk_bytes
from ._logistic import LogisticRegression
from ._ridge import LinearRegression, Ridge
from ._sgd import SGDClassifier, SGDRegressor
from ._svc import LinearSVC

__all__ = ["LinearRegression", "Ridge", "LogisticRegression", "SGDClassifier", "SGDRegressor",
           "LinearSVC", "iter_npy_chunks", "stream_chunk_bytes"]
