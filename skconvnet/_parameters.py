"""The parameters the estimators share: what they accept and what they mean, written once.

As scikit-learn composes ``_parameter_constraints`` and Keras formats one shared docstring
(``PREPROCESS_INPUT_DOC.format(...)``), each estimator takes from here the constraints and
the docstring entries of the parameters it shares, and writes only what is its own. Entries
are indented as in a class docstring; ``{default}`` is the estimator's own default.
"""

import os
from numbers import Integral

from ._sklearn import Interval, StrOptions
from .backbones import specs

CONSTRAINTS = {
    "backbone": [StrOptions(set(specs.BACKBONES))],
    "weights": [None, str, os.PathLike],
    "pooling": [None, StrOptions({"avg", "max", "cls", "cls+avg"})],
    "image_size": [None, "array-like", Interval(Integral, 1, None, closed="left")],
    "image_shape": [None, "array-like"],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "verbose": ["verbose"],
}
"""Constraints of the parameters that every estimator validates alike."""

BACKBONE = '''\
    backbone : str, default="vgg16"
        The network, one of :func:`skconvnet.list_backbones`: the lowercase name of a
        ``keras.applications`` constructor (``"vgg16"``, ``"resnet50"``,
        ``"efficientnetv2b0"``, ``"convnexttiny"`` ...), or a keras-hub family
        (``"dinov2_small"``, ``"siglip2_base_patch16_224"``, ``"clip_vit_base_patch16"``,
        ``"vit_base_patch16_224"``, ``"efficientnet_lite0"`` ...; needs
        ``pip install 'skconvnet[hub]'``).'''

LAYER = '''\
    layer : {kind}, default={default}
        The cut point{role}, one of :func:`skconvnet.list_layers` for the
        backbone; ``None`` is the deepest (``"block5_pool"`` for VGG16). Early layers hold
        generic edges and textures, late ones more abstract, task-specific patterns; only the
        layers up to the cut are computed.'''

WEIGHTS = '''\
    weights : "imagenet", None or path, default="imagenet"
        ``"imagenet"``: Keras' ImageNet weights, downloaded once by ``keras.applications``
        into Keras' cache (``~/.keras/models``). ``None``: random initialisation, the same in
        every process. A path: a weights file saved from the backbone's Keras model
        (``include_top=False``), e.g. with ``model.save_weights("base.weights.h5")``.
        For a keras-hub backbone: a preset name (downloaded once into keras-hub's cache;
        ``"imagenet"`` is the family's pretrained preset, e.g. ``"dinov2_small"``), or a
        folder written by ``save_to_preset`` (offline), whose own configuration, cut points
        and image converter's preprocessing are used. Weights are read once per process.'''

POOLING = '''\
    pooling : {{None, "avg", "max", "cls", "cls+avg"}}, default={default}
        ``None`` flattens the activation (height x width x channels features, as in the
        book); ``"avg"`` and ``"max"`` pool it globally over space (channels features). A
        vision transformer's tokens: ``"avg"`` and ``"max"`` pool its patch tokens (class and
        register tokens left out), ``"cls"`` is its class token, ``"cls+avg"`` the class
        token beside the patches' mean (how DINOv2's authors probe), ``None`` the patch
        tokens flattened (the patch grid, row-major).'''

IMAGE_SIZE = '''\
    image_size : (int, int) or int, default={default}
        ``(height, width)`` every image is resized to before the network; ``None`` is the
        backbone's customary size (150 x 150 for VGG16, as in the book; 224 x 224 for the
        others, or a keras-hub preset's own). DINOv2 takes square sizes that are multiples
        of its patch size, 14 (its position embeddings interpolated as keras-hub does);
        SigLIP, CLIP and ViT only their preset's own size.'''

IMAGE_SHAPE = '''\
    image_shape : (int, int, int), default=None
        ``(height, width, channels)`` of the images that the rows of a 2-D ``X`` flatten (in
        C order, channels last). With ``None``, rows of ``height * width * 3`` values for
        ``image_size`` are such images, and rows of any other width are tabular features:
        each column is min-max scaled to 0-255 with the range seen in ``fit`` and drawn as a
        horizontal band of a gray image.'''

INPUT_ATTRIBUTES = '''\
    n_features_in_ : int
        Number of columns of a 2-D ``X`` seen in ``fit`` (only for 2-D ``X``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` seen in ``fit`` (only for DataFrames).
    data_min_, data_max_ : ndarray
        Per-column range of tabular rows seen in ``fit`` (only for such rows).'''
"""The fitted attributes that reading ``X`` as images leaves."""

X_NOTE = '''\
    ``X`` may be a 4-D array ``(n_images, height, width, channels)`` with 1 or 3 channels,
    uint8 or float pixels in 0-255; a 2-D array (see ``image_shape``); or a list or 1-D array
    of image files: paths, or their encoded contents as bytes (JPEG, PNG ...), decoded with
    Pillow (any mode to RGB, EXIF orientation applied). Images of any size are resized to
    ``image_size`` one by one.'''
"""What ``X`` can be, the first paragraph of the Notes."""
