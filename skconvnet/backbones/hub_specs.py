"""The keras-hub families: vision transformers (DINOv2, SigLIP 2, CLIP, ViT) and EfficientNet.

Each is a :class:`HubBackbone` spec like the ``keras.applications`` ones: where it can be cut,
the preprocessing of its presets' image converter, the configuration its random weights are
drawn for and, for transformers, the layout of its tokens. A transformer's cut points are
its blocks' outputs, then its final normalisation; EfficientNet's its stem, the end of each
of its seven stages and its last convolution.
"""

import json
from dataclasses import dataclass

from .cutpoints import Backbone, CutPoint

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _normalising(mean, std):
    """``(scale, offset)`` of ``(x / 255 - mean) / std`` per channel, as keras-hub's image
    converters write it."""
    return (tuple(1 / (255 * s) for s in std), tuple(-m / s for m, s in zip(mean, std)))


TO_MINUS_ONE_ONE = ((1 / 127.5,) * 3, (-1.0,) * 3)


@dataclass(frozen=True)
class HubBackbone(Backbone):
    """A keras-hub vision backbone. ``constructor`` names its keras-hub class."""

    config: str = "{}"  # JSON: the class's keyword arguments, for weights=None
    preset: str = ""  # the keras-hub preset that weights="imagenet" loads
    scale: tuple = (1.0, 1.0, 1.0)  # preprocessing: pixels (0-255) * scale + offset
    offset: tuple = (0.0, 0.0, 0.0)
    patch_size: int = 0  # 0 for a convnet
    prefix_tokens: int = 0  # class and register tokens before the patch tokens
    class_token: bool = False
    pooling: str = None  # what pooling="auto" means
    resizable: bool = True  # whether any image size works (else only the preset's own)

    @property
    def transformer(self):
        return self.patch_size > 0

    def token_shape(self, image_size):
        """``(tokens, channels)`` of every cut point's activation for ``image_size``."""
        height, width = image_size
        patches = (height // self.patch_size) * (width // self.patch_size)
        return (self.prefix_tokens + patches, self.cut_points[-1].channels)

    def check_image_size(self, image_size):
        """Raise a ValueError naming the sizes that work where ``image_size`` does not."""
        image_size = tuple(image_size)
        patch, default = self.patch_size, self.image_size
        if not self.resizable and image_size != default:
            raise ValueError(
                f"image_size={image_size} does not fit {self.title}: its position embeddings "
                f"are learnt for {default} and keras-hub does not interpolate them for this "
                f"family. Use image_size={default} (or None)."
            )
        if image_size[0] != image_size[1] or image_size[0] % patch:
            examples = dict.fromkeys([default, (patch * 16,) * 2, (patch * 32,) * 2])
            raise ValueError(
                f"image_size={image_size} does not fit {self.title}: it takes square images "
                f"whose side is a multiple of its patch size, {patch} (e.g. "
                f"{', '.join(map(str, examples))}); its position embeddings are interpolated "
                "to the size as keras-hub does."
            )

    @property
    def poolings(self):
        """The ``pooling`` values this backbone takes."""
        tokens = ("cls", "cls+avg") if self.transformer and self.class_token else ()
        return Backbone.poolings + tokens


def _transformer(name, title, constructor, preset, config, *, class_token, pooling,
                 preprocessing, resizable, image_size=None):
    """The spec of a transformer of ``config``, cut after each block and after its final
    normalisation: the last operations of its chain (counted from the end, whatever
    layers come before its first block)."""
    n_blocks, channels = config["num_layers"], config["hidden_dim"]
    patch = config["patch_size"]
    patch = patch[0] if isinstance(patch, (list, tuple)) else patch
    class_token = config.get("use_class_token", class_token)
    per_stage = -(-n_blocks // 4)  # fine-tuning unfreezes the last quarter of the blocks
    cuts = tuple(
        CutPoint(f"block{block}", f"stage{(block - 1) // per_stage + 1}", channels, patch,
                 where=f"op:{block - n_blocks - 2}")
        for block in range(1, n_blocks + 1)
    ) + (CutPoint("final_norm", f"stage{(n_blocks - 1) // per_stage + 1}", channels, patch,
                  where="output"),)
    size = image_size or tuple(config["image_shape"][:2])
    prefix_tokens = int(class_token) + config.get("num_register_tokens", 0)
    scale, offset = preprocessing
    return HubBackbone(name, constructor, "", size, cuts, title, json.dumps(config), preset,
                       scale, offset, patch, prefix_tokens, class_token, pooling, resizable)


def configured(spec, config):
    """``spec`` for a network of ``config`` (a dict): a preset of the same family, of any
    size, with its cut points, tokens and, where its position embeddings are not
    interpolated, image size."""
    if spec.transformer:
        return _transformer(
            spec.name, spec.title, spec.constructor, spec.preset, config,
            class_token=spec.class_token, pooling=spec.pooling,
            preprocessing=(spec.scale, spec.offset), resizable=spec.resizable,
            image_size=spec.image_size if spec.resizable else None,
        )
    return _efficientnet(spec.name, spec.title, spec.preset, config, (spec.scale, spec.offset))


def _dinov2(size, layers, channels, heads, *, registers=0):
    name = "dinov2_with_registers_" + size if registers else "dinov2_" + size
    config = dict(patch_size=14, num_layers=layers, hidden_dim=channels, num_heads=heads,
                  intermediate_dim=4 * channels, num_register_tokens=registers,
                  image_shape=(224, 224, 3), position_embedding_shape=(518, 518, 3))
    title = f"DINOv2-{size.capitalize()}" + (" with registers" if registers else "")
    return _transformer(name, title, "DINOV2Backbone", name, config, class_token=True,
                        pooling="cls+avg",
                        preprocessing=_normalising(IMAGENET_MEAN, IMAGENET_STD), resizable=True)


_BASE_16 = dict(patch_size=16, num_layers=12, hidden_dim=768, num_heads=12,
                image_shape=(224, 224, 3))


def _siglip2():
    config = dict(_BASE_16, intermediate_dim=3072, intermediate_activation="gelu_approximate")
    return _transformer("siglip2_base_patch16_224", "SigLIP 2 B/16 (image tower)",
                        "SigLIPVisionEncoder", "siglip2_base_patch16_224", config,
                        class_token=False, pooling="avg",
                        preprocessing=TO_MINUS_ONE_ONE, resizable=False)


def _clip():
    config = dict(_BASE_16, intermediate_dim=3072, intermediate_activation="quick_gelu")
    return _transformer("clip_vit_base_patch16", "CLIP ViT-B/16 (image tower)",
                        "CLIPVisionEncoder", "clip_vit_base_patch16", config,
                        class_token=True, pooling="cls",
                        preprocessing=_normalising(CLIP_MEAN, CLIP_STD), resizable=False)


def _vit():
    config = dict(_BASE_16, mlp_dim=3072)
    return _transformer("vit_base_patch16_224", "ViT-B/16", "ViTBackbone",
                        "vit_base_patch16_224_imagenet", config, class_token=True, pooling="cls",
                        preprocessing=TO_MINUS_ONE_ONE, resizable=False)


_EFFICIENTNET = dict(
    stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
    stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
    stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
    stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
    stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
    stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
    stackwise_block_types=["v1"] * 7,
    stackwise_width_coefficients=[1.0] * 7,
    stackwise_depth_coefficients=[1.0] * 7,
    min_depth=None, include_stem_padding=True, use_depth_divisor_as_min_depth=True,
    cap_round_filter_decrease=True, stem_conv_padding="valid", batch_norm_momentum=0.9,
    batch_norm_epsilon=1e-5, dropout=0, projection_activation=None,
)


def _efficientnet(name, title, preset, config, preprocessing):
    """EfficientNet cut at its stem, the end of each of its stages, and its last 1x1
    convolution."""
    cuts = [CutPoint("stem", "stem", config["stackwise_input_filters"][0], 2,
                     where="stem_activation")]
    reduction = 2
    for stage, (channels, stride) in enumerate(
            zip(config["stackwise_output_filters"], config["stackwise_strides"]), 1):
        reduction *= stride
        cuts.append(CutPoint(f"stage{stage}", f"stage{stage}", channels, reduction,
                             where=f"last:block{stage}"))
    cuts.append(CutPoint("top", f"stage{stage}", 1280, reduction, where="top_activation"))
    scale, offset = preprocessing
    return HubBackbone(name, "EfficientNetBackbone", "", (224, 224), tuple(cuts), title,
                       json.dumps(config), preset, scale, offset)


HUB_BACKBONES = (
    _dinov2("small", 12, 384, 6),
    _dinov2("base", 12, 768, 12),
    _dinov2("small", 12, 384, 6, registers=4),
    _siglip2(),
    _clip(),
    _vit(),
    _efficientnet("efficientnet_b0", "EfficientNet-B0", "efficientnet_b0_ra_imagenet",
                  dict(_EFFICIENTNET, stackwise_squeeze_and_excite_ratios=[0.25] * 7),
                  _normalising(IMAGENET_MEAN, IMAGENET_STD)),
    _efficientnet("efficientnet_lite0", "EfficientNet-Lite0", "efficientnet_lite0_ra_imagenet",
                  dict(_EFFICIENTNET, stackwise_squeeze_and_excite_ratios=[0] * 7,
                       activation="relu6"),
                  TO_MINUS_ONE_ONE),
)
