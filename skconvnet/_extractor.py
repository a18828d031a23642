"""Feature extractors: a backbone cut at a layer, as a scikit-learn transformer."""

import os
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._fitting import unfitted_on_failure
from ._optional import require
from ._persistence import Persistent
from ._sklearn import Interval, StrOptions, _check_feature_names_in, _fit_context
from .backbones import specs
from .backbones.checks import check_layers, output_shape
from .backbones.graph import preprocess
from .backbones.weights import resolve_weights
from .compute import int8
from .compute.activations import extract
from .export.estimators import OnnxOperator
from .inputs.adapters import ImageInput


class ConvNetFeatureExtractor(Persistent, ImageInput, OnnxOperator, TransformerMixin,
                              BaseEstimator):
    """Activations of a pretrained convolutional network, cut at a chosen layer.

    Images go through the backbone's own preprocessing and the network up to ``layer``; the
    activation is flattened or pooled over space, giving one row of features per image for
    any scikit-learn estimator.

    Parameters
    ----------
    backbone : str, default="vgg16"
        The network: the lowercase name of its ``keras.applications`` constructor, one of
        :func:`skconvnet.list_backbones` (``"vgg16"``, ``"resnet50"``,
        ``"efficientnetv2b0"``, ``"convnexttiny"`` ...).
    layer : str or list of str, default=None
        The cut point, one of :func:`skconvnet.list_layers` for the backbone; ``None`` is the
        deepest. Early layers hold generic edges and textures, late ones more abstract,
        task-specific patterns; only the layers up to the cut are computed. A list of layers
        gives their features side by side (in the list's order), computed in one pass.
    weights : "imagenet", None or path, default="imagenet"
        ``"imagenet"``: Keras' ImageNet weights, downloaded once by ``keras.applications``
        into Keras' cache (``~/.keras/models``). ``None``: random initialisation, the same in
        every process. A path: a weights file saved from the backbone's Keras model
        (``include_top=False``), e.g. with ``model.save_weights("base.weights.h5")``.
        Weights are read once per process.
    pooling : {None, "avg", "max"}, default=None
        ``None`` flattens the activation (height x width x channels features, as in the
        book); ``"avg"`` and ``"max"`` pool it globally over space (channels features).
    image_size : (int, int) or int, default=None
        ``(height, width)`` every image is resized to before the network; ``None`` is the
        backbone's customary size (150 x 150 for VGG16, as in the book; 224 x 224 for the
        others).
    image_shape : (int, int, int), default=None
        ``(height, width, channels)`` of the images that the rows of a 2-D ``X`` flatten (in
        C order, channels last). With ``None``, rows of ``height * width * 3`` values for
        ``image_size`` are such images, and rows of any other width are tabular features:
        each column is min-max scaled to 0-255 with the range seen in ``fit`` and drawn as a
        horizontal band of a gray image.
    batch_size : int, default=32
        Images per forward pass. At most three batches of decoded images are held in memory
        at a time.
    precision : {"float32", "bfloat16", "int8"}, default="float32"
        Compute precision. ``"bfloat16"`` is about twice as fast on CPUs with bfloat16
        instructions (more with AMX) and on GPUs. ``"int8"`` runs the network quantized on
        ONNX Runtime (needs ``pip install 'skconvnet[onnx]'`` and Keras on TensorFlow), its
        activation ranges calibrated in ``fit`` on a seeded sample of 32 training images
        (all of them where fewer); VGG16 ran 2.6x-3.6x faster than in float32 on the CPUs
        measured, light networks gain less, and on CPUs with AMX bfloat16 is faster still
        (see the deployment guide). Features are returned as floats either way. Keras'
        global dtype policy is left unchanged.
    verbose : int, default=0
        ``1`` shows a progress bar over the images.
    cache : bool, default=True
        Reuse activations of images already seen in this process (see
        :func:`skconvnet.set_cache_budget`): a grid search over ``layer`` then costs about one
        forward pass to the deepest layer. Results are the same with and without it.

    Attributes
    ----------
    feature_shapes_ : dict
        ``{layer: (height, width, channels)}``: each layer's activation before pooling.
    weights_id_ : str
        A digest of the backbone and weights used in ``fit``; ``transform`` refuses
        different ones (e.g. a weights file rewritten since).
    int8_ranges_ : dict
        ``{tensor: (low, high)}``: the int8 network's calibrated activation ranges (only
        with ``precision="int8"``).
    n_features_in_ : int
        Number of columns of a 2-D ``X`` seen in ``fit`` (only for 2-D ``X``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` seen in ``fit`` (only for DataFrames).
    data_min_, data_max_ : ndarray
        Per-column range of tabular rows seen in ``fit`` (only for such rows).

    See Also
    --------
    VGGFeatureExtractor : The same for VGG16, with the book's defaults.

    Notes
    -----
    ``X`` may be a 4-D array ``(n_images, height, width, channels)`` with 1 or 3 channels,
    uint8 or float pixels in 0-255; a 2-D array (see ``image_shape``); or a list or 1-D array
    of image files: paths, or their encoded contents as bytes (JPEG, PNG ...), decoded with
    Pillow (any mode to RGB, EXIF orientation applied). Images of any size are resized to
    ``image_size`` one by one. The output is float32, or float64 for float64 input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skconvnet import ConvNetFeatureExtractor
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    >>> extractor = ConvNetFeatureExtractor(
    ...     backbone="resnet50", layer="conv3_block4_out", pooling="avg", weights=None,
    ...     image_size=(32, 32))
    >>> extractor.fit_transform(images).shape
    (6, 512)
    >>> model = make_pipeline(extractor, LogisticRegression()).fit(images, [0, 1] * 3)
    >>> model.predict(images).shape
    (6,)
    """

    _parameter_constraints = {
        "backbone": [StrOptions(set(specs.BACKBONES))],
        "layer": [None, str, list, tuple],
        "weights": [None, str, os.PathLike],
        "pooling": [None, StrOptions({"avg", "max"})],
        "image_size": [None, "array-like", Interval(Integral, 1, None, closed="left")],
        "image_shape": [None, "array-like"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "precision": [StrOptions({"float32", "bfloat16", "int8"})],
        "verbose": ["verbose"],
        "cache": ["boolean"],
    }

    def __init__(
        self,
        *,
        backbone="vgg16",
        layer=None,
        weights="imagenet",
        pooling=None,
        image_size=None,
        image_shape=None,
        batch_size=32,
        precision="float32",
        verbose=0,
        cache=True,
    ):
        self.backbone = backbone
        self.layer = layer
        self.weights = weights
        self.pooling = pooling
        self.image_size = image_size
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.precision = precision
        self.verbose = verbose
        self.cache = cache

    @_fit_context(prefer_skip_nested_validation=True)
    @unfitted_on_failure
    def fit(self, X, y=None):
        """Validate the parameters and ``X``, and resolve the weights.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of image files
            Training images (see Notes); only tabular rows have something to learn (their
            range).
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        spec = self._spec()
        image_size = self._image_size()
        layers = spec.layer_names[-1:] if self.layer is None else self.layer
        feature_shapes = {
            layer: output_shape(spec, layer, image_size)
            for layer in check_layers(spec, layers)
        }
        weights = resolve_weights(spec, self.weights)
        source = self._images(X, reset=True)
        self.__dict__.pop("int8_ranges_", None)
        if self.precision == "int8":
            self.int8_ranges_ = self._calibrate(weights, source)
        self.feature_shapes_ = feature_shapes
        self.weights_id_ = weights.digest
        return self

    def _calibrate(self, weights, source):
        """The int8 network's ranges, calibrated on a seeded sample of the images."""
        require("onnx", "onnxruntime", "tf2onnx", extra="onnx", purpose="precision='int8'")
        int8.check_backend()
        sample = int8.calibration_sample(source.n_samples)
        batches = (preprocess(weights.spec, source.load(sample[i:i + self.batch_size]))
                   for i in range(0, len(sample), self.batch_size))
        return int8.calibrate(weights, self._image_size(), batches)

    def transform(self, X):
        """The features of each image of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of image files
            Images (see Notes).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        source = self._images(X, reset=False)
        weights = resolve_weights(self._spec(), self.weights)
        if weights.digest != self.weights_id_:
            raise ValueError(
                f"weights={self.weights!r} now resolve to other weights than in fit "
                f"(digest {weights.digest}, fitted {self.weights_id_}): the file changed, or "
                "the backbone. Fit the extractor again."
            )
        if self.precision == "int8" and not hasattr(self, "int8_ranges_"):
            raise ValueError(
                "precision='int8' was set after fit, which calibrates the int8 network on "
                "the training images: fit the extractor again."
            )
        features = extract(
            weights, source, layers=list(self.feature_shapes_), pooling=self.pooling,
            precision=self.precision, batch_size=self.batch_size, cache=self.cache,
            verbose=self.verbose, ranges=getattr(self, "int8_ranges_", None),
        )
        return features[0] if len(features) == 1 else np.hstack(features)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: layer, pooling or position, and channel.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Only checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        names = []
        for layer, (height, width, channels) in self.feature_shapes_.items():
            if self.pooling:
                names += [f"{layer}_{self.pooling}_ch{c}" for c in range(channels)]
            else:
                names += [
                    f"{layer}_y{y}_x{x}_ch{c}"
                    for y in range(height)
                    for x in range(width)
                    for c in range(channels)
                ]
        return np.asarray(names, dtype=object)

    def _spec(self):
        return specs.get(self.backbone)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "weights_id_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class VGGFeatureExtractor(ConvNetFeatureExtractor):
    """Activations of a pretrained VGG16 convolutional base, cut at a chosen layer.

    Images go through VGG16's preprocessing (RGB to BGR, ImageNet mean subtracted) and the
    network up to ``layer``; the activation is flattened or pooled over space, giving one row
    of features per image for any scikit-learn estimator.

    Parameters
    ----------
    layer : str or list of str, default="block5_pool"
        The VGG16 conv-base layer to cut at, ``"block1_conv1"`` ... ``"block5_pool"``. Early
        layers hold generic edges and textures, late ones more abstract, task-specific
        patterns; only the layers up to the cut are computed. A list of layers gives their
        features side by side (in the list's order), computed in one pass.
    weights : "imagenet", None or path, default="imagenet"
        ``"imagenet"``: Keras' ImageNet weights, downloaded once into Keras' cache
        (``~/.keras/models``). ``None``: random initialisation, the same in every process. A
        path: a weights file saved from a Keras VGG16 conv base (``include_top=False``), e.g.
        with ``model.save_weights("base.weights.h5")``. Weights are read once per process.
    pooling : {None, "avg", "max"}, default=None
        ``None`` flattens the activation (height x width x channels features, as in the
        book); ``"avg"`` and ``"max"`` pool it globally over space (channels features).
    image_size : (int, int) or int, default=(150, 150)
        ``(height, width)`` every image is resized to before the network.
    image_shape : (int, int, int), default=None
        ``(height, width, channels)`` of the images that the rows of a 2-D ``X`` flatten (in
        C order, channels last). With ``None``, rows of ``height * width * 3`` values for
        ``image_size`` are such images, and rows of any other width are tabular features:
        each column is min-max scaled to 0-255 with the range seen in ``fit`` and drawn as a
        horizontal band of a gray image.
    batch_size : int, default=32
        Images per forward pass. At most three batches of decoded images are held in memory
        at a time.
    precision : {"float32", "bfloat16", "int8"}, default="float32"
        Compute precision. ``"bfloat16"`` is about twice as fast on CPUs with bfloat16
        instructions (more with AMX) and on GPUs. ``"int8"`` runs the network quantized on
        ONNX Runtime (needs ``pip install 'skconvnet[onnx]'`` and Keras on TensorFlow), its
        activation ranges calibrated in ``fit`` on a seeded sample of 32 training images
        (all of them where fewer); VGG16 ran 2.6x-3.6x faster than in float32 on the CPUs
        measured, light networks gain less, and on CPUs with AMX bfloat16 is faster still
        (see the deployment guide). Features are returned as floats either way. Keras'
        global dtype policy is left unchanged.
    verbose : int, default=0
        ``1`` shows a progress bar over the images.
    cache : bool, default=True
        Reuse activations of images already seen in this process (see
        :func:`skconvnet.set_cache_budget`): a grid search over ``layer`` then costs about one
        forward pass to the deepest layer. Results are the same with and without it.

    Attributes
    ----------
    feature_shapes_ : dict
        ``{layer: (height, width, channels)}``: each layer's activation before pooling.
    weights_id_ : str
        A digest of the weights used in ``fit``; ``transform`` refuses different weights
        (e.g. a weights file rewritten since).
    int8_ranges_ : dict
        ``{tensor: (low, high)}``: the int8 network's calibrated activation ranges (only
        with ``precision="int8"``).
    n_features_in_ : int
        Number of columns of a 2-D ``X`` seen in ``fit`` (only for 2-D ``X``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` seen in ``fit`` (only for DataFrames).
    data_min_, data_max_ : ndarray
        Per-column range of tabular rows seen in ``fit`` (only for such rows).

    See Also
    --------
    ConvNetFeatureExtractor : The same for any backbone (``backbone="vgg16"`` is this one).

    Notes
    -----
    ``X`` may be a 4-D array ``(n_images, height, width, channels)`` with 1 or 3 channels,
    uint8 or float pixels in 0-255; a 2-D array (see ``image_shape``); or a list or 1-D array
    of image file paths, decoded with Pillow (any mode to RGB, EXIF orientation applied).
    Images of any size are resized to ``image_size`` one by one. The output is float32, or
    float64 for float64 input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skconvnet import VGGFeatureExtractor
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    >>> extractor = VGGFeatureExtractor(
    ...     layer="block2_pool", pooling="avg", weights=None, image_size=(32, 32))
    >>> extractor.fit_transform(images).shape
    (6, 128)
    >>> extractor.get_feature_names_out()[:2]
    array(['block2_pool_avg_ch0', 'block2_pool_avg_ch1'], dtype=object)
    >>> model = make_pipeline(extractor, LogisticRegression()).fit(images, [0, 1] * 3)
    >>> model.predict(images).shape
    (6,)
    """

    _parameter_constraints = {
        name: constraint
        for name, constraint in ConvNetFeatureExtractor._parameter_constraints.items()
        if name != "backbone"
    }

    def __init__(
        self,
        *,
        layer="block5_pool",
        weights="imagenet",
        pooling=None,
        image_size=(150, 150),
        image_shape=None,
        batch_size=32,
        precision="float32",
        verbose=0,
        cache=True,
    ):
        self.layer = layer
        self.weights = weights
        self.pooling = pooling
        self.image_size = image_size
        self.image_shape = image_shape
        self.batch_size = batch_size
        self.precision = precision
        self.verbose = verbose
        self.cache = cache

    def _spec(self):
        return specs.get("vgg16")
