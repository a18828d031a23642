"""The exact class activation map of a pipeline: an average-pooled feature extractor, then
steps linear in the features, to a linear classifier or regressor.

The pooled feature is the mean of the last activation over positions, and steps that are
affine map a mean to the mean of their images: the class score is the mean over positions
of the score each position's activation would get as a feature row of its own. One forward
pass, no gradient.
"""

import numpy as np
from sklearn.base import is_regressor
from sklearn.decomposition import PCA, IncrementalPCA, TruncatedSVD
from sklearn.feature_selection import SelectorMixin
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    RobustScaler,
    StandardScaler,
)

from .._sklearn import LinearClassifierMixin, LinearModel
from .maps import chosen, min_max, output_scores, patch_grid, upsampled

#: Steps that are affine maps of their input (feature selection keeps some columns).
AFFINE_STEPS = (StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, PCA, IncrementalPCA,
                TruncatedSVD, SelectorMixin)

_ROWS_AT_ONCE = 1 << 16  # positions scored per call of the steps, to bound their copies


def why_not_linear(pipeline):
    """Why the exact map does not apply to ``pipeline`` (a fitted one that starts with a
    feature extractor), or None where it does."""
    extractor = pipeline.steps[0][1]
    pooling = extractor._pooling()  # "auto" as the backbone resolves it
    if pooling != "avg":
        return (f"its feature extractor has pooling={pooling!r}; the class score is "
                "a sum over positions only for pooling='avg'")
    if len(extractor.feature_shapes_) > 1:
        return (f"its feature extractor gives the features of {len(extractor.feature_shapes_)} "
                "layers; the exact map takes one")
    for name, step in pipeline.steps[1:-1]:
        identity = isinstance(step, FunctionTransformer) and step.func is None
        if not (step is None or step == "passthrough" or identity
                or isinstance(step, AFFINE_STEPS)):
            return (f"its step {name!r} ({type(step).__name__}) is not known to be linear in "
                    f"the features (those that are: {_names(AFFINE_STEPS)})")
        if getattr(step, "clip", False):
            return f"its step {name!r} clips its output (clip=True), which is not linear"
    final = pipeline.steps[-1][1]
    if is_regressor(final):
        if not isinstance(final, LinearModel):
            return (f"its last step ({type(final).__name__}) is not a linear regressor such "
                    "as Ridge, RidgeCV or LinearRegression")
    elif not isinstance(final, LinearClassifierMixin):
        return (f"its last step ({type(final).__name__}) is not a linear classifier such as "
                "LogisticRegression, LinearSVC or RidgeClassifier")
    return None


def linear_maps(pipeline, source, targets):
    """Exact class activation maps of ``pipeline`` (see :func:`position_scores`), each
    image's of its target class (``targets``; None: the predicted one), scaled to [0, 1]."""
    scores, pooled = position_scores(pipeline, source)
    if targets is None:
        targets = pooled.argmax(axis=1)
    return min_max(upsampled(chosen(scores, targets), source.image_size))


def position_scores(pipeline, source):
    """``(scores, pooled)``: the class scores of each position's activation, passed through
    the steps after the extractor as a feature row, ``(n_images, height, width,
    n_classes)``; and those of the images' pooled features, ``(n_images, n_classes)``,
    which are the mean of the former over positions (the steps being affine).

    A binary classifier's scores are ``[-decision, decision]``; a regressor's, its
    predictions (one column per target).
    """
    extractor = pipeline.steps[0][1]
    (flat,) = extractor._extract(source, pooling=False)  # whole activations
    (shape,) = extractor.feature_shapes_.values()
    activations = patch_grid(flat.reshape(len(flat), *shape), extractor._spec(),
                             source.image_size)
    head = pipeline[1:]

    score = head.predict if is_regressor(head) else head.decision_function

    def decision(rows):
        return output_scores(head, score(_as_fitted(head, extractor, rows)))

    rows = activations.reshape(-1, shape[-1])
    scores = np.concatenate([decision(rows[start:start + _ROWS_AT_ONCE])
                             for start in range(0, len(rows), _ROWS_AT_ONCE)])
    return scores.reshape(*activations.shape[:3], -1), decision(activations.mean(axis=(1, 2)))


def _as_fitted(head, extractor, rows):
    """``rows`` as the steps after the extractor were fitted on them: a DataFrame with the
    extractor's feature names where they were fitted on one (``set_output``)."""
    first = next((step for _, step in head.steps if step not in (None, "passthrough")), None)
    if getattr(first, "feature_names_in_", None) is None:
        return rows
    import pandas as pd

    return pd.DataFrame(rows, columns=extractor.get_feature_names_out())


def _names(types):
    return ", ".join(kind.__name__ for kind in types)
