"""scikit-learn's own estimator checks, all of them, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import small_extractor


@parametrize_with_checks([small_extractor()])
def test_sklearn_compatible(estimator, check):
    check(estimator)
