"""Fitting that either completes or leaves the estimator unfitted, and warns at the
user's call."""

import functools
import sys
import warnings


def unfitted_on_failure(fit):
    """Wrap ``fit`` so that any exception, KeyboardInterrupt included, leaves the estimator
    unfitted, its parameters and settings as they were: never half-fitted, never fitted
    for parameters other than its own."""

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        before = dict(self.__dict__)
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(
                (name, value) for name, value in before.items() if not _is_fitted(name)
            )
            raise

    return wrapper


def _is_fitted(name):
    """scikit-learn's convention: fitted attributes end in ``_`` and are public."""
    return name.endswith("_") and not name.startswith("_")


def warn_at_caller(message, category):
    """Warn about a fit at the line that called it: the first frame outside this package
    and scikit-learn's wrappers of ``fit`` (``_fit_context``, ``fit_transform``), however
    many of them there are."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and _is_internal(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _is_internal(frame):
    module = frame.f_globals.get("__name__", "")
    return module.partition(".")[0] == "skconvnet" or module == "sklearn.base"
