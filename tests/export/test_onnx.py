"""ONNX export (``to_onnx``, skl2onnx's own ``to_onnx``), int8 quantization, ``load_images``."""

import gc
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from helpers import dark_and_bright, small_classifier, small_extractor, small_regressor, tagged
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import skconvnet
from skconvnet.backbones import specs
from skconvnet.backbones.hub_specs import HubBackbone
from skconvnet import ConvNetFeatureExtractor, load_images, to_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")


def run(graph, images):
    """The outputs of an ONNX graph on ONNX Runtime, by name."""
    import onnxruntime

    session = onnxruntime.InferenceSession(graph.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"images": images})))


def assert_features_equal(actual, expected):
    """Within 1e-4 of the largest feature."""
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


BACKBONES = [pytest.param(name, marks=[] if name == "vgg16" else pytest.mark.slow)
             for name in skconvnet.list_backbones()
             if not isinstance(specs.get(name), HubBackbone)]  # see test_hub_onnx


def peak_growth_mb(call):
    """``call()`` and how far the process's resident memory rose above where it started."""
    def kb(field):
        status = Path("/proc/self/status").read_text()
        return int(status.split(field)[1].split()[0])

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    before = kb("VmRSS:")
    return call(), (kb("VmHWM:") - before) / 1024


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_backbone_converts_in_bounded_memory_to_the_extractors_features(backbone, pixels):
    layers = skconvnet.list_layers(backbone)
    extractor = ConvNetFeatureExtractor(
        backbone=backbone, layer=[layers[len(layers) // 2], layers[-1]], pooling="avg",
        weights=None, image_size=(32, 32)).fit(pixels)
    if Path("/proc/self/clear_refs").exists():
        graph, growth_mb = peak_growth_mb(lambda: to_onnx(extractor))
        # at most 2.2 GB measured (convnexttiny); 3.3 to 7.3 GB for vgg16, vgg19, resnet50 and
        # convnexttiny where tf2onnx's dropped copies of the graph are left to pile up
        assert growth_mb < 3000, f"converting {backbone} took {growth_mb:.0f} MB"
    else:
        graph = to_onnx(extractor)
    assert [i.name for i in graph.graph.input] == ["images"]
    assert [o.name for o in graph.graph.output] == ["features"]
    assert_features_equal(run(graph, pixels)["features"], extractor.transform(pixels))


def test_converting_leaves_tf2onnx_and_the_garbage_collector_as_they_were(pixels, monkeypatch):
    from tf2onnx import optimizer

    factories = dict(optimizer._optimizers)
    extractor = small_extractor().fit(pixels)
    to_onnx(extractor)
    assert optimizer._optimizers == factories and gc.get_freeze_count() == 0
    gc.freeze()  # the program's own frozen objects stay frozen
    try:
        to_onnx(extractor)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()

    def fails(*args, **kwargs):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr("tf2onnx.convert.from_function", fails)
    with pytest.raises(RuntimeError, match="conversion failed"):
        to_onnx(extractor)
    assert optimizer._optimizers == factories and gc.get_freeze_count() == 0


@pytest.mark.parametrize("pooling", [None, "max"])
def test_flattened_and_max_pooled_features(pooling, pixels):
    extractor = small_extractor(pooling=pooling).fit(pixels)
    assert_features_equal(run(to_onnx(extractor), pixels)["features"],
                          extractor.transform(pixels))


@pytest.mark.parametrize("head", [
    lambda: [StandardScaler(), LogisticRegression()],
    lambda: [StandardScaler(), PCA(4), CalibratedClassifierCV(SVC(), ensemble=False, cv=2)],
], ids=["logistic", "pca-svc"])
def test_a_pipeline_gives_its_labels_and_probabilities(head, pixels):
    X = np.concatenate([pixels, pixels[:, ::-1]])
    y = np.array(["cat", "dog", "emu"] * 4)
    model = make_pipeline(small_extractor(), *head()).fit(X, y)
    outputs = run(to_onnx(model), X)
    assert list(outputs) == ["label", "probabilities"]
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(X), atol=1e-5)


def test_a_fitted_search_exports_its_best_pipeline(pixels):
    from sklearn.model_selection import GridSearchCV

    X = np.concatenate([pixels, pixels[:, ::-1]])
    y = [0, 1] * 6
    search = GridSearchCV(make_pipeline(small_extractor(), LogisticRegression()),
                          {"vggfeatureextractor__layer": ["block1_pool", "block2_pool"]},
                          cv=2).fit(X, y)
    np.testing.assert_allclose(run(to_onnx(search), X)["probabilities"],
                               search.predict_proba(X), atol=1e-5)


def test_a_pipeline_that_ends_in_a_transformer_gives_features(pixels):
    model = make_pipeline(small_extractor(), PCA(3)).fit(pixels)
    np.testing.assert_allclose(run(to_onnx(model), pixels)["features"],
                               model.transform(pixels), atol=1e-4)


@pytest.mark.parametrize("labels", [["cat", "dog"], ["a", "b", "c"], [3, 7]])
def test_the_classifier_gives_its_labels_and_probabilities(labels):
    X, _ = dark_and_bright(6)
    y = np.resize(labels, len(X))
    clf = small_classifier(head_epochs=2, fine_tune_epochs=1).fit(X, y)
    graph = to_onnx(clf)
    operations = {node.op_type for node in graph.graph.node}
    assert not any(op.startswith("Random") for op in operations), operations
    outputs = run(graph, X)
    np.testing.assert_array_equal(outputs["label"], clf.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], clf.predict_proba(X), atol=1e-5)


def test_a_bfloat16_classifier_is_exported_in_float32():
    X, y = dark_and_bright(6)
    clf = small_classifier(head_epochs=2, fine_tune_epochs=1, precision="bfloat16").fit(X, y)
    graph = to_onnx(clf)
    floats = {initializer.data_type for initializer in graph.graph.initializer}
    assert 16 not in floats  # no bfloat16 tensor
    np.testing.assert_allclose(run(graph, X)["probabilities"], clf.predict_proba(X),
                               atol=0.02)  # bfloat16 rounds to 3 significant digits


def test_skl2onnx_converts_pipelines_with_skconvnet_steps_in_a_new_interpreter(
        pixels, tmp_path):
    """The ecosystem's own way, in an interpreter where skconvnet registered nothing."""
    y = [0, 1, 2] * 2
    model = make_pipeline(small_extractor(), StandardScaler(), LogisticRegression()).fit(
        pixels, y)
    joblib.dump(model, tmp_path / "model.joblib")
    np.save(tmp_path / "pixels.npy", pixels)
    code = (
        "import joblib, numpy as np, onnxruntime, skl2onnx, sys;"
        "from skl2onnx.common.data_types import UInt8TensorType;"
        "d = sys.argv[1]; m = joblib.load(d + '/model.joblib');"
        "g = skl2onnx.to_onnx(m, initial_types=[('images', UInt8TensorType([None, 32, 32, 3]))],"
        " options={'zipmap': False});"
        "s = onnxruntime.InferenceSession(g.SerializeToString());"
        "np.save(d + '/proba.npy', s.run(None, {'images': np.load(d + '/pixels.npy')})[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True,
                   capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), model.predict_proba(pixels),
                               atol=1e-5)


def test_skl2onnx_with_other_input_types_says_what_the_graph_takes(pixels):
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType

    model = make_pipeline(small_extractor(), LogisticRegression()).fit(pixels, [0, 1] * 3)
    with pytest.raises(ValueError, match=r"takes uint8 images of shape \(n, 32, 32, 3\).*"
                                         r"FloatTensorType.*UInt8TensorType"):
        skl2onnx.to_onnx(model, initial_types=[("X", FloatTensorType([None, 3072]))])


def test_the_graph_is_written_where_a_path_is_given(pixels, tmp_path):
    import onnx

    extractor = small_extractor().fit(pixels)
    graph = to_onnx(extractor, tmp_path / "features.onnx")
    assert onnx.load(tmp_path / "features.onnx") == graph
    metadata = {entry.key: entry.value for entry in graph.metadata_props}
    assert metadata["skconvnet.image_size"] == "[32, 32]"


def test_int8_is_quantized_and_close(pixels):
    X, y = dark_and_bright(10)
    model = make_pipeline(small_extractor(), StandardScaler(), LogisticRegression()).fit(X, y)
    graph = to_onnx(model, quantize="int8", calibration=X[::2])
    operations = [node.op_type for node in graph.graph.node]
    assert "QuantizeLinear" in operations and "DequantizeLinear" in operations
    int8 = [i for i in graph.graph.initializer if i.data_type == 3]  # INT8 weights
    assert len(int8) >= 4  # the four convolutions of blocks 1 and 2
    outputs = run(graph, X)
    np.testing.assert_array_equal(outputs["label"], model.predict(X))
    features = run(to_onnx(model[0], quantize="int8", calibration=X[::2]), X)["features"]
    expected = model[0].transform(X)
    error = np.abs(features - expected).max() / np.abs(expected).max()
    assert 0 < error < 0.05


@pytest.mark.parametrize("kwargs, message", [
    ({"quantize": "int8"}, "quantize='int8' needs calibration images"),
    ({"quantize": "int4", "calibration": [0]}, "quantize='int4': use None"),
    ({"opset": 21}, "opset=21: choose one from 13 to 18"),
])
def test_export_mistakes(kwargs, message, pixels):
    extractor = small_extractor().fit(pixels)
    with pytest.raises(ValueError, match=message):
        to_onnx(extractor, **kwargs)


def test_what_cannot_be_exported(pixels):
    with pytest.raises(TypeError, match="to_onnx exports skconvnet estimators.*"
                                        "LogisticRegression.*skl2onnx.to_onnx"):
        to_onnx(LogisticRegression().fit([[0], [1]], [0, 1]))
    from sklearn.preprocessing import FunctionTransformer

    after = make_pipeline(FunctionTransformer(), small_extractor()).fit(pixels)
    with pytest.raises(TypeError, match="a pipeline of FunctionTransformer, "
                                        "VGGFeatureExtractor"):
        to_onnx(after)
    with pytest.raises(NotFittedError):
        to_onnx(make_pipeline(small_extractor(), LogisticRegression()))


def test_weights_rewritten_since_fit_are_refused_as_transform_refuses_them(pixels, tmp_path):
    import keras

    path = tmp_path / "base.weights.h5"
    keras.applications.VGG16(include_top=False, weights=None).save_weights(path)
    model = make_pipeline(small_extractor(weights=path), LogisticRegression()).fit(
        pixels, [0, 1] * (len(pixels) // 2))
    keras.applications.VGG16(include_top=False, weights=None).save_weights(path)
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match=r"weights=.*base\.weights\.h5.* now resolve to other "
                                         r"weights than in fit .*Fit the extractor again"):
        to_onnx(model)


def test_a_missing_converter_names_the_extra(monkeypatch, pixels):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # what an absent package does
    with pytest.raises(ImportError, match=r"needs tf2onnx: pip install 'skconvnet\[onnx\]'"):
        to_onnx(small_extractor().fit(pixels))


# load_images


def test_load_images_gives_the_pixels_transform_uses(image_files, tmp_path):
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=shape, dtype=np.uint8)
              for shape in [(40, 50, 3), (32, 32, 3), (20, 70, 1)]]
    files = image_files(arrays[:2], ".png") + image_files([arrays[2][..., 0]], ".jpg")
    files.append(files[0].read_bytes())  # encoded bytes too
    pixels = load_images(files, (32, 32))
    assert pixels.dtype == np.uint8 and pixels.shape == (4, 32, 32, 3)
    extractor = small_extractor(pooling=None, layer="block1_conv1").fit(files)
    np.testing.assert_array_equal(extractor.transform(pixels), extractor.transform(files))


def test_load_images_imports_no_keras(image_files):
    (file,) = image_files([np.zeros((8, 8, 3), np.uint8)])
    code = ("import sys; from skconvnet import load_images;"
            f"load_images([{str(file)!r}], 4);"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('keras', 'tensorflow', 'jax')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_load_images_names_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png: no such file"):
        load_images([tmp_path / "missing.png"], 32)
    with pytest.raises(ValueError, match=r"images has shape \(2, 40\)"):
        load_images(np.zeros((2, 40)), 32)


# real photos


@pytest.mark.slow
def test_real_photos_with_imagenet_grade_weights(cats_and_dogs, imagenet_weights):
    paths, labels = skconvnet.load_image_folder(cats_and_dogs / "train", max_per_class=20)
    test, test_labels = skconvnet.load_image_folder(cats_and_dogs / "validation",
                                                    max_per_class=10)
    model = make_pipeline(
        ConvNetFeatureExtractor(weights=imagenet_weights, pooling="avg", image_size=150),
        StandardScaler(), LogisticRegression(max_iter=2000)).fit(paths, labels)
    outputs = run(to_onnx(model), load_images(test, 150))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(test), atol=1e-5)
    assert_features_equal(run(to_onnx(model[0]), load_images(test, 150))["features"],
                          model[0].transform(test))
    assert np.mean(outputs["label"] == test_labels) >= 0.8


# tags and numbers


def metadata(graph):
    """The ``skconvnet.*`` metadata the ``predict`` command reads, decoded."""
    import json

    return {prop.key.split(".", 1)[1]: json.loads(prop.value) for prop in graph.metadata_props
            if prop.key.startswith("skconvnet.")}


def test_the_multilabel_classifier_gives_its_tags_and_their_probabilities():
    import pandas as pd

    X, y = dark_and_bright(6)
    tags = pd.DataFrame(tagged(X, y), columns=["bright", "striped"])
    clf = small_classifier(fine_tune_epochs=1).fit(X, tags)
    graph = to_onnx(clf)
    outputs = run(graph, X)
    assert list(outputs) == ["label", "probabilities"]
    assert outputs["label"].dtype == np.int64 and outputs["label"].shape == (len(X), 2)
    np.testing.assert_array_equal(outputs["label"], clf.predict(X))
    np.testing.assert_allclose(outputs["probabilities"], clf.predict_proba(X), atol=1e-5)
    assert metadata(graph)["kind"] == "tags"
    assert metadata(graph)["classes"] == ["bright", "striped"]


@pytest.mark.parametrize("n_targets", [1, 3])
def test_the_regressor_gives_its_numbers(n_targets):
    X, _ = dark_and_bright(6)
    y = np.column_stack([X.mean(axis=(1, 2, 3)), X.std(axis=(1, 2, 3)), X[..., 0].mean(
        axis=(1, 2))])[:, :n_targets] / 255
    reg = small_regressor(fine_tune_epochs=1).fit(X, y.ravel() if n_targets == 1 else y)
    graph = to_onnx(reg)
    outputs = run(graph, X)
    assert list(outputs) == ["variable"]
    assert outputs["variable"].shape == (len(X), n_targets)
    np.testing.assert_allclose(outputs["variable"].reshape(reg.predict(X).shape),
                               reg.predict(X), atol=1e-5)
    assert metadata(graph)["kind"] == "numbers"
    assert "classes" not in metadata(graph) and "feature_names" not in metadata(graph)


@pytest.mark.parametrize("n_targets", [1, 2])
def test_a_pipeline_ending_in_a_regressor_gives_its_numbers(n_targets, pixels):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    X = np.concatenate([pixels, pixels[:, ::-1]])
    y = np.column_stack([X.mean(axis=(1, 2, 3)), X.std(axis=(1, 2, 3))])[:, :n_targets] / 255
    model = Pipeline([("features", small_extractor()), ("ridge", Ridge())]).fit(
        X, y.ravel() if n_targets == 1 else y)
    graph = to_onnx(model)
    outputs = run(graph, X)
    assert list(outputs) == ["variable"]
    np.testing.assert_allclose(outputs["variable"].reshape(model.predict(X).shape),
                               model.predict(X), atol=1e-5)
    assert metadata(graph)["kind"] == "numbers"


def test_each_kind_of_model_is_named_in_the_metadata(pixels):
    y = ["cat", "dog"] * 3
    classifier = make_pipeline(small_extractor(), LogisticRegression()).fit(pixels, y)
    assert metadata(to_onnx(classifier))["kind"] == "classes"
    assert metadata(to_onnx(classifier))["classes"] == ["cat", "dog"]
    extractor = small_extractor().fit(pixels)
    assert metadata(to_onnx(extractor))["kind"] == "features"
    assert metadata(to_onnx(extractor))["feature_names"][0] == "block2_pool_avg_ch0"


def test_skl2onnx_converts_the_regressor_as_a_pipeline_step():
    import skl2onnx
    from skl2onnx.common.data_types import UInt8TensorType
    from sklearn.pipeline import Pipeline

    from skconvnet.export.converters import register_converters

    X, _ = dark_and_bright(6)
    model = Pipeline([("regressor", small_regressor(fine_tune_epochs=1))]).fit(
        X, X.mean(axis=(1, 2, 3)) / 255)  # float32 outputs: 1e-5 of numbers near 1
    register_converters()
    graph = skl2onnx.to_onnx(model, initial_types=[("images", UInt8TensorType([None, 32, 32,
                                                                               3]))])
    np.testing.assert_allclose(run(graph, X)["variable"].ravel(), model.predict(X), atol=1e-5)


def test_int8_keeps_the_output_layer_in_float():
    """Numbers beyond those of the calibration images are not clipped to their range."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    y = X.mean(axis=(1, 2, 3))
    reg = small_regressor(fine_tune_epochs=0).fit(X, y)
    middle = np.argsort(y)[15:25]
    outputs = run(to_onnx(reg, quantize="int8", calibration=X[middle]), X)["variable"].ravel()
    predicted = reg.predict(X)
    assert predicted.max() > y[middle].max() + 1  # predictions beyond the calibrated range
    assert outputs.max() > y[middle].max() + 1
    assert np.corrcoef(outputs, predicted)[0, 1] > 0.95
