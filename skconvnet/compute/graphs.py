"""Keras networks as ONNX graphs, and their static int8 quantization: the engine of both the
ONNX export and ``precision="int8"``.

A graph takes ``uint8`` images ``(n, height, width, 3)`` — as :func:`skconvnet.load_images`
gives them — and holds the backbone's preprocessing, the network in float32 (bfloat16
networks are rebuilt in float32; augmentation layers, identities at inference, are left
out), and the pooling or the head. tf2onnx converts a ``tf.function`` of it; Keras is
imported inside the functions, so that ``import skconvnet`` stays light.
"""

import contextlib
import functools
import gc
import logging
import math
import os
import tempfile
import threading
import warnings

import numpy as np

from .._keras import output_in
from ..backbones import tokens
from ..backbones.graph import build_base, locate, preprocess, split
from ..backbones.hub_specs import HubBackbone

INPUT = "images"
MAX_OPSET = 18  # the newest opset tf2onnx 1.17 writes


def feature_graph(weights, layers, pooling, image_size, opset):
    """The ``features`` of images at ``layers`` (side by side), pooled as ``pooling``."""
    network = _base_to(weights, layers, image_size)
    prefix_tokens = weights.spec.prefix_tokens

    def features(outputs):
        import tensorflow as tf

        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        rows = [_pooled(tf, output, pooling, prefix_tokens) for output in outputs]
        return {"features": rows[0] if len(rows) == 1 else tf.concat(rows, axis=1)}

    return _convert(network, weights.spec, image_size, features, opset)


def classifier_graph(model, spec, image_size, classes, opset, multilabel=False):
    """The ``label`` (the most probable of ``classes``) and class ``probabilities`` of a
    fine-tuned classifier's network: its base, pooling and head, without the augmentation
    layers in front. ``multilabel``: each label's probability, and ``label`` the 0/1
    indicator of those above one half."""
    network = _inference_network(model, spec, image_size, name="classifier")

    def probabilities(output):
        import tensorflow as tf

        if multilabel:
            return {"label": tf.cast(output > 0.5, tf.int64), "probabilities": output}
        if output.shape[-1] == 1:  # sigmoid: the first class's probability is 1 - p
            output = tf.concat([1 - output, output], axis=1)
        return {"probabilities": output}

    proto = _convert(network, spec, image_size, probabilities, opset)
    return _in_order(proto, ["label", "probabilities"]) if multilabel else _with_label(
        proto, classes)


def regressor_graph(model, spec, image_size, opset):
    """The ``variable`` (the predicted numbers, one column per target) of a fine-tuned
    regressor's network, without the augmentation layers in front."""
    network = _inference_network(model, spec, image_size, name="regressor")
    return _convert(network, spec, image_size, lambda output: {"variable": output}, opset)


def _inference_network(model, spec, image_size, name):
    """A fine-tuned network's base, pooling and head from preprocessed pixels, in layers
    tf2onnx converts."""
    import keras

    base, head, last = split(model)
    inputs = keras.Input(shape=(*image_size, 3), name="pixels")
    keras_hubs = isinstance(spec, HubBackbone) and base.dtype_policy.name == "float32"
    x = (base if keras_hubs else _portable(base))(inputs)
    for layer in [*head.layers[1:], last]:  # after the head's input: pooling and head
        copy = _portable_layer(layer)
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=name)


def _in_order(proto, names):
    """``proto`` with its outputs in the order of ``names`` (tf2onnx sorts them)."""
    outputs = {output.name: output for output in proto.graph.output}
    ordered = [outputs[name] for name in names]
    del proto.graph.output[:]
    proto.graph.output.extend(ordered)
    return proto


def _with_label(proto, classes):
    """A classifier graph with ``label`` (the most probable class) before ``probabilities``."""
    from onnx import helper, numpy_helper

    values = class_values(classes)
    graph = proto.graph
    graph.initializer.append(numpy_helper.from_array(values, "classes"))
    graph.node.extend([
        helper.make_node("ArgMax", ["probabilities"], ["class_index"], name="most_probable",
                         axis=1, keepdims=0),
        helper.make_node("Gather", ["classes", "class_index"], ["label"], name="label_of",
                         axis=0),
    ])
    kind = helper.np_dtype_to_tensor_dtype(values.dtype) if values.dtype != object else 8
    graph.output.append(helper.make_tensor_value_info("label", kind, [None]))
    return _in_order(proto, ["label", "probabilities"])


def class_values(classes):
    """Class labels as ONNX holds them: int64 for whole numbers and booleans, else text."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.array_equal(classes, np.rint(classes)):
        return classes.astype(np.int64)
    return np.array([str(label) for label in classes], dtype=object)


def _base_to(weights, layers, image_size):
    """A float32 model of the base, batch norm folded, with an output at each of ``layers``
    (a keras-hub network as keras-hub builds it)."""
    import keras

    base = build_base(weights, "float32", fold_batch_norm=True, image_size=image_size)
    spec = weights.spec
    model = keras.Model(base.input, [output_in(base, locate(base, spec, layer))
                                     for layer in layers], name=spec.name)
    return model if isinstance(spec, HubBackbone) else _portable(model)


def _pooled(tf, activation, pooling, prefix_tokens):
    """:func:`skconvnet.compute.activations.pool` in TensorFlow (a transformer's tokens by
    the classifier's :class:`~skconvnet.backbones.tokens.TokenPooling`)."""
    if len(activation.shape) == 3:
        return tokens.TokenPooling(pooling, prefix_tokens)(activation)
    if pooling == "avg":
        return tf.reduce_mean(activation, axis=[1, 2])
    if pooling == "max":
        return tf.reduce_max(activation, axis=[1, 2])
    return tf.reshape(activation, [tf.shape(activation)[0], -1])


def _portable(model):
    """A float32 copy of a functional Keras model that tf2onnx converts."""
    import keras

    copy = keras.models.clone_model(model, clone_function=_portable_layer)
    copy.set_weights(model.get_weights())
    return copy


def _portable_layer(operation):
    """A new, float32 layer with ``operation``'s configuration (weights not copied).

    Keras' exact GELU is written with ``erfc``, an operation ONNX lacks: the same function
    is written with ``erf``.
    """
    import keras

    config = operation.get_config()
    if not isinstance(operation, keras.layers.Layer):
        return operation.__class__.from_config(config)
    config["dtype"] = "float32"
    if isinstance(operation, keras.layers.Activation) and config["activation"] == "gelu":
        return keras.layers.Activation(_gelu, name=operation.name)
    return operation.__class__.from_config(config)


def _gelu(x):
    import keras

    return 0.5 * x * (1.0 + keras.ops.erf(x / math.sqrt(2.0)))


def cut_point_graph(weights, image_size, input_name):
    """The base in float32 from preprocessed pixels (input ``input_name``) to every cut
    point of its spec, each an output named after it."""
    spec = weights.spec
    network = _base_to(weights, spec.layer_names, image_size)
    tf = _tensorflow()
    signature = [tf.TensorSpec([None, *image_size, 3], tf.float32, name=input_name)]

    @tf.function(input_signature=signature)
    def graph(pixels):
        return dict(zip(spec.layer_names, network(pixels, training=False)))

    return _from_function(graph, signature, 17)


def _convert(network, spec, image_size, outputs, opset):
    """``network`` from ``uint8`` images, preprocessed as ``spec`` says, to ``outputs(...)``,
    converted by tf2onnx."""
    tf = _tensorflow()
    signature = [tf.TensorSpec([None, *image_size, 3], tf.uint8, name=INPUT)]

    @tf.function(input_signature=signature)
    def graph(images):
        pixels = preprocess(spec, tf.cast(images, tf.float32))
        return outputs(network(pixels, training=False))

    return _from_function(graph, signature, opset)


def _tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"ONNX export converts through TensorFlow, but Keras runs on "
            f"{keras.backend.backend()}: export with KERAS_BACKEND=tensorflow."
        )
    import tensorflow as tf

    return tf


def _from_function(graph, signature, opset):
    """The ONNX graph of the ``tf.function`` ``graph``, converted by tf2onnx."""
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), _collecting_between_optimizers(), _erfc_unreported():
        warnings.simplefilter("ignore")
        proto, _ = tf2onnx.convert.from_function(graph, input_signature=signature,
                                                 opset=min(opset, MAX_OPSET))
    return _constants_as_initializers(_erfc_as_erf(proto), graph.get_concrete_function(),
                                      keep=signature[0].name)


@contextlib.contextmanager
def _erfc_unreported():
    """tf2onnx's report of the ``Erfc`` it leaves in the graph, left out (see
    :func:`_erfc_as_erf`)."""
    def keep(record):
        return "Erfc" not in record.getMessage()

    loggers = [logging.getLogger(name) for name in ("tf2onnx.tfonnx", "tf2onnx")]
    for logger in loggers:
        logger.addFilter(keep)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(keep)


def _erfc_as_erf(proto):
    """``proto`` with each ``Erfc`` (of TensorFlow's exact GELU, inside keras-hub's
    transformers), which ONNX lacks, written as ``1 - Erf``."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    nodes = []
    for node in graph.node:
        if node.op_type != "Erfc":
            nodes.append(node)
            continue
        erf = f"{node.output[0]}_erf"
        nodes += [helper.make_node("Erf", list(node.input), [erf], name=f"{node.name}_erf"),
                  helper.make_node("Sub", ["erfc_one", erf], list(node.output), name=node.name)]
    if len(nodes) > len(graph.node):
        graph.initializer.append(numpy_helper.from_array(np.ones((), np.float32), "erfc_one"))
        del graph.node[:]
        graph.node.extend(nodes)
    return proto


_CONVERTING = threading.Lock()


@contextlib.contextmanager
def _collecting_between_optimizers():
    """Collect garbage before each of tf2onnx's graph optimizers.

    Each optimizer works on a deep copy of the graph, weights included, and drops the one
    before: reference cycles that Python's collector reaches only now and then, so the copies
    pile up (converting ResNet50 rose 7.0 GB above where it started, against 1.1 GB with
    them collected). The optimizers live in a private table of tf2onnx; where it is gone,
    nothing is wrapped.
    """
    from tf2onnx import optimizer

    table = getattr(optimizer, "_optimizers", {})
    with _CONVERTING:  # the table is shared: one conversion wraps it at a time
        factories = dict(table)
        table.update({name: functools.partial(_after_collecting, factory)
                      for name, factory in factories.items()})
        # Objects older than the conversion are left out of its collections, which then take
        # milliseconds (unless the program froze objects of its own: unfreezing would undo it).
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            yield
        finally:
            if freeze:
                gc.unfreeze()
            table.update(factories)


def _after_collecting(factory):
    gc.collect()
    return factory()


def _constants_as_initializers(proto, concrete, keep):
    """Replace the graph inputs tf2onnx makes of captured constants (the normalisation
    inside EfficientNetV2, ...) by initializers holding their values; drop unused ones.

    ONNX Runtime would otherwise demand them as inputs, and its calibrator too.
    """
    import onnx

    captured = {placeholder.name: value for value, placeholder
                in zip(concrete.captured_inputs, concrete.graph.internal_captures)}
    used = {name for node in proto.graph.node for name in node.input}
    kept = []
    for graph_input in proto.graph.input:
        if graph_input.name == keep:
            kept.append(graph_input)
        elif graph_input.name in used:
            value = np.asarray(captured[graph_input.name])
            proto.graph.initializer.append(onnx.numpy_helper.from_array(value,
                                                                        graph_input.name))
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    return proto


def quantize(proto, batches, transformer=False, head=False):
    """``proto`` with its weights in int8 and its activations in uint8 (static QDQ,
    per-channel weights; :func:`quantization_options`), the ranges calibrated on
    ``batches`` of ``uint8`` images.

    ``head``: the graph ends in an estimator's output layer, which stays float32. Quantized,
    its outputs would be clipped to the range the calibration images gave (a regressor's
    numbers beyond it, a probability above the highest seen)."""
    import onnx
    from onnxruntime.quantization import quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer's advice on pre-processing
    with tempfile.TemporaryDirectory() as folder:
        plain, prepared, quantized = (os.path.join(folder, name) for name in
                                      ("plain.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save(proto, plain)
        quant_pre_process(plain, prepared, skip_symbolic_shape=True)
        options = quantization_options(transformer)
        if head:
            options["nodes_to_exclude"] = _output_layer(onnx.load(prepared))
        quantize_static(prepared, quantized, calibration_reader(batches, INPUT), **options)
        return onnx.load(quantized)


def _output_layer(proto):
    """The names of the nodes from the last product (``Gemm``, ``MatMul``) to the end."""
    nodes = list(proto.graph.node)
    last = max(index for index, node in enumerate(nodes)
               if node.op_type in ("Gemm", "MatMul"))
    return [node.name for node in nodes[last:]]


def calibration_reader(batches, input_name):
    """ONNX Runtime's calibration data reader over ``batches`` fed as ``input_name``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    return Reader()


def quantization_options(transformer=False):
    """How skconvnet quantizes: QDQ, activations uint8, weights int8 per channel in 7 bits;
    a ``transformer``'s products only.

    On CPUs without VNNI instructions ONNX Runtime's uint8 x int8 products saturate with
    8-bit weights (VGG16 features measured off by up to 59% of the largest at block3_pool,
    against 4% with 7 bits). A transformer's normalisations, softmax and GELU stay float32:
    the mean of a normalised token is a range ONNX Runtime's int8 average cannot scale to
    (CLIP's blocks fail on it).
    """
    from onnxruntime.quantization import QuantFormat, QuantType

    products = {"op_types_to_quantize": ["Conv", "MatMul", "Gemm"]} if transformer else {}
    return dict(quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, **products)


def session(model):
    """An ONNX Runtime session of ``model`` (a ModelProto, bytes or a path) on the CPU."""
    import onnxruntime

    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
