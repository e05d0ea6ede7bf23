"""Native kernels (Cython + C). Private: use parml.ops and the estimators."""
