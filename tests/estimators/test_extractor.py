"""VGGFeatureExtractor and ConvNetFeatureExtractor: outputs, layers, pooling, precision,
persistence."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import small_extractor
from sklearn.base import clone

from skconvnet import ConvNetFeatureExtractor, VGGFeatureExtractor
from skconvnet.backbones import checks, graph, specs, weights


def test_import_loads_no_backend():
    code = "import sys, skconvnet; print(sorted({'keras', 'tensorflow', 'jax'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "pooling, n_features", [("avg", 128), ("max", 128), (None, 8 * 8 * 128)]
)
def test_output_shape_per_pooling(images, pooling, n_features):
    features = small_extractor(pooling=pooling).fit_transform(images)
    assert features.shape == (len(images), n_features)
    assert features.dtype == np.float32
    assert np.isfinite(features).all() and features.std() > 0


def test_pooling_matches_flattened_activation(images):
    flat = small_extractor(pooling=None).fit_transform(images).reshape(len(images), 8, 8, 128)
    avg = small_extractor(pooling="avg").fit_transform(images)
    peak = small_extractor(pooling="max").fit_transform(images)
    np.testing.assert_allclose(avg, flat.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(peak, flat.max(axis=(1, 2)))


VGG16 = specs.get("vgg16")


@pytest.mark.parametrize("layer", VGG16.layer_names)
def test_every_layer_cuts_the_model_there(images, layer):
    extractor = small_extractor(layer=layer, pooling=None).fit(images[:2])
    shape = checks.output_shape(VGG16, layer, (32, 32))
    assert extractor.feature_shapes_ == {layer: shape}
    assert extractor.transform(images[:2]).shape == (2, int(np.prod(shape)))
    resolved = weights.resolve_weights(VGG16, None)
    model = graph.segment_model(resolved, "float32", None, layer)
    computed = [op.name for op in model.operations if op.name in VGG16.layer_names]
    assert computed == list(VGG16.layer_names[: VGG16.depth(layer)])


def test_all_eighteen_layer_names():
    assert len(VGG16.layer_names) == 18
    assert VGG16.layer_names[0] == "block1_conv1"
    assert VGG16.layer_names[-1] == "block5_pool"


def test_vgg_extractor_is_the_vgg16_convnet_extractor(images):
    vgg = small_extractor(layer=["block1_pool", "block3_conv2"])
    convnet = ConvNetFeatureExtractor(**vgg.get_params())
    assert convnet.backbone == "vgg16"
    np.testing.assert_array_equal(vgg.fit_transform(images), convnet.fit_transform(images))
    assert set(convnet.get_params()) - set(vgg.get_params()) == {"backbone"}


def test_vgg_extractor_keeps_its_defaults():
    params = VGGFeatureExtractor().get_params()
    assert params["layer"] == "block5_pool" and params["image_size"] == (150, 150)
    assert "backbone" not in params


def test_feature_names_are_unique_and_telling(images):
    avg = small_extractor().fit(images)
    assert list(avg.get_feature_names_out()[:2]) == ["block2_pool_avg_ch0", "block2_pool_avg_ch1"]
    flat = small_extractor(pooling=None, layer="block5_pool").fit(images)
    names = flat.get_feature_names_out()
    assert len(names) == len(set(names)) == flat.transform(images[:1]).shape[1]
    assert names[0] == "block5_pool_y0_x0_ch0" and names[-1] == "block5_pool_y0_x0_ch511"


def test_set_output_pandas(images):
    extractor = small_extractor().set_output(transform="pandas").fit(images)
    frame = extractor.transform(images)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(extractor.get_feature_names_out())
    np.testing.assert_array_equal(frame.to_numpy(), clone(extractor).set_output(
        transform="default").fit_transform(images))


def test_caller_array_is_never_modified(images):
    for array in (images, images.astype(np.float32), images.astype(np.float64)):
        before = array.copy()
        small_extractor().fit_transform(array)
        np.testing.assert_array_equal(array, before)


def test_read_only_float_input_works(images):
    pixels = images.astype(np.float32)
    pixels.setflags(write=False)
    np.testing.assert_array_equal(small_extractor().fit_transform(pixels),
                                  small_extractor().fit_transform(images))


def test_float64_input_gives_float64_features(images):
    features = small_extractor().fit_transform(images.astype(np.float64))
    assert features.dtype == np.float64
    np.testing.assert_array_equal(features, small_extractor().fit_transform(images))


def test_random_weights_agree_between_fits(images, computed):
    first = small_extractor(cache=False).fit_transform(images)
    weights._load.cache_clear()  # draw the random weights again
    second = clone(small_extractor(cache=False)).fit_transform(images)
    assert computed["block2_pool"] == 2 * len(images)  # both computed by the network
    np.testing.assert_array_equal(first, second)


def test_batch_size_does_not_change_features(images, computed):
    whole = small_extractor(batch_size=32, cache=False).fit_transform(images)
    in_threes = small_extractor(batch_size=3, cache=False).fit_transform(images)
    one_by_one = small_extractor(batch_size=1, cache=False).fit_transform(images)
    assert computed["block2_pool"] == 3 * len(images)  # each computed by the network
    np.testing.assert_array_equal(whole, in_threes)
    np.testing.assert_array_equal(whole, one_by_one)


def test_bfloat16_close_to_float32_and_global_policy_untouched(images):
    import keras

    policy = keras.config.dtype_policy().name
    exact = small_extractor(layer="block3_pool").fit_transform(images)
    fast = small_extractor(layer="block3_pool", precision="bfloat16").fit_transform(images)
    assert fast.dtype == np.float32
    assert keras.config.dtype_policy().name == policy == "float32"
    assert not np.array_equal(fast, exact)  # it really computed in bfloat16
    relative = np.abs(fast - exact).max() / np.abs(exact).max()
    assert relative < 0.01  # the guides measure at most 0.54%


def test_verbose_shows_progress_bar(images, capsys):
    small_extractor(verbose=1, batch_size=4).fit_transform(images)
    out = capsys.readouterr().out
    assert "8/8" in out
    small_extractor(verbose=0).fit_transform(images)
    assert capsys.readouterr().out == ""


def test_clone_is_unfitted_with_same_params(images):
    fitted = small_extractor(layer="block3_pool").fit(images)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "weights_id_")


def test_pickle_round_trip_in_fresh_process(images, tmp_path, hed_weights):
    extractor = small_extractor(weights=hed_weights, layer="block3_pool").fit(images)
    expected = extractor.transform(images)
    (tmp_path / "extractor.pkl").write_bytes(pickle.dumps(extractor))
    np.save(tmp_path / "images.npy", images)
    code = (
        "import pickle, sys, numpy as np; d = sys.argv[1];"
        "e = pickle.load(open(d + '/extractor.pkl', 'rb'));"
        "np.save(d + '/out.npy', e.transform(np.load(d + '/images.npy')))"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_weights_path_gives_pretrained_features(images, hed_weights):
    """The features are those of Keras' own VGG16 with that weights file, cut at the layer."""
    import keras

    pretrained = small_extractor(weights=hed_weights).fit_transform(images)
    vgg16 = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    vgg16.load_weights(hed_weights)
    cut = keras.Model(vgg16.input, vgg16.get_layer("block2_pool").output)
    expected = cut.predict(keras.applications.vgg16.preprocess_input(
        images.astype(np.float32)), verbose=0).mean(axis=(1, 2))
    assert np.abs(pretrained - expected).max() <= 1e-5 * np.abs(expected).max()
    assert not np.allclose(pretrained, small_extractor().fit_transform(images))


def test_default_parameters_follow_the_contract():
    params = VGGFeatureExtractor().get_params()
    assert params == {
        "layer": "block5_pool",
        "weights": "imagenet",
        "pooling": None,
        "image_size": (150, 150),
        "image_shape": None,
        "batch_size": 32,
        "precision": "float32",
        "verbose": 0,
        "cache": True,
    }
