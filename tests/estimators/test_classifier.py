"""FineTunedConvNetClassifier as an estimator: labels, predict and clone, defaults, errors.
How it trains is tested in tests/training/test_classifier.py."""

import numpy as np
import pytest
from helpers import quick_classifier
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError


def test_binary_string_labels(two_looks):
    X, y = two_looks
    clf = quick_classifier().fit(X, y)
    assert list(clf.classes_) == ["bright", "dark"]
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= {"bright", "dark"}
    assert clf.score(X, y) >= 0.9


def test_multiclass_integer_labels(two_looks):
    X, _ = two_looks
    y = np.arange(24) % 3
    clf = quick_classifier(head_epochs=1, fine_tune_epochs=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 3) and list(clf.classes_) == [0, 1, 2]
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_predict_never_changes_the_classifier(two_looks):
    X, y = two_looks
    clf = quick_classifier(augmentation=True).fit(X, y)
    before = [w.copy() for w in clf.model_.get_weights()]
    state = dict(clf.__dict__)
    clf.predict(X)
    clf.predict_proba(X[:1])
    assert clf.__dict__ == state
    for old, new in zip(before, clf.model_.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_clone_is_unfitted(two_looks):
    X, y = two_looks
    clf = quick_classifier().fit(X, y)
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


# Errors


def test_single_class(two_looks):
    X, _ = two_looks
    with pytest.raises(ValueError, match=r"y has only one class \('a'\); a classifier needs"):
        quick_classifier().fit(X, ["a"] * 24)


def test_length_mismatch(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="X has 24 samples but y has 23 labels"):
        quick_classifier().fit(X, y[:-1])


def test_y_is_required(two_looks):
    X, _ = two_looks
    with pytest.raises(ValueError, match="requires y to be passed"):
        quick_classifier().fit(X, None)


def test_regression_targets_are_refused(two_looks):
    X, _ = two_looks
    with pytest.raises(ValueError, match="Unknown label type"):
        quick_classifier().fit(X, np.linspace(0, 1, 24))


def test_unfreeze_from_not_a_layer(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match=r"Unknown layer 'block2' for unfreeze_from.*block1_conv1"):
        quick_classifier(unfreeze_from="block2").fit(X, y)


def test_unfreeze_from_above_the_cut(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match=r"unfreeze_from='block5_conv1' lies above the cut "
                                         r"layer='block2_pool'.*block1_conv1, .*block2_pool\."):
        quick_classifier(unfreeze_from="block5_conv1").fit(X, y)


@pytest.mark.parametrize("param, value", [
    ("head_epochs", -1), ("fine_tune_epochs", 1.5), ("head_learning_rate", 0),
    ("fine_tune_learning_rate", -1e-5), ("dropout", 1.0), ("optimizer", "adagrad"),
    ("validation_fraction", 1.0), ("class_weight", "even"), ("head_epochs", "all"),
    ("augmented_views", 0), ("max_stored_bytes", -1), ("unfreeze_from", 3),
])
def test_bad_training_parameters(two_looks, param, value):
    X, y = two_looks
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter"):
        quick_classifier(**{param: value}).fit(X, y)


def test_nothing_to_train(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="head_epochs and fine_tune_epochs are both 0"):
        quick_classifier(head_epochs=0, fine_tune_epochs=0).fit(X, y)


def test_auto_hidden_head_on_too_few_samples(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match=r"head_epochs='auto' with hidden layers \(it stops "
                                         r"early\) cannot hold out validation_fraction=0.01"):
        quick_classifier(head_epochs="auto", validation_fraction=0.01).fit(X[:4], ["a", "b"] * 2)


def test_bad_hidden_layer_sizes(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        quick_classifier(hidden_layer_sizes=(256, 0)).fit(X, y)


def test_negative_sample_weight(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        quick_classifier().fit(X, y, sample_weight=-np.ones(24))


def test_early_stopping_on_too_few_samples(two_looks):
    X, y = two_looks
    with pytest.raises(ValueError, match="early_stopping cannot hold out validation_fraction"):
        quick_classifier(early_stopping=True, validation_fraction=0.01).fit(X[:4], y[:4])


def test_predict_before_fit(two_looks):
    X, _ = two_looks
    with pytest.raises(NotFittedError, match="not fitted yet"):
        quick_classifier().predict(X)


def test_input_errors_of_the_extractor_apply(two_looks, tmp_path):
    X, y = two_looks
    with pytest.raises(FileNotFoundError, match="missing.jpg: no such file"):
        quick_classifier().fit([tmp_path / "missing.jpg"], ["a"])
    with pytest.raises(ValueError, match="4 channels in its last axis"):
        quick_classifier().fit(np.zeros((2, 32, 32, 4)), ["a", "b"])
    with pytest.raises(ValueError, match=r"image_size=\(16, 16\) is too small"):
        quick_classifier(layer="block5_pool", image_size=16).fit(X, y)
