"""Running images through a backbone: batching, pooling, and the activation cache."""

import functools
from collections import defaultdict

import numpy as np

from .._keras import predict_on_batch
from ..backbones.checks import output_shape
from ..backbones.graph import preprocess, segment_model
from . import int8
from .cache import activation_cache


def pool(activations, pooling, prefix_tokens=0):
    """``(n, height, width, channels)`` activations as ``(n, n_features)`` rows.

    A transformer's ``(n, tokens, channels)`` activations start with ``prefix_tokens`` class
    and register tokens: ``"cls"`` is the class token, ``"avg"`` and ``"max"`` pool the patch
    tokens (registers left out), ``"cls+avg"`` puts the class token and the patches' mean
    side by side, and None flattens the patch tokens (the patch grid, row-major).
    ``False`` flattens whole activations, every token included.
    """
    if pooling is False:
        return activations.reshape(len(activations), -1)
    if activations.ndim == 3:
        patches = activations[:, prefix_tokens:]
        if pooling == "cls":
            return activations[:, 0]
        if pooling == "cls+avg":
            return np.concatenate([activations[:, 0], patches.mean(axis=1)], axis=1)
        activations = patches[:, None]  # (n, 1, patches, channels): pooled as a map
    if pooling == "avg":
        return activations.mean(axis=(1, 2))
    if pooling == "max":
        return activations.max(axis=(1, 2))
    return activations.reshape(len(activations), -1)


def extract(weights, source, *, layers, **options):
    """Pooled features of every image of ``source`` at each of ``layers``, in one pass: one
    ``(n_samples, n_features)`` array per layer, in the order of ``layers``.

    ``options`` are :func:`extract_batches`'.
    """
    features = [None] * len(layers)
    for chunk, rows in extract_batches(weights, source, layers=layers, **options):
        for position, layer_rows in enumerate(rows):
            if features[position] is None:
                features[position] = np.empty((source.n_samples, layer_rows.shape[1]),
                                              source.dtype)
            features[position][chunk] = layer_rows
    return features


def extract_batches(weights, source, *, layers, pooling, precision, batch_size, cache=True,
                    verbose=0, ranges=None):
    """Pooled features of ``source``'s images at each of ``layers``, batch after batch.

    ``precision="int8"`` runs the network quantized with calibrated ``ranges`` (see
    :mod:`skconvnet.compute.int8`).

    Layers are computed shallow to deep, each resuming from the one before. With ``cache``,
    activations already in the process's activation cache are reused — exact hits, or the
    deepest cached shallower layer to resume from — and new ones are stored. Results are
    the same either way.

    Yields ``(chunk, rows)`` for consecutive batches: ``chunk`` the indices of the batch's
    images, ``rows`` one ``(len(chunk), n_features)`` array per layer, in the order of
    ``layers``.
    """
    spec = weights.spec
    order = sorted(layers, key=spec.layer_names.index)
    store = activation_cache if cache and activation_cache.budget else None
    context = (weights.digest, source.image_size, precision)
    if precision == "int8":
        context += (int8.digest(ranges),)
        segment = functools.partial(int8.segment_model, weights, source.image_size, ranges)
    else:
        segment = functools.partial(segment_model, weights, precision,
                                    image_size=source.image_size)
    keys = [(key, *context) for key in source.keys()] if store is not None else None
    plan = _plan(spec, store, keys, order, source.n_samples)
    image_bytes = {layer: 4 * int(np.prod(output_shape(spec, layer, source.image_size)))
                   for layer in order}
    admitted = {layer: store is not None and store.admits(source.n_samples * image_bytes[layer])
                for layer in order}
    from_pixels = np.array([steps[0] is None for steps in plan])
    for chunk, pixels in batches(source, batch_size, preprocessor(spec), verbose=verbose,
                                 decode=from_pixels):
        in_hand = {} if pixels is None else dict(zip(chunk[from_pixels[chunk]], pixels))
        start_layer = dict.fromkeys(in_hand)  # None: from pixels
        # the chunk's activations as one array in chunk order, where one model call made
        # them all: passed on and pooled without stacking them again
        whole = pixels if pixels is not None and len(pixels) == len(chunk) else None
        rows = {}
        step = 0
        while step < len(order):
            run = _run(order, step, chunk, plan, image_bytes)
            activations = {layer: {} for layer in run}
            groups = defaultdict(list)
            for i in chunk:
                found = plan[i][step]
                if found is not None and found[0] == run[0]:
                    activations[run[0]][i] = found[1]
                    if len(run) > 1:
                        groups[run[0]].append((i, found[1]))
                elif found is not None:
                    groups[found[0]].append((i, found[1]))
                else:
                    groups[start_layer[i]].append((i, in_hand[i]))
            everyone = {}
            for start, members in groups.items():
                ends = tuple(layer for layer in run if layer != start)
                together = len(members) == len(chunk) and whole is not None and all(
                    plan[i][step] is None for i in chunk)
                outputs = predict_batch(segment(start, ends),
                                        whole if together else
                                        np.stack([array for _, array in members]),
                                        transformer=spec.transformer)
                if not isinstance(outputs, list):  # a lone output comes unwrapped
                    outputs = [outputs]
                for layer, layer_outputs in zip(ends, outputs, strict=True):
                    if len(members) == len(chunk):
                        everyone[layer] = layer_outputs
                    for (i, _), output in zip(members, layer_outputs):
                        activations[layer][i] = output
                        if admitted[layer]:  # a copy: no view keeps the whole batch alive
                            store.put((*keys[i], layer), output.copy())
            for layer in run:
                stacked = everyone.get(layer)
                if stacked is None:
                    stacked = np.stack([activations[layer][i] for i in chunk])
                rows[layer] = pool(stacked, pooling, spec.prefix_tokens)
            whole, in_hand = everyone.get(run[-1]), activations[run[-1]]
            start_layer = dict.fromkeys(chunk, run[-1])
            step += len(run)
        # writeable: flattened rows may be views of the network's read-only outputs
        yield chunk, [np.require(rows[layer], source.dtype, "W") for layer in layers]


_RUN_BYTES = 1 << 30


def _run(order, step, chunk, plan, image_bytes):
    """The requested layers from ``order[step]`` on that one model call computes together:
    up to the next one that some image of ``chunk`` resumes from the cache for, while their
    activations of the whole chunk take at most ``_RUN_BYTES``."""
    end = step + 1
    total = len(chunk) * image_bytes[order[step]]
    while end < len(order) and all(plan[i][end] is None for i in chunk):
        total += len(chunk) * image_bytes[order[end]]
        if total > _RUN_BYTES:
            break
        end += 1
    return order[step:end]


def _plan(spec, store, keys, order, n_samples):
    """For each image and requested layer, the deepest cached activation to start from.

    ``plan[i][step]`` is ``(layer, array)`` for a cached activation at ``order[step]`` or
    between it and the previous requested layer, or None (start from the previous requested
    layer's activation, or from pixels for the first). The arrays are taken now, so later
    evictions cannot take them away mid-call.
    """
    plan = [[None] * len(order) for _ in range(n_samples)]
    if store is None:
        return plan
    bounds = [0] + [spec.depth(layer) for layer in order]
    for i in range(n_samples):
        for step in range(len(order)):
            for name in reversed(spec.layer_names[bounds[step] : bounds[step + 1]]):
                array = store.get((*keys[i], name))
                if array is not None:
                    plan[i][step] = (name, array)
                    break
    return plan


def preprocessor(spec):
    """``spec``'s preprocessing as a function of a batch."""
    return functools.partial(preprocess, spec)


def run_model(model, spec, source, *, batch_size, verbose=0):
    """``model``'s output for every image of ``source`` (``spec``'s preprocessed pixels
    in), as one array."""
    outputs = None
    for chunk, pixels in batches(source, batch_size, preprocessor(spec), verbose=verbose):
        output = predict_batch(model, pixels, transformer=spec.transformer)
        if outputs is None:
            outputs = np.empty((source.n_samples, output.shape[1]), dtype=source.dtype)
        outputs[chunk] = output
    return outputs


def batches(source, batch_size, preprocess, *, verbose=0, decode=None):
    """``(chunk, pixels)`` for consecutive chunks of ``source``'s images: ``chunk`` holds
    the indices of at most ``batch_size`` images, ``pixels`` the preprocessed images of it,
    decoded ahead in threads while the caller computes. ``verbose`` shows Keras' progress
    bar. ``decode``: a boolean per image, where only those marked are decoded (``pixels``
    then holds them alone, None where a chunk has none).
    """
    import keras

    chunks = [np.arange(start, min(start + batch_size, source.n_samples))
              for start in range(0, source.n_samples, batch_size)]
    wanted = chunks if decode is None else [chunk[decode[chunk]] for chunk in chunks]
    progress = keras.utils.Progbar(source.n_samples, unit_name="image") if verbose else None
    for chunk, pixels in zip(chunks, source.stream(wanted, preprocess)):
        yield chunk, pixels
        if progress is not None:
            progress.update(int(chunk[-1]) + 1)


def padded(batch, transformer=False):
    """``batch`` with a blank companion image after it, where results would otherwise
    depend on how the images happen to be batched.

    Two code paths would make them so: a dense layer applied to a single row takes a
    matrix-vector path whose rounding differs from the matrix-matrix one; and the
    elementwise functions of a transformer's normalisations and activations (the
    reciprocal square root, the sigmoid) round the last few elements of a tensor
    differently from the vectorised rest, and those fall on the batch's last image. The
    companion takes both: single images, and every batch of a ``transformer``, get one.
    """
    if transformer or len(batch) == 1:
        return np.concatenate([batch, np.zeros_like(batch[:1])])
    return batch


def predict_batch(model, batch, *, transformer=False):
    """``model`` on one batch (:func:`padded`), as float32 NumPy (read-only, a list where
    the model has a list of outputs)."""
    outputs = predict_on_batch(model, padded(batch, transformer))

    def rows(output):
        return np.asarray(output).astype(np.float32, copy=False)[:len(batch)]

    return [rows(output) for output in outputs] if isinstance(outputs, list) else rows(outputs)
