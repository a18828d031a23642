"""Every backbone through its spec: cut points, equality with Keras, weights, the cache."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skconvnet
from skconvnet import ConvNetFeatureExtractor, list_backbones, list_layers
from skconvnet.backbones import checks, graph, specs, weights
from skconvnet.backbones.hub_specs import HubBackbone

# keras.applications' networks (keras-hub's are tested in test_hub.py)
BACKBONES = [name for name in list_backbones()
             if not isinstance(specs.get(name), HubBackbone)]


def test_the_backbones_are_named_after_their_keras_constructors():
    import keras

    assert {"vgg16", "vgg19", "resnet50", "efficientnetv2b0", "convnexttiny",
            "mobilenetv3small", "densenet121"} <= set(BACKBONES)
    for name in BACKBONES:
        constructor = specs.get(name).constructor
        assert constructor.lower() == name and hasattr(keras.applications, constructor)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_spec_matches_the_keras_model(backbone):
    """Channels and reduction of every cut point are those of the Keras model; the deepest
    is its output; each cut point carries the whole state (a segment from it to the next
    one is a model of its own)."""
    spec = specs.get(backbone)
    model = weights.new_keras_model(spec, "random")
    for cut in spec.cut_points:
        side = 224 // cut.reduction
        assert checks.output_shape(spec, cut.name, (224, 224)) == (side, side, cut.channels)
    assert graph.locate(model, spec, spec.layer_names[-1]).output is model.output
    for start, end in zip(spec.layer_names, spec.layer_names[1:]):
        graph.cut(model, graph.locate(model, spec, end),
                  start=graph.locate(model, spec, start), name="segment")


@pytest.mark.parametrize("backbone", BACKBONES)
def test_deepest_features_equal_the_keras_model(backbone, tmp_path):
    """With a weights file saved from keras.applications.X(include_top=False), features at
    the deepest cut equal that model's output on its own preprocess_input."""
    import keras

    spec = specs.get(backbone)
    model = weights.new_keras_model(spec, "random")
    path = tmp_path / f"{backbone}.weights.h5"
    model.save_weights(path)
    images = np.random.default_rng(1).integers(0, 256, size=(3, 40, 48, 3), dtype=np.uint8)
    features = ConvNetFeatureExtractor(backbone=backbone, weights=path, image_size=(40, 48),
                                       cache=False).fit_transform(images)
    preprocess = getattr(keras.applications, spec.module).preprocess_input
    expected = model.predict(preprocess(images.astype(np.float32)), verbose=0)
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.abs(features - expected.reshape(3, -1)).max() / scale < 1e-4


def test_random_weights_are_the_same_in_every_process():
    code = ("from skconvnet.backbones import specs, weights\n"
            f"for name in {BACKBONES!r}:\n"
            "    print(weights.resolve_weights(specs.get(name), None).digest)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()
    here = [weights.resolve_weights(specs.get(name), None).digest for name in BACKBONES]
    assert other == here and len(set(here)) == len(BACKBONES)


@pytest.mark.parametrize("backbone", ["resnet50", "efficientnetv2b0"])
def test_random_weights_draw_every_kernel_and_keep_constants(backbone):
    """Kernels come from the seeded generator; batch-norm statistics keep their constants."""
    spec = specs.get(backbone)
    keras_model = weights.new_keras_model(spec, "random")
    arrays = weights.resolve_weights(spec, None).arrays
    for variable, array in zip(keras_model.weights, arrays, strict=True):
        if variable.path.endswith("kernel"):
            assert not np.array_equal(array, np.asarray(variable)) and array.std() > 0
        else:
            np.testing.assert_array_equal(array, np.asarray(variable))


@pytest.mark.parametrize("backbone, layer, size, minimum", [
    ("vgg16", "block5_pool", 16, 32),  # 2x2 poolings round down: 2**5
    ("convnexttiny", "convnext_tiny_layernorm", 24, 32),
    ("densenet121", "relu", 20, 29),  # strided convolutions round up, poolings down
])
def test_too_small_images_name_the_smallest_size(backbone, layer, size, minimum):
    images = np.zeros((2, size, size, 3), np.uint8)
    extractor = ConvNetFeatureExtractor(backbone=backbone, layer=layer, weights=None,
                                        image_size=size)
    with pytest.raises(ValueError, match=rf"image_size=\({size}, {size}\) is too small for "
                       rf"layer='{layer}'.*at least {minimum}\."):
        extractor.fit(images)
    assert ConvNetFeatureExtractor(backbone=backbone, layer=layer, weights=None,
                                   image_size=minimum, pooling="avg").fit_transform(
        np.zeros((2, minimum, minimum, 3), np.uint8)).shape[0] == 2


def test_unknown_layer_lists_the_backbones_cut_points(images):
    with pytest.raises(ValueError, match=r"Unknown layer 'block5_pool' for layer\. ResNet-50 "
                       r"can be cut at these layers, shallow to deep: conv1_relu, pool1_pool"):
        ConvNetFeatureExtractor(backbone="resnet50", layer="block5_pool", weights=None).fit(images)


def test_defaults_are_the_deepest_cut_at_the_customary_size():
    extractor = ConvNetFeatureExtractor(backbone="mobilenetv3small", weights=None, pooling="avg")
    extractor.fit(np.zeros((1, 8, 8, 3), np.uint8))
    assert extractor.feature_shapes_ == {"conv_1_activation": (7, 7, 576)}
    assert ConvNetFeatureExtractor(weights=None)._image_size() == (150, 150)  # vgg16: the book's


def _search(backbone, layers, X, y):
    pipeline = Pipeline([
        ("convnet", ConvNetFeatureExtractor(backbone=backbone, weights=None, image_size=32,
                                            pooling="avg")),
        ("clf", LogisticRegression(max_iter=1000)),
    ])
    return GridSearchCV(pipeline, {"convnet__layer": layers}, cv=3).fit(X, y)


@pytest.mark.parametrize("backbone, layers", [
    ("resnet50", ["conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]),
    ("convnexttiny", ["convnext_tiny_stage_1_block_2", "convnext_tiny_stage_2_block_8",
                      "convnext_tiny_layernorm"]),
])
def test_layer_search_computes_each_cut_point_once_per_image(backbone, layers, computed):
    """Three layers x 3 folds + refit: each cut point once per image, deeper ones resuming
    from cached shallower ones."""
    skconvnet.clear_cache()
    X = np.random.default_rng(2).integers(0, 256, size=(18, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 1] * 9)
    search = _search(backbone, layers, X, y)
    names = list_layers(backbone)
    assert computed == {name: len(X) for name in names[: names.index(layers[-1]) + 1]}
    assert skconvnet.layer_scores(search)["backbone"].tolist() == [backbone] * 3


def test_bfloat16_features_stay_close_to_float32():
    images = np.random.default_rng(3).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)

    def features(precision):
        return ConvNetFeatureExtractor(backbone="resnet50", layer="conv4_block6_out",
                                       weights=None, image_size=32, pooling="avg",
                                       precision=precision).fit_transform(images)

    full, half = features("float32"), features("bfloat16")
    assert np.abs(full - half).max() <= 0.015 * np.abs(full).max()  # measured: under 0.5%
    assert not np.array_equal(full, half)


@pytest.mark.parametrize("backbone", ["resnet50", "efficientnetv2b0", "mobilenetv3small"])
def test_extraction_folds_batch_norm_into_the_convolutions(backbone):
    """Extraction models run no batch normalisation of their own (each is folded into the
    convolution before it); their features equal Keras' (test above)."""
    import keras

    spec = specs.get(backbone)
    resolved = weights.resolve_weights(spec, None)
    model = graph.segment_model(resolved, "float32", None, spec.layer_names[-1])
    keras_model = weights.new_keras_model(spec, "random")
    norms = [op for op in keras_model.operations
             if isinstance(op, keras.layers.BatchNormalization)]
    assert norms
    assert not [op for op in model.operations if isinstance(op, keras.layers.BatchNormalization)]


def test_grouped_convolutions_run_as_depthwise_ones():
    """ConvNeXt's 7x7 convolutions with one input channel per group run as depthwise
    convolutions (TensorFlow's grouped ones are some 50x slower on a CPU), in extraction
    and fine-tuning models alike; their features equal Keras' (test above)."""
    import keras

    spec = specs.get("convnexttiny")
    resolved = weights.resolve_weights(spec, None)
    grouped = [layer.name for layer in weights.new_keras_model(spec, "random").layers
               if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    assert len(grouped) == 18  # one per block
    for model in (graph.build_base(resolved, "float32"),
                  graph.segment_model(resolved, "bfloat16", None, spec.layer_names[-1])):
        for name in grouped:
            assert type(model.get_layer(name)) is keras.layers.DepthwiseConv2D
