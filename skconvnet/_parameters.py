"""The parameters the estimators share: what they accept and what they mean, written once.

As scikit-learn composes ``_parameter_constraints`` and Keras formats one shared docstring
(``PREPROCESS_INPUT_DOC.format(...)``), each estimator takes from here the constraints and
the docstring entries of the parameters it shares, and writes only what is its own. Entries
are indented as in a class docstring; ``{default}`` is the estimator's own default.
"""

import os
import textwrap
from numbers import Integral, Real

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

TRAINING_CONSTRAINTS = {
    **CONSTRAINTS,
    "layer": [None, str],
    "head_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
    "unfreeze_from": [None, str],
    "augmentation": ["boolean", list, tuple],
    "augmented_views": [None, Interval(Integral, 1, None, closed="left")],
    "random_state": ["random_state"],
    "precision": [StrOptions({"float32", "bfloat16"})],
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "head_learning_rate": [Interval(Real, 0, None, closed="neither")],
    "fine_tune_learning_rate": [Interval(Real, 0, None, closed="neither")],
    "optimizer": [StrOptions({"rmsprop", "adam", "sgd"})],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "max_stored_bytes": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
    "temp_folder": [None, str, os.PathLike],
}
"""Constraints of the parameters of the fine-tuned estimators (classifier and regressor)."""

TRAINING = '''\
    head_epochs : int or "auto", default="auto"
        Training of phase 1 (frozen base, head only). ``"auto"``: to convergence. A head
        without hidden layers is fit exactly on the standardised features, as
{probe}
        Its penalty is chosen by 5-fold cross-validation, the views of one image kept in
        one fold. A head with hidden layers trains with early stopping on
        ``validation_fraction`` of the images. An int: that many epochs of ``optimizer``
        at ``head_learning_rate``; ``0`` leaves the head as initialised.
    fine_tune_epochs : int, default=10
        Epochs of phase 2 (top of the base and head). ``0`` is pure feature extraction with a
        trained head.
    unfreeze_from : str or None, default=None
        Where phase 2 starts training, at or below ``layer``: a cut point (the block that
        ends there and everything above it are trained) or any other layer of the backbone
        (that layer and everything above it). None: the whole stage that ``layer`` ends in
        (``block5`` for VGG16's ``"block5_pool"``, ``conv5`` for ResNet-50's deepest cut).
        Batch normalisation stays in inference mode in every phase.
    augmentation : bool or list of keras layers, default={augmentation_default}
        ``True``: random horizontal flips, rotations up to 40 degrees, zooms and shifts up to
        20% (Keras preprocessing layers, active in training only). ``False``: none. A list
        of Keras layers replaces them (copied afresh for each fit).
{augmentation_why}
    augmented_views : int or None, default=3
        Augmented views of each training image drawn once, before training; the frozen
        layers' output of each view and of the original is stored, and every epoch shows each
        image in one of them. None: fresh augmentation in every epoch, as in the book, which
        runs the whole network in every epoch (an ``EfficiencyWarning`` says what it costs).
    batch_size : int, default=20
        Images per training and prediction step.
    random_state : int, RandomState instance or None, default=None
        Seeds the head's initial weights, dropout, augmentation, shuffling, the probe's folds
        and the validation split: the same seed gives the same model on the CPU.
    precision : {{"float32", "bfloat16"}}, default="float32"
        Compute precision; weights are kept in float32.
    verbose : int, default=0
        ``1`` shows Keras' progress bar for each epoch, ``2`` one line per epoch.
{pooling}
    hidden_layer_sizes : array-like of int, default=()
        Units of the head's hidden ReLU layers; ``()``: a linear head.
    dropout : float, default=0.5
        Dropout rate after each hidden layer.
    head_learning_rate : float, default=1e-3
        Learning rate of phase 1, when the head is trained by epochs.
    fine_tune_learning_rate : float, default=1e-5
        Learning rate of phase 2; low, so as not to destroy the pretrained features.
    optimizer : {{"adam", "rmsprop", "sgd"}}, default="adam"
        The Keras optimizer of the phases trained by epochs (a fresh one per phase).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data ({split}) and stop a phase
        when the validation loss has not improved for ``n_iter_no_change`` epochs, restoring
        the best weights.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.'''
"""The training parameters the fine-tuned estimators share, up to ``n_iter_no_change``:
``{probe}`` (a :func:`paragraph`) says what the head's exact fit is and how its penalty is
chosen, ``{augmentation_why}`` (a :func:`paragraph`) why the default augmentation is what it
is, ``{split}`` how validation images are drawn."""


def paragraph(text):
    """``text`` wrapped as a parameter's description in a class docstring."""
    return textwrap.fill(text, width=92, initial_indent=" " * 8, subsequent_indent=" " * 8)

STORAGE = '''\
    max_stored_bytes : int or "auto", default="auto"
        Most bytes of frozen-layer outputs kept in memory during ``fit`` (freed when it
        ends); ``"auto"``: half of the memory available when ``fit`` starts (fits run side by
        side, as by ``GridSearchCV(n_jobs=...)``, each take that half: give them a number
        that adds up). Outputs beyond it are stored in temporary files in ``temp_folder``, so
        a fit's time grows linearly with the images. ``0`` stores them all on disk.
    temp_folder : str, path or None, default=None
        Directory of the temporary files of frozen-layer outputs beyond
        ``max_stored_bytes``, removed when ``fit`` ends, fails or is interrupted; None: the
        system's temporary directory (``tempfile.gettempdir()``). Where its disk has no room
        for them, the phases train on pixels instead, running the frozen layers in every
        epoch, with an ``EfficiencyWarning``.'''
"""Where the fine-tuned estimators keep the frozen layers' outputs during ``fit``."""

TRAINING_NOTES = '''\
    Image files are decoded batch by batch, never all held in memory: once where the frozen
    layers' outputs are stored, in every epoch where the network trains on pixels.

    Layers that no phase trains run once per image and view; the head, then the unfrozen
    layers, train on their stored output (in memory up to ``max_stored_bytes``, beyond it
    on disk in ``temp_folder``).'''
"""How the fine-tuned estimators train, the second paragraphs of their Notes."""
