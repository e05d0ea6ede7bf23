"""scikit-learn's estimator checks on parml's HistGradientBoosting estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from parml.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

ESTIMATORS = [HistGradientBoostingClassifier(max_iter=20), HistGradientBoostingRegressor(max_iter=20)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
