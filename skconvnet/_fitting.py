"""Fitting that either completes or leaves the estimator unfitted."""

import functools


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
