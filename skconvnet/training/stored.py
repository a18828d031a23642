"""What the frozen layers make of each training image, computed once per fit.

Layers that are not trained give the same output for the same input in every epoch, so the
classifier runs them once per image (and per augmented view, drawn up front) and trains the
layers above on what they produced: an epoch then costs only what is trained.
"""

from typing import NamedTuple

import numpy as np

from ..backbones.checks import output_shape
from ..backbones.graph import segment_model
from ..compute import activations
from ..compute.activations import batches, extract, n_pooled, pool, preprocessor


def storage_dtype(precision):
    """Activations are kept in the precision they were computed in: bfloat16 halves them."""
    if precision == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(np.float32)


def nbytes(spec, n_images, n_views, *, top, image_size, pooling, precision):
    """Bytes that :func:`store` would take."""
    if pooling is False:
        size = 3 * int(np.prod(image_size)) if top is None else int(
            np.prod(output_shape(spec, top, image_size)))
    else:
        size = n_pooled(output_shape(spec, top, image_size), pooling)
    return n_images * n_views * size * storage_dtype(precision).itemsize


class Stored(NamedTuple):
    """What the frozen layers made of the training images, ``(n_images, n_views, ...)``
    each, or None where the plan stores none."""

    activations: np.ndarray | None  # of the plan's top, for fine-tuning
    features: np.ndarray | None  # pooled rows at the plan's layer, for the head


def run_frozen(plan, source, weights, *, augmentation, pooling, precision, batch_size,
               verbose=0):
    """Run the layers that ``plan`` keeps frozen once, down from the pixels, storing what it
    says: the activations of its ``top`` for every image and view, then the pooled rows at
    its ``layer`` from them; or those rows alone, where fine-tuning does not train on stored
    activations."""
    common = dict(precision=precision, augmentation=augmentation, n_views=plan.n_views,
                  batch_size=batch_size, verbose=verbose)
    if plan.stores_activations:
        at_top = store(source, weights, top=plan.top, pooling=False, **common)
        features = None
        if plan.stores_features:
            features = pooled(at_top, weights, top=plan.top, layer=plan.layer,
                              pooling=pooling, precision=precision, batch_size=batch_size)
        return Stored(at_top, features)
    if plan.stores_features:
        return Stored(None, store(source, weights, top=plan.layer, pooling=pooling, **common))
    return Stored(None, None)


def store(source, weights, *, top, pooling, precision, augmentation, n_views, batch_size,
          verbose=0):
    """``top``'s activation of each image and of ``n_views - 1`` augmented views of it.

    Returns an array ``(n_images, n_views, ...)``, view 0 the original image: pooled rows
    ``(n_features,)`` as the head sees them, or whole activations ``(height, width,
    channels)`` with ``pooling=False`` (preprocessed pixels where ``top`` is None). The
    augmented views come from the ``augmentation`` layers, whose own seeded generators make
    them the same in every fit with the same seed.
    """
    if n_views == 1 and top is not None:  # originals only: share the activation cache
        whole = pooling is False
        (rows,) = extract(weights, source, layers=[top], pooling=None if whole else pooling,
                          precision=precision, batch_size=batch_size, verbose=verbose)
        shape = (output_shape(weights.spec, top, source.image_size) if whole
                 else rows.shape[1:])
        return rows.reshape(source.n_samples, 1, *shape).astype(storage_dtype(precision))
    model = None if top is None else segment_model(weights, precision, None, top)
    stored = None
    preprocess = preprocessor(weights.spec)
    for chunk, pixels in batches(source, batch_size, preprocess, verbose=verbose):
        for view in range(n_views):
            x = pixels
            for layer in augmentation if view else ():
                x = layer(x, training=True)
            x = np.asarray(x, dtype=np.float32)
            output = x if model is None else activations.predict_batch(model, x)
            rows = output if pooling is False else pool(output, pooling)
            if stored is None:
                shape = (source.n_samples, n_views, *rows.shape[1:])
                stored = np.empty(shape, storage_dtype(precision))
            stored[chunk, view] = rows
    return stored


def pooled(stored, weights, *, top, layer, pooling, precision, batch_size):
    """The pooled rows at ``layer`` of stored ``top`` activations, ``(n_images, n_views,
    n_features)`` float32: what the head sees before any fine-tuning."""
    model = segment_model(weights, precision, top, layer)
    flat = stored.reshape(-1, *stored.shape[2:])
    rows = np.concatenate([
        pool(activations.predict_batch(model, flat[start:start + batch_size].astype(np.float32)),
             pooling)
        for start in range(0, len(flat), batch_size)
    ])
    return rows.reshape(*stored.shape[:2], -1)


def loader(stored):
    """``load(rows)`` of flattened ``(image * n_views + view)`` rows, as float32 batches."""
    flat = stored.reshape(-1, *stored.shape[2:])
    return lambda rows: flat[rows].astype(np.float32)
