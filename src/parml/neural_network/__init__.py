"""Multi-layer perceptrons on parml's GEMM with fused, parallel backward updates (drop-ins for
scikit-learn's MLPClassifier and MLPRegressor)."""

from ._classes import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
