"""Tree ensembles on parml's native tree kernels (drop-ins for scikit-learn's):
HistGradientBoostingRegressor / Classifier (histogram gradient boosting) and
RandomForestClassifier / Regressor (trees grown in parallel)."""

from ._forest import RandomForestClassifier, RandomForestRegressor
from ._gb import HistGradientBoostingClassifier, HistGradientBoostingRegressor

__all__ = ["HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
           "RandomForestClassifier", "RandomForestRegressor"]
