"""int8 inference on ONNX Runtime for ``precision="int8"``: calibrated ranges, quantized
segments between cut points.

Per process and per backbone, weights and image size, the base is converted once (tf2onnx)
into a float graph that has every cut point as an output. Calibration records each of its
tensors' range over some images (ONNX Runtime's MinMax calibrator): that is what an int8
extractor learns in ``fit``. A segment is the part of the graph from one cut point to
another, quantized statically with those ranges (QDQ: see
:func:`skconvnet.compute.graphs.quantization_options`). Segments of the same ranges chain exactly: a
deeper layer resumes from a cached shallower one and gets what it would get from pixels, so
the activation cache serves estimators fitted on the same images as in float.
"""

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict

import numpy as np

from ..backbones.graph import segment_name
from ..backbones.weights import RANDOM_SEED
from . import graphs

#: Training images an int8 extractor calibrates on (a seeded sample; all where fewer).
CALIBRATION_IMAGES = 32

_PIXELS = "pixels"
_MAX_CALIBRATIONS = 8  # whose segments are kept: a layer search's folds and refit
_graphs = {}
_calibrated = OrderedDict()  # {(weights, image size, ranges): scales and segments}
_lock = threading.RLock()  # a segment's graph is built under it


def check_backend():
    """Raise where Keras does not run on TensorFlow, which the conversion needs."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"precision='int8' converts the network through TensorFlow, but Keras runs on "
            f"{keras.backend.backend()}: use KERAS_BACKEND=tensorflow, or precision='bfloat16'."
        )


def calibration_sample(n_samples):
    """Indices of the images to calibrate on: a seeded sample, in order."""
    if n_samples <= CALIBRATION_IMAGES:
        return np.arange(n_samples)
    rng = np.random.default_rng(RANDOM_SEED)
    return np.sort(rng.choice(n_samples, CALIBRATION_IMAGES, replace=False))


def calibrate(weights, image_size, batches):
    """``{tensor: (low, high)}``: the range of every tensor of the float graph over
    ``batches`` of preprocessed pixels."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    graph = _float_graph(weights, tuple(image_size))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "float.onnx")
        onnx.save(graph, path)
        calibrator = create_calibrator(path, augmented_model_path=os.path.join(
            folder, "augmented.onnx"), calibrate_method=CalibrationMethod.MinMax)
        calibrator.collect_data(graphs.calibration_reader(batches, _PIXELS))
        found = calibrator.compute_data()
    return {name: tuple(np.asarray(bound).item() for bound in data.range_value)
            for name, data in sorted(found.data.items())}


def digest(ranges):
    """A short digest of calibrated ranges, to key cached activations and segments."""
    text = json.dumps(sorted((name, list(bounds)) for name, bounds in ranges.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def segment_model(weights, image_size, ranges, start, end):
    """The int8 part of the base after cut point ``start`` (None: pixels) up to ``end`` (a
    tuple of cut points: one output each), quantized with ``ranges``; built once per
    process for the last few calibrations. Called as a Keras model is
    (``predict_on_batch``, ``name``)."""
    image_size = tuple(image_size)
    key = (weights.digest, image_size, digest(ranges))
    with _lock:
        graph = _float_graph(weights, image_size)
        if key not in _calibrated:
            _calibrated[key] = {"scales": _scales(graph, ranges, weights.spec.transformer),
                                "segments": {}}
            while len(_calibrated) > _MAX_CALIBRATIONS:
                _calibrated.popitem(last=False)
        _calibrated.move_to_end(key)
        found = _calibrated[key]
        if (start, end) not in found["segments"]:
            proto = _quantized(_cut(graph, start, end), ranges, found["scales"],
                               weights.spec.transformer)
            found["segments"][start, end] = Segment(proto, segment_name(weights.spec, start, end))
        return found["segments"][start, end]


def _scales(graph, ranges, transformer):
    """``{tensor: (scale, zero point)}`` of every activation of the whole graph quantized
    with ``ranges``.

    The quantizer gives some outputs their input's scale (pooling, transposition) rather
    than their own range, which depends on what comes before them: a segment fixes each of
    its tensors to the whole graph's, so that segments chain exactly.
    """
    from onnx import numpy_helper

    whole = _quantized(graph, ranges, {}, transformer)
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in whole.graph.initializer}
    return {node.input[0].removesuffix("_QuantizeLinear_Input"):
            (values[node.input[1]], values[node.input[2]])
            for node in whole.graph.node if node.op_type == "QuantizeLinear"}


class Segment:
    """An ONNX Runtime session of one quantized segment: a list of its outputs, a lone
    output unwrapped (as Keras gives them)."""

    def __init__(self, proto, name):
        self.name = name
        self.session = graphs.session(proto)
        self.input = self.session.get_inputs()[0].name

    def predict_on_batch(self, batch):
        outputs = self.session.run(None, {self.input: np.ascontiguousarray(batch, np.float32)})
        return outputs if len(outputs) > 1 else outputs[0]


def _float_graph(weights, image_size):
    """The float32 graph of the base: preprocessed pixels in, each cut point an output."""
    key = (weights.digest, image_size)
    with _lock:
        if key not in _graphs:
            _graphs[key] = _named_by_position(
                graphs.cut_point_graph(weights, image_size, _PIXELS))
        return _graphs[key]


def _named_by_position(graph):
    """``graph`` with each inner tensor named after the node that makes it.

    tf2onnx numbers the tensors it makes with a counter of the process (``convolution__40``),
    so the same network converts to other names after other conversions; the calibrated
    ranges, saved with the estimator, are keyed by name and must find their tensors in any
    process. Inputs, outputs (the cut points) and weights keep their names.
    """
    kept = {tensor.name for tensor in (*graph.graph.input, *graph.graph.output,
                                       *graph.graph.initializer)}
    names = {output: f"{node.op_type}_{index}_{position}"
             for index, node in enumerate(graph.graph.node)
             for position, output in enumerate(node.output) if output and output not in kept}
    for node in graph.graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
    for info in graph.graph.value_info:
        info.name = names.get(info.name, info.name)
    return graph


def _cut(graph, start, end):
    """The part of ``graph`` from cut point ``start`` (its NHWC activation as the input)
    to cut point ``end`` (or to each of a tuple of them).

    tf2onnx computes in NCHW: the next layers may read a cut point's activation before its
    transposition to NHWC, so the segment takes the NHWC activation and transposes it back.
    """
    import onnx
    from onnx import helper
    FLOAT = onnx.TensorProto.FLOAT

    ends = list(end) if isinstance(end, tuple) else [end]
    if start is None:
        return onnx.utils.Extractor(graph).extract_model([_PIXELS], ends)
    nodes = graph.graph.node
    producer = next(node for node in nodes if start in node.output)
    read = any(start in node.input for node in nodes)
    if read or producer.op_type != "Transpose":
        return onnx.utils.Extractor(graph).extract_model([start], ends)
    inner = producer.input[0]
    perm = list(next(a.ints for a in producer.attribute if a.name == "perm"))
    nhwc = next(output for output in graph.graph.output if output.name == start)
    shape = [dim.dim_value or None for dim in nhwc.type.tensor_type.shape.dim]
    nchw = [None] * len(perm)
    for axis, source in enumerate(perm):
        nchw[source] = shape[axis]
    graph = onnx.ModelProto.FromString(graph.SerializeToString())  # one with inner's shape
    graph.graph.value_info.append(helper.make_tensor_value_info(inner, FLOAT, nchw))
    segment = onnx.utils.Extractor(graph).extract_model([inner], ends)
    del segment.graph.input[:]
    segment.graph.input.append(helper.make_tensor_value_info(start, FLOAT, shape))
    segment.graph.node.insert(0, helper.make_node(
        "Transpose", [start], [inner], name=f"{start}_to_nchw",
        perm=[perm.index(axis) for axis in range(len(perm))]))
    return segment


def _quantized(segment, ranges, scales, transformer):
    """``segment`` quantized statically (QDQ) with the calibrated ``ranges``, its tensors
    named in ``scales`` at those scales and zero points (a ``transformer``'s products only)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, quantize_static
    from onnxruntime.quantization.calibrate import (
        TensorData,
        TensorsData,
        save_tensors_data,
    )

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer's advice
    data = TensorsData(CalibrationMethod.MinMax, {
        name: TensorData(lowest=np.array(low, np.float32), highest=np.array(high, np.float32))
        for name, (low, high) in ranges.items()
    })
    tensors = {name for node in segment.graph.node for name in node.output}
    tensors.update(tensor.name for tensor in segment.graph.input)
    overrides = {name: [{"scale": scale, "zero_point": zero_point}]
                 for name, (scale, zero_point) in scales.items() if name in tensors}
    with tempfile.TemporaryDirectory() as folder:
        plain, cached, quantized = (os.path.join(folder, name) for name in
                                    ("float.onnx", "ranges.json", "int8.onnx"))
        onnx.save(segment, plain)
        save_tensors_data(data, cached)
        quantize_static(plain, quantized, None, calibration_cache_path=cached,
                        extra_options={"TensorQuantOverrides": overrides},
                        **graphs.quantization_options(transformer))
        return onnx.load(quantized)
