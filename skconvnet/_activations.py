"""Running image batches through a cut VGG16 base."""

import numpy as np


def preprocess(batch):
    """VGG16's caffe preprocessing (RGB to BGR, ImageNet mean subtracted), in place.

    Only ever called on batches this package allocated, never on the caller's array.
    """
    import keras

    return keras.applications.vgg16.preprocess_input(batch)


def run_model(model, source, *, batch_size, verbose=0):
    """``model``'s output for every image of ``source``, as one ``(n, n_features)`` array."""
    import keras

    features = None
    progress = keras.utils.Progbar(source.n_samples, unit_name="image") if verbose else None
    start = 0
    for batch in source.batches(batch_size):
        output = _predict(model, preprocess(batch))
        if features is None:
            features = np.empty((source.n_samples, output.shape[1]), dtype=source.dtype)
        features[start : start + len(batch)] = output
        start += len(batch)
        if progress is not None:
            progress.update(start)
    return features


def _predict(model, batch):
    # A dense layer applied to a single row takes a matrix-vector code path whose rounding
    # differs from the matrix-matrix one; a blank companion keeps every result independent
    # of how the images happen to be batched.
    if len(batch) == 1:
        return np.asarray(model.predict_on_batch(np.concatenate([batch, np.zeros_like(batch)])))[:1]
    return np.asarray(model.predict_on_batch(batch))
