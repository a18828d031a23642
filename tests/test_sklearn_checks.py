"""scikit-learn's own estimator checks, all of them.

The classifier declares exactly one expected failure: under mini-batch training with dropout
and augmentation, weighting a sample is not the same as repeating it (scikit-learn marks the
same check as an expected failure of its own SGDClassifier).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import small_classifier, small_extractor
from skconvnet import FineTunedConvNetClassifier

CLASSIFIER_EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "a mini-batch-trained network (SGD, dropout, augmentation) cannot make weighting a "
        "sample equivalent to repeating it"
    ),
}


def expected_failures(estimator):
    if isinstance(estimator, FineTunedConvNetClassifier):
        return CLASSIFIER_EXPECTED_FAILURES
    return {}


@parametrize_with_checks(
    [small_extractor(), small_classifier()], expected_failed_checks=expected_failures
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
