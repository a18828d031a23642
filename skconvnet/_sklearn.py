"""scikit-learn's private helpers that skconvnet relies on, imported in this one place.

They are what scikit-learn's own estimators use (parameter validation, the fit context,
feature-name and sample-weight checks, the base classes of linear classifiers and of
searches); a release that moves one breaks one line here.
"""

from sklearn.base import _fit_context
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, _check_sample_weight

__all__ = ["BaseSearchCV", "Interval", "LinearClassifierMixin", "LinearModel", "StrOptions",
           "_check_feature_names_in", "_check_sample_weight", "_fit_context"]
