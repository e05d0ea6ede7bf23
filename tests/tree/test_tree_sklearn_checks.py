"""scikit-learn's estimator checks on parml's DecisionTree* and RandomForest* (small forests for
speed).

Expected failures (not bugs), as scikit-learn lists them for its own forests:
* RandomForest*: check_sample_weight_equivalence_on_dense_data -- bootstrap draws rows, so
  weights and repeated rows give different samples.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from parml.ensemble import RandomForestClassifier, RandomForestRegressor
from parml.tree import DecisionTreeClassifier, DecisionTreeRegressor

ESTIMATORS = [
    DecisionTreeClassifier(),
    DecisionTreeRegressor(),
    RandomForestClassifier(n_estimators=10),
    RandomForestRegressor(n_estimators=10),
]

_BOOTSTRAP = "bootstrap draws rows: sample_weight is not removing/repeating rows (as scikit-learn)"


def _expected_failures(est):
    if isinstance(est, (RandomForestClassifier, RandomForestRegressor)):
        return {"check_sample_weight_equivalence_on_dense_data": _BOOTSTRAP}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
