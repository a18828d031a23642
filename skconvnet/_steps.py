"""The parts of a fitted model, as export and heatmaps look into it: a fitted search stands
for its best estimator, a pipeline for its steps."""

from sklearn.utils.validation import check_is_fitted

from ._sklearn import BaseSearchCV


def unwrapped(model, purpose):
    """A fitted search's best estimator (a search's within a search too); anything else as
    it is. ``purpose`` says, in an error, what the best estimator was wanted for."""
    if not isinstance(model, BaseSearchCV):
        return model
    check_is_fitted(model)
    if not hasattr(model, "best_estimator_"):
        raise ValueError(f"This {type(model).__name__} was fitted with refit=False: it has no "
                         f"best estimator to {purpose}. Fit it with refit=True, or "
                         f"{purpose} one of the models it compared, fitted.")
    return unwrapped(model.best_estimator_, purpose)


def steps(model):
    """``model`` and, in a pipeline or a fitted search, its steps, depth first."""
    yield model
    if hasattr(model, "best_estimator_"):
        yield from steps(model.best_estimator_)
    for _, step in getattr(model, "steps", []):
        yield from steps(step)


def image_step(model):
    """The step of ``model`` that receives its input, the images: the first step of a
    pipeline (of the best estimator of a search), down to one that has no steps."""
    if hasattr(model, "best_estimator_"):
        return image_step(model.best_estimator_)
    model_steps = getattr(model, "steps", None)
    return image_step(model_steps[0][1]) if model_steps else model
