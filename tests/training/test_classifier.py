"""FineTunedConvNetClassifier: the two phases, augmentation, labels, weights."""

import keras
import numpy as np
import pytest
from helpers import small_classifier
from sklearn.base import clone
from sklearn.exceptions import EfficiencyWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skconvnet import clear_cache
from skconvnet.backbones import graph as backbone_graph
from skconvnet.backbones import specs as _backbones
from skconvnet.backbones import weights as backbone_weights
from skconvnet.inputs import sources as _sources
from skconvnet.training import network as _network
from skconvnet.training import plan as _plan


def quick(**params):
    """A classifier that learns in a few epochs: a dense head trained by epochs at a higher
    learning rate, no augmentation."""
    defaults = dict(head_epochs=3, fine_tune_epochs=1, augmentation=False, pooling="avg",
                    hidden_layer_sizes=(256,), head_learning_rate=1e-3,
                    fine_tune_learning_rate=1e-4)
    return small_classifier(**{**defaults, **params})


def base_kernels(clf):
    return _conv_kernels(clf.model_.get_layer("vgg16").base)


def base_kernels_at_start():
    """The kernels of the random VGG16 base the classifier starts from."""
    spec = _backbones.get("vgg16")
    return _conv_kernels(backbone_graph.build_base(backbone_weights.resolve_weights(spec, None), "float32"))


def _conv_kernels(base):
    return {layer.name: layer.get_weights()[0] for layer in base.layers if "_conv" in layer.name}


def test_binary_string_labels(two_looks):
    X, y = two_looks
    clf = quick().fit(X, y)
    assert list(clf.classes_) == ["bright", "dark"]
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= {"bright", "dark"}
    assert clf.score(X, y) >= 0.9


def test_multiclass_integer_labels(two_looks):
    X, _ = two_looks
    y = np.arange(24) % 3
    clf = quick(head_epochs=1, fine_tune_epochs=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 3) and list(clf.classes_) == [0, 1, 2]
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_head_phase_keeps_the_base_frozen(two_looks):
    X, y = two_looks
    clf = quick(fine_tune_epochs=0).fit(X, y)
    pretrained = base_kernels_at_start()
    for name, kernel in base_kernels(clf).items():
        np.testing.assert_array_equal(kernel, pretrained[name])
    assert list(clf.history_) == ["head"]


@pytest.mark.parametrize("unfreeze_from", ["block2_conv1", None])  # None: the cut's block
def test_fine_tuning_trains_only_from_unfreeze_from(two_looks, unfreeze_from):
    X, y = two_looks
    clf = quick(unfreeze_from=unfreeze_from).fit(X, y)
    pretrained = base_kernels_at_start()
    kernels = base_kernels(clf)
    for name in ("block1_conv1", "block1_conv2"):
        np.testing.assert_array_equal(kernels[name], pretrained[name])
    for name in ("block2_conv1", "block2_conv2"):
        assert not np.array_equal(kernels[name], pretrained[name])
    assert list(clf.history_) == ["head", "fine_tune"]


def test_from_scratch_trains_every_layer(two_looks):
    X, y = two_looks
    clf = quick(unfreeze_from="block1_conv1", head_epochs=0).fit(X, y)
    pretrained = base_kernels_at_start()
    for name, kernel in base_kernels(clf).items():
        assert not np.array_equal(kernel, pretrained[name])


def _variables(model, name):
    return [np.asarray(variable) for variable in model.get_layer(name).weights]


@pytest.mark.parametrize("backbone, layer, unfreeze_from, frozen, trained", [
    # default: the cut's stage (conv3), from the cut point below it
    ("resnet50", "conv3_block4_out", None, "conv2_block3_3_conv", "conv3_block1_1_conv"),
    # a layer that is not a cut point: that layer and what follows it
    ("efficientnetv2b0", "block2b_add", "block2b_project_conv", "block2b_expand_conv",
     "block2b_project_conv"),
])
def test_other_backbones_fine_tune_with_batch_norm_in_inference_mode(
    two_looks, backbone, layer, unfreeze_from, frozen, trained
):
    X, y = two_looks
    clf = quick(backbone=backbone, layer=layer, unfreeze_from=unfreeze_from).fit(X, y)
    spec = _backbones.get(backbone)
    start = backbone_graph.build_base(backbone_weights.resolve_weights(spec, None), "float32")
    base = clf.model_.get_layer(backbone).base
    for before, after in zip(_variables(start, frozen), _variables(base, frozen), strict=True):
        np.testing.assert_array_equal(after, before)
    assert not np.array_equal(_variables(base, trained)[0], _variables(start, trained)[0])
    batch_norms = [op.name for op in base.operations
                   if isinstance(op, keras.layers.BatchNormalization)]
    assert batch_norms
    for name in batch_norms:  # moving statistics never updated, in the trained part too
        mean, variance = _variables(base, name)[-2:]
        np.testing.assert_array_equal(mean, _variables(start, name)[-2])
        np.testing.assert_array_equal(variance, _variables(start, name)[-1])
    assert clf.score(X, y) > 0.9


def test_history_records_each_epoch(two_looks):
    X, y = two_looks
    clf = quick(head_epochs=3, fine_tune_epochs=2).fit(X, y)
    assert sorted(clf.history_["head"]) == ["accuracy", "loss"]
    assert len(clf.history_["head"]["loss"]) == 3
    assert len(clf.history_["fine_tune"]["accuracy"]) == 2


def test_early_stopping_holds_out_validation_and_stops(two_looks):
    X, y = two_looks
    clf = quick(
        early_stopping=True, validation_fraction=0.25, n_iter_no_change=1, head_epochs=20,
        fine_tune_epochs=0, head_learning_rate=1e-12, dropout=0.0,
    ).fit(X, y)
    history = clf.history_["head"]
    assert {"val_loss", "val_accuracy"} <= set(history)
    assert len(history["loss"]) < 20  # nothing improves at this learning rate


def test_early_stopping_in_fine_tuning_restores_the_best_weights(monkeypatch):
    X = np.random.default_rng(0).integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)
    y = np.array(["a", "b"] * 12)  # nothing to learn: the validation loss soon gets worse
    stoppers = []
    make = _network.early_stopping
    monkeypatch.setattr(_network, "early_stopping",
                        lambda patience: stoppers.append(make(patience)) or stoppers[-1])
    clf = quick(
        early_stopping=True, validation_fraction=0.25, n_iter_no_change=2, head_epochs=3,
        fine_tune_epochs=20, dropout=0.0,
    ).fit(X, y)
    _, fine_tune = stoppers  # one callback per phase
    history = clf.history_["fine_tune"]
    assert fine_tune.stopped_epoch > 0 and len(history["loss"]) < 20
    assert fine_tune.best_epoch < len(history["loss"]) - 1  # weights moved on after the best
    assert fine_tune.best == min(history["val_loss"])
    # fine-tuning trained block2 and the head on stored block1_pool activations: the
    # network's last 8 weights (block2's 2 kernels and biases, the head's 2 dense layers')
    restored = clf.model_.get_weights()
    assert len(fine_tune.best_weights) == 8
    for kept, best in zip(restored[-8:], fine_tune.best_weights):
        np.testing.assert_array_equal(kept, best)


@pytest.mark.parametrize("optimizer, keras_class", [
    ("rmsprop", "RMSprop"), ("adam", "Adam"), ("sgd", "SGD"),
])
def test_optimizer_is_used_in_both_phases(two_looks, monkeypatch, optimizer, keras_class):
    X, y = two_looks
    compiled = []
    compile_for = _network.compile_for

    def recording(model, **kwargs):
        compile_for(model, **kwargs)
        compiled.append((type(model.optimizer).__name__,
                         float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))))

    monkeypatch.setattr(_network, "compile_for", recording)
    clf = quick(optimizer=optimizer, head_learning_rate=1e-3, fine_tune_learning_rate=1e-4)
    clf.fit(X, y)
    assert compiled == [(keras_class, pytest.approx(1e-3)), (keras_class, pytest.approx(1e-4))]
    assert clf.history_["head"]["loss"][-1] < clf.history_["head"]["loss"][0]


def test_optimizers_train_differently(two_looks):
    X, y = two_looks
    probabilities = [quick(optimizer=name, fine_tune_epochs=0).fit(X, y).predict_proba(X)
                     for name in ("rmsprop", "adam", "sgd")]
    for one, other in [(0, 1), (0, 2), (1, 2)]:
        assert not np.allclose(probabilities[one], probabilities[other])


def test_balanced_class_weight_is_balanced_sample_weight(two_looks):
    from sklearn.utils.class_weight import compute_sample_weight

    X, _ = two_looks
    y = np.array(["a"] * 18 + ["b"] * 6)  # imbalanced, unrelated to the images
    balanced = quick(class_weight="balanced", head_epochs=4, fine_tune_epochs=0).fit(X, y)
    by_hand = quick(head_epochs=4, fine_tune_epochs=0).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y))
    unweighted = quick(head_epochs=4, fine_tune_epochs=0).fit(X, y)
    np.testing.assert_array_equal(balanced.predict_proba(X), by_hand.predict_proba(X))
    assert not np.allclose(balanced.predict_proba(X), unweighted.predict_proba(X))
    assert np.mean(balanced.predict(X) == "b") > np.mean(unweighted.predict(X) == "b")


def test_book_augmentation_layers(two_looks):
    X, y = two_looks
    with_augmentation = quick(augmentation=True, head_epochs=1, fine_tune_epochs=0).fit(X, y)
    names = [type(layer).__name__ for layer in with_augmentation.model_.layers]
    assert names[1:5] == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation"]
    flip, rotation, zoom, shift = with_augmentation.model_.layers[1:5]
    assert flip.mode == "horizontal"
    assert rotation.factor == (-40 / 360, 40 / 360) and rotation.fill_mode == "nearest"
    assert (zoom.height_factor, zoom.width_factor, zoom.fill_mode) == (0.2, None, "nearest")
    assert (shift.height_factor, shift.width_factor, shift.fill_mode) == (0.2, 0.2, "nearest")
    without = quick(augmentation=False, head_epochs=1, fine_tune_epochs=0).fit(X, y)
    assert not any(type(layer).__name__.startswith("Random") for layer in without.model_.layers)
    # Augmentation acts in training only: the network predicts as it does without its
    # Random* layers.
    model = with_augmentation.model_
    x = inputs = keras.Input(model.input.shape[1:])
    for layer in model.layers[5:]:
        x = layer(x)
    pixels = backbone_graph.preprocess(_backbones.get("vgg16"), X.astype(np.float32))
    np.testing.assert_array_equal(model.predict_on_batch(pixels),
                                  keras.Model(inputs, x).predict_on_batch(pixels))


def test_custom_augmentation_layers_are_copied(two_looks):
    import keras

    X, y = two_looks
    flip = keras.layers.RandomFlip("vertical", seed=3)
    clf = quick(augmentation=[flip], head_epochs=1, fine_tune_epochs=0).fit(X, y)
    used = [layer for layer in clf.model_.layers if isinstance(layer, keras.layers.RandomFlip)]
    assert len(used) == 1 and used[0] is not flip and used[0].mode == "vertical"
    assert clf.augmentation[0] is flip


def test_augmentation_list_of_other_things(two_looks):
    X, y = two_looks
    with pytest.raises(TypeError, match=r"augmentation\[0\] is 'flip'.*list of Keras layers"):
        quick(augmentation=["flip"]).fit(X, y)


@pytest.fixture
def decodes(monkeypatch):
    """The number of image files decoded from now on (the activation cache emptied)."""
    loaded = []
    load = _sources.FileImages.load
    monkeypatch.setattr(_sources.FileImages, "load",
                        lambda self, i: loaded.append(len(i)) or load(self, i))
    clear_cache()
    return loaded


def test_with_augmentation_files_are_decoded_batch_by_batch_every_epoch(
    two_looks, image_files, decodes
):
    X, y = two_looks
    paths = image_files(X, ".png")
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    clf = quick(augmentation=[flip], augmented_views=None, head_epochs=2, fine_tune_epochs=1,
                batch_size=5)
    with pytest.warns(EfficiencyWarning, match="fresh augmentation in every epoch"):
        clf.fit(paths, y)
    assert max(decodes) <= 5
    assert sum(decodes) >= 3 * len(paths)  # every image decoded again in each of 3 epochs
    np.testing.assert_array_equal(clf.predict_proba(paths), clf.predict_proba(X))


def test_augmented_views_are_drawn_once_and_the_frozen_layers_run_once_per_view(
    two_looks, image_files, decodes, computed
):
    X, y = two_looks
    paths = image_files(X, ".png")
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    clf = quick(augmentation=[flip], augmented_views=2, head_epochs=3, fine_tune_epochs=4,
                unfreeze_from="block2_conv1", batch_size=5).fit(paths, y)
    assert sum(decodes) == len(paths)  # decoded once for 7 epochs
    assert computed["block1_pool"] == 3 * len(paths)  # the original and 2 views, once each
    assert computed["block2_pool"] == 3 * len(paths)  # the head's features, once
    assert len(clf.history_["fine_tune"]["loss"]) == 4


def through_the_base(**params):
    """A classifier whose phases train on pixels, the whole network in every epoch: fresh
    augmentation that leaves the images as they are."""
    return quick(augmentation=[keras.layers.Identity()], augmented_views=None, **params)


def test_fine_tuning_on_stored_activations_is_fine_tuning_through_the_base(two_looks):
    X, y = two_looks
    params = dict(head_epochs=2, fine_tune_epochs=2, unfreeze_from="block2_conv1", batch_size=5)
    stored = quick(**params).fit(X, y)
    with pytest.warns(EfficiencyWarning, match="will train on pixels"):
        every_epoch = through_the_base(**params).fit(X, y)
    np.testing.assert_allclose(stored.predict_proba(X), every_epoch.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(stored.history_["fine_tune"]["loss"],
                               every_epoch.history_["fine_tune"]["loss"], rtol=1e-4)


def test_without_augmentation_the_head_phase_runs_the_base_once(two_looks, image_files, decodes):
    X, y = two_looks
    paths = image_files(X, ".png")
    quick(head_epochs=3, fine_tune_epochs=0, batch_size=5).fit(paths, y)
    assert max(decodes) <= 5
    assert sum(decodes) == len(paths)  # once for 3 epochs


@pytest.mark.parametrize("pooling", [None, "avg"])
def test_head_trained_on_frozen_outputs_is_the_head_trained_through_the_base(two_looks, pooling):
    X, y = two_looks
    params = dict(head_epochs=3, fine_tune_epochs=0, pooling=pooling, batch_size=5)
    once = quick(**params).fit(X, y)
    with pytest.warns(EfficiencyWarning, match="will train on pixels"):
        every_epoch = through_the_base(**params).fit(X, y)
    np.testing.assert_allclose(once.predict_proba(X), every_epoch.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(once.history_["head"]["loss"],
                               every_epoch.history_["head"]["loss"], rtol=1e-5)


def test_frozen_outputs_beyond_max_stored_bytes_are_still_computed_once(
    two_looks, image_files, decodes, computed, monkeypatch
):
    from skconvnet.training import storage

    written = []  # rows written to disk
    write = storage.OnDisk.write
    monkeypatch.setattr(storage.OnDisk, "write",
                        lambda self, start, rows: written.append(len(rows)) or write(self, start, rows))
    X, y = two_looks
    paths = image_files(X, ".png")
    quick(head_epochs=3, fine_tune_epochs=2, unfreeze_from="block2_conv1",
          max_stored_bytes=24 * 128 * 4 - 1).fit(paths, y)
    assert sum(written) == 2 * len(paths)  # block1_pool's activations and the head's features
    assert sum(decodes) == len(paths)
    assert computed["block1_pool"] == computed["block2_pool"] == len(paths)


def _weighted_predictions(X, y, **params):
    return quick(head_epochs=4, fine_tune_epochs=0, **params).fit(X, y).predict(X)


def test_sample_weight_is_honoured(two_looks):
    X, _ = two_looks
    y = np.array(["a", "b"] * 12)  # labels unrelated to the images
    favour_a = np.where(y == "a", 10.0, 0.1)
    towards_a = quick(head_epochs=4, fine_tune_epochs=0).fit(X, y, sample_weight=favour_a)
    towards_b = quick(head_epochs=4, fine_tune_epochs=0).fit(X, y, sample_weight=1 / favour_a)
    assert np.mean(towards_a.predict(X) == "a") > 0.9
    assert np.mean(towards_b.predict(X) == "b") > 0.9


def test_class_weight_is_honoured(two_looks):
    X, _ = two_looks
    y = np.array(["a", "b"] * 12)
    towards_a = _weighted_predictions(X, y, class_weight={"a": 10.0, "b": 0.1})
    towards_b = _weighted_predictions(X, y, class_weight={"a": 0.1, "b": 10.0})
    assert np.mean(towards_a == "a") > 0.9
    assert np.mean(towards_b == "b") > 0.9


def test_random_state_reproduces_and_varies(two_looks):
    X, y = two_looks
    params = dict(augmentation=True, head_epochs=2, fine_tune_epochs=1)
    first = quick(**params).fit(X, y).predict_proba(X)
    again = quick(**params).fit(X, y).predict_proba(X)
    other = quick(random_state=1, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_bfloat16_training(two_looks):
    import pickle

    X, y = two_looks
    clf = quick(precision="bfloat16").fit(X, y)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and clf.score(X, y) >= 0.9
    assert keras.config.dtype_policy().name == "float32"  # the global policy is untouched

    def policies(model):
        base = model.get_layer("vgg16").base
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        return ({layer.dtype_policy.name for layer in base.layers[1:]},
                [layer.dtype_policy.name for layer in dense])

    convs, dense = policies(clf.model_)
    assert convs == {"mixed_bfloat16"}
    assert dense == ["mixed_bfloat16", "float32"]  # hidden layer, then the output in float32
    assert clf.model_.get_layer("probability").compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in clf.model_.weights)  # variables stay float32
    assert not np.allclose(proba, quick(precision="float32").fit(X, y).predict_proba(X))

    back = pickle.loads(pickle.dumps(clf))
    assert policies(back.model_) == (convs, dense)
    np.testing.assert_array_equal(back.predict_proba(X), proba)


def test_verbose_shows_keras_progress(two_looks, capsys):
    X, y = two_looks
    quick(verbose=1, head_epochs=2, fine_tune_epochs=0).fit(X, y)
    assert "Epoch 2/2" in capsys.readouterr().out
    quick(verbose=0, head_epochs=1, fine_tune_epochs=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_predict_never_changes_the_classifier(two_looks):
    X, y = two_looks
    clf = quick(augmentation=True).fit(X, y)
    before = [w.copy() for w in clf.model_.get_weights()]
    state = dict(clf.__dict__)
    clf.predict(X)
    clf.predict_proba(X[:1])
    assert clf.__dict__ == state
    for old, new in zip(before, clf.model_.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_clone_is_unfitted(two_looks):
    X, y = two_looks
    clf = quick().fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(X)


def test_defaults_are_linear_probing_then_fine_tuning_on_stored_views():
    from skconvnet import FineTunedConvNetClassifier

    clf = FineTunedConvNetClassifier()
    params = clf.get_params()
    assert params["backbone"] == "vgg16" and params["weights"] == "imagenet"
    spec = clf._spec()  # None: VGG16's deepest cut, at the book's size, fine-tuning block5
    assert clf._check_layers(spec) == ("block5_pool", "block5_conv1")
    assert clf._image_size() == (150, 150) and params["pooling"] == "avg"
    assert params["head_epochs"] == "auto" and params["hidden_layer_sizes"] == ()
    assert params["unfreeze_from"] is None and params["augmentation"] is True
    assert (params["augmented_views"], params["fine_tune_epochs"]) == (3, 10)
    assert params["optimizer"] == "adam" and params["fine_tune_learning_rate"] == 1e-5
    assert params["batch_size"] == 20 and params["max_stored_bytes"] == "auto"
    assert params["temp_folder"] is None


def test_the_books_recipe_builds_the_books_network(two_looks, image_files, decodes):
    from skconvnet import BOOK_RECIPE, FineTunedConvNetClassifier

    assert BOOK_RECIPE == {  # the book's first edition, as its fine-tuning guide spells out
        "layer": "block5_pool", "pooling": None, "hidden_layer_sizes": (256,), "dropout": 0.5,
        "head_epochs": 30, "head_learning_rate": 2e-5, "unfreeze_from": "block5_conv1",
        "fine_tune_epochs": 100, "fine_tune_learning_rate": 1e-5, "optimizer": "rmsprop",
        "augmentation": True, "augmented_views": None, "batch_size": 20}
    X, y = two_looks
    paths = image_files(X, ".png")
    recipe = {**BOOK_RECIPE, "layer": "block2_pool", "unfreeze_from": "block2_conv1",
              "head_epochs": 2, "fine_tune_epochs": 1}
    clf = FineTunedConvNetClassifier(**recipe, weights=None, image_size=32, random_state=0)
    with pytest.warns(EfficiencyWarning, match=r"The head \(up to 2 epochs\) and fine-tuning "
                                               r"\(up to 1 epoch\) will train on pixels"):
        clf.fit(paths, y)
    kinds = [type(layer).__name__ for layer in clf.model_.layers]
    assert kinds[-4:] == ["Flatten", "Dense", "Dropout", "Dense"]
    assert clf.model_.layers[-3].units == 256 and clf.model_.layers[-2].rate == 0.5
    assert [kind for kind in kinds if kind.startswith("Random")] == [
        "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation"]
    assert sum(decodes) >= 3 * len(paths)  # the whole network ran in each of 3 epochs
    assert [len(clf.history_[phase]["loss"]) for phase in ("head", "fine_tune")] == [2, 1]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_auto_head_is_a_logistic_regression_on_the_standardised_features(two_looks, n_classes):
    from helpers import small_extractor
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = two_looks
    y = np.arange(24) % n_classes  # labels unrelated to the images: probabilities in between
    clf = quick(head_epochs="auto", hidden_layer_sizes=(), fine_tune_epochs=0).fit(X, y)
    (C,) = clf.history_["head"]["C"]
    by_hand = make_pipeline(small_extractor(), StandardScaler(), LogisticRegression(C=C))
    np.testing.assert_allclose(clf.predict_proba(X), by_hand.fit(X, y).predict_proba(X),
                               atol=1e-4)


def test_auto_head_penalises_more_where_labels_are_noise(two_looks):
    X, y = two_looks
    separable = quick(head_epochs="auto", hidden_layer_sizes=(), fine_tune_epochs=0).fit(X, y)
    noise = quick(head_epochs="auto", hidden_layer_sizes=(), fine_tune_epochs=0).fit(
        X, np.arange(24) % 2)
    assert noise.history_["head"]["C"][0] < separable.history_["head"]["C"][0]
    assert separable.score(X, y) == 1.0


def test_auto_head_with_hidden_layers_trains_until_early_stopping(two_looks, monkeypatch):
    stoppers = []
    make = _network.early_stopping
    monkeypatch.setattr(_network, "early_stopping",
                        lambda patience: stoppers.append(make(patience)) or stoppers[-1])
    X, _ = two_looks
    y = np.arange(24) % 2  # nothing to learn: the validation loss soon gets worse
    clf = quick(head_epochs="auto", hidden_layer_sizes=(8,), n_iter_no_change=2,
                fine_tune_epochs=0).fit(X, y)
    (stopper,) = stoppers
    assert 0 < stopper.stopped_epoch < _plan.MAX_HEAD_EPOCHS - 1
    assert {"val_loss", "loss"} <= set(clf.history_["head"])


# Errors


def test_single_class(two_looks):
    X, _ = two_looks
    with pytest.raises(ValueError, match=r"y has only one class \('a'\); a classifier needs"):
        quick().fit(X, ["a"] * 24)


def test_length_mismatch(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="X has 24 samples but y has 23 labels"):
        quick().fit(X, y[:-1])


def test_y_is_required(two_looks):
    X, _ = two_looks
    with pytest.raises(ValueError, match="requires y to be passed"):
        quick().fit(X, None)


def test_regression_targets_are_refused(two_looks):
    X, _ = two_looks
    with pytest.raises(ValueError, match="Unknown label type"):
        quick().fit(X, np.linspace(0, 1, 24))


def test_unfreeze_from_not_a_layer(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match=r"Unknown layer 'block2' for unfreeze_from.*block1_conv1"):
        quick(unfreeze_from="block2").fit(X, y)


def test_unfreeze_from_above_the_cut(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match=r"unfreeze_from='block5_conv1' lies above the cut "
                                         r"layer='block2_pool'.*block1_conv1, .*block2_pool\."):
        quick(unfreeze_from="block5_conv1").fit(X, y)


@pytest.mark.parametrize("param, value", [
    ("head_epochs", -1), ("fine_tune_epochs", 1.5), ("head_learning_rate", 0),
    ("fine_tune_learning_rate", -1e-5), ("dropout", 1.0), ("optimizer", "adagrad"),
    ("validation_fraction", 1.0), ("class_weight", "even"), ("head_epochs", "all"),
    ("augmented_views", 0), ("max_stored_bytes", -1), ("unfreeze_from", 3),
])
def test_bad_training_parameters(two_looks, param, value):
    X, y = two_looks
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter"):
        quick(**{param: value}).fit(X, y)


def test_nothing_to_train(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="head_epochs and fine_tune_epochs are both 0"):
        quick(head_epochs=0, fine_tune_epochs=0).fit(X, y)


def test_probe_features_with_no_room_in_memory_or_on_disk(two_looks, monkeypatch):
    from skconvnet import _classifier

    monkeypatch.setattr(_classifier, "free_bytes", lambda folder: 0)  # a full disk
    X, y = two_looks
    clf = small_classifier(max_stored_bytes=1000)
    with pytest.raises(ValueError, match=r"head_epochs='auto' fits a logistic regression on the "
                                         r"frozen features of all 24 images \(4 view\(s\) each\): "
                                         r"49152 bytes, more than fit in memory \(max_stored_bytes: "
                                         r"1000\) and on disk \(0 bytes free in temp_folder\)"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")


def test_auto_hidden_head_on_too_few_samples(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match=r"head_epochs='auto' with hidden layers \(it stops "
                                         r"early\) cannot hold out validation_fraction=0.01"):
        quick(head_epochs="auto", validation_fraction=0.01).fit(X[:4], ["a", "b"] * 2)


def test_bad_hidden_layer_sizes(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        quick(hidden_layer_sizes=(256, 0)).fit(X, y)


def test_negative_sample_weight(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        quick().fit(X, y, sample_weight=-np.ones(24))


def test_early_stopping_on_too_few_samples(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="early_stopping cannot hold out validation_fraction"):
        quick(early_stopping=True, validation_fraction=0.01).fit(X[:4], y[:4])


def test_predict_before_fit(two_looks):
    X, _ = two_looks
    with pytest.raises(NotFittedError, match="not fitted yet"):
        quick().predict(X)


def test_input_errors_of_the_extractor_apply(two_looks, tmp_path):
    X, y = two_looks
    with pytest.raises(FileNotFoundError, match="missing.jpg: no such file"):
        quick().fit([tmp_path / "missing.jpg"], ["a"])
    with pytest.raises(ValueError, match="4 channels in its last axis"):
        quick().fit(np.zeros((2, 32, 32, 4)), ["a", "b"])
    with pytest.raises(ValueError, match=r"image_size=\(16, 16\) is too small"):
        quick(layer="block5_pool", image_size=16).fit(X, y)
