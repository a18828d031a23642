"""Feature extractors: a backbone cut at a layer, as a scikit-learn transformer."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _parameters
from ._fitting import unfitted_on_failure
from ._optional import require, require_keras
from ._persistence import Persistent
from ._sklearn import StrOptions, _check_feature_names_in, _fit_context
from .backbones import specs
from .backbones.checks import check_layers, check_pooling, n_pooled, output_shape
from .backbones.graph import preprocess
from .backbones.weights import resolve_weights, spec_for
from .compute import int8
from .compute.activations import extract, extract_batches
from .compute.graphs import feature_graph
from .export.converters import OnnxOperator, OnnxOutput
from .inputs.adapters import ImageInput

# The extractors' docstring, one text for both: each formats it (``_doc``) with its own
# summary, defaults and examples, the shared parameters' entries from ``_parameters``.
_DOC = """{summary}

    Images go through {preprocessing}
    and the network up to ``layer``; the activation is flattened or pooled over space,
    giving one row of features per image for any scikit-learn estimator.

    Parameters
    ----------
{backbone}{layer}
        A list of layers gives their features side by side (in the list's order), computed
        in one pass.
{weights}
{pooling}
{auto}{image_size}
{image_shape}
    batch_size : int, default=32
        Images per forward pass. At most three batches of decoded images are held in memory
        at a time.
    precision : {{"float32", "bfloat16", "int8"}}, default="float32"
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
        ``{{layer: (height, width, channels)}}``: each layer's activation before pooling.
    weights_id_ : str
        A digest of the backbone and weights used in ``fit``; ``transform`` refuses
        different ones (e.g. a weights file rewritten since).
    int8_ranges_ : dict
        ``{{tensor: (low, high)}}``: the int8 network's calibrated activation ranges (only
        with ``precision="int8"``).
{input_attributes}

    See Also
    --------
    {see_also}

    Notes
    -----
{x_note}
    The output is float32, or float64 for float64 input.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skconvnet import {name}
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
{examples}
    >>> model = make_pipeline(extractor, LogisticRegression()).fit(images, [0, 1] * 3)
    >>> model.predict(images).shape
    (6,)
    """


def _doc(*, name, summary, preprocessing, backbone, layer, image_size, see_also, examples,
         pooling="None"):
    """An extractor's docstring: ``_DOC`` with its own summary, defaults and examples."""
    return _DOC.format(
        name=name, summary=summary, preprocessing=preprocessing,
        backbone=_parameters.BACKBONE + "\n" if backbone else "",
        layer=_parameters.LAYER.format(kind="str or list of str", default=layer, role=""),
        weights=_parameters.WEIGHTS,
        pooling=_parameters.POOLING.format(default=pooling),
        auto=('        ``"auto"``: the backbone\'s own choice, ``None`` for\n'
              '        ``keras.applications`` networks and EfficientNet, ``"cls+avg"`` for\n'
              '        DINOv2, ``"cls"`` for CLIP and ViT, ``"avg"`` for SigLIP (no class token).\n'
              if backbone else ""),
        image_size=_parameters.IMAGE_SIZE.format(default=image_size),
        image_shape=_parameters.IMAGE_SHAPE,
        input_attributes=_parameters.INPUT_ATTRIBUTES,
        see_also=see_also, x_note=_parameters.X_NOTE, examples=examples,
    )


class ConvNetFeatureExtractor(Persistent, ImageInput, OnnxOperator, TransformerMixin,
                              BaseEstimator):
    __doc__ = _doc(
        name="ConvNetFeatureExtractor",
        summary="Activations of a pretrained convolutional network, cut at a chosen layer.",
        preprocessing="the backbone's own preprocessing", backbone=True, layer="None",
        image_size="None", pooling='"auto"',
        see_also="VGGFeatureExtractor : The same for VGG16, with the book's defaults.",
        examples="""\
    >>> extractor = ConvNetFeatureExtractor(
    ...     backbone="resnet50", layer="conv3_block4_out", pooling="avg", weights=None,
    ...     image_size=(32, 32))
    >>> extractor.fit_transform(images).shape
    (6, 512)""",
    )

    _parameter_constraints = {
        **_parameters.CONSTRAINTS,
        "layer": [None, str, list, tuple],
        "precision": [StrOptions({"float32", "bfloat16", "int8"})],
        "cache": ["boolean"],
        "pooling": [None, StrOptions({"auto", "avg", "max", "cls", "cls+avg"})],
    }

    def __init__(
        self,
        *,
        backbone="vgg16",
        layer=None,
        weights="imagenet",
        pooling="auto",
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
        require_keras(f"{type(self).__name__}.fit")
        spec = self._spec()
        image_size = self._image_size()
        layers = spec.layer_names[-1:] if self.layer is None else self.layer
        feature_shapes = {
            layer: output_shape(spec, layer, image_size)
            for layer in check_layers(spec, layers)
        }
        self._pooling()
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
        features = self._extract(self._images(X, reset=False), pooling=self._pooling())
        return _side_by_side(features)

    def _transform_batches(self, X):
        """``transform(X)`` batch after batch: yields ``(indices, features)`` for consecutive
        batches of ``X``'s images, as soon as each is computed."""
        check_is_fitted(self)
        batches = extract_batches(**self._extraction(self._images(X, reset=False),
                                                     pooling=self._pooling()))
        for chunk, rows in batches:
            yield chunk, _side_by_side(rows)

    def _extract(self, source, *, pooling):
        """Each layer's activations of the images of ``source`` (an image source of this
        fitted extractor), pooled by ``pooling`` (None flattens them): one
        ``(n_samples, n_features)`` array per layer."""
        return extract(**self._extraction(source, pooling=pooling))

    def _extraction(self, source, *, pooling):
        """The arguments of :func:`~skconvnet.compute.activations.extract` for ``source``,
        once the weights and int8 ranges are checked to be the fitted ones."""
        weights = self._fitted_weights()
        if self.precision == "int8" and not hasattr(self, "int8_ranges_"):
            raise ValueError(
                "precision='int8' was set after fit, which calibrates the int8 network on "
                "the training images: fit the extractor again."
            )
        return dict(
            weights=weights, source=source, layers=list(self.feature_shapes_),
            pooling=pooling, precision=self.precision, batch_size=self.batch_size,
            cache=self.cache, verbose=self.verbose, ranges=getattr(self, "int8_ranges_", None),
        )

    def _fitted_weights(self):
        """The resolved weights, checked to be those of ``fit``."""
        weights = resolve_weights(self._spec(), self.weights)
        if weights.digest != self.weights_id_:
            raise ValueError(
                f"weights={self.weights!r} now resolve to other weights than in fit "
                f"(digest {weights.digest}, fitted {self.weights_id_}): the file changed, or "
                "the backbone. Fit the extractor again."
            )
        return weights

    def _onnx_graph(self, opset):
        """The features of ``uint8`` images as an ONNX graph (see :mod:`skconvnet.export`)."""
        return feature_graph(self._fitted_weights(), list(self.feature_shapes_),
                             self._pooling(), self._image_size(), opset)

    def _onnx_outputs(self):
        pooling, prefix = self._pooling(), self._spec().prefix_tokens
        width = sum(n_pooled(shape, pooling, prefix) for shape in self.feature_shapes_.values())
        return [OnnxOutput("features", "float", width)]

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
        pooling, spec = self._pooling(), self._spec()
        names = []
        for layer, shape in self.feature_shapes_.items():
            channels = range(shape[-1])
            if pooling == "cls+avg":
                names += [f"{layer}_{part}_ch{c}" for part in ("cls", "avg") for c in channels]
            elif pooling:
                names += [f"{layer}_{pooling}_ch{c}" for c in channels]
            else:
                height, width = (shape[:2] if len(shape) == 3 else
                                 [size // spec.patch_size for size in self._image_size()])
                names += [f"{layer}_y{y}_x{x}_ch{c}"
                          for y in range(height) for x in range(width) for c in channels]
        return np.asarray(names, dtype=object)

    def _pooling(self):
        """``pooling``, with ``"auto"`` the backbone's own choice, checked against it."""
        spec = self._spec()
        return check_pooling(spec, spec.pooling if self.pooling == "auto" else self.pooling)

    def _spec(self):
        return spec_for(specs.get(self.backbone), self.weights)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "weights_id_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class VGGFeatureExtractor(ConvNetFeatureExtractor):
    __doc__ = _doc(
        name="VGGFeatureExtractor",
        summary="Activations of a pretrained VGG16 convolutional base, cut at a chosen layer.",
        preprocessing="VGG16's preprocessing (RGB to BGR, ImageNet mean subtracted)",
        backbone=False, layer='"block5_pool"', image_size="(150, 150)",
        see_also=("ConvNetFeatureExtractor : The same for any backbone "
                  '(``backbone="vgg16"`` is this one).'),
        examples="""\
    >>> extractor = VGGFeatureExtractor(
    ...     layer="block2_pool", pooling="avg", weights=None, image_size=(32, 32))
    >>> extractor.fit_transform(images).shape
    (6, 128)
    >>> extractor.get_feature_names_out()[:2]
    array(['block2_pool_avg_ch0', 'block2_pool_avg_ch1'], dtype=object)""",
    )

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


def _side_by_side(per_layer):
    """Each layer's ``(n, n_features)`` features as one array (one layer's without a copy)."""
    return per_layer[0] if len(per_layer) == 1 else np.hstack(per_layer)
