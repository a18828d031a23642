"""Checks of the parameters that name a backbone's layers and of image sizes, with the shapes
Keras infers (on a float32 skeleton of the network, built once per process) and the width
of their features once pooled."""

import functools
import warnings

import numpy as np

from .graph import cut, locate, position
from .weights import skeleton


def check_layer(spec, layer, parameter="layer"):
    """Return ``layer`` if it names a cut point of ``spec``, else raise a listing error."""
    if not isinstance(layer, str) or layer not in spec.layer_names:
        raise ValueError(
            f"Unknown layer {layer!r} for {parameter}. {spec.title} can be cut at these "
            f"layers, shallow to deep: {', '.join(spec.layer_names)}."
        )
    return layer


def check_layers(spec, layer):
    """The list of layer names in a ``layer`` parameter: one name, or a list of them."""
    if isinstance(layer, str):
        return [check_layer(spec, layer)]
    layers = list(layer)
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(
            f"layer={layer!r}: a list of layers must name at least one layer, each once."
        )
    return [check_layer(spec, name) for name in layers]


def output_shape(spec, layer, image_size):
    """``(height, width, channels)`` of ``layer``'s activation for images of ``image_size``;
    ``(tokens, channels)`` for a transformer."""
    if spec.transformer:
        spec.check_image_size(image_size)
        return spec.token_shape(image_size)
    shape = _output_shape(spec, layer, tuple(image_size))
    if shape is None:
        minimum = _minimum_size(spec, layer)
        raise ValueError(
            f"image_size={tuple(image_size)} is too small for layer={layer!r}: {spec.title} "
            f"reduces height and width {spec.cut(layer).reduction}x up to that layer, so "
            f"they must each be at least {minimum}. Increase image_size or choose a "
            "shallower layer."
        )
    return shape


@functools.lru_cache(maxsize=1024)
def _output_shape(spec, layer, image_size):
    """The shape Keras infers, or None where the image is too small for the layer."""
    model = _shape_model(spec, layer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape = tuple(model.compute_output_shape((1, *image_size, 3))[1:])
    except Exception:  # a layer found a negative size
        return None
    return shape if all(size is not None and size > 0 for size in shape) else None


def _minimum_size(spec, layer):
    """The smallest square image size with a non-empty activation at ``layer``."""
    low, high = 1, 4 * spec.cut(layer).reduction
    while low < high:
        middle = (low + high) // 2
        if _output_shape(spec, layer, (middle, middle)) is None:
            low = middle + 1
        else:
            high = middle
    return low


@functools.cache
def _shape_model(spec, layer):
    model = skeleton(spec)
    return cut(model, locate(model, spec, layer), name="shapes")


def check_unfreeze_from(spec, unfreeze_from, layer):
    """``unfreeze_from`` if it is a cut point or layer of ``spec`` at or below ``layer``."""
    model = skeleton(spec)
    found = locate(model, spec, unfreeze_from) if isinstance(unfreeze_from, str) else None
    below = ", ".join(spec.layer_names[: spec.depth(layer)])
    if found is None:
        raise ValueError(
            f"Unknown layer {unfreeze_from!r} for unfreeze_from. Name a cut point of "
            f"{spec.title} up to layer={layer!r} ({below}), or another of its layers below it."
        )
    if position(model, found) > position(model, locate(model, spec, layer)):
        raise ValueError(
            f"unfreeze_from={unfreeze_from!r} lies above the cut layer={layer!r}; it must be "
            f"one of the layers the head sits on, e.g. a cut point: {below}."
        )
    return unfreeze_from


def check_pooling(spec, pooling, parameter="pooling"):
    """``pooling`` if ``spec`` takes it, else a ValueError naming what it takes."""
    if pooling not in spec.poolings:
        raise ValueError(
            f"{parameter}={pooling!r} does not fit {spec.title}, which takes "
            f"{', '.join(map(repr, spec.poolings))}"
            + (" (it has no class token)" if spec.transformer else
               " ('cls' and 'cls+avg' are for vision transformers' tokens)")
            + "."
        )
    return pooling


def n_pooled(shape, pooling, prefix_tokens=0):
    """Features per image that pooling by ``pooling`` (None: flattening) makes of an
    activation of ``shape``; a transformer's tokens, ``(tokens, channels)``, start with
    ``prefix_tokens`` class and register tokens."""
    if pooling in ("avg", "max", "cls"):
        return shape[-1]
    if pooling == "cls+avg":
        return 2 * shape[-1]
    if len(shape) == 2:  # the patch tokens alone
        return (shape[0] - prefix_tokens) * shape[1]
    return int(np.prod(shape))
