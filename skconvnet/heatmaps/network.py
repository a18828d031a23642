"""Heatmaps of a fine-tuned network (a classifier's or a regressor's): Grad-CAM at its last
convolutional layer, and the exact class activation map where its head is linear on
average-pooled features."""

import numpy as np
from sklearn.base import is_regressor

from .._keras import output_in, value_and_vjp
from ..backbones.graph import split
from ..backbones import tokens
from ..compute.activations import batches, padded, preprocessor
from .maps import chosen, min_max, output_scores, patch_grid, positive_part, upsampled


def why_not_linear(estimator):
    """Why the exact map does not apply to a fitted ``estimator``'s network, or None where
    it does (its features averaged over positions, then only the last layer)."""
    import keras

    _, head, _ = split(estimator.model_)
    layers = [layer for layer in head.layers if not isinstance(layer, keras.layers.InputLayer)]
    averaged = (isinstance(layers[0], keras.layers.GlobalAveragePooling2D)
                or isinstance(layers[0], tokens.TokenPooling) and layers[0].pooling == "avg")
    if not averaged:
        return (f"its network pools with {type(layers[0]).__name__}; the class score is a sum "
                "over positions only for pooling='avg'")
    hidden = sum(isinstance(layer, keras.layers.Dense) for layer in layers)
    if hidden:
        return (f"its head has {hidden} hidden layer(s) (hidden_layer_sizes); the exact map "
                "needs a linear head")
    return None


def linear_maps(estimator, source, targets):
    """Exact class activation maps of an estimator whose head is linear on average-pooled
    features: the logits of each position's activation of the base (one forward pass)."""
    base, head, probability = split(estimator.model_)
    kernel, bias = probability.get_weights()
    spec = estimator._spec()
    maps = []
    for chunk, pixels in _batches(estimator, source):
        activations = base(pixels, training=False)
        grid = patch_grid(activations, spec, source.image_size)
        logits = grid[:len(chunk)] @ kernel + bias
        scores = output_scores(estimator, logits.reshape(-1, logits.shape[-1]))
        classes = targets[chunk] if targets is not None else _predicted(
            probability(head(activations, training=False)))[:len(chunk)]
        maps.append(chosen(scores.reshape(*logits.shape[:3], -1), classes))
    return min_max(upsampled(np.concatenate(maps), source.image_size))


def gradcam_maps(estimator, source, targets):
    """Grad-CAM: the activation of the base's last convolutional layer (a transformer's
    last block, as the grid of its patch tokens), its channels weighted by the mean gradient
    of the class's logit over positions; the positive part."""
    import keras

    base, head, probability = split(estimator.model_)
    spec = estimator._spec()
    layer = output_in(base, last_block(base) if spec.transformer else last_convolution(base))
    lower = keras.Model(base.input, layer)
    upper = None if layer is base.output else keras.Model(layer, base.output)

    def logits(activations):
        features = activations if upper is None else upper(activations, training=False)
        features = keras.ops.cast(head(features, training=False), "float32")
        return keras.ops.matmul(features, probability.kernel) + probability.bias

    maps = []
    for chunk, pixels in _batches(estimator, source):
        activations = lower(pixels, training=False)
        values, vjp = value_and_vjp(logits, activations)
        classes = targets[chunk] if targets is not None else _predicted(
            probability.activation(values))[:len(chunk)]
        binary = values.shape[1] == 1 and not is_regressor(estimator)
        gradients = patch_grid(vjp(_cotangent(values.shape, classes, binary)), spec,
                               source.image_size)
        channel_weights = gradients.mean(axis=(1, 2))
        maps.append(np.einsum("bhwc,bc->bhw", patch_grid(activations, spec, source.image_size),
                              channel_weights)[:len(chunk)])
    return positive_part(upsampled(np.concatenate(maps), source.image_size))


def last_convolution(base):
    """The operation of ``base`` at the end of its last convolution's stretch: the last
    convolution and what follows it up to the first pooling, all at its resolution —
    Grad-CAM's layer (VGG16's ``block5_conv3`` under ``block5_pool``, ResNet-50's
    ``conv5_block3_out``)."""
    import keras

    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                    keras.layers.SeparableConv2D)
    pooling = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    operations = base.operations
    last = max(index for index, operation in enumerate(operations)
               if isinstance(operation, convolutions))
    end = next((index for index in range(last, len(operations))
                if isinstance(operations[index], pooling)), len(operations))
    return operations[end - 1]


def last_block(base):
    """A transformer's last block in ``base`` (under its final normalisation, if any)."""
    import keras

    return next(operation for operation in reversed(base.operations)
                if not isinstance(operation, keras.layers.LayerNormalization))


def _batches(estimator, source):
    """``(chunk, pixels)`` of ``source``'s images, preprocessed, in the estimator's batch
    size, with a blank companion where one keeps results independent of how images are
    batched (:func:`skconvnet.compute.activations.padded`)."""
    spec = estimator._spec()
    for chunk, pixels in batches(source, estimator.batch_size, preprocessor(spec)):
        yield chunk, padded(pixels, spec.transformer)


def _predicted(probabilities):
    """The class index ``predict`` gives for the network's output ``probabilities``."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.shape[1] == 1:
        probabilities = np.hstack([1 - probabilities, probabilities])
    return probabilities.argmax(axis=1)


def _cotangent(shape, classes, binary):
    """The gradient of each image's class score with respect to the logits: ``±1`` on a
    ``binary`` classifier's one logit (its second class, or the first), one-hot on the
    others' (a softmax's classes, the labels' sigmoids, a regressor's targets); blank
    companions 0."""
    cotangent = np.zeros(shape, np.float32)
    rows = np.arange(len(classes))
    if binary:
        cotangent[rows, 0] = np.where(classes == 1, 1.0, -1.0)
    else:
        cotangent[rows, classes] = 1.0
    return cotangent
