"""What the frozen layers make of each training image, computed once per fit.

Layers that are not trained give the same output for the same input in every epoch, so the
classifier runs them once per image (and per augmented view, drawn up front) and trains the
layers above on what they produced: an epoch then costs only what is trained.
"""

from typing import NamedTuple

import numpy as np

from ..backbones.checks import n_pooled, output_shape
from ..backbones.graph import segment_model
from ..compute import activations
from ..compute.activations import batches, extract, pool, preprocessor


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
        size = n_pooled(output_shape(spec, top, image_size), pooling, spec.prefix_tokens)
    return n_images * n_views * size * storage_dtype(precision).itemsize


class Stored(NamedTuple):
    """What the frozen layers made of the training images: rows ``image * n_views + view``
    (see :mod:`.storage`), or None where the plan stores none."""

    activations: object  # of the plan's top, for fine-tuning
    features: object  # pooled rows at the plan's layer, for the head


def run_frozen(plan, source, weights, storage, *, augmentation, verbose=0):
    """Run the layers that ``plan`` keeps frozen once, down from the pixels, storing in
    ``storage`` (a :class:`.storage.Storage`), where the plan says, what it says: the
    activations of its ``top`` for every image and view, then the pooled rows at its
    ``layer`` from them; or those rows alone, where fine-tuning does not train on stored
    activations."""
    p = plan.parameters
    pooling, precision, batch_size = p.pooling, p.precision, p.batch_size
    common = dict(precision=precision, augmentation=augmentation, n_views=plan.n_views,
                  batch_size=batch_size, verbose=verbose)
    if plan.activations is not None:
        at_top = store(source, weights, storage, top=plan.top, pooling=False,
                       on_disk=plan.activations == "disk", **common)
        features = None
        if plan.features is not None:
            features = pooled(at_top, weights, storage, top=plan.top, layer=p.layer,
                              pooling=pooling, precision=precision, batch_size=batch_size,
                              on_disk=plan.features == "disk", image_size=source.image_size)
        return Stored(at_top, features)
    if plan.features is not None:
        return Stored(None, store(source, weights, storage, top=p.layer, pooling=pooling,
                                  on_disk=plan.features == "disk", **common))
    return Stored(None, None)


def store(source, weights, storage, *, top, pooling, precision, augmentation, n_views,
          batch_size, on_disk, verbose=0):
    """``top``'s activation of each image and of ``n_views - 1`` augmented views of it.

    Returns stored rows ``image * n_views + view``, view 0 the original image: pooled rows
    ``(n_features,)`` as the head sees them, or whole activations ``(height, width,
    channels)`` with ``pooling=False`` (preprocessed pixels where ``top`` is None). The
    augmented views come from the ``augmentation`` layers, whose own seeded generators make
    them the same in every fit with the same seed. Rows are written a batch of images at a
    time, all views of each together, in order.
    """
    dtype = storage_dtype(precision)
    if n_views == 1 and top is not None and not on_disk:  # share the activation cache
        whole = pooling is False
        (rows,) = extract(weights, source, layers=[top], pooling=pooling,
                          precision=precision, batch_size=batch_size, verbose=verbose)
        shape = (output_shape(weights.spec, top, source.image_size) if whole
                 else rows.shape[1:])
        return storage.holding(rows.reshape(source.n_samples, *shape).astype(dtype))
    model = None if top is None else segment_model(weights, precision, None, top,
                                                   source.image_size)
    stored = None
    for chunk, pixels in batches(source, batch_size, preprocessor(weights.spec),
                                 verbose=verbose):
        views = []
        for view in range(n_views):
            x = pixels
            for layer in augmentation if view else ():
                x = layer(x, training=True)
            x = np.asarray(x, dtype=np.float32)
            output = x if model is None else activations.predict_batch(
                model, x, transformer=weights.spec.transformer)
            views.append(output if pooling is False else
                         pool(output, pooling, weights.spec.prefix_tokens))
        block = np.stack(views, axis=1)  # (images, views, ...)
        block = block.reshape(-1, *block.shape[2:])
        if stored is None:
            stored = storage.rows(source.n_samples * n_views, block.shape[1:], dtype,
                                  on_disk=on_disk)
        stored.write(int(chunk[0]) * n_views, block)
    return stored


def pooled(stored, weights, storage, *, top, layer, pooling, precision, batch_size,
           on_disk, image_size):
    """The pooled rows at ``layer`` of stored ``top`` activations, stored in the same row
    order: what the head sees before any fine-tuning."""
    model = segment_model(weights, precision, top, layer, image_size)
    features = None
    n_rows = stored.n_rows
    for start in range(0, n_rows, batch_size):
        rows = np.arange(start, min(start + batch_size, n_rows))
        outputs = activations.predict_batch(model, stored.read(rows),
                                            transformer=weights.spec.transformer)
        block = pool(outputs, pooling, weights.spec.prefix_tokens)
        if features is None:
            features = storage.rows(n_rows, block.shape[1:], np.float32, on_disk=on_disk)
        features.write(start, block)
    return features
