"""The training plan: decided from the parameters, the number of images and sizes alone."""

import pytest
from helpers import small_classifier

from skconvnet.backbones import specs
from skconvnet.training.plan import MAX_HEAD_EPOCHS, plan_training


def plan(n_images=24, hidden_layer_sizes=(), **params):
    clf = small_classifier(**params)
    return plan_training(specs.get("vgg16"), clf.get_params(), layer="block2_pool",
                         unfreeze_from="block2_conv1", image_size=(32, 32),
                         hidden_layer_sizes=list(hidden_layer_sizes), n_images=n_images)


def test_the_defaults_probe_stored_features_then_fine_tune_on_stored_activations():
    default = plan()
    assert (default.layer, default.top, default.n_views) == ("block2_pool", "block1_pool", 4)
    assert default.probe and default.head is None
    assert default.stores_features and default.stores_activations
    assert (default.fine_tune.trains, default.fine_tune.epochs) == ("upper", 2)
    assert default.fine_tune.learning_rate == 1e-5 and not default.fine_tune.early_stopping


def test_fresh_augmentation_in_every_epoch_runs_the_whole_network():
    fresh = plan(augmented_views=None, head_epochs=3)
    assert fresh.n_views == 1 and not fresh.stores_features and not fresh.stores_activations
    assert fresh.head.trains == fresh.fine_tune.trains == "network"
    assert (fresh.head.stream, fresh.fine_tune.stream) == (0, 1)  # two shuffling streams


def test_outputs_beyond_the_budget_are_streamed():
    # block2_pool pooled: 128 floats per view; block1_pool: 16 x 16 x 64 floats per view
    features_only = plan(head_epochs=2, max_stored_bytes=24 * 4 * 128 * 4)
    assert features_only.stores_features and not features_only.stores_activations
    assert (features_only.head.trains, features_only.fine_tune.trains) == ("head", "network")
    nothing = plan(head_epochs=2, max_stored_bytes=0)
    assert (nothing.head.trains, nothing.fine_tune.trains) == ("network", "network")


def test_a_head_with_hidden_layers_trains_by_epochs_with_early_stopping():
    auto = plan(hidden_layer_sizes=(8,), fine_tune_epochs=0)
    assert not auto.probe and auto.fine_tune is None
    assert (auto.head.epochs, auto.head.early_stopping) == (MAX_HEAD_EPOCHS, True)


def test_a_probe_beyond_the_budget_fails_before_anything_runs():
    with pytest.raises(ValueError, match=r"head_epochs='auto' fits a logistic regression on "
                                         r"the frozen features of all 24 images \(4 view\(s\) "
                                         r"each\): 49152 bytes, more than max_stored_bytes=10"):
        plan(max_stored_bytes=10)
