"""One spec per backbone: the only place that knows a network.

Like timm's ``FeatureInfo``, each spec describes where the network can be cut — the points,
shallow to deep, where one tensor carries the whole state of the computation (every layer of
a chain like VGG; block or stage outputs of networks with skip connections) — with the
channels and the spatial reduction of each. Extraction, the activation cache, the classifier,
the command line and the plots read these specs and nothing else.
"""

from dataclasses import replace

from .cutpoints import Backbone, CutPoint
from .hub_specs import HUB_BACKBONES


def _vgg(name, title, convs_per_block):
    cuts, reduction = [], 1
    for block, (filters, n_convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), 1):
        stage = f"block{block}"
        cuts += [CutPoint(f"{stage}_conv{i}", stage, filters, reduction)
                 for i in range(1, n_convs + 1)]
        reduction *= 2
        cuts.append(CutPoint(f"{stage}_pool", stage, filters, reduction))
    return Backbone(name, name.upper(), name, (224, 224), tuple(cuts), title)


def _resnet50():
    cuts = [CutPoint("conv1_relu", "conv1", 64, 2), CutPoint("pool1_pool", "conv1", 64, 4)]
    for stage, n_blocks, channels, reduction in ((2, 3, 256, 4), (3, 4, 512, 8),
                                                 (4, 6, 1024, 16), (5, 3, 2048, 32)):
        cuts += [CutPoint(f"conv{stage}_block{block}_out", f"conv{stage}", channels, reduction)
                 for block in range(1, n_blocks + 1)]
    return Backbone("resnet50", "ResNet50", "resnet50", (224, 224), tuple(cuts), "ResNet-50")


def _efficientnetv2b0():
    cuts = [CutPoint("stem_activation", "stem", 32, 2),
            CutPoint("block1a_project_activation", "block1", 16, 2)]
    for block, n_blocks, channels, reduction in ((2, 2, 32, 4), (3, 2, 48, 8), (4, 3, 96, 16),
                                                 (5, 5, 112, 16), (6, 8, 192, 32)):
        cuts.append(CutPoint(f"block{block}a_project_bn", f"block{block}", channels, reduction))
        cuts += [CutPoint(f"block{block}{letter}_add", f"block{block}", channels, reduction)
                 for letter in "bcdefgh"[: n_blocks - 1]]
    cuts.append(CutPoint("top_activation", "block6", 1280, 32))
    return Backbone("efficientnetv2b0", "EfficientNetV2B0", "efficientnet_v2", (224, 224),
                    tuple(cuts), "EfficientNetV2-B0")


def _convnexttiny():
    cuts = [CutPoint("convnext_tiny_stem", "stem", 96, 4)]
    for stage, (n_blocks, channels) in enumerate(zip((3, 3, 9, 3), (96, 192, 384, 768))):
        prefix = f"convnext_tiny_stage_{stage}"
        cuts += [CutPoint(f"{prefix}_block_{block}", f"stage_{stage}", channels, 4 * 2**stage,
                          where=f"after:{prefix}_block_{block}_identity")
                 for block in range(n_blocks)]
    cuts.append(CutPoint("convnext_tiny_layernorm", "stage_3", 768, 32, where="output"))
    return Backbone("convnexttiny", "ConvNeXtTiny", "convnext", (224, 224), tuple(cuts),
                    "ConvNeXt-Tiny")


def _mobilenetv3small():
    cuts = [CutPoint("conv_activation", "stem", 16, 2, where="after:conv_bn")]
    blocks = ((16, 4, "project_bn"), (24, 8, "project_bn"), (24, 8, "add"), (40, 16, "project_bn"),
              (40, 16, "add"), (40, 16, "add"), (48, 16, "project_bn"), (48, 16, "add"),
              (96, 32, "project_bn"), (96, 32, "add"), (96, 32, "add"))
    for index, (channels, reduction, end) in enumerate(blocks):
        block = "expanded_conv" + (f"_{index}" if index else "")
        cuts.append(CutPoint(f"{block}_{end}", f"stride{reduction}", channels, reduction))
    cuts.append(CutPoint("conv_1_activation", "stride32", 576, 32, where="output"))
    return Backbone("mobilenetv3small", "MobileNetV3Small", "mobilenet_v3", (224, 224),
                    tuple(cuts), "MobileNetV3-Small")


def _densenet121():
    cuts = [CutPoint("pool1", "conv1", 64, 4)]
    for stage, n_layers, channels, reduction in ((2, 6, 256, 4), (3, 12, 512, 8),
                                                 (4, 24, 1024, 16), (5, 16, 1024, 32)):
        cuts.append(CutPoint(f"conv{stage}_block{n_layers}_concat", f"conv{stage}", channels,
                             reduction))
        if stage < 5:  # the transition that halves resolution and channels
            cuts.append(CutPoint(f"pool{stage}_pool", f"conv{stage}", channels // 2,
                                 reduction * 2))
    cuts.append(CutPoint("relu", "conv5", 1024, 32))
    return Backbone("densenet121", "DenseNet121", "densenet", (224, 224), tuple(cuts),
                    "DenseNet-121")


BACKBONES = {
    spec.name: spec
    for spec in (
        # the book's network, at the book's image size
        replace(_vgg("vgg16", "VGG16", (2, 2, 3, 3, 3)), image_size=(150, 150)),
        _vgg("vgg19", "VGG19", (2, 2, 4, 4, 4)),
        _resnet50(),
        _efficientnetv2b0(),
        _convnexttiny(),
        _mobilenetv3small(),
        _densenet121(),
        *HUB_BACKBONES,
    )
}


def get(name, parameter="backbone"):
    """The spec of backbone ``name``, or an error that lists the known ones."""
    if not isinstance(name, str) or name not in BACKBONES:
        raise ValueError(
            f"Unknown {parameter}={name!r}. The backbones are the lowercase names of their "
            f"keras.applications constructors and the keras-hub families: "
            f"{', '.join(BACKBONES)}."
        )
    return BACKBONES[name]


def list_backbones():
    """The names of the backbones skconvnet can cut, as ``backbone=`` takes them.

    They are the lowercase names of the ``keras.applications`` constructors, then the
    keras-hub families (DINOv2, SigLIP 2, CLIP, ViT, EfficientNet; ``pip install
    'skconvnet[hub]'``), named after their keras-hub presets.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> import skconvnet
    >>> skconvnet.list_backbones()[:3]
    ['vgg16', 'vgg19', 'resnet50']
    """
    return list(BACKBONES)


def list_layers(backbone="vgg16"):
    """The cut points of ``backbone``, shallow to deep: the values ``layer=`` takes.

    A cut point is where one tensor carries the whole state of the network: every layer of
    VGG16 and VGG19, block or stage outputs of the others, a vision transformer's blocks
    and its final normalisation. The last one is the deepest and the default. A keras-hub
    preset of another size than the family's default (``weights=``) has its own.

    Parameters
    ----------
    backbone : str, default="vgg16"
        One of :func:`list_backbones`.

    Returns
    -------
    names : list of str

    Examples
    --------
    >>> import skconvnet
    >>> skconvnet.list_layers("resnet50")[-2:]
    ['conv5_block2_out', 'conv5_block3_out']
    """
    return list(get(backbone).layer_names)
