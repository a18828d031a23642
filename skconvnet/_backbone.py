"""Backbones as Keras models: weights resolved once per process, and models cut at a layer.

Everything about a particular network comes from its spec in :mod:`skconvnet._backbones`.
Keras is imported inside the functions so that ``import skconvnet`` stays light.
"""

import functools
import hashlib
import os
import threading
import warnings

import numpy as np

RANDOM_SEED = 0


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
    """``(height, width, channels)`` of ``layer``'s activation for images of ``image_size``."""
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
    skeleton = _skeleton(spec)
    return _cut(skeleton, locate(skeleton, spec, layer), name="shapes")


@functools.cache
def _skeleton(spec):
    """A float32 model of ``spec`` with Keras' initial weights, for shapes only."""
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


def locate(model, spec, name):
    """The operation of ``model`` (a build of ``spec``) that outputs cut point or layer
    ``name``; None where ``model`` has no such layer."""
    where = spec.cut(name).locator if name in spec.layer_names else name
    if where == "output":
        return model.operations[-1]
    if where.startswith("after:"):
        source = where[len("after:"):]
        return next((operation for operation in model.operations
                     if any(tensor._keras_history[0].name == source
                            for node in operation._inbound_nodes
                            for tensor in node.input_tensors)), None)
    return next((operation for operation in model.operations if operation.name == where),
                None)


def _cut(model, end, *, start=None, name):
    """The part of ``model`` from ``start``'s output (None: its input) to ``end``'s output,
    sharing its layers."""
    import keras

    inputs = model.input if start is None else start.output
    return keras.Model(inputs, end.output, name=name)


class Weights:
    """A backbone's weights as read-only NumPy arrays, with a digest that names them."""

    def __init__(self, spec, arrays):
        self.spec = spec
        self.arrays = arrays  # in the order of the Keras model's ``weights``
        digest = hashlib.sha256(spec.name.encode())
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
    """
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
    for variable in _skeleton(spec).weights:
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


_models = {}
_models_lock = threading.Lock()


def segment_model(weights, precision, start, end):
    """A Keras model of the base's layers after cut point ``start`` up to cut point ``end``.

    ``start=None`` starts from (preprocessed) pixels; otherwise the input is ``start``'s
    activation, so a deeper layer can resume from a shallower one. Models share their layers
    (one set per weights and precision) and are built once per process.
    """
    key = (weights.digest, precision, start, end)
    with _models_lock:
        if key not in _models:
            spec = weights.spec
            base = _base_model(weights, precision)
            start_op = None if start is None else locate(base, spec, start)
            _models[key] = _cut(base, locate(base, spec, end), start=start_op,
                                name=segment_name(spec, start, end))
        return _models[key]


def segment_name(spec, start, end):
    """``backbone__start__end`` (start ``pixels`` for None): which cut points a model spans."""
    return f"{spec.name}__{start or 'pixels'}__{end}"


def _base_model(weights, precision):
    """The whole base for ``weights`` at ``precision`` (call with ``_models_lock`` held)."""
    key = (weights.digest, precision)
    if key not in _models:
        _models[key] = build_base(weights, precision, fold_batch_norm=True)
    return _models[key]


def dtype_policy(precision):
    """The Keras dtype policy that computes in ``precision`` (variables stay float32)."""
    return {"float32": "float32", "bfloat16": "mixed_bfloat16"}[precision]


def build_base(weights, precision, *, fold_batch_norm=False):
    """A new Keras model of the whole base with ``weights``, computing in ``precision``.

    ``keras.applications`` takes no dtype: the model is cloned with a dtype policy per layer,
    so Keras' global policy is never touched. A grouped convolution with one input channel
    per group (ConvNeXt's 7x7 ones) becomes the depthwise convolution it is: the same
    arithmetic, but TensorFlow runs grouped convolutions on the CPU some 50x slower. With
    ``fold_batch_norm`` (for inference only), each batch normalisation that alone follows a
    convolution is folded into it: in inference mode it is a per-channel affine map, and as
    a layer of its own it costs a pass over the activation (two casts more in bfloat16,
    where it computes in float32).
    """
    import keras

    model = new_keras_model(weights.spec, "random")
    model.set_weights(list(weights.arrays))
    folded = _foldable(model) if fold_batch_norm else {}
    depthwise = {layer.name for layer in model.layers if _is_depthwise(layer)}
    if precision == "float32" and not folded and not depthwise:
        return model
    policy = dtype_policy(precision)
    batch_norms = set(folded.values())

    def clone(operation):
        config = operation.get_config()
        if not isinstance(operation, keras.layers.Layer):
            return operation.__class__.from_config(config)
        config["dtype"] = policy
        if operation.name in batch_norms:
            return _folded_away()(name=operation.name, dtype=policy)
        if operation.name in depthwise:
            return _as_depthwise(config)
        if operation.name in folded:
            config["use_bias"] = True
        return operation.__class__.from_config(config)

    clone_ = keras.models.clone_model(model, clone_function=clone)
    for layer in clone_.layers:
        if not layer.weights:
            continue
        original = model.get_layer(layer.name)
        if layer.name in folded:
            layer.set_weights(_folded_weights(original, model.get_layer(folded[layer.name])))
        elif layer.name in depthwise:  # kernel (k, k, 1, groups * m) -> (k, k, groups, m)
            kernel, *bias = original.get_weights()
            layer.set_weights([kernel.reshape(layer.kernel.shape), *bias])
        else:
            layer.set_weights(original.get_weights())
    return clone_


def _is_depthwise(layer):
    """Whether ``layer`` is a grouped 2-D convolution with one input channel per group."""
    import keras

    return (type(layer) is keras.layers.Conv2D and layer.groups > 1
            and layer.kernel.shape[2] == 1 and layer.data_format == "channels_last")


def _as_depthwise(config):
    """The depthwise convolution computing what the grouped convolution of ``config`` does
    (the same output channel order: each group's filters in turn)."""
    import keras

    return keras.layers.DepthwiseConv2D(
        kernel_size=config["kernel_size"], strides=config["strides"],
        padding=config["padding"], depth_multiplier=config["filters"] // config["groups"],
        data_format=config["data_format"], dilation_rate=config["dilation_rate"],
        activation=config["activation"], use_bias=config["use_bias"], name=config["name"],
        dtype=config["dtype"],
    )


@functools.cache
def _folded_away():
    """The class of a layer that passes its input on: a batch normalisation folded into its
    convolution. It takes the arguments the batch normalisation was called with (it lives
    only in extraction models of this process, never saved)."""
    import keras

    class FoldedAway(keras.layers.Layer):
        def call(self, inputs, training=None, mask=None):
            return inputs

        def compute_output_shape(self, input_shape):
            return input_shape

    return FoldedAway


def _foldable(model):
    """``{convolution name: batch normalisation name}`` for each batch normalisation whose
    only input is a convolution that feeds nothing else."""
    import keras

    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or layer.axis not in (-1, 3):
            continue
        (node,) = layer._inbound_nodes
        (tensor,) = node.input_tensors
        conv = tensor._keras_history[0]
        if (isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                and len(conv._outbound_nodes) == 1 and conv.activation.__name__ == "linear"):
            pairs[conv.name] = layer.name
    return pairs


def _folded_weights(conv, batch_norm):
    """The kernel and bias of ``conv`` followed by ``batch_norm`` in inference mode."""
    import keras

    weights = {variable.path.rsplit("/", 1)[-1]: np.asarray(variable, np.float64)
               for variable in batch_norm.weights}
    gamma = weights.get("gamma", 1.0)
    beta = weights.get("beta", 0.0)
    scale = gamma / np.sqrt(weights["moving_variance"] + batch_norm.epsilon)
    kernel = np.asarray(conv.kernel, np.float64)
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else 0.0
    if isinstance(conv, keras.layers.DepthwiseConv2D):  # (k, k, channels, multiplier)
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:  # (k, k, in, out)
        kernel = kernel * scale
    bias = (bias - weights["moving_mean"]) * scale + beta
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def cut_base(base, spec, layer):
    """``base`` (from :func:`build_base`) up to cut point ``layer``, sharing its layers."""
    return _cut(base, locate(base, spec, layer), name=spec.name)


def preprocess(spec, batch):
    """``spec``'s ``preprocess_input`` on a float32 batch this package allocated (in place
    for some networks, a no-op for those that preprocess inside the model)."""
    import keras

    return getattr(keras.applications, spec.module).preprocess_input(batch)


def check_unfreeze_from(spec, unfreeze_from, layer):
    """``unfreeze_from`` if it is a cut point or layer of ``spec`` at or below ``layer``."""
    model = _skeleton(spec)
    found = locate(model, spec, unfreeze_from) if isinstance(unfreeze_from, str) else None
    below = ", ".join(spec.layer_names[: spec.depth(layer)])
    if found is None:
        raise ValueError(
            f"Unknown layer {unfreeze_from!r} for unfreeze_from. Name a cut point of "
            f"{spec.title} up to layer={layer!r} ({below}), or another of its layers below it."
        )
    if _position(model, found) > _position(model, locate(model, spec, layer)):
        raise ValueError(
            f"unfreeze_from={unfreeze_from!r} lies above the cut layer={layer!r}; it must be "
            f"one of the layers the head sits on, e.g. a cut point: {below}."
        )
    return unfreeze_from


def first_trained(model, spec, unfreeze_from):
    """Position in ``model.operations`` of the first operation fine-tuning trains.

    A cut point unfreezes the whole block that ends in it (everything after the cut point
    before it); any other layer unfreezes itself and what follows it.
    """
    if unfreeze_from not in spec.layer_names:
        return _position(model, locate(model, spec, unfreeze_from))
    depth = spec.depth(unfreeze_from)
    if depth == 1:
        return 0
    return _position(model, locate(model, spec, spec.layer_names[depth - 2])) + 1


def frozen_top(spec, unfreeze_from):
    """The deepest cut point below everything that fine-tuning from ``unfreeze_from``
    trains (None where that starts at the first layer)."""
    model = _skeleton(spec)
    first = first_trained(model, spec, unfreeze_from)
    below = [name for name in spec.layer_names
             if _position(model, locate(model, spec, name)) < first]
    return below[-1] if below else None


def _position(model, operation):
    return next(index for index, candidate in enumerate(model.operations)
                if candidate is operation)
