"""Tree ensembles on parml's histogram kernels (issue 4, in progress: the binning, histogram,
split, partition and prediction kernels and the tree grower exist; the estimators come next)."""

__all__ = []
