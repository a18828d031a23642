"""Heatmaps' common steps: class scores, upsampling to the image, scaling to [0, 1]."""

import numpy as np
from PIL import Image
from sklearn.base import is_regressor


def output_scores(model, values):
    """``(m, n_outputs)`` scores of ``model``'s outputs ``values``: a regressor's
    predictions as they are (one column per target), a classifier's as
    :func:`class_scores`."""
    if is_regressor(model):
        return np.asarray(values).reshape(len(values), -1)
    return class_scores(values)


def class_scores(decision):
    """``(m, n_classes)`` scores from a decision function's ``(m,)`` or ``(m, k)`` output: a
    binary classifier's one score (for the second class) becomes ``[-score, score]``."""
    decision = np.asarray(decision)
    if decision.ndim == 1 or decision.shape[1] == 1:
        decision = decision.reshape(-1)
        return np.stack([-decision, decision], axis=1)
    return decision


def patch_grid(activations, spec, image_size):
    """``(n, height, width, channels)`` activations as they are; a transformer's
    ``(n, tokens, channels)`` as the grid of its patch tokens (class and register tokens
    left out), row-major as its patches."""
    activations = np.asarray(activations, np.float32)
    if activations.ndim == 4:
        return activations
    height, width = (size // spec.patch_size for size in image_size)
    return activations[:, spec.prefix_tokens:].reshape(len(activations), height, width, -1)


def chosen(scores, targets):
    """``scores[i, ..., targets[i]]`` for each image ``i``: its map of its target class."""
    index = np.asarray(targets).reshape(-1, *[1] * (scores.ndim - 1))
    return np.take_along_axis(scores, index, axis=-1)[..., 0]


def upsampled(maps, image_size):
    """``(n, h, w)`` maps at ``image_size``, bilinear: each cell's value at the centre of the
    pixels it covers (Pillow's resampling of 32-bit float images)."""
    height, width = image_size
    return np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(m, dtype=np.float32))
                   .resize((width, height), Image.Resampling.BILINEAR))
        for m in maps
    ])


def min_max(maps):
    """Each map scaled to [0, 1] between its lowest and highest value (0 where flat)."""
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


def positive_part(maps):
    """Each map's positive part scaled by its maximum (0 where nothing is positive)."""
    maps = np.maximum(maps, 0)
    high = maps.max(axis=(1, 2), keepdims=True)
    return np.divide(maps, high, out=np.zeros_like(maps), where=high > 0)
