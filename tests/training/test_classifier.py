"""How FineTunedConvNetClassifier trains: the two phases, frozen layers, stored activations,
augmentation, optimizers, early stopping, weights, the automatic head. Its estimator contract
is tested in tests/estimators/test_classifier.py."""

import keras
import numpy as np
import pytest
from helpers import quick_classifier, small_classifier
from sklearn.exceptions import EfficiencyWarning

from skconvnet import clear_cache
from skconvnet.backbones import graph, specs, weights
from skconvnet.inputs import sources
from skconvnet.training import network, plan


def base_kernels(clf):
    return _conv_kernels(clf.model_.get_layer("vgg16").base)


def base_kernels_at_start():
    """The kernels of the random VGG16 base the classifier starts from."""
    spec = specs.get("vgg16")
    return _conv_kernels(graph.build_base(weights.resolve_weights(spec, None), "float32"))


def _conv_kernels(base):
    return {layer.name: layer.get_weights()[0] for layer in base.layers if "_conv" in layer.name}


def test_head_phase_keeps_the_base_frozen(two_looks):
    X, y = two_looks
    clf = quick_classifier(fine_tune_epochs=0).fit(X, y)
    pretrained = base_kernels_at_start()
    for name, kernel in base_kernels(clf).items():
        np.testing.assert_array_equal(kernel, pretrained[name])
    assert list(clf.history_) == ["head"]


@pytest.mark.parametrize("unfreeze_from", ["block2_conv1", None])  # None: the cut's block
def test_fine_tuning_trains_only_from_unfreeze_from(two_looks, unfreeze_from):
    X, y = two_looks
    clf = quick_classifier(unfreeze_from=unfreeze_from).fit(X, y)
    pretrained = base_kernels_at_start()
    kernels = base_kernels(clf)
    for name in ("block1_conv1", "block1_conv2"):
        np.testing.assert_array_equal(kernels[name], pretrained[name])
    for name in ("block2_conv1", "block2_conv2"):
        assert not np.array_equal(kernels[name], pretrained[name])
    assert list(clf.history_) == ["head", "fine_tune"]


def test_from_scratch_trains_every_layer(two_looks):
    X, y = two_looks
    clf = quick_classifier(unfreeze_from="block1_conv1", head_epochs=0).fit(X, y)
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
    clf = quick_classifier(backbone=backbone, layer=layer, unfreeze_from=unfreeze_from).fit(X, y)
    spec = specs.get(backbone)
    start = graph.build_base(weights.resolve_weights(spec, None), "float32")
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
    clf = quick_classifier(head_epochs=3, fine_tune_epochs=2).fit(X, y)
    assert sorted(clf.history_["head"]) == ["accuracy", "loss"]
    assert len(clf.history_["head"]["loss"]) == 3
    assert len(clf.history_["fine_tune"]["accuracy"]) == 2


def test_early_stopping_holds_out_validation_and_stops(two_looks):
    X, y = two_looks
    clf = quick_classifier(
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
    make = network.early_stopping
    monkeypatch.setattr(network, "early_stopping",
                        lambda patience: stoppers.append(make(patience)) or stoppers[-1])
    clf = quick_classifier(
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
    compile_for = network.compile_for

    def recording(model, **kwargs):
        compile_for(model, **kwargs)
        compiled.append((type(model.optimizer).__name__,
                         float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))))

    monkeypatch.setattr(network, "compile_for", recording)
    clf = quick_classifier(optimizer=optimizer, head_learning_rate=1e-3,
                           fine_tune_learning_rate=1e-4)
    clf.fit(X, y)
    assert compiled == [(keras_class, pytest.approx(1e-3)), (keras_class, pytest.approx(1e-4))]
    assert clf.history_["head"]["loss"][-1] < clf.history_["head"]["loss"][0]


def test_optimizers_train_differently(two_looks):
    X, y = two_looks
    probabilities = [quick_classifier(optimizer=name, fine_tune_epochs=0).fit(X, y).predict_proba(X)
                     for name in ("rmsprop", "adam", "sgd")]
    for one, other in [(0, 1), (0, 2), (1, 2)]:
        assert not np.allclose(probabilities[one], probabilities[other])


def test_balanced_class_weight_is_balanced_sample_weight(two_looks):
    from sklearn.utils.class_weight import compute_sample_weight

    X, _ = two_looks
    y = np.array(["a"] * 18 + ["b"] * 6)  # imbalanced, unrelated to the images
    balanced = quick_classifier(class_weight="balanced", head_epochs=4,
                                fine_tune_epochs=0).fit(X, y)
    by_hand = quick_classifier(head_epochs=4, fine_tune_epochs=0).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y))
    unweighted = quick_classifier(head_epochs=4, fine_tune_epochs=0).fit(X, y)
    np.testing.assert_array_equal(balanced.predict_proba(X), by_hand.predict_proba(X))
    assert not np.allclose(balanced.predict_proba(X), unweighted.predict_proba(X))
    # the minority class gets more probability (its predictions may tie on two looks)
    assert balanced.predict_proba(X)[:, 1].mean() > unweighted.predict_proba(X)[:, 1].mean()


def test_book_augmentation_layers(two_looks):
    X, y = two_looks
    with_augmentation = quick_classifier(augmentation=True, head_epochs=1,
                                         fine_tune_epochs=0).fit(X, y)
    names = [type(layer).__name__ for layer in with_augmentation.model_.layers]
    assert names[1:5] == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation"]
    flip, rotation, zoom, shift = with_augmentation.model_.layers[1:5]
    assert flip.mode == "horizontal"
    assert rotation.factor == (-40 / 360, 40 / 360) and rotation.fill_mode == "nearest"
    assert (zoom.height_factor, zoom.width_factor, zoom.fill_mode) == (0.2, None, "nearest")
    assert (shift.height_factor, shift.width_factor, shift.fill_mode) == (0.2, 0.2, "nearest")
    without = quick_classifier(augmentation=False, head_epochs=1, fine_tune_epochs=0).fit(X, y)
    assert not any(type(layer).__name__.startswith("Random") for layer in without.model_.layers)
    # Augmentation acts in training only: the network predicts as it does without its
    # Random* layers.
    model = with_augmentation.model_
    x = inputs = keras.Input(model.input.shape[1:])
    for layer in model.layers[5:]:
        x = layer(x)
    pixels = graph.preprocess(specs.get("vgg16"), X.astype(np.float32))
    np.testing.assert_array_equal(model.predict_on_batch(pixels),
                                  keras.Model(inputs, x).predict_on_batch(pixels))


def test_custom_augmentation_layers_are_copied(two_looks):
    import keras

    X, y = two_looks
    flip = keras.layers.RandomFlip("vertical", seed=3)
    clf = quick_classifier(augmentation=[flip], head_epochs=1, fine_tune_epochs=0).fit(X, y)
    used = [layer for layer in clf.model_.layers if isinstance(layer, keras.layers.RandomFlip)]
    assert len(used) == 1 and used[0] is not flip and used[0].mode == "vertical"
    assert clf.augmentation[0] is flip


def test_augmentation_list_of_other_things(two_looks):
    X, y = two_looks
    with pytest.raises(TypeError, match=r"augmentation\[0\] is 'flip'.*list of Keras layers"):
        quick_classifier(augmentation=["flip"]).fit(X, y)


@pytest.fixture
def decodes(monkeypatch):
    """The number of image files decoded from now on (the activation cache emptied)."""
    loaded = []
    load = sources.FileImages.load
    monkeypatch.setattr(sources.FileImages, "load",
                        lambda self, i: loaded.append(len(i)) or load(self, i))
    clear_cache()
    return loaded


def test_with_augmentation_files_are_decoded_batch_by_batch_every_epoch(
    two_looks, image_files, decodes
):
    X, y = two_looks
    paths = image_files(X, ".png")
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    clf = quick_classifier(augmentation=[flip], augmented_views=None, head_epochs=2,
                           fine_tune_epochs=1, batch_size=5)
    with pytest.warns(EfficiencyWarning, match="fresh augmentation in every epoch") as warned:
        clf.fit(paths, y)
    assert warned[0].filename == __file__  # said where fit was called, past its wrappers
    assert max(decodes) <= 5
    assert sum(decodes) >= 3 * len(paths)  # every image decoded again in each of 3 epochs
    np.testing.assert_array_equal(clf.predict_proba(paths), clf.predict_proba(X))


def test_augmented_views_are_drawn_once_and_the_frozen_layers_run_once_per_view(
    two_looks, image_files, decodes, computed
):
    X, y = two_looks
    paths = image_files(X, ".png")
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    clf = quick_classifier(augmentation=[flip], augmented_views=2, head_epochs=3,
                           fine_tune_epochs=4, unfreeze_from="block2_conv1",
                           batch_size=5).fit(paths, y)
    assert sum(decodes) == len(paths)  # decoded once for 7 epochs
    assert computed["block1_pool"] == 3 * len(paths)  # the original and 2 views, once each
    assert computed["block2_pool"] == 3 * len(paths)  # the head's features, once
    assert len(clf.history_["fine_tune"]["loss"]) == 4


def through_the_base(**params):
    """A classifier whose phases train on pixels, the whole network in every epoch: fresh
    augmentation that leaves the images as they are."""
    return quick_classifier(augmentation=[keras.layers.Identity()], augmented_views=None, **params)


def test_fine_tuning_on_stored_activations_is_fine_tuning_through_the_base(two_looks):
    X, y = two_looks
    params = dict(head_epochs=2, fine_tune_epochs=2, unfreeze_from="block2_conv1", batch_size=5)
    stored = quick_classifier(**params).fit(X, y)
    with pytest.warns(EfficiencyWarning, match="will train on pixels"):
        every_epoch = through_the_base(**params).fit(X, y)
    np.testing.assert_allclose(stored.predict_proba(X), every_epoch.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(stored.history_["fine_tune"]["loss"],
                               every_epoch.history_["fine_tune"]["loss"], rtol=1e-4)


def test_without_augmentation_the_head_phase_runs_the_base_once(two_looks, image_files, decodes):
    X, y = two_looks
    paths = image_files(X, ".png")
    quick_classifier(head_epochs=3, fine_tune_epochs=0, batch_size=5).fit(paths, y)
    assert max(decodes) <= 5
    assert sum(decodes) == len(paths)  # once for 3 epochs


@pytest.mark.parametrize("pooling", [None, "avg"])
def test_head_trained_on_frozen_outputs_is_the_head_trained_through_the_base(two_looks, pooling):
    X, y = two_looks
    params = dict(head_epochs=3, fine_tune_epochs=0, pooling=pooling, batch_size=5)
    once = quick_classifier(**params).fit(X, y)
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
    quick_classifier(head_epochs=3, fine_tune_epochs=2, unfreeze_from="block2_conv1",
                     max_stored_bytes=24 * 128 * 4 - 1).fit(paths, y)
    assert sum(written) == 2 * len(paths)  # block1_pool's activations and the head's features
    assert sum(decodes) == len(paths)
    assert computed["block1_pool"] == computed["block2_pool"] == len(paths)


def _weighted_predictions(X, y, **params):
    return quick_classifier(head_epochs=4, fine_tune_epochs=0, **params).fit(X, y).predict(X)


def test_sample_weight_is_honoured(two_looks):
    X, _ = two_looks
    y = np.array(["a", "b"] * 12)  # labels unrelated to the images
    favour_a = np.where(y == "a", 10.0, 0.1)
    towards_a = quick_classifier(head_epochs=4, fine_tune_epochs=0).fit(
        X, y, sample_weight=favour_a)
    towards_b = quick_classifier(head_epochs=4, fine_tune_epochs=0).fit(
        X, y, sample_weight=1 / favour_a)
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
    first = quick_classifier(**params).fit(X, y).predict_proba(X)
    again = quick_classifier(**params).fit(X, y).predict_proba(X)
    other = quick_classifier(random_state=1, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_bfloat16_training(two_looks):
    import pickle

    X, y = two_looks
    clf = quick_classifier(precision="bfloat16").fit(X, y)
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
    assert not np.allclose(proba, quick_classifier(precision="float32").fit(X, y).predict_proba(X))

    back = pickle.loads(pickle.dumps(clf))
    assert policies(back.model_) == (convs, dense)
    np.testing.assert_array_equal(back.predict_proba(X), proba)


def test_verbose_shows_keras_progress(two_looks, capsys):
    X, y = two_looks
    quick_classifier(verbose=1, head_epochs=2, fine_tune_epochs=0).fit(X, y)
    assert "Epoch 2/2" in capsys.readouterr().out
    quick_classifier(verbose=0, head_epochs=1, fine_tune_epochs=0).fit(X, y)
    assert capsys.readouterr().out == ""


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
    clf = quick_classifier(head_epochs="auto", hidden_layer_sizes=(), fine_tune_epochs=0).fit(X, y)
    (C,) = clf.history_["head"]["C"]
    by_hand = make_pipeline(small_extractor(), StandardScaler(), LogisticRegression(C=C))
    np.testing.assert_allclose(clf.predict_proba(X), by_hand.fit(X, y).predict_proba(X),
                               atol=1e-4)


def test_auto_head_penalises_more_where_labels_are_noise(two_looks):
    X, y = two_looks
    separable = quick_classifier(head_epochs="auto", hidden_layer_sizes=(),
                                 fine_tune_epochs=0).fit(X, y)
    noise = quick_classifier(head_epochs="auto", hidden_layer_sizes=(), fine_tune_epochs=0).fit(
        X, np.arange(24) % 2)
    assert noise.history_["head"]["C"][0] < separable.history_["head"]["C"][0]
    assert separable.score(X, y) == 1.0


def test_auto_head_with_hidden_layers_trains_until_early_stopping(two_looks, monkeypatch):
    stoppers = []
    make = network.early_stopping
    monkeypatch.setattr(network, "early_stopping",
                        lambda patience: stoppers.append(make(patience)) or stoppers[-1])
    X, _ = two_looks
    y = np.arange(24) % 2  # nothing to learn: the validation loss soon gets worse
    clf = quick_classifier(head_epochs="auto", hidden_layer_sizes=(8,), n_iter_no_change=2,
                           fine_tune_epochs=0).fit(X, y)
    (stopper,) = stoppers
    assert 0 < stopper.stopped_epoch < plan.MAX_HEAD_EPOCHS - 1
    assert {"val_loss", "loss"} <= set(clf.history_["head"])


# Errors


def test_probe_features_with_no_room_in_memory_or_on_disk(two_looks, monkeypatch):
    from skconvnet import _finetuned

    monkeypatch.setattr(_finetuned, "free_bytes", lambda folder: 0)  # a full disk
    X, y = two_looks
    clf = small_classifier(max_stored_bytes=1000)
    with pytest.raises(ValueError, match=r"head_epochs='auto' fits a logistic regression on the "
                                         r"frozen features of all 24 images \(4 view\(s\) each\): "
                                         r"49152 bytes, more than fit in memory \(max_stored_bytes: "
                                         r"1000\) and on disk \(0 bytes free in temp_folder\)"):
        clf.fit(X, y)
    assert not hasattr(clf, "model_")

