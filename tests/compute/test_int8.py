"""precision="int8": calibration in fit, features close to float32, exact reuse through the
activation cache, independence of batch-mates, and its errors."""

import subprocess
import sys

import joblib
import numpy as np
import pytest
from helpers import small_extractor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skconvnet
from skconvnet import ConvNetFeatureExtractor, list_layers
from skconvnet.compute.int8 import CALIBRATION_IMAGES, calibration_sample

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def empty_cache():
    skconvnet.clear_cache()
    yield
    skconvnet.clear_cache()


@pytest.fixture(scope="module")
def forty():
    """40 small random images: more than the calibration sample."""
    return np.random.default_rng(1).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)


def test_features_are_close_to_float32(forty):
    int8 = small_extractor(precision="int8").fit(forty).transform(forty)
    float32 = small_extractor().fit(forty).transform(forty)
    error = np.abs(int8 - float32).max() / np.abs(float32).max()
    assert 0 < error < 0.05  # quantized, and close: the guide measures 1-4%
    assert np.corrcoef(int8.ravel(), float32.ravel())[0, 1] > 0.99


def test_a_fit_after_other_conversions_loads_in_a_fresh_process(forty, tmp_path):
    """tf2onnx numbers the tensors it makes with a counter of the process: an int8 extractor
    fitted after other conversions gives its features in a new interpreter too."""
    skconvnet.to_onnx(small_extractor(image_size=(40, 40)).fit(forty[:2]))  # a conversion first
    extractor = small_extractor(precision="int8", image_size=(36, 36)).fit(forty)
    joblib.dump(extractor, tmp_path / "int8.joblib")
    np.save(tmp_path / "X.npy", forty)
    code = ("import sys, joblib, numpy as np; folder = sys.argv[1]; "
            "extractor = joblib.load(folder + '/int8.joblib'); "
            "np.save(folder + '/out.npy', extractor.transform(np.load(folder + '/X.npy')))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), extractor.transform(forty))


def test_calibration_uses_a_seeded_sample_of_the_training_images(forty):
    ranges = small_extractor(precision="int8").fit(forty).int8_ranges_
    assert ranges == small_extractor(precision="int8").fit(forty).int8_ranges_
    sample = calibration_sample(len(forty))
    assert len(sample) == CALIBRATION_IMAGES < len(forty)
    # the same ranges from exactly the sampled images, other ranges from others
    assert small_extractor(precision="int8").fit(forty[sample]).int8_ranges_ == ranges
    others = np.setdiff1d(np.arange(len(forty)), sample)
    assert small_extractor(precision="int8").fit(forty[others]).int8_ranges_ != ranges
    assert all(low <= high for low, high in ranges.values())


@pytest.mark.parametrize("backbone, layers", [
    ("vgg16", ["block1_pool", "block2_pool"]),
    # its graph reads a cut point's activation before the transposition to NHWC
    pytest.param("densenet121", ["pool2_pool", "pool3_pool"], marks=pytest.mark.slow),
])
def test_resumed_and_cached_features_equal_direct_ones(forty, backbone, layers):
    X = forty[:12]
    shallow, deep = (ConvNetFeatureExtractor(backbone=backbone, layer=layer, weights=None,
                                             image_size=64, pooling="avg", precision="int8")
                     for layer in layers)
    shallow.fit(X), deep.fit(X)
    direct = deep.set_params(cache=False).transform(X)
    shallow.transform(X)  # cached: the deep layer resumes from it
    resumed = deep.set_params(cache=True).transform(X)
    np.testing.assert_array_equal(resumed, direct)
    np.testing.assert_array_equal(deep.transform(X), direct)  # served from the cache


def test_features_do_not_depend_on_batch_mates(forty):
    extractor = small_extractor(precision="int8", cache=False).fit(forty)
    together = extractor.transform(forty[:9])
    alone = np.concatenate([extractor.transform(forty[i:i + 1]) for i in range(9)])
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(
        extractor.set_params(batch_size=4).transform(forty[:9]), together)


def test_a_layer_search_computes_each_layer_once_per_calibration(forty, computed):
    """Candidates fitted on the same fold share its calibration; each fold and the refit
    calibrate on their own training images."""
    X, y = forty[:30], np.array([0, 1] * 15)
    X[y == 1] //= 2
    pipeline = Pipeline([("vgg", small_extractor(precision="int8")),
                         ("clf", LogisticRegression(max_iter=1000))])
    search = GridSearchCV(pipeline, {"vgg__layer": ["block1_pool", "block2_pool",
                                                    "block3_pool"]}, cv=3).fit(X, y)
    names = list_layers("vgg16")
    refit = names[:names.index(search.best_params_["vgg__layer"]) + 1]
    assert computed == {name: (3 + (name in refit)) * len(X) for name in names[:10]}


def test_int8_set_after_fit_says_fit_again(forty):
    extractor = small_extractor().fit(forty).set_params(precision="int8")
    with pytest.raises(ValueError, match=r"precision='int8' was set after fit.*fit the "):
        extractor.transform(forty)
    refit = small_extractor(precision="int8").fit(forty).set_params(precision="float32")
    np.testing.assert_array_equal(refit.fit(forty).transform(forty),
                                  small_extractor().fit(forty).transform(forty))
    assert not hasattr(refit, "int8_ranges_")


def test_a_missing_onnx_runtime_names_the_extra(monkeypatch, forty):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    extractor = small_extractor(precision="int8")
    with pytest.raises(ImportError, match=r"precision='int8' needs onnxruntime: pip install "
                                          r"'skconvnet\[onnx\]'"):
        extractor.fit(forty)
    assert not hasattr(extractor, "weights_id_")


def test_another_backend_is_refused_clearly(monkeypatch, forty):
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="precision='int8' converts the network through "
                                           "TensorFlow, but Keras runs on jax"):
        small_extractor(precision="int8").fit(forty)


@pytest.mark.slow
def test_real_photos_probes_at_three_depths_within_0_03_of_float32(cats_and_dogs,
                                                                  imagenet_weights):
    """Linear probes at three depths on real photos: int8 within 0.03 of float32 (the
    benchmark measures the search on more photos)."""
    from sklearn.preprocessing import StandardScaler

    train = sorted((cats_and_dogs / "train").glob("*/*.jpg"))[::10]
    test = sorted((cats_and_dogs / "validation").glob("*/*.jpg"))[::5]
    label = lambda paths: [path.parent.name for path in paths]  # noqa: E731
    for layer in ["block3_pool", "block4_pool", "block5_pool"]:
        scores = {}
        for precision in ["float32", "int8"]:
            model = Pipeline([
                ("vgg", skconvnet.VGGFeatureExtractor(layer=layer, pooling="avg",
                                                      weights=imagenet_weights,
                                                      precision=precision)),
                ("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000)),
            ]).fit(train, label(train))
            scores[precision] = model.score(test, label(test))
        assert abs(scores["int8"] - scores["float32"]) <= 0.03, (layer, scores)


def test_export_without_quantize_gives_the_float32_graph(forty):
    from skconvnet import to_onnx
    from skconvnet.compute.graphs import session

    int8 = small_extractor(precision="int8").fit(forty)
    exported = session(to_onnx(int8)).run(None, {"images": forty})[0]
    float32 = small_extractor().fit(forty).transform(forty)
    assert np.abs(exported - float32).max() <= 1e-4 * np.abs(float32).max()
