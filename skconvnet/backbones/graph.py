"""A backbone as Keras models: the base built at a precision (batch norm folded, grouped
convolutions made depthwise), cut between cut points, where fine-tuning starts, and a
network built on it split back into its base and head.

Everything about a particular network comes from its spec in :mod:`skconvnet.backbones.specs`.
"""

import functools
import re
import threading

import numpy as np

from .._keras import input_layers, n_calls, output_in
from . import hub
from .hub_specs import HubBackbone
from .precision import dtype_policy
from .weights import new_keras_model, skeleton


def locate(model, spec, name):
    """The operation of ``model`` (a build of ``spec``) that outputs cut point or layer
    ``name``; None where ``model`` has no such layer."""
    where = spec.cut(name).locator if name in spec.layer_names else name
    if where == "output":
        return model.operations[-1]
    if where.startswith("op:"):
        return model.operations[int(where[len("op:"):])]
    if where.startswith("last:"):
        block = re.compile(re.escape(where[len("last:"):]) + "[a-z]")
        return [operation for operation in model.operations if block.match(operation.name)][-1]
    if where.startswith("after:"):
        source = where[len("after:"):]
        return next((operation for operation in model.operations
                     if any(layer.name == source for layer in input_layers(operation))), None)
    return next((operation for operation in model.operations if operation.name == where),
                None)


def cut(model, end, *, start=None, name):
    """The part of ``model`` from ``start``'s output (None: its input) to ``end``'s output
    (a list of operations: one output each), sharing its layers."""
    import keras

    inputs = model.input if start is None else output_in(model, start)
    outputs = ([output_in(model, operation) for operation in end] if isinstance(end, list)
               else output_in(model, end))
    return keras.Model(inputs, outputs, name=name)


_models = {}
_models_lock = threading.Lock()


def segment_model(weights, precision, start, end, image_size=None):
    """A Keras model of the base's layers after cut point ``start`` up to cut point ``end``.

    ``start=None`` starts from (preprocessed) pixels; otherwise the input is ``start``'s
    activation, so a deeper layer can resume from a shallower one. ``end`` a tuple of cut
    points makes a model with one output each. Models share their layers
    (one set per weights, precision and, for a transformer, image size) and are built once
    per process.
    """
    size = sized(weights.spec, image_size)
    key = (weights.digest, precision, size, start, end)
    with _models_lock:
        if key not in _models:
            spec = weights.spec
            base = _base_model(weights, precision, size)
            start_op = None if start is None else locate(base, spec, start)
            end_op = ([locate(base, spec, layer) for layer in end] if isinstance(end, tuple)
                      else locate(base, spec, end))
            _models[key] = cut(base, end_op, start=start_op, name=segment_name(spec, start, end))
        return _models[key]


def sized(spec, image_size):
    """``image_size`` as a tuple where ``spec``'s network is built for one size (a
    transformer's position embeddings), else None."""
    return tuple(image_size) if spec.transformer else None


def segment_name(spec, start, end):
    """``backbone__start__end`` (start ``pixels`` for None, several ends joined by ``.``):
    which cut points a model spans."""
    ends = ".".join(end) if isinstance(end, tuple) else end
    return f"{spec.name}__{start or 'pixels'}__{ends}"


def _base_model(weights, precision, size):
    """The whole base for ``weights`` at ``precision`` (call with ``_models_lock`` held)."""
    key = (weights.digest, precision, size)
    if key not in _models:
        _models[key] = build_base(weights, precision, fold_batch_norm=True, image_size=size)
    return _models[key]


def build_base(weights, precision, *, fold_batch_norm=False, image_size=None):
    """A new Keras model of the whole base with ``weights``, computing in ``precision``.

    ``keras.applications`` takes no dtype: the model is cloned with a dtype policy per layer,
    so Keras' global policy is never touched. A grouped convolution with one input channel
    per group (ConvNeXt's 7x7 ones) becomes the depthwise convolution it is: the same
    arithmetic, but TensorFlow runs grouped convolutions on the CPU some 50x slower. With
    ``fold_batch_norm`` (for inference only), each batch normalisation that alone follows a
    convolution is folded into it: in inference mode it is a per-channel affine map, and as
    a layer of its own it costs a pass over the activation (two casts more in bfloat16,
    where it computes in float32). keras-hub networks are built by keras-hub at the
    precision (a transformer's for ``image_size``, None: its customary size).
    """
    import keras

    if isinstance(weights.spec, HubBackbone):
        return hub.build(weights, image_size or weights.spec.image_size, precision)

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
        (conv,) = input_layers(layer)
        if (isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                and n_calls(conv) == 1 and conv.activation.__name__ == "linear"):
            pairs[conv.name] = layer.name
    return pairs


def _folded_weights(conv, batch_norm):
    """The kernel and bias of ``conv`` followed by ``batch_norm`` in inference mode."""
    import keras

    weights = {variable.path.rsplit("/", 1)[-1]: np.asarray(variable)
               for variable in batch_norm.weights}
    return fold_batch_norm(
        np.asarray(conv.kernel), np.asarray(conv.bias) if conv.use_bias else None,
        gamma=weights.get("gamma"), beta=weights.get("beta"), mean=weights["moving_mean"],
        variance=weights["moving_variance"], epsilon=batch_norm.epsilon,
        depthwise=isinstance(conv, keras.layers.DepthwiseConv2D),
    )


def fold_batch_norm(kernel, bias, *, gamma, beta, mean, variance, epsilon, depthwise):
    """``[kernel, bias]`` (float32) of a convolution that computes what the convolution of
    ``kernel`` and ``bias`` (None: no bias) followed by batch normalisation in inference
    mode computes: ``gamma * (conv - mean) / sqrt(variance + epsilon) + beta`` per channel
    (``gamma``, ``beta``: None where the layer has no scale or offset). ``depthwise``
    kernels are ``(k, k, channels, multiplier)``, others ``(k, k, in, out)``."""
    gamma = 1.0 if gamma is None else np.asarray(gamma, np.float64)
    beta = 0.0 if beta is None else np.asarray(beta, np.float64)
    scale = gamma / np.sqrt(np.asarray(variance, np.float64) + epsilon)
    kernel = np.asarray(kernel, np.float64)
    bias = 0.0 if bias is None else np.asarray(bias, np.float64)
    if depthwise:
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    bias = (bias - np.asarray(mean, np.float64)) * scale + beta
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def cut_base(base, spec, layer):
    """``base`` (from :func:`build_base`) up to cut point ``layer``, sharing its layers."""
    return cut(base, locate(base, spec, layer), name=spec.name)


def __getattr__(name):
    """``InferenceMode``, a Keras layer: defined on first use, since this module is imported
    without Keras."""
    if name == "InferenceMode":
        return _inference_mode()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _inference_mode():
    import keras

    @keras.saving.register_keras_serializable(package="skconvnet")
    class InferenceMode(keras.layers.Layer):
        """A base network that runs in inference mode even while its layers are trained.

        Keras' transfer-learning guide calls the base with ``training=False`` for this, but a
        functional model that contains it passes its own ``training`` on to every operation
        it runs, and batch normalisation would update its statistics while fine-tuning. This
        layer's ``call`` takes no ``training`` argument, so none reaches the base but its own.
        Saved networks name it ``skconvnet>InferenceMode``.
        """

        def __init__(self, base, **kwargs):
            super().__init__(**kwargs)
            self.base = base

        def call(self, inputs):
            return self.base(inputs, training=False)

        def get_config(self):
            return {**super().get_config(),
                    "base": keras.saving.serialize_keras_object(self.base)}

        @classmethod
        def from_config(cls, config):
            base = keras.saving.deserialize_keras_object(config.pop("base"))
            return cls(base, **config)

    InferenceMode.__qualname__ = "InferenceMode"
    return InferenceMode


def split(model):
    """``(base, head, last)`` of a network built on a base wrapped in ``InferenceMode``: the
    base, the model from the base's output to the last layer's input (pooling, hidden
    layers), and the last layer — timm's ``forward_features`` and ``forward_head``."""
    import keras

    wrapper = next(layer for layer in model.layers if isinstance(layer, _inference_mode()))
    last = model.layers[-1]
    return wrapper.base, keras.Model(wrapper.output, last.input, name="head"), last


def preprocess(spec, batch):
    """``spec``'s ``preprocess_input`` on a float32 batch this package allocated (in place
    for some networks, a no-op for those that preprocess inside the model)."""
    import keras

    if isinstance(spec, HubBackbone):  # the preset's image converter
        return batch * np.float32(spec.scale) + np.float32(spec.offset)
    return getattr(keras.applications, spec.module).preprocess_input(batch)


def first_trained(model, spec, unfreeze_from):
    """Position in ``model.operations`` of the first operation fine-tuning trains.

    A cut point unfreezes the whole block that ends in it (everything after the cut point
    before it); any other layer unfreezes itself and what follows it.
    """
    if unfreeze_from not in spec.layer_names:
        return position(model, locate(model, spec, unfreeze_from))
    depth = spec.depth(unfreeze_from)
    if depth == 1:
        return 0
    return position(model, locate(model, spec, spec.layer_names[depth - 2])) + 1


def frozen_top(spec, unfreeze_from):
    """The deepest cut point below everything that fine-tuning from ``unfreeze_from``
    trains (None where that starts at the first layer)."""
    model = skeleton(spec)
    first = first_trained(model, spec, unfreeze_from)
    below = [name for name in spec.layer_names
             if position(model, locate(model, spec, name)) < first]
    return below[-1] if below else None


def position(model, operation):
    return next(index for index, candidate in enumerate(model.operations)
                if candidate is operation)
