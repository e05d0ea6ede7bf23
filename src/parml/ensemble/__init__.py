"""Tree ensembles on parml's histogram kernels (drop-ins for scikit-learn's).

So far: HistGradientBoostingRegressor (squared error) and HistGradientBoostingClassifier (log
loss). RandomForest, DecisionTree, categorical features and the other losses come next."""

from ._gb import HistGradientBoostingClassifier, HistGradientBoostingRegressor

__all__ = ["HistGradientBoostingClassifier", "HistGradientBoostingRegressor"]
