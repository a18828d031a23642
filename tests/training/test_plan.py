"""The training plan: decided from the parameters, the number of images and sizes alone."""

import pytest
from helpers import small_classifier

from skconvnet.backbones import specs
from skconvnet.training.plan import MAX_HEAD_EPOCHS, plan_training


# 24 images x 4 views at 32x32: block1_pool's activations take 24 * 4 * 16 * 16 * 64 * 4 bytes,
# block2_pool's pooled features 24 * 4 * 128 * 4 bytes
ACTIVATIONS, FEATURES = 24 * 4 * 16 * 16 * 64 * 4, 24 * 4 * 128 * 4


def plan(n_images=24, memory_bytes=2**31, disk_bytes=2**40, **params):
    parameters = small_classifier(unfreeze_from="block2_conv1", **params)._check_parameters()
    return plan_training(specs.get("vgg16"), parameters, n_images=n_images,
                         memory_bytes=memory_bytes, disk_bytes=disk_bytes)


def test_the_checked_parameters_are_the_classifiers_resolved():
    parameters = small_classifier(hidden_layer_sizes=[8, 4], augmentation=[])._check_parameters()
    assert (parameters.layer, parameters.unfreeze_from) == ("block2_pool", "block2_conv1")
    assert parameters.image_size == (32, 32) and parameters.hidden_layer_sizes == (8, 4)
    assert parameters.augmentation == () and parameters.temp_folder
    with pytest.raises(AttributeError):  # frozen: a fit cannot change them midway
        parameters.layer = "block1_pool"


def test_the_defaults_probe_stored_features_then_fine_tune_on_stored_activations():
    default = plan()
    assert (default.parameters.layer, default.top, default.n_views) == (
        "block2_pool", "block1_pool", 4)
    assert default.probe and default.head is None
    assert (default.activations, default.features, default.notice) == ("memory", "memory", None)
    assert (default.fine_tune.trains, default.fine_tune.epochs) == ("upper", 2)
    assert default.fine_tune.learning_rate == 1e-5 and not default.fine_tune.early_stopping


def test_fresh_augmentation_in_every_epoch_runs_the_whole_network():
    fresh = plan(augmented_views=None, head_epochs=3, fine_tune_epochs=5)
    assert fresh.n_views == 1 and fresh.activations is None and fresh.features is None
    assert fresh.head.trains == fresh.fine_tune.trains == "network"
    assert (fresh.head.stream, fresh.fine_tune.stream) == (0, 1)  # two shuffling streams
    assert fresh.notice == (
        "The head (up to 3 epochs) and fine-tuning (up to 5 epochs) will train on pixels, "
        "running the frozen layers in every epoch, because augmented_views=None asks for fresh "
        "augmentation in every epoch: up to 8 passes of the frozen layers over the 24 images, "
        "where augmented_views=3 takes one pass over 4 views of each (about 2x the frozen "
        "layers' work)."
    )


def test_outputs_beyond_the_memory_budget_are_stored_on_disk():
    assert plan(memory_bytes=ACTIVATIONS + FEATURES).activations == "memory"
    spilled = plan(memory_bytes=ACTIVATIONS + FEATURES - 1)  # the head's features first
    assert (spilled.activations, spilled.features) == ("disk", "memory")
    assert spilled.fine_tune.trains == "upper" and spilled.notice is None
    only_activations = plan(memory_bytes=ACTIVATIONS, disk_bytes=0, head_epochs=2)
    assert (only_activations.activations, only_activations.features) == (None, "memory")
    on_disk = plan(memory_bytes=0, head_epochs=2)
    assert (on_disk.activations, on_disk.features) == ("disk", "disk")
    assert (on_disk.head.trains, on_disk.fine_tune.trains) == ("head", "upper")


def test_outputs_with_no_room_on_disk_train_on_pixels_and_say_so():
    features_only = plan(head_epochs=2, memory_bytes=0, disk_bytes=FEATURES)
    assert (features_only.activations, features_only.features) == (None, "disk")
    assert (features_only.head.trains, features_only.fine_tune.trains) == ("head", "network")
    assert features_only.notice == (
        "Fine-tuning (up to 2 epochs) will train on pixels, running the frozen layers in every "
        f"epoch, because their stored outputs ({ACTIVATIONS} bytes) fit neither in memory "
        f"(max_stored_bytes: 0 bytes) nor on disk ({FEATURES} bytes free in temp_folder): up "
        "to 2 passes of the frozen "
        "layers over the 24 images, where storing them takes one pass over 4 views of each "
        "(about 0.5x the frozen layers' work)."
    )
    nothing = plan(head_epochs=2, memory_bytes=0, disk_bytes=0)
    assert (nothing.head.trains, nothing.fine_tune.trains) == ("network", "network")
    assert nothing.notice.startswith("The head (up to 2 epochs) and fine-tuning (up to 2 "
                                     "epochs) will train on pixels")


def test_a_head_with_hidden_layers_trains_by_epochs_with_early_stopping():
    auto = plan(hidden_layer_sizes=(8,), fine_tune_epochs=0)
    assert not auto.probe and auto.fine_tune is None
    assert (auto.head.epochs, auto.head.early_stopping) == (MAX_HEAD_EPOCHS, True)


def test_a_probe_with_no_room_fails_before_anything_runs():
    with pytest.raises(ValueError, match=r"head_epochs='auto' fits a logistic regression on "
                                         r"the frozen features of all 24 images \(4 view\(s\) "
                                         r"each\): 49152 bytes, more than fit in memory "
                                         r"\(max_stored_bytes: 10\) and on disk \(20 bytes free "
                                         r"in temp_folder\)\. Free disk space"):
        plan(memory_bytes=10, disk_bytes=20)
