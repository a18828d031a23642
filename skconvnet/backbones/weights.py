"""A backbone's weights: ``"imagenet"``, seeded random or a file, read once per process.

Keras is imported inside the functions so that ``import skconvnet`` stays light.
"""

import functools
import hashlib
import os
import warnings

import numpy as np

from .._optional import require_keras
from . import hub, specs
from .hub_specs import HubBackbone

RANDOM_SEED = 0


@functools.cache
def skeleton(spec):
    """A float32 model of ``spec`` with Keras' initial weights, for shapes only."""
    if isinstance(spec, HubBackbone):
        return hub.skeleton(spec)
    return new_keras_model(spec, "random")


def new_keras_model(spec, weights):
    """``keras.applications.<constructor>(include_top=False)`` for any image size.

    ``weights`` is passed on: ``"random"`` for Keras' own initialisation, ``"imagenet"``.
    """
    import keras

    constructor = getattr(keras.applications, spec.constructor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "input_shape is undefined or non-square"
        return constructor(include_top=False, input_shape=(None, None, 3),
                           weights=None if weights == "random" else weights)


class Weights:
    """A backbone's weights as read-only NumPy arrays, with a digest that names them.

    A keras-hub network's also carry the configuration keras-hub builds it from (JSON), and
    its ``spec`` the preprocessing of the preset's image converter.
    """

    def __init__(self, spec, arrays, config=None):
        self.spec = spec
        self.arrays = arrays  # in the order of the Keras model's ``weights``
        self.config = config
        digest = hashlib.sha256(spec.name.encode())
        if config is not None:  # a keras-hub network: its configuration and preprocessing
            digest.update(repr((config, spec.scale, spec.offset)).encode())
        for array in arrays:
            array.setflags(write=False)
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).data)
        self.digest = digest.hexdigest()[:16]


def resolve_weights(spec, weights):
    """Return the :class:`Weights` for a ``weights`` parameter, reading them once per process.

    ``"imagenet"`` downloads through ``keras.applications`` (and its cache), ``None`` draws
    seeded random weights, and a path loads a weights file saved from the Keras model. A
    path is keyed by its size and modification time, so a rewritten file is read again.
    keras-hub backbones take a preset name or a preset folder instead of a file.
    """
    require_keras(f"backbone={spec.name!r}")
    if isinstance(spec, HubBackbone):
        return _hub_weights(spec, weights)
    if weights is None:
        return _load(spec, None)
    if isinstance(weights, str) and weights == "imagenet":
        return _load(spec, "imagenet")
    path = os.path.abspath(os.fspath(weights))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"weights={os.fspath(weights)!r}: no such file. Pass 'imagenet' (downloaded by "
            "Keras), None (random initialisation) or the path to a weights file saved from "
            f"keras.applications.{spec.constructor}(include_top=False), e.g. with "
            "model.save_weights('base.weights.h5')."
        )
    stat = os.stat(path)
    return _load(spec, (path, stat.st_size, stat.st_mtime_ns))


def spec_for(spec, weights):
    """``spec`` as ``weights`` make it: a keras-hub preset's own cut points, tokens, image
    size and preprocessing (the preset is loaded, once per process)."""
    if isinstance(spec, HubBackbone) and weights is not None:
        return resolve_weights(spec, weights).spec
    return spec


def _hub_weights(spec, weights):
    spec = specs.get(spec.name)  # the family's, whatever preset a spec was made for
    if weights is None:
        return _load_hub(spec, None)
    preset = spec.preset if isinstance(weights, str) and weights == "imagenet" else weights
    preset = os.fspath(preset)
    if os.path.isdir(preset):  # a folder is read again once rewritten
        stat = os.stat(os.path.join(preset, "config.json")) if os.path.isfile(
            os.path.join(preset, "config.json")) else os.stat(preset)
        return _load_hub(spec, (os.path.abspath(preset), stat.st_size, stat.st_mtime_ns))
    if "://" not in preset and (os.sep in preset or preset.startswith(".")):
        raise FileNotFoundError(
            f"weights={preset!r}: no such folder. Pass a keras-hub preset name (e.g. "
            f"{spec.preset!r}), a folder written by save_to_preset, or None (random weights)."
        )
    return _load_hub(spec, (preset,))


@functools.lru_cache(maxsize=4)
def _load_hub(spec, key):
    if key is None:
        return Weights(spec, hub.random_arrays(spec, spec.config, RANDOM_SEED), spec.config)
    loaded, config, arrays = hub.load_preset(spec, key[0])
    return Weights(loaded, arrays, config)


@functools.lru_cache(maxsize=4)
def _load(spec, key):
    if key is None:
        return Weights(spec, _random_arrays(spec, RANDOM_SEED))
    if key == "imagenet":
        return Weights(spec, _imagenet_arrays(spec))
    return Weights(spec, _read_weights_file(spec, key[0]))


def _random_arrays(spec, seed):
    """Keras' initial weights, with every kernel drawn anew from a seeded NumPy generator.

    Keras draws kernels from its own seed generators, which gave other weights in a Dask
    worker than in its parent; kernels are drawn here (Glorot-uniform) instead. Every other
    variable — biases, batch-normalisation statistics, layer scales — starts at constants.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for variable in skeleton(spec).weights:
        value = np.array(variable, dtype=np.float32)
        if variable.path.endswith("kernel"):
            receptive = int(np.prod(value.shape[:-2]))
            fan_in, fan_out = receptive * value.shape[-2], receptive * value.shape[-1]
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-limit, limit, size=value.shape).astype(np.float32)
        arrays.append(value)
    return arrays


def _imagenet_arrays(spec):
    try:
        model = new_keras_model(spec, "imagenet")
    except Exception as error:
        raise OSError(
            f"Could not download the ImageNet weights of {spec.name} through "
            f"keras.applications.{spec.constructor} ({str(error).splitlines()[0]}). Without "
            "network access, copy the weights file into Keras' cache (~/.keras/models, or "
            "$KERAS_HOME/models) or pass weights=<path to a weights file saved from "
            f"keras.applications.{spec.constructor}(include_top=False)>."
        ) from None
    return [np.array(array) for array in model.get_weights()]


def _read_weights_file(spec, path):
    model = new_keras_model(spec, "random")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns per skipped object before it raises
            model.load_weights(path)
    except Exception as error:
        raise ValueError(
            f"weights={path!r} is not a Keras {spec.title} convolutional base "
            f"(keras.applications.{spec.constructor}(include_top=False)): loading it failed "
            f"with: {str(error).splitlines()[0]}"
        ) from None
    return [np.array(array) for array in model.get_weights()]
