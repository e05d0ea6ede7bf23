"""scikit-learn's own estimator checks on every parml linear model."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from parml.linear_model import (LinearRegression, LinearSVC, LogisticRegression, Ridge,
                                SGDClassifier, SGDRegressor)

ESTIMATORS = [
    LinearRegression(),
    Ridge(),
    Ridge(solver="lbfgs"),
    LogisticRegression(),
    LogisticRegression(solver="gd", max_iter=300),
    LinearSVC(),
    SGDClassifier(random_state=0),
    # mini-batch SGD (parml's batch_size > 1), without tol stopping: on the class-weight check's
    # 50 rows with class weights 1000 and 0.0001, two huge averaged steps per epoch make the
    # epoch loss swing, and tol stopping ends at epoch 21 for 9 of random_state 0..19 (0 of 20
    # for per-sample SGD, parml's and scikit-learn's); with tol=None all 20 pass
    SGDClassifier(random_state=0, batch_size=32, loss="log_loss", tol=None),
    SGDRegressor(random_state=0),
]

# check name -> why it is expected to fail, per estimator class
# (the same list scikit-learn 1.9 keeps for its own LinearSVC and SGD estimators)
_SW = {"check_sample_weight_equivalence_on_dense_data":
       "stochastic order / iterative stop: weighting is not bitwise repetition "
       "(scikit-learn xfails this for its own estimator too)"}
EXPECTED = {"LinearSVC": _SW, "SGDClassifier": _SW, "SGDRegressor": _SW}


def expected_failed_checks(est):
    return EXPECTED.get(type(est).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
