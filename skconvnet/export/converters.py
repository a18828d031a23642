"""ONNX export of fitted estimators and pipelines, through skl2onnx.

Each estimator that holds a network provides its own ONNX graph and says what its outputs
are (:class:`OnnxOperator`); this module is the glue to skl2onnx: one shape calculator and
one converter for all of them (the protocol skl2onnx looks for on estimators it has no
converter for), so that ``skl2onnx.to_onnx`` converts a pipeline holding one, and
:func:`to_onnx`, which adds what skconvnet knows: the input type, int8 quantization and
metadata for the ``predict`` command.
"""

import contextvars
import json
import os
from typing import NamedTuple

import numpy as np

from .._optional import require
from .._steps import image_step, steps
from ..compute import graphs

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
    ours = [step for step in steps(estimator) if isinstance(step, OnnxOperator)]
    if not ours or ours[0] is not image_step(estimator):
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
            prepared[id(network)] = graphs.quantize(
                network._onnx_graph(opset), batches, network._spec().transformer,
                head=hasattr(network, "predict"))  # a fine-tuned estimator's output layer
    elif quantize is not None:
        raise ValueError(f"quantize={quantize!r}: use None (float32) or 'int8'.")
    classifier = hasattr(estimator, "predict_proba") or hasattr(estimator, "predict")
    options = {id(step): {"zipmap": False} for step in steps(estimator)
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


def _describe_steps(estimator):
    pipeline = getattr(estimator, "steps", None)
    if not pipeline:
        return type(estimator).__name__
    return f"a pipeline of {', '.join(type(step).__name__ for _, step in pipeline)}"


def _calibration_batches(network, calibration, batch_size=16):
    """``calibration`` images as ``uint8`` batches at ``network``'s image size."""
    source = network._images(calibration, reset=False)
    for start in range(0, source.n_samples, batch_size):
        indices = np.arange(start, min(start + batch_size, source.n_samples))
        yield np.clip(np.rint(source.load(indices)), 0, 255).astype(np.uint8)


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
    types = {"float": FloatTensorType, "int64": Int64TensorType, "string": StringTensorType}
    for variable, output in zip(operator.outputs, estimator._onnx_outputs()):
        variable.type = types[output.kind]([n] if output.width is None else [n, output.width])


def converter(scope, operator, container):
    """skl2onnx's converter for skconvnet's estimators: the network's graph, inlined."""
    from skl2onnx.helpers.integration import add_onnx_graph

    estimator = operator.raw_operator
    graph = _prepared.get().get(id(estimator))
    if graph is None:
        graph = estimator._onnx_graph(min(container.target_opset, graphs.MAX_OPSET))
    add_onnx_graph(scope, operator, container, graph)


def _describe(model, estimator, first, image_size, quantize):
    """Metadata that the ``predict`` command reads: what the outputs are.

    ``kind``: ``"classes"`` (outputs ``label`` and ``probabilities``, ``classes`` their
    columns), ``"tags"`` (``label``, the 0/1 indicator, and ``probabilities``, one column per
    tag of ``classes``), ``"numbers"`` (``variable``, one column per target) or
    ``"features"`` (``features``, named by ``feature_names`` up to
    :data:`MAX_NAMED_FEATURES`).
    """
    from onnx import helper

    kind = output_kind(estimator)
    entries = {"image_size": list(image_size), "backbone": first._spec().name,
               "precision": quantize or "float32", "kind": kind}
    if kind in ("classes", "tags"):
        entries["classes"] = [label.item() if hasattr(label, "item") else label
                              for label in estimator.classes_]
    elif kind == "features":
        names = estimator.get_feature_names_out()
        if len(names) <= MAX_NAMED_FEATURES:  # more are numbered by the predict command
            entries["feature_names"] = [str(name) for name in names]
    model.producer_name = "skconvnet"
    helper.set_model_props(model, {f"skconvnet.{key}": json.dumps(value)
                                   for key, value in entries.items()})


def output_kind(estimator):
    """What a fitted estimator or pipeline gives: ``"numbers"`` (a regressor),
    ``"tags"`` (a classifier of tags: ``multilabel_``), ``"classes"`` (another classifier)
    or ``"features"`` (a transformer)."""
    from sklearn.base import is_classifier, is_regressor

    if is_regressor(estimator):
        return "numbers"
    if is_classifier(estimator) or hasattr(estimator, "predict_proba"):
        *_, final = steps(estimator)
        return "tags" if getattr(final, "multilabel_", False) else "classes"
    return "features"


def name_outputs(graph, kind, names):
    """Name the tags (``kind="tags"``) or the targets (``"numbers"``) of ``graph``, written
    by :func:`to_onnx`, in the metadata the ``predict`` command reads."""

    from onnx import helper

    key = "skconvnet.classes" if kind == "tags" else "skconvnet.target_names"
    entries = {entry.key: entry.value for entry in graph.metadata_props}
    entries[key] = json.dumps([str(name) for name in names])
    helper.set_model_props(graph, entries)


def register_converters():
    """Register every estimator class that is an :class:`OnnxOperator` with skl2onnx, with
    its options (skl2onnx accepts options only for registered converters)."""
    from skl2onnx import update_registered_converter

    for estimator in _subclasses(OnnxOperator):
        update_registered_converter(estimator, f"Skconvnet{estimator.__name__}",
                                    shape_calculator, converter,
                                    options=estimator._onnx_options)


def _subclasses(cls):
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


class OnnxOutput(NamedTuple):
    """One output of an estimator's graph: its ``name``, the ``kind`` of its values
    (``"float"``, ``"int64"`` or ``"string"``) and its ``width`` (None: one value per
    image)."""

    name: str
    kind: str
    width: int | None


class OnnxOperator:
    """Mixin of the estimators that hold a network, which skl2onnx then converts with this
    module's shape calculator and converter (it looks them up on the estimator).

    A fitted estimator provides ``_onnx_graph(opset)``, its network as an ONNX graph from
    ``uint8`` images at ``_image_size()`` to its outputs, and ``_onnx_outputs()``, a list of
    :class:`OnnxOutput` in the graph's order; ``_onnx_options`` are the skl2onnx options its
    converter takes.
    """

    _onnx_options = None

    def onnx_shape_calculator(self):
        return shape_calculator

    def onnx_converter(self):
        return converter
