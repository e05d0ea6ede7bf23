"""The layer under every estimator family and parml.dask: what they share, so that no family
imports another's private modules."""
