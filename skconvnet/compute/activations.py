"""Running images through a backbone: batching, pooling, and the activation cache."""

import functools
from collections import defaultdict

import numpy as np

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
    admitted = {
        layer: store is not None and store.admits(
            source.n_samples * 4
            * int(np.prod(output_shape(spec, layer, source.image_size)))
        )
        for layer in order
    }
    from_pixels = np.array([steps[0] is None for steps in plan])
    for chunk, pixels in batches(source, batch_size, preprocessor(spec), verbose=verbose,
                                 decode=from_pixels):
        in_hand = {} if pixels is None else dict(zip(chunk[from_pixels[chunk]], pixels))
        start_layer = dict.fromkeys(in_hand)  # None: from pixels
        # the chunk's activations as one array in chunk order, where one model call made
        # them all: passed on and pooled without stacking them again
        whole = pixels if pixels is not None and len(pixels) == len(chunk) else None
        rows = {}
        for step, layer in enumerate(order):
            activations = {}
            groups = defaultdict(list)
            for i in chunk:
                found = plan[i][step]
                if found is not None and found[0] == layer:
                    activations[i] = found[1]
                elif found is not None:
                    groups[found[0]].append((i, found[1]))
                else:
                    groups[start_layer[i]].append((i, in_hand[i]))
            everyone = None
            for start, members in groups.items():
                model = segment(start, layer)
                together = len(members) == len(chunk) and whole is not None and all(
                    found is None for found in (plan[i][step] for i in chunk))
                outputs = predict_batch(model, whole if together else
                                        np.stack([array for _, array in members]))
                if len(members) == len(chunk):
                    everyone = outputs
                for (i, _), output in zip(members, outputs):
                    activations[i] = output
                    if admitted[layer]:  # a copy: no view keeps the whole batch alive
                        store.put((*keys[i], layer), output.copy())
            whole = everyone
            in_hand = activations
            start_layer = dict.fromkeys(chunk, layer)
            stacked = whole if whole is not None else np.stack([activations[i] for i in chunk])
            rows[layer] = pool(stacked, pooling, spec.prefix_tokens)
        yield chunk, [rows[layer].astype(source.dtype, copy=False) for layer in layers]


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
        output = predict_batch(model, pixels)
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


def predict_batch(model, batch):
    """``model`` on one batch, as float32 NumPy.

    A dense layer applied to a single row takes a matrix-vector code path whose rounding
    differs from the matrix-matrix one; a blank companion keeps every result independent of
    how the images happen to be batched. A transformer's dense layers see all tokens of the
    batch as one matrix, whose rounding depends on where an image's rows fall in it: its
    images go through one at a time (a matrix of one image's tokens).
    """
    tokens = len(getattr(model, "output_shape", ())) == 3  # a Keras model giving tokens
    if tokens and len(batch) > 1:
        return np.concatenate([predict_batch(model, batch[i:i + 1]) for i in range(len(batch))])
    if len(batch) == 1 and not tokens:
        batch = np.concatenate([batch, np.zeros_like(batch)])
        return np.asarray(model.predict_on_batch(batch)).astype(np.float32, copy=False)[:1]
    return np.asarray(model.predict_on_batch(batch)).astype(np.float32, copy=False)
