"""The backbone specs: cut points shallow to deep, stages, and the names users pass."""

import pytest

from skconvnet import list_backbones, list_layers
from skconvnet.backbones import specs

pytestmark = pytest.mark.no_backend


def test_list_layers_is_shallow_to_deep():
    assert list_layers() == list_layers("vgg16")
    assert list_layers("vgg16")[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert list_layers("resnet50")[-1] == "conv5_block3_out"
    with pytest.raises(ValueError, match=r"Unknown backbone='resnet'.*vgg16, vgg19, resnet50"):
        list_layers("resnet")


def test_every_backbone_has_cut_points_of_growing_reduction():
    for name in list_backbones():
        spec = specs.get(name)
        reductions = [cut.reduction for cut in spec.cut_points]
        assert reductions == sorted(reductions) and len(spec.layer_names) >= 4, name
        assert spec.depth(spec.layer_names[-1]) == len(spec.layer_names)


def test_fine_tuning_unfreezes_the_stage_a_cut_ends_by_default():
    vgg16 = specs.get("vgg16")
    assert vgg16.default_unfreeze_from("block5_pool") == "block5_conv1"
    assert vgg16.default_unfreeze_from("block3_conv2") == "block3_conv1"
