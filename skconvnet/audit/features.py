"""What an audit compares: the features of the photos, from a feature extractor (or the one
a pipeline starts with), or feature rows given as they are."""

import os

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_array

from .._extractor import ConvNetFeatureExtractor
from .._steps import image_step, unwrapped
from ..backbones.checks import n_pooled
from ..datasets import load_image_folder


def photos(X, y):
    """``(X, y)``, a folder of class folders read as its photos and their classes (the
    classes only where ``y`` is None)."""
    if isinstance(X, (str, os.PathLike)) and os.path.isdir(X):
        paths, labels = load_image_folder(X)
        return paths, labels if y is None else y
    return X, y


def unit_features(extractor, purpose, X, *others):
    """The features of ``X`` and of each of ``others`` (None stays None), one unit-length row
    per photo: their dot products are cosine similarities.

    ``extractor`` is fitted (a clone of it) on ``X`` and transforms them all; each of its
    layers weighs the same (:func:`joined`). With ``extractor=None`` they are feature rows
    already.
    """
    if extractor is None:
        return [None if rows is None else unit_rows(_feature_rows(rows, purpose))
                for rows in (X, *others)]
    step = image_step(unwrapped(extractor, purpose))
    if not isinstance(step, ConvNetFeatureExtractor):
        raise TypeError(
            f"{purpose} compares the photos' features: pass a feature extractor (e.g. "
            "VGGFeatureExtractor(layer='block4_pool', pooling='avg')), a pipeline that "
            f"starts with one, or None for feature rows; got {type(step).__name__}."
        )
    fitted = clone(step).fit(X)
    columns = layer_columns(fitted).values()

    def rows(images):
        features = fitted.transform(images)
        return joined([features[:, part] for part in columns])

    return [None if images is None else rows(images) for images in (X, *others)]


def _feature_rows(rows, purpose):
    try:
        return check_array(rows, dtype=[np.float64, np.float32])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{purpose} with extractor=None takes feature rows (a 2-D array of "
                         f"numbers), not these ({error}). Pass images with an extractor, e.g. "
                         "VGGFeatureExtractor(layer='block4_pool', pooling='avg').") from None


def layer_columns(extractor):
    """``{layer: slice}``: which feature columns of a fitted extractor hold each layer."""
    pooling, prefix = extractor._pooling(), extractor._spec().prefix_tokens
    columns, start = {}, 0
    for layer, shape in extractor.feature_shapes_.items():
        width = n_pooled(shape, pooling, prefix)
        columns[layer] = slice(start, start + width)
        start += width
    return columns


def joined(blocks):
    """Several layers' features as one unit-length row per photo, each layer weighing the
    same: the dot product of two rows is the mean of the layers' cosine similarities."""
    return np.hstack([unit_rows(block) for block in blocks]) / np.sqrt(len(blocks))


def unit_rows(rows):
    """``rows`` scaled to unit length (all-zero rows stay zero): dot products of them are
    cosine similarities."""
    rows = np.asarray(rows)
    rows = rows if rows.dtype in (np.float32, np.float64) else rows.astype(np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def by_position(X):
    """``X``'s images, indexable by position: an array as it is, a list of a pandas column (or
    of a DataFrame's only column), another sequence as a list."""
    if hasattr(X, "iloc"):
        if getattr(X, "ndim", 1) == 2:
            return X.iloc[:, 0].tolist() if X.shape[1] == 1 else X.to_numpy()
        return X.tolist()
    return X if isinstance(X, np.ndarray) else list(X)


def file_names(X, indices):
    """The paths of ``X[indices]`` where ``X`` holds paths, else None."""
    if X is None:
        return None
    items = by_position(X)
    if isinstance(items, np.ndarray) or not len(items) or not isinstance(
            items[0], (str, os.PathLike)):
        return None
    return np.array([os.fspath(items[i]) for i in indices], dtype=object)
