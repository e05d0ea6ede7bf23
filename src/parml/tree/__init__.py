"""Decision trees on parml's native tree builder (drop-ins for sklearn.tree's estimators)."""

from ._classes import DecisionTreeClassifier, DecisionTreeRegressor

__all__ = ["DecisionTreeClassifier", "DecisionTreeRegressor"]
