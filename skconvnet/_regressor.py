"""``FineTunedConvNetRegressor``: the book's transfer-learning recipe for numbers."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import check_array

from . import _parameters
from ._finetuned import FineTunedConvNet
from .compute.graphs import regressor_graph
from .export.converters import OnnxOutput
from .training.targets import number_targets


class FineTunedConvNetRegressor(RegressorMixin, FineTunedConvNet):
    __doc__ = """A pretrained convolutional base with a new linear head predicting numbers,
    trained in the book's two phases.

    The same recipe as :class:`FineTunedConvNetClassifier`, for one or several numeric
    targets per image (a size, an age, a count, a position...):

    1. The targets are standardised (each to mean 0 and standard deviation 1); the head, a
       ridge regression of them on the globally averaged ``block5_pool`` features, is fit
       exactly, its penalty chosen per target by cross-validation, and folded into the
       network's linear output layer.
    2. The base's layers from ``unfreeze_from`` up to the cut are unfrozen and trained with
       the head for ``fine_tune_epochs`` at the low ``fine_tune_learning_rate``, with the
       squared error of the standardised targets: the ridge's own loss, so fine-tuning
       goes on from its optimum, each target weighing alike whatever its units.

    ``predict`` gives the targets in their own units: the standardisation is folded back
    into the output layer, so ``model_`` (and its ONNX graph) predicts them directly.

    Parameters
    ----------
{backbone}
{layer}
{weights}
        They are the base's starting weights: ``None`` with ``unfreeze_from`` at the first
        layer trains the whole network from scratch.
{image_size}
{training}
{storage}
{image_shape}

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.
    model_ : keras.Model
        The trained network (without optimizer state), from pixels to the targets.
    history_ : dict
        Per phase (``"head"``, ``"fine_tune"``), Keras' per-epoch ``loss`` (mean squared
        error) and ``mean_absolute_error``, of the standardised targets, and their
        ``val_`` counterparts with early stopping. A head fit as a ridge regression records
        each target's ``alpha`` and its final training ``loss`` and ``mean_absolute_error``.
{input_attributes}

    Notes
    -----
{x_note}
{training_notes}

    Examples
    --------
    >>> import numpy as np
    >>> from skconvnet import FineTunedConvNetRegressor
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    >>> brightness = images.mean(axis=(1, 2, 3))
    >>> reg = FineTunedConvNetRegressor(
    ...     weights=None, image_size=(32, 32), layer="block2_pool", fine_tune_epochs=1,
    ...     random_state=0).fit(images, brightness)
    >>> reg.predict(images[:2]).shape
    (2,)
    >>> sorted(reg.history_["head"])
    ['alpha', 'loss', 'mean_absolute_error']
    """.format(
        backbone=_parameters.BACKBONE,
        layer=_parameters.LAYER.format(kind="str", default="None", role=" the head sits on"),
        weights=_parameters.WEIGHTS,
        image_size=_parameters.IMAGE_SIZE.format(default="None"),
        training=_parameters.TRAINING.format(
            probe=_parameters.paragraph(
                "a ridge regression of the standardised targets, its penalty ``alpha`` among "
                "1e-2 ... 1e6 for each target."),
            augmentation_default="False",
            augmentation_why=_parameters.paragraph(
                "Off by default: every geometric augmentation changes some number a photo "
                "can be labelled with (a zoom its size, a rotation its angle, a shift its "
                "position, a flip its left and right); give the layers that leave your "
                "targets as they are, e.g. ``[keras.layers.RandomFlip(\"horizontal\")]`` "
                "for a size."),
            split="drawn at random",
            pooling=_parameters.POOLING.format(default='"avg"'),
        ),
        storage=_parameters.STORAGE,
        image_shape=_parameters.IMAGE_SHAPE,
        input_attributes=_parameters.INPUT_ATTRIBUTES,
        x_note=_parameters.X_NOTE,
        training_notes=_parameters.TRAINING_NOTES,
    )

    _parameter_constraints = dict(_parameters.TRAINING_CONSTRAINTS)

    def __init__(
        self,
        *,
        backbone="vgg16",
        layer=None,
        weights="imagenet",
        image_size=None,
        head_epochs="auto",
        fine_tune_epochs=10,
        unfreeze_from=None,
        augmentation=False,
        augmented_views=3,
        batch_size=20,
        random_state=None,
        precision="float32",
        verbose=0,
        pooling="avg",
        hidden_layer_sizes=(),
        dropout=0.5,
        head_learning_rate=1e-3,
        fine_tune_learning_rate=1e-5,
        optimizer="adam",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        max_stored_bytes="auto",
        temp_folder=None,
        image_shape=None,
    ):
        super().__init__(
            backbone=backbone, layer=layer, weights=weights, image_size=image_size,
            head_epochs=head_epochs, fine_tune_epochs=fine_tune_epochs,
            unfreeze_from=unfreeze_from, augmentation=augmentation,
            augmented_views=augmented_views, batch_size=batch_size, random_state=random_state,
            precision=precision, verbose=verbose, pooling=pooling,
            hidden_layer_sizes=hidden_layer_sizes, dropout=dropout,
            head_learning_rate=head_learning_rate,
            fine_tune_learning_rate=fine_tune_learning_rate, optimizer=optimizer,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, max_stored_bytes=max_stored_bytes,
            temp_folder=temp_folder, image_shape=image_shape,
        )

    def predict(self, X):
        """The predicted targets of each image.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Images (see Notes).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            One column per target; 1-D for one target.
        """
        y = self._outputs(X)
        return y.ravel() if y.shape[1] == 1 else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _onnx_graph(self, opset):
        """The predicted targets of ``uint8`` images as an ONNX graph (see
        :mod:`skconvnet.export`)."""
        return regressor_graph(self.model_, self._spec(), self._image_size(), opset)

    def _onnx_outputs(self):
        return [OnnxOutput("variable", "float", self.n_outputs_)]

    # Targets

    def _check_y(self, y):
        """The targets as a 2-D float array, one column per target."""
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y",
                        ensure_all_finite=False)
        try:
            if y.dtype.kind in "USV":  # text, even of digits, is not taken for numbers
                raise TypeError
            numbers = y.astype(np.float64)
        except (ValueError, TypeError):
            raise ValueError(
                f"y holds values that are not numbers (e.g. {y.ravel()[0]!r}); "
                f"{type(self).__name__} predicts numbers. Give numeric targets, or use "
                "FineTunedConvNetClassifier for classes."
            ) from None
        y = check_array(numbers, ensure_2d=False, input_name="y")  # no NaN or infinity
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _targets(self, y, sample_weight, columns):
        """The targets, standardised."""
        return number_targets(y, self._sample_weight(sample_weight, len(y)))

    def _fitted(self, targets, model):
        from .training.network import unstandardised

        self.n_outputs_ = targets.n_outputs
        self.model_ = unstandardised(model, targets.mean, targets.scale)
