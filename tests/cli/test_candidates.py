"""The command line's search space: which layers of which backbones ``--backbone`` and
``--layers`` name."""

import pytest

from skconvnet.backbones import specs
from skconvnet.cli.evaluate import _candidates

pytestmark = pytest.mark.no_backend


def test_without_layers_each_backbone_is_searched_at_its_default_cut_points():
    assert _candidates("vgg16, resnet50", None) == {
        "vgg16": specs.get("vgg16").default_search(),
        "resnet50": specs.get("resnet50").default_search(),
    }


def test_a_plain_layer_goes_to_every_backbone_and_a_prefixed_one_to_its_own():
    assert _candidates("vgg16,vgg19", "block4_pool,vgg19/block5_pool") == {
        "vgg16": ["block4_pool"], "vgg19": ["block4_pool", "block5_pool"]}


def test_a_backbone_left_without_layers_is_named():
    with pytest.raises(ValueError, match=r"--layers 'vgg16/block5_pool' names no layer of "
                                         r"resnet50; add some as resnet50/LAYER\."):
        _candidates("vgg16,resnet50", "vgg16/block5_pool")


@pytest.mark.parametrize("backbones, layers, message", [
    ("vgg16", "resnet50/pool1_pool", r"'resnet50' is not one of --backbone 'vgg16'"),
    ("vgg16", "block9_pool", r"Unknown layer 'block9_pool' for --layers\. VGG16"),
    ("vgg16,vgg16", None, r"--backbone 'vgg16,vgg16': name backbones, e\.g\. resnet50, each "
                          r"once"),
    ("vgg16", " , ", r"--layers ' , ': name layers, e\.g\. block4_pool, each once"),
])
def test_bad_names_are_refused_with_the_fix(backbones, layers, message):
    with pytest.raises(ValueError, match=message):
        _candidates(backbones, layers)
