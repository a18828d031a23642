"""ONNX export of fitted estimators and pipelines, through skl2onnx.

skconvnet's estimators are skl2onnx operators of their own: ``onnx_shape_calculator`` and
``onnx_converter`` (the protocol skl2onnx looks for on estimators it has no converter for)
lead here, so that ``skl2onnx.to_onnx`` converts a pipeline holding one, and so does
:func:`to_onnx`, which adds what skconvnet knows: the input type, int8 quantization and
metadata for the ``predict`` command.
"""

import contextvars
import json
import os

import numpy as np

from .._optional import require
from ..backbones.weights import resolve_weights
from ..compute.activations import n_pooled
from . import graphs

MAX_NAMED_FEATURES = 10_000

#: ``{id(estimator): ModelProto}``: graphs prepared by :func:`to_onnx` (int8) for the
#: converters to use instead of converting afresh.
_prepared = contextvars.ContextVar("skconvnet_prepared_graphs", default={})


def to_onnx(estimator, path=None, *, quantize=None, calibration=None, opset=17):
    """A fitted skconvnet estimator or pipeline as one ONNX graph, run by ONNX Runtime.

    The graph takes ``uint8`` images ``(n_images, height, width, 3)`` at the estimator's
    ``image_size`` (:func:`skconvnet.load_images` decodes and resizes files exactly as
    ``transform`` does) and holds the backbone's preprocessing, the network and everything
    after it. Serving it needs ONNX Runtime and NumPy (and Pillow to decode files): no
    TensorFlow, no Keras, no pickle.

    Parameters
    ----------
    estimator : fitted estimator
        A :class:`ConvNetFeatureExtractor` or :class:`VGGFeatureExtractor` (output
        ``features``); a :class:`~sklearn.pipeline.Pipeline` of one followed by steps that
        skl2onnx converts (scalers, PCA, logistic regression, SVC ...: outputs ``label``
        and ``probabilities`` for a classifier, ``features`` for a transformer); or a
        :class:`FineTunedConvNetClassifier` (``label`` and ``probabilities``; the
        augmentation layers, idle at inference, are left out).
    path : str or os.PathLike, default=None
        Where to write the graph as well (an ``.onnx`` file).
    quantize : {None, "int8"}, default=None
        ``"int8"``: the convolutional network is quantized statically (weights int8 per
        channel, activations uint8, QDQ format), its activation ranges calibrated on
        ``calibration``; scikit-learn steps stay in float.
    calibration : images, default=None
        Images to calibrate int8 ranges on, in any form the estimator takes (arrays, paths,
        encoded bytes): some 30 photos typical of the data are enough (see the deployment
        guide). Required with ``quantize="int8"``.
    opset : int, default=17
        The ONNX opset of the graph (at most 18: the newest that tf2onnx writes).

    Returns
    -------
    model : onnx.ModelProto

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> import onnxruntime
    >>> from skconvnet import VGGFeatureExtractor, to_onnx
    >>> images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    >>> model = make_pipeline(
    ...     VGGFeatureExtractor(layer="block2_pool", pooling="avg", weights=None,
    ...                         image_size=32),
    ...     LogisticRegression()).fit(images, [0, 1] * 3)
    >>> graph = to_onnx(model)
    >>> session = onnxruntime.InferenceSession(graph.SerializeToString())
    >>> label, probabilities = session.run(None, {"images": images})
    >>> bool((label == model.predict(images)).all())
    True
    """
    require("onnx", "onnxruntime", "tf2onnx", "skl2onnx", extra="onnx", purpose="ONNX export")
    from skl2onnx import to_onnx as skl2onnx_to_onnx
    from skl2onnx.common.data_types import FloatTensorType, UInt8TensorType
    from sklearn.utils.validation import check_is_fitted

    register_converters()
    ours = _networks(estimator)
    if not ours or ours[0] is not _first_step(estimator):
        raise TypeError(
            f"to_onnx exports skconvnet estimators and pipelines that start with one (images "
            f"in); got {_describe_steps(estimator)}. Convert other scikit-learn models with "
            "skl2onnx.to_onnx."
        )
    if not 13 <= opset <= graphs.MAX_OPSET:
        raise ValueError(f"opset={opset}: choose one from 13 to {graphs.MAX_OPSET}.")
    check_is_fitted(estimator)
    first = ours[0]
    image_size = first._image_size()
    prepared = {}
    if quantize == "int8":
        if calibration is None:
            raise ValueError(
                "quantize='int8' needs calibration images: pass calibration=X with some 30 "
                "images typical of the data (arrays, paths or encoded bytes)."
            )
        for network in ours:
            batches = list(_calibration_batches(network, calibration))
            prepared[id(network)] = graphs.quantize(_graph(network, opset), batches)
    elif quantize is not None:
        raise ValueError(f"quantize={quantize!r}: use None (float32) or 'int8'.")
    classifier = hasattr(estimator, "predict_proba") or hasattr(estimator, "predict")
    options = {id(step): {"zipmap": False} for step in _steps(estimator)
               if hasattr(step, "predict_proba")}
    final_types = None if classifier else [("features", FloatTensorType([None, None]))]
    token = _prepared.set(prepared)
    try:
        model = skl2onnx_to_onnx(
            estimator, initial_types=[(graphs.INPUT, UInt8TensorType([None, *image_size, 3]))],
            target_opset={"": opset, "ai.onnx.ml": 3}, options=options,
            final_types=final_types,
        )
    finally:
        _prepared.reset(token)
    _describe(model, estimator, first, image_size, quantize)
    if path is not None:
        with open(os.fspath(path), "wb") as file:
            file.write(model.SerializeToString())
    return model


def _steps(estimator):
    """``estimator`` and, in a pipeline or a fitted search, its steps, depth first."""
    yield estimator
    if hasattr(estimator, "best_estimator_"):
        yield from _steps(estimator.best_estimator_)
    for _, step in getattr(estimator, "steps", []):
        yield from _steps(step)


def _first_step(estimator):
    """The step that receives the images."""
    if hasattr(estimator, "best_estimator_"):
        return _first_step(estimator.best_estimator_)
    steps = getattr(estimator, "steps", None)
    return _first_step(steps[0][1]) if steps else estimator


def _describe_steps(estimator):
    steps = getattr(estimator, "steps", None)
    if not steps:
        return type(estimator).__name__
    return f"a pipeline of {', '.join(type(step).__name__ for _, step in steps)}"


def _networks(estimator):
    from .._classifier import FineTunedConvNetClassifier
    from .._extractor import ConvNetFeatureExtractor

    return [step for step in _steps(estimator)
            if isinstance(step, (ConvNetFeatureExtractor, FineTunedConvNetClassifier))]


def _calibration_batches(network, calibration, batch_size=16):
    """``calibration`` images as ``uint8`` batches at ``network``'s image size."""
    source = network._images(calibration, reset=False)
    for start in range(0, source.n_samples, batch_size):
        indices = np.arange(start, min(start + batch_size, source.n_samples))
        yield np.clip(np.rint(source.load(indices)), 0, 255).astype(np.uint8)


def _graph(network, opset):
    """The ONNX graph of a fitted extractor's or classifier's network."""
    prepared = _prepared.get().get(id(network))
    if prepared is not None:
        return prepared
    spec = network._spec()
    if hasattr(network, "feature_shapes_"):
        weights = resolve_weights(spec, network.weights)
        if weights.digest != network.weights_id_:
            raise ValueError(
                f"weights={network.weights!r} now resolve to other weights than in fit: "
                "fit the extractor again before exporting it."
            )
        return graphs.feature_graph(weights, list(network.feature_shapes_), network.pooling,
                                   network._image_size(), opset)
    proto = graphs.classifier_graph(network.model_, spec, network._image_size(), opset)
    return _with_label(proto, network.classes_)


def _with_label(proto, classes):
    """A classifier graph with ``label`` (the most probable class) before ``probabilities``."""
    from onnx import helper, numpy_helper

    values = _class_values(classes)
    graph = proto.graph
    graph.initializer.append(numpy_helper.from_array(values, "classes"))
    graph.node.extend([
        helper.make_node("ArgMax", ["probabilities"], ["class_index"], name="most_probable",
                         axis=1, keepdims=0),
        helper.make_node("Gather", ["classes", "class_index"], ["label"], name="label_of",
                         axis=0),
    ])
    kind = helper.np_dtype_to_tensor_dtype(values.dtype) if values.dtype != object else 8
    probabilities = list(graph.output)
    del graph.output[:]
    graph.output.extend([helper.make_tensor_value_info("label", kind, [None]), *probabilities])
    return proto


def _class_values(classes):
    """Class labels as ONNX holds them: int64 for whole numbers and booleans, else text."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f" and np.array_equal(classes, np.rint(classes)):
        return classes.astype(np.int64)
    return np.array([str(label) for label in classes], dtype=object)


def shape_calculator(operator):
    """skl2onnx's shape calculator for skconvnet's estimators."""
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
        UInt8TensorType,
    )

    estimator = operator.raw_operator
    image_size = tuple(estimator._image_size())
    given = operator.inputs[0].type
    if not isinstance(given, UInt8TensorType) or tuple(given.shape[1:]) != (*image_size, 3):
        raise ValueError(
            f"{type(estimator).__name__} takes uint8 images of shape (n, {image_size[0]}, "
            f"{image_size[1]}, 3) in ONNX, got {type(given).__name__} of shape {given.shape}: "
            "convert with initial_types=[('images', UInt8TensorType([None, "
            f"{image_size[0]}, {image_size[1]}, 3]))], or with skconvnet.to_onnx."
        )
    n = operator.inputs[0].get_first_dimension()
    if hasattr(estimator, "feature_shapes_"):
        width = sum(n_pooled(shape, estimator.pooling)
                    for shape in estimator.feature_shapes_.values())
        operator.outputs[0].type = FloatTensorType([n, width])
        return
    numbers = _class_values(estimator.classes_).dtype == np.int64
    operator.outputs[0].type = (Int64TensorType if numbers else StringTensorType)([n])
    operator.outputs[1].type = FloatTensorType([n, len(estimator.classes_)])


def converter(scope, operator, container):
    """skl2onnx's converter for skconvnet's estimators: the network's graph, inlined."""
    from skl2onnx.helpers.integration import add_onnx_graph

    opset = min(container.target_opset, graphs.MAX_OPSET)
    add_onnx_graph(scope, operator, container, _graph(operator.raw_operator, opset))


def _describe(model, estimator, first, image_size, quantize):
    """Metadata that the ``predict`` command reads: what the outputs are."""
    from onnx import helper

    entries = {"image_size": list(image_size), "backbone": first._spec().name,
               "precision": quantize or "float32"}
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        entries["classes"] = [label.item() if hasattr(label, "item") else label
                              for label in classes]
    elif hasattr(estimator, "get_feature_names_out"):
        names = estimator.get_feature_names_out()
        if len(names) <= MAX_NAMED_FEATURES:  # more are numbered by the predict command
            entries["feature_names"] = [str(name) for name in names]
    model.producer_name = "skconvnet"
    helper.set_model_props(model, {f"skconvnet.{key}": json.dumps(value)
                                   for key, value in entries.items()})


def register_converters():
    """Register skconvnet's estimators with skl2onnx, with the options of a classifier
    (``zipmap``), which skl2onnx accepts only for registered converters."""
    from skl2onnx import update_registered_converter

    from .._classifier import FineTunedConvNetClassifier
    from .._extractor import ConvNetFeatureExtractor, VGGFeatureExtractor

    for estimator in (ConvNetFeatureExtractor, VGGFeatureExtractor):
        update_registered_converter(estimator, f"Skconvnet{estimator.__name__}",
                                    shape_calculator, converter)
    update_registered_converter(
        FineTunedConvNetClassifier, "SkconvnetFineTunedConvNetClassifier", shape_calculator,
        converter, options={"zipmap": [True, False, "columns"], "nocl": [True, False]},
    )


class OnnxOperator:
    """Mixin: skl2onnx converts the estimator with this module's shape calculator and
    converter, which it looks up on the estimator."""

    def onnx_shape_calculator(self):
        return shape_calculator

    def onnx_converter(self):
        return converter
