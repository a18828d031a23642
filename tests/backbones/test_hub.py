"""keras-hub backbones, tested without a hub: each family built from a small configuration
with random weights, saved with save_to_preset and loaded through weights=<folder>."""

import os
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skconvnet import ConvNetFeatureExtractor, list_layers, to_onnx
from skconvnet.backbones import specs
from skconvnet.backbones.hub_specs import HubBackbone
from skconvnet.compute import activations

keras_hub = pytest.importorskip("keras_hub")

SMALL = dict(num_layers=3, hidden_dim=32, num_heads=2)
SIZE = {"dinov2_small": 56, "dinov2_with_registers_small": 56}  # 4 x 4 patches of 14
TRANSFORMERS = {
    "dinov2_small": lambda size: keras_hub.models.DINOV2Backbone(
        patch_size=14, intermediate_dim=64, image_shape=(size, size, 3),
        position_embedding_shape=(70, 70, 3), **SMALL),
    "dinov2_with_registers_small": lambda size: keras_hub.models.DINOV2Backbone(
        patch_size=14, intermediate_dim=64, num_register_tokens=4,
        image_shape=(size, size, 3), position_embedding_shape=(70, 70, 3), **SMALL),
    "siglip2_base_patch16_224": lambda size: keras_hub.models.SigLIPVisionEncoder(
        patch_size=16, intermediate_dim=64, image_shape=(size, size, 3), **SMALL),
    "clip_vit_base_patch16": lambda size: keras_hub.models.CLIPVisionEncoder(
        patch_size=16, intermediate_dim=64, image_shape=(size, size, 3), **SMALL),
    "vit_base_patch16_224": lambda size: keras_hub.models.ViTBackbone(
        image_shape=(size, size, 3), patch_size=16, mlp_dim=64, **SMALL),
}


def small_efficientnet():
    """EfficientNet-B0's layout with three narrow stages."""
    return keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[0.5] * 3, stackwise_depth_coefficients=[1.0] * 3,
        stackwise_kernel_sizes=[3, 3, 5], stackwise_num_repeats=[1, 2, 1],
        stackwise_input_filters=[32, 16, 24], stackwise_output_filters=[16, 24, 40],
        stackwise_expansion_ratios=[1, 6, 6], stackwise_strides=[1, 2, 2],
        stackwise_squeeze_and_excite_ratios=[0.25] * 3, stackwise_block_types=["v1"] * 3,
        min_depth=None, include_stem_padding=True, use_depth_divisor_as_min_depth=True,
        cap_round_filter_decrease=True, stem_conv_padding="valid", dropout=0,
    )


def randomised(model, seed):
    """``model`` with every weight drawn at random (not keras-hub's zeros and ones)."""
    rng = np.random.default_rng(seed)
    model.set_weights([
        np.abs(value) if variable.path.endswith("variance") else value
        for variable, value in ((variable, rng.normal(0, 0.2, variable.shape).astype(np.float32))
                                for variable in model.weights)])
    return model


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """``{backbone: preset folder}`` of a small random network of each family."""
    folders = {}
    for seed, (name, make) in enumerate(TRANSFORMERS.items()):
        folders[name] = str(tmp_path_factory.mktemp(name))
        randomised(make(SIZE.get(name, 32)), seed).save_to_preset(folders[name])
    folders["efficientnet_b0"] = str(tmp_path_factory.mktemp("efficientnet_b0"))
    randomised(small_efficientnet(), 9).save_to_preset(folders["efficientnet_b0"])
    return folders


def images(size, n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def keras_hub_outputs(name, folder, pixels):
    """keras-hub's own outputs of the preset in ``folder`` at every cut point it exposes:
    DINOv2's and EfficientNet's pyramid outputs, the image towers' named layers, ViT's
    output."""
    import keras

    size = pixels.shape[1]
    extra = {"image_shape": (size, size, 3)} if name.startswith("dinov2") else {}
    model = keras_hub.models.Backbone.from_preset(folder, **extra)
    if name.startswith("dinov2"):
        outputs = {key.replace("stage", "block"): tensor
                   for key, tensor in model.pyramid_outputs.items() if key != "stem"}
        outputs["final_norm"] = model.output
    elif name.startswith("efficientnet"):
        outputs = {"stage1": model.pyramid_outputs["P1"], "stage2": model.pyramid_outputs["P2"],
                   "stage3": model.get_layer("block3a_project_bn").output, "top": model.output}
    elif name.startswith("vit"):
        outputs = {"final_norm": model.output}
    else:
        blocks = [layer.name for layer in model.layers if "encoder_block" in layer.name]
        final = model.layers[len(model.layers) - (2 if name.startswith("siglip") else 1)]
        outputs = {f"block{i}": model.get_layer(block).output
                   for i, block in enumerate(blocks, 1)}
        outputs["final_norm"] = final.output
    inputs = {"images": pixels} if name.startswith("dinov2") else pixels
    values = keras.Model(model.inputs, outputs).predict_on_batch(inputs)
    return {layer: np.asarray(value) for layer, value in values.items()}


@pytest.mark.parametrize("name", [*TRANSFORMERS, "efficientnet_b0"])
def test_features_at_every_cut_point_equal_keras_hubs_own(name, presets):
    """Features at each cut point keras-hub exposes equal its backbone's output there, on
    the preprocessing of the preset's image converter (the spec's where it has none): the
    patch tokens flattened and the class token, or the map flattened."""
    size = SIZE.get(name, 32)
    pixels = images(size)
    extractor = ConvNetFeatureExtractor(backbone=name, weights=presets[name], pooling=None,
                                        image_size=size, cache=False)
    spec = extractor._spec()
    scaled = pixels.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
    expected = keras_hub_outputs(name, presets[name], scaled)
    assert len(expected) >= (1 if name.startswith("vit") else 4)
    for layer, want in expected.items():
        extractor.set_params(layer=layer, pooling=None)
        patches = want[:, spec.prefix_tokens:] if spec.transformer else want
        got = extractor.fit_transform(pixels)
        tolerance = 1e-5 * np.abs(want).max()
        assert np.abs(got - patches.reshape(len(pixels), -1)).max() <= tolerance, layer
        if spec.class_token:
            extractor.set_params(pooling="cls")
            assert np.abs(extractor.fit_transform(pixels) - want[:, 0]).max() <= tolerance


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_an_images_features_do_not_depend_on_its_batch(name, presets, monkeypatch):
    """The same image gives the same features, to the bit, alone, at any place in a batch
    and in a batch of any size; batches run whole, not one image at a time."""
    size = SIZE.get(name, 32)
    pixels = images(size, n=7)
    extractor = ConvNetFeatureExtractor(backbone=name, weights=presets[name], pooling=None,
                                        image_size=size, batch_size=7, cache=False)
    extractor.set_params(layer=list(extractor._spec().layer_names)).fit(pixels)
    alone = np.vstack([extractor.transform(pixels[i:i + 1]) for i in range(len(pixels))])
    sizes, predict = [], activations.predict_batch
    monkeypatch.setattr(activations, "predict_batch", lambda model, batch, **options: (
        sizes.append(len(batch)) or predict(model, batch, **options)))
    np.testing.assert_array_equal(extractor.transform(pixels), alone)
    assert sizes == [7]  # every cut point from one call on the whole batch
    np.testing.assert_array_equal(extractor.transform(pixels[::-1]), alone[::-1])
    np.testing.assert_array_equal(extractor.transform(pixels[2:6]), alone[2:6])


@pytest.mark.slow
@pytest.mark.parametrize("name", [*TRANSFORMERS, "efficientnet_b0"])
def test_every_family_passes_scikit_learns_checks(name, presets):
    """All of scikit-learn's estimator checks on each family's preset folder, computing
    (tests/estimators/test_sklearn_checks.py runs them one by one for dinov2_small and
    efficientnet_lite0)."""
    from sklearn.utils.estimator_checks import check_estimator

    check_estimator(ConvNetFeatureExtractor(backbone=name, weights=presets[name],
                                            image_size=SIZE.get(name, 32), cache=False))


def test_a_preset_gives_its_own_cut_points_and_preprocessing(presets):
    spec = ConvNetFeatureExtractor(backbone="dinov2_with_registers_small",
                                   weights=presets["dinov2_with_registers_small"])._spec()
    assert spec.layer_names == ("block1", "block2", "block3", "final_norm")
    assert spec.prefix_tokens == 5 and spec.image_size == (224, 224)  # resizable: its own
    assert list_layers("dinov2_small") == [f"block{i}" for i in range(1, 13)] + ["final_norm"]
    siglip = ConvNetFeatureExtractor(backbone="siglip2_base_patch16_224",
                                     weights=presets["siglip2_base_patch16_224"])._spec()
    assert siglip.image_size == (32, 32) and siglip.prefix_tokens == 0


def test_token_pooling(presets):
    """cls, the mean and max of the patch tokens (registers left out), and the class token
    beside the mean, from one activation."""
    name = "dinov2_with_registers_small"
    pixels = images(56)

    def features(pooling):
        return ConvNetFeatureExtractor(backbone=name, weights=presets[name], layer="block2",
                                       image_size=56, pooling=pooling).fit_transform(pixels)

    tokens = features(None).reshape(3, 16, 32)  # 4 x 4 patches, row-major
    cls = features("cls")
    assert np.allclose(features("avg"), tokens.mean(axis=1), atol=1e-6)
    assert np.allclose(features("max"), tokens.max(axis=1))
    assert np.array_equal(features("cls+avg"), np.hstack([cls, features("avg")]))
    assert np.array_equal(features("auto"), features("cls+avg"))  # DINOv2's own
    names = ConvNetFeatureExtractor(backbone=name, weights=presets[name], layer="block2",
                                    image_size=56, pooling=None).fit(pixels)
    assert names.get_feature_names_out()[[0, 32, -1]].tolist() == [
        "block2_y0_x0_ch0", "block2_y0_x1_ch0", "block2_y3_x3_ch31"]


@pytest.mark.parametrize("size", [84, None])  # 6 x 6 patches; None: 224, 16 x 16
def test_dinov2_takes_any_multiple_of_its_patch_and_interpolates_as_keras_hub(size, presets):
    folder = presets["dinov2_small"]  # saved at 4 x 4 patches
    pixels = images(size or 224)
    got = ConvNetFeatureExtractor(backbone="dinov2_small", weights=folder, image_size=size,
                                  layer="final_norm", pooling="cls").fit_transform(pixels)
    spec = ConvNetFeatureExtractor(backbone="dinov2_small", weights=folder)._spec()
    scaled = pixels.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
    want = keras_hub_outputs("dinov2_small", folder, scaled)["final_norm"][:, 0]
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("name, size, message", [
    ("dinov2_small", 50, r"image_size=\(50, 50\) does not fit DINOv2-Small: it takes square "
                         r"images whose side is a multiple of its patch size, 14 \(e\.g\. "
                         r"\(224, 224\), \(448, 448\)\);"),
    ("dinov2_small", (56, 70), r"square images"),
    ("vit_base_patch16_224", 48, r"image_size=\(48, 48\) does not fit ViT-B/16: its position "
                                 r"embeddings are learnt for \(32, 32\).*image_size=\(32, 32\)"),
])
def test_image_sizes_that_do_not_fit_are_refused_naming_those_that_do(name, size, message,
                                                                     presets):
    with pytest.raises(ValueError, match=message):
        ConvNetFeatureExtractor(backbone=name, weights=presets[name],
                                image_size=size).fit(images(56))


def test_pooling_that_does_not_fit_the_backbone_is_refused(presets):
    with pytest.raises(ValueError, match=r"pooling='cls' does not fit SigLIP 2 B/16 \(image "
                                         r"tower\), which takes None, 'avg', 'max' \(it has no "
                                         r"class token\)"):
        ConvNetFeatureExtractor(backbone="siglip2_base_patch16_224", pooling="cls",
                                weights=presets["siglip2_base_patch16_224"]).fit(images(32))
    with pytest.raises(ValueError, match=r"pooling='cls\+avg' does not fit VGG16.*'cls' and "
                                         r"'cls\+avg' are for vision transformers"):
        ConvNetFeatureExtractor(pooling="cls+avg", weights=None).fit(images(32))


def test_a_preset_of_another_family_is_refused_listing_what_fits(presets):
    with pytest.raises(ValueError, match=r"is a keras-hub CLIPVisionEncoder, not a "
                                         r"DINOV2Backbone as backbone='dinov2_small' needs\. "
                                         r"It fits backbone='clip_vit_base_patch16'"):
        ConvNetFeatureExtractor(backbone="dinov2_small",
                                weights=presets["clip_vit_base_patch16"]).fit(images(56))


def test_a_folder_that_is_no_preset_is_refused(tmp_path):
    with pytest.raises(OSError, match=r"could not be loaded as a keras-hub preset for "
                                      r"backbone='vit_base_patch16_224'.*save_to_preset"):
        ConvNetFeatureExtractor(backbone="vit_base_patch16_224",
                                weights=tmp_path).fit(images(32))
    with pytest.raises(FileNotFoundError, match=r"no such folder"):
        ConvNetFeatureExtractor(backbone="vit_base_patch16_224",
                                weights=str(tmp_path / "absent")).fit(images(32))


def test_imagenet_loads_the_familys_preset_through_keras_hub(monkeypatch):
    """weights="imagenet" asks keras-hub for the family's pretrained preset (the download
    a user's machine makes), and a failure says what to pass instead."""
    asked = []

    def unreachable(preset, **kwargs):
        asked.append(preset)
        raise ConnectionError("no network")

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", unreachable)
    with pytest.raises(OSError, match=r"weights='clip_vit_base_patch16' could not be loaded as "
                                      r"a keras-hub preset.*no network.*save_to_preset"):
        ConvNetFeatureExtractor(backbone="clip_vit_base_patch16").fit(images(224))
    assert asked == ["clip_vit_base_patch16"]


def test_without_keras_hub_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ImportError, match=r"backbone='dinov2_small' \(DINOv2-Small\) needs "
                                          r"keras_hub: pip install 'skconvnet\[hub\]'"):
        ConvNetFeatureExtractor(backbone="dinov2_small", weights=None).fit(images(56))


def test_layer_search_in_one_pass_through_gridsearchcv(presets):
    """GridSearchCV over every cut point: the searched layers equal single fits, and the
    cache computes each image's tokens once up to the deepest block."""
    name = "dinov2_small"
    pixels, y = images(56, n=12, seed=3), np.arange(12) % 2
    pipeline = make_pipeline(
        ConvNetFeatureExtractor(backbone=name, weights=presets[name], image_size=56),
        LogisticRegression(max_iter=200))
    search = GridSearchCV(pipeline, {"convnetfeatureextractor__layer": list_layers(name)[:3]},
                          cv=2).fit(pixels, y)
    assert search.best_params_["convnetfeatureextractor__layer"] in list_layers(name)
    together = ConvNetFeatureExtractor(backbone=name, weights=presets[name], image_size=56,
                                       layer=["block1", "final_norm"]).fit_transform(pixels)
    alone = [ConvNetFeatureExtractor(backbone=name, weights=presets[name], image_size=56,
                                     layer=layer, cache=False).fit_transform(pixels)
             for layer in ("block1", "final_norm")]
    assert np.abs(together - np.hstack(alone)).max() <= 1e-6 * np.abs(together).max()


def test_random_weights_are_the_same_in_every_process():
    import subprocess

    code = ("import numpy as np; from skconvnet import ConvNetFeatureExtractor as E; "
            "x = np.full((1, 56, 56, 3), 90, np.uint8); "
            "print(E(backbone='dinov2_small', weights=None, image_size=56, layer='block1')"
            ".fit_transform(x)[0, :4].tolist())")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].startswith("[")


def test_bfloat16_is_close_to_float32(presets):
    name = "clip_vit_base_patch16"
    pixels = images(32)
    features = [ConvNetFeatureExtractor(backbone=name, weights=presets[name], precision=p,
                                        cache=False).fit_transform(pixels)
                for p in ("float32", "bfloat16")]
    assert np.abs(features[1] - features[0]).max() <= 0.05 * np.abs(features[0]).max()


@pytest.mark.slow
@pytest.mark.parametrize("name", [*TRANSFORMERS, "efficientnet_b0"])
def test_int8_features_follow_float32(name, presets, tmp_path):
    """precision="int8" and an int8 ONNX export of every family follow float32."""
    onnxruntime = pytest.importorskip("onnxruntime")
    size = SIZE.get(name, 32)
    pixels = images(size, n=24, seed=4)
    extractors = [ConvNetFeatureExtractor(backbone=name, weights=presets[name], image_size=size,
                                          pooling="avg", precision=precision,
                                          cache=False).fit(pixels)
                  for precision in ("float32", "int8")]
    want, got = (extractor.transform(pixels) for extractor in extractors)
    assert np.corrcoef(want.ravel(), got.ravel())[0, 1] >= 0.99
    to_onnx(extractors[0], tmp_path / "int8.onnx", quantize="int8", calibration=pixels)
    session = onnxruntime.InferenceSession(str(tmp_path / "int8.onnx"))
    exported = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    assert np.corrcoef(want.ravel(), exported.ravel())[0, 1] >= 0.99


def test_the_general_names_are_the_same_classes():
    import skconvnet

    assert skconvnet.ImageFeatureExtractor is skconvnet.ConvNetFeatureExtractor
    assert skconvnet.FineTunedImageClassifier is skconvnet.FineTunedConvNetClassifier


def test_every_hub_spec_names_its_keras_hub_class():
    for name in [n for n, spec in specs.BACKBONES.items() if isinstance(spec, HubBackbone)]:
        assert hasattr(keras_hub.models, specs.get(name).constructor), name


@pytest.mark.parametrize("name, layer, size", [("dinov2_small", "block2", 56),
                                               ("efficientnet_b0", "stage3", 32)])
def test_onnx_features_equal_the_extractors(name, layer, size, presets):
    onnxruntime = pytest.importorskip("onnxruntime")
    pixels = images(size, n=4)
    for pooling in ("auto", None):
        extractor = ConvNetFeatureExtractor(backbone=name, weights=presets[name], layer=layer,
                                            image_size=size, pooling=pooling).fit(pixels)
        session = onnxruntime.InferenceSession(to_onnx(extractor).SerializeToString())
        (got,) = session.run(None, {session.get_inputs()[0].name: pixels})
        want = extractor.transform(pixels)
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


@pytest.fixture(scope="module")
def fine_tuned(presets):
    """A classifier fine-tuned on the small DINOv2: its top block trained on the stored
    tokens of the block below."""
    from skconvnet import FineTunedConvNetClassifier

    pixels, y = images(56, n=16, seed=5), np.arange(16) % 2
    classifier = FineTunedConvNetClassifier(
        backbone="dinov2_small", weights=presets["dinov2_small"], image_size=56,
        layer="final_norm", unfreeze_from="block3", hidden_layer_sizes=(), head_epochs=3,
        fine_tune_epochs=2, augmentation=False, early_stopping=False, random_state=0)
    return classifier.fit(pixels, y), pixels, y


def test_the_classifier_fine_tunes_the_top_blocks_of_a_transformer(fine_tuned, presets):
    from skconvnet.backbones.graph import split

    classifier, pixels, y = fine_tuned
    assert classifier.predict_proba(pixels).shape == (16, 2)
    base = split(classifier.model_)[0]
    original = keras_hub.models.Backbone.from_preset(presets["dinov2_small"])
    trained = {layer.name: layer for layer in base.layers}
    for block, changed in (("layers_1", False), ("layers_2", True)):
        before = original.encoder.layers[int(block[-1])].get_weights()
        after = trained[block].get_weights()
        assert any(not np.array_equal(a, b) for a, b in zip(before, after)) == changed, block


def test_the_fine_tuned_transformer_exports_and_loads_in_a_fresh_process(fine_tuned, tmp_path):
    import pickle
    import subprocess

    classifier, pixels, _ = fine_tuned
    probabilities = classifier.predict_proba(pixels)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(classifier))
    np.save(tmp_path / "pixels.npy", pixels)
    code = ("import pickle, numpy as np; "
            f"model = pickle.load(open({str(tmp_path / 'model.pkl')!r}, 'rb')); "
            f"np.save({str(tmp_path / 'out.npy')!r}, "
            f"model.predict_proba(np.load({str(tmp_path / 'pixels.npy')!r})))")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert np.abs(np.load(tmp_path / "out.npy") - probabilities).max() <= 1e-6

    pytest.importorskip("onnxruntime")
    import onnxruntime

    from skconvnet import to_onnx

    session = onnxruntime.InferenceSession(to_onnx(classifier).SerializeToString())
    _, onnx_probabilities = session.run(None, {session.get_inputs()[0].name: pixels})
    onnx_probabilities = np.array([[row[c] for c in classifier.classes_]
                                   for row in onnx_probabilities])
    assert np.abs(onnx_probabilities - probabilities).max() <= 1e-5


def test_the_exact_class_activation_map_of_mean_pooled_patch_tokens(presets):
    """With the patch tokens averaged and linear steps after them, each image's class score
    is the mean of its patches' scores: the map sums exactly to the decision."""
    from sklearn.preprocessing import StandardScaler

    from skconvnet import explain
    from skconvnet.heatmaps.linear import position_scores

    name = "dinov2_with_registers_small"
    pixels, y = images(56, n=10, seed=7), np.arange(10) % 2
    pipeline = make_pipeline(
        ConvNetFeatureExtractor(backbone=name, weights=presets[name], image_size=56,
                                layer="block3", pooling="avg"),
        StandardScaler(), LogisticRegression()).fit(pixels, y)
    source = pipeline[0]._images(pixels, reset=False)
    scores, pooled = position_scores(pipeline, source)
    assert scores.shape == (10, 4, 4, 2)  # the 4 x 4 patch grid, registers left out
    assert np.allclose(scores.mean(axis=(1, 2)), pooled, atol=1e-4)
    assert np.allclose(pooled[:, 1], pipeline.decision_function(pixels), atol=1e-4)
    heatmaps = explain(pipeline, pixels[:3], method="auto")
    assert heatmaps.shape == (3, 56, 56) and heatmaps.min() == 0 and heatmaps.max() == 1


def test_grad_cam_and_occlusion_of_a_fine_tuned_transformer(fine_tuned):
    from sklearn.base import clone

    from skconvnet import explain

    classifier, pixels, _ = fine_tuned
    for method in ("gradcam", "occlusion"):
        heatmaps = explain(classifier, pixels[:2], method=method)
        assert heatmaps.shape == (2, 56, 56) and heatmaps.max() == 1, method
    class_token = clone(classifier).set_params(pooling="cls", fine_tune_epochs=0)
    class_token.fit(pixels, np.arange(len(pixels)) % 2)
    with pytest.raises(ValueError, match=r"method='cam'.*pools with TokenPooling"):
        explain(class_token, pixels[:2], method="cam")
