"""``FineTunedConvNetClassifier``: the book's transfer-learning recipe as a classifier."""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _backbone
from ._activations import extract, n_pooled, run_model
from ._fitting import unfitted_on_failure
from ._images import ImageInput, check_image_size
from ._persistence import Persistent


class FineTunedConvNetClassifier(Persistent, ImageInput, ClassifierMixin, BaseEstimator):
    """A VGG16 conv base with a new dense head, trained in the book's two phases.

    1. A new head (pooling or flattening, dense layers, dropout, a sigmoid or softmax output)
       is put on VGG16's conv base cut at ``layer``; the base is frozen and the head is
       trained for ``head_epochs``.
    2. The base's layers from ``unfreeze_from`` up to the cut are unfrozen and trained with
       the head for ``fine_tune_epochs`` at the lower ``fine_tune_learning_rate``.

    Training images are randomly flipped, rotated, zoomed and shifted (``augmentation``).
    The defaults follow the book's setup for 150x150 cats and dogs (first edition): flatten,
    ``Dense(256)``, 30 head epochs at 2e-5 and 100 fine-tuning epochs at 1e-5 with RMSprop
    from ``block5_conv1``, batches of 20.

    Parameters
    ----------
    layer : str, default="block5_pool"
        The VGG16 conv-base layer the head sits on, ``"block1_conv1"`` ... ``"block5_pool"``.
    weights : "imagenet", None or path, default="imagenet"
        The base's starting weights, as in :class:`VGGFeatureExtractor`. ``None`` with
        ``unfreeze_from="block1_conv1"`` trains the whole network from scratch.
    image_size : (int, int) or int, default=(150, 150)
        ``(height, width)`` every image is resized to.
    head_epochs : int, default=30
        Epochs of phase 1 (frozen base, head only).
    fine_tune_epochs : int, default=100
        Epochs of phase 2 (top of the base and head). ``0`` is pure feature extraction with a
        trained dense head.
    unfreeze_from : str, default="block5_conv1"
        The lowest base layer trained in phase 2; it must lie at or below ``layer``.
    augmentation : bool or list of keras layers, default=True
        ``True``: random horizontal flips, rotations up to 40 degrees, zooms and shifts up to
        20% (Keras preprocessing layers, active in training only). ``False``: none. A list
        of Keras layers replaces them (copied afresh for each fit).
    batch_size : int, default=20
        Images per training and prediction step.
    random_state : int, RandomState instance or None, default=None
        Seeds the head's initial weights, dropout, augmentation, shuffling and the validation
        split: the same seed gives the same model on the CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Compute precision; weights are kept in float32.
    verbose : int, default=0
        ``1`` shows Keras' progress bar for each epoch, ``2`` one line per epoch.
    pooling : {None, "avg", "max"}, default=None
        How the head reduces the base's activation: flatten (as in the book) or global
        average / max pooling.
    hidden_layer_sizes : array-like of int, default=(256,)
        Units of the head's hidden ReLU layers.
    dropout : float, default=0.5
        Dropout rate after each hidden layer.
    head_learning_rate : float, default=2e-5
        Learning rate of phase 1.
    fine_tune_learning_rate : float, default=1e-5
        Learning rate of phase 2; low, so as not to destroy the pretrained features.
    optimizer : {"rmsprop", "adam", "sgd"}, default="rmsprop"
        The Keras optimizer of both phases (a fresh one per phase).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified) and stop a phase
        when the validation loss has not improved for ``n_iter_no_change`` epochs, restoring
        the best weights.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is on.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
    image_shape : (int, int, int), default=None
        How 2-D rows are read, as in :class:`VGGFeatureExtractor`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    model_ : keras.Model
        The trained network (without optimizer state), from pixels to class probabilities.
    history_ : dict
        Per phase (``"head"``, ``"fine_tune"``), Keras' per-epoch ``loss`` and ``accuracy``,
        and ``val_loss`` / ``val_accuracy`` with early stopping.
    n_features_in_ : int
        Number of columns of a 2-D ``X`` seen in ``fit`` (only for 2-D ``X``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` seen in ``fit`` (only for DataFrames).
    data_min_, data_max_ : ndarray
        Per-column range of tabular rows seen in ``fit`` (only for such rows).

    Notes
    -----
    ``X`` is read as by :class:`VGGFeatureExtractor`: 4-D arrays of images, 2-D rows, or
    image file paths (decoded batch by batch in every epoch, never all held in memory).

    Without augmentation, phase 1 runs the frozen base once and trains the head on its stored
    pooled outputs (up to 1 GiB of them; beyond, the base runs in every epoch).

    Examples
    --------
    >>> import numpy as np
    >>> from skconvnet import FineTunedConvNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    >>> labels = ["cat", "dog"] * 4
    >>> clf = FineTunedConvNetClassifier(
    ...     weights=None, image_size=(32, 32), layer="block2_pool", unfreeze_from="block2_conv1",
    ...     head_epochs=2, fine_tune_epochs=1, random_state=0).fit(images, labels)
    >>> clf.classes_
    array(['cat', 'dog'], dtype='<U3')
    >>> clf.predict_proba(images[:2]).shape
    (2, 2)
    >>> sorted(clf.history_)
    ['fine_tune', 'head']
    """

    _keras_models = ("model_",)

    _parameter_constraints = {
        "layer": [str],
        "weights": [None, str, os.PathLike],
        "image_size": ["array-like", Interval(Integral, 1, None, closed="left")],
        "head_epochs": [Interval(Integral, 0, None, closed="left")],
        "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
        "unfreeze_from": [str],
        "augmentation": ["boolean", list, tuple],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "verbose": ["verbose"],
        "pooling": [None, StrOptions({"avg", "max"})],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "head_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "fine_tune_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions({"rmsprop", "adam", "sgd"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "image_shape": [None, "array-like"],
    }

    def __init__(
        self,
        *,
        layer="block5_pool",
        weights="imagenet",
        image_size=(150, 150),
        head_epochs=30,
        fine_tune_epochs=100,
        unfreeze_from="block5_conv1",
        augmentation=True,
        batch_size=20,
        random_state=None,
        precision="float32",
        verbose=0,
        pooling=None,
        hidden_layer_sizes=(256,),
        dropout=0.5,
        head_learning_rate=2e-5,
        fine_tune_learning_rate=1e-5,
        optimizer="rmsprop",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        class_weight=None,
        image_shape=None,
    ):
        self.layer = layer
        self.weights = weights
        self.image_size = image_size
        self.head_epochs = head_epochs
        self.fine_tune_epochs = fine_tune_epochs
        self.unfreeze_from = unfreeze_from
        self.augmentation = augmentation
        self.batch_size = batch_size
        self.random_state = random_state
        self.precision = precision
        self.verbose = verbose
        self.pooling = pooling
        self.hidden_layer_sizes = hidden_layer_sizes
        self.dropout = dropout
        self.head_learning_rate = head_learning_rate
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.optimizer = optimizer
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.image_shape = image_shape

    @_fit_context(prefer_skip_nested_validation=True)
    @unfitted_on_failure
    def fit(self, X, y, sample_weight=None):
        """Train the head on the frozen base, then fine-tune the top of the base with it.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Training images (see Notes).
        y : array-like of shape (n_samples,)
            Class labels, two or more classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the training loss.

        Returns
        -------
        self : FineTunedConvNetClassifier
        """
        layer = self._check_layers()
        image_size = check_image_size(self.image_size)
        _backbone.output_shape(layer, image_size)
        if self.head_epochs + self.fine_tune_epochs == 0:
            raise ValueError(
                "head_epochs and fine_tune_epochs are both 0: nothing would be trained. Set "
                "head_epochs >= 1 (and fine_tune_epochs >= 0)."
            )
        weights = _backbone.resolve_weights(self.weights)
        y = self._check_y(y)
        source = self._images(X, reset=True)
        if source.n_samples != len(y):
            raise ValueError(
                f"X has {source.n_samples} samples but y has {len(y)} labels; give one label "
                "per sample."
            )
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0].item()!r}); a classifier needs samples of at "
                "least 2 classes."
            )
        sample_weight = _check_sample_weight(
            sample_weight, np.empty((len(y), 0)), dtype=np.float32, ensure_non_negative=True
        ) * compute_sample_weight(self.class_weight, y).astype(np.float32)
        seed = check_random_state(self.random_state).randint(2**31 - 1000)

        from . import _network

        n_outputs = 1 if len(classes) == 2 else len(classes)
        targets = y_index.astype(np.float32 if n_outputs == 1 else np.int32)
        train_rows, validation_rows = self._split(y_index, seed)
        augmentation = (
            _network.book_augmentation(seed) if self.augmentation is True
            else _network.fresh_copies(self.augmentation or [])
        )
        model, base, head = _network.build_network(
            weights, layer=layer, pooling=self.pooling, image_size=image_size,
            hidden_layer_sizes=self._hidden_layer_sizes(), dropout=self.dropout,
            n_outputs=n_outputs, augmentation=augmentation, precision=self.precision,
            seed=seed,
        )
        features = None
        if self.head_epochs and not augmentation:
            features = self._frozen_features(weights, source, layer, image_size)
        history = {}
        for number, (phase, epochs, learning_rate) in enumerate([
            ("head", self.head_epochs, self.head_learning_rate),
            ("fine_tune", self.fine_tune_epochs, self.fine_tune_learning_rate),
        ]):
            if not epochs:
                continue
            if phase == "fine_tune":
                _network.unfreeze(base, self.unfreeze_from)
            on_features = phase == "head" and features is not None
            trained = head if on_features else model
            load = features.__getitem__ if on_features else _network.pixel_loader(source)
            train = _network.Batches(load, train_rows, targets, sample_weight, self.batch_size,
                                     shuffle_seed=(seed, number))
            validation = None
            callbacks = []
            if validation_rows is not None:
                validation = _network.Batches(load, validation_rows, targets, sample_weight,
                                              self.batch_size)
                callbacks = [_network.early_stopping(self.n_iter_no_change)]
            _network.compile_for(
                trained, optimizer=self.optimizer, learning_rate=learning_rate,
                n_outputs=n_outputs,
            )
            try:
                result = trained.fit(
                    train, validation_data=validation, epochs=epochs, callbacks=callbacks,
                    verbose=min(int(self.verbose), 2),
                    shuffle=False,  # Batches shuffles with its own seeded generator
                )
            finally:
                for batches in (train, validation):
                    if batches is not None:
                        batches.release()
            history[phase] = {k: [float(v) for v in values] for k, values in result.history.items()}
        self.classes_ = classes
        self.history_ = history
        self.model_ = _network.inference_copy(model)
        return self

    def predict_proba(self, X):
        """Class probabilities of each image.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Images (see Notes).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        check_is_fitted(self)
        source = self._images(X, reset=False)
        proba = run_model(self.model_, source, batch_size=self.batch_size).astype(np.float64)
        if proba.shape[1] == 1:
            return np.hstack([1 - proba, proba])
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each image.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Images (see Notes).

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def _check_layers(self):
        layer = _backbone.check_layer(self.layer)
        unfreeze_from = _backbone.check_layer(self.unfreeze_from, "unfreeze_from")
        cut = _backbone.LAYER_NAMES.index(layer)
        if _backbone.LAYER_NAMES.index(unfreeze_from) > cut:
            raise ValueError(
                f"unfreeze_from={unfreeze_from!r} lies above the cut layer={layer!r}; it must be "
                f"one of the layers the head sits on: {', '.join(_backbone.LAYER_NAMES[: cut + 1])}."
            )
        return layer

    def _check_y(self, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim == 2 and y.shape[1] > 1:
            raise ValueError(
                f"y has shape {y.shape}; expected one label per sample, shape ({len(y)},). "
                "For one-hot labels pass y.argmax(axis=1); multilabel targets are not supported."
            )
        y = column_or_1d(y, warn=True)
        if type_of_target(y) == "unknown":
            kinds = sorted({type(label).__name__ for label in y})
            raise ValueError(
                f"Unknown label type: y mixes labels of types {', '.join(kinds)}. Give labels "
                "of one type, e.g. all str or all int, and no None."
            )
        check_classification_targets(y)
        return y

    def _hidden_layer_sizes(self):
        sizes = np.atleast_1d(self.hidden_layer_sizes)
        if sizes.ndim != 1 or not all(isinstance(s, Integral) and s > 0 for s in sizes.tolist()):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, e.g. (256,), got "
                f"{self.hidden_layer_sizes!r}."
            )
        return [int(s) for s in sizes]

    def _split(self, y_index, seed):
        """Training rows and, with early stopping, stratified validation rows (else None)."""
        rows = np.arange(len(y_index))
        if not self.early_stopping:
            return rows, None
        try:
            return train_test_split(
                rows, test_size=self.validation_fraction, stratify=y_index, random_state=seed
            )
        except ValueError as error:
            raise ValueError(
                f"early_stopping cannot hold out validation_fraction="
                f"{self.validation_fraction} of {len(rows)} samples with every class "
                f"represented ({error}). Give more samples or a larger validation_fraction, "
                "or set early_stopping=False."
            ) from None

    def _frozen_features(self, weights, source, layer, image_size):
        """The frozen base's pooled (or flattened) output for every image, computed once.

        Without augmentation the base sees the same pixels in every head epoch, so the head
        can train on these rows. None where they would take more than
        ``FROZEN_FEATURES_LIMIT`` bytes: then the base runs in every epoch instead.
        """
        n_features = n_pooled(_backbone.output_shape(layer, image_size), self.pooling)
        if source.n_samples * n_features * 4 > FROZEN_FEATURES_LIMIT:
            return None
        (features,) = extract(
            weights, source, layers=[layer], pooling=self.pooling, precision=self.precision,
            batch_size=self.batch_size, verbose=self.verbose,
        )
        return features.astype(np.float32, copy=False)


FROZEN_FEATURES_LIMIT = 1 << 30  # bytes of frozen-base outputs kept for the head phase
