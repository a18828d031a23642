"""A fit either completes or leaves the estimator as it was before, unfitted."""

import pytest

from skconvnet._fitting import unfitted_on_failure

pytestmark = pytest.mark.no_backend


class Estimator:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    @unfitted_on_failure
    def fit(self, failure=None):
        self.coef_ = 1.0
        self._helper = "kept only on success"
        self.alpha = 2.0  # a parameter changed during fit is restored on failure
        if failure is not None:
            raise failure
        return self


@pytest.mark.parametrize("failure", [ValueError("bad"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_a_failed_fit_leaves_no_fitted_attribute_and_restores_the_rest(failure):
    estimator = Estimator().fit()  # fitted once before
    estimator.alpha = 1.0
    with pytest.raises(type(failure)):
        estimator.fit(failure)
    assert not hasattr(estimator, "coef_")  # fitted before, but not for these parameters
    assert estimator.alpha == 1.0 and estimator._helper == "kept only on success"


def test_a_completed_fit_keeps_what_it_set():
    estimator = Estimator().fit()
    assert (estimator.coef_, estimator.alpha) == (1.0, 2.0)
