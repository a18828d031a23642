"""``FineTunedConvNetClassifier``: the book's transfer-learning recipe as a classifier."""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, check_random_state, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from ._fitting import unfitted_on_failure
from ._persistence import Persistent
from ._sklearn import Interval, StrOptions, _check_sample_weight, _fit_context
from .backbones import specs
from .backbones.checks import check_layer, check_unfreeze_from, output_shape
from .backbones.graph import frozen_top
from .backbones.weights import resolve_weights
from .compute.activations import run_model
from .export.estimators import OnnxOperator
from .inputs.adapters import ImageInput
from .training import probe as _probe
from .training import stored as _stored

BOOK_RECIPE = {
    "layer": "block5_pool", "pooling": None, "hidden_layer_sizes": (256,), "dropout": 0.5,
    "head_epochs": 30, "head_learning_rate": 2e-5, "unfreeze_from": "block5_conv1",
    "fine_tune_epochs": 100, "fine_tune_learning_rate": 1e-5, "optimizer": "rmsprop",
    "augmentation": True, "augmented_views": None, "batch_size": 20,
}
"""The book's fine-tuning recipe (first edition, cats and dogs at 150x150) as parameters:
``FineTunedConvNetClassifier(**BOOK_RECIPE, weights=...)``."""


class FineTunedConvNetClassifier(Persistent, ImageInput, OnnxOperator, ClassifierMixin,
                                 BaseEstimator):
    """A pretrained convolutional base with a new head, trained in the book's two phases.

    1. A new head (pooling or flattening, optional dense layers with dropout, a sigmoid or
       softmax output) is put on the ``backbone`` cut at ``layer``; the base is frozen and
       the head is trained on it.
    2. The base's layers from ``unfreeze_from`` up to the cut are unfrozen and trained with
       the head for ``fine_tune_epochs`` at the low ``fine_tune_learning_rate``.

    The defaults are chosen by measurement on cats and dogs photos (see the fine-tuning
    guide): the head is a logistic regression on the globally averaged ``block5_pool``
    features, fit to convergence with its penalty chosen by cross-validation ("linear
    probing"), then ``block5`` and the head are fine-tuned for 10 epochs with Adam at 1e-5.
    Each training image is seen as itself and in 3 augmented views (random flips, rotations,
    zooms and shifts) drawn once; the frozen layers run once per view, so a fine-tuning
    epoch costs only what it trains.

    The book's literal recipe (first edition: flatten, ``Dense(256)``, dropout, 30 head
    epochs at 2e-5 and 100 fine-tuning epochs at 1e-5 with RMSprop, fresh augmentation in
    every epoch) is ``FineTunedConvNetClassifier(**BOOK_RECIPE)``.

    Parameters
    ----------
    backbone : str, default="vgg16"
        The network, one of :func:`skconvnet.list_backbones`.
    layer : str, default=None
        The cut point the head sits on, one of :func:`skconvnet.list_layers` for the
        backbone; None is the deepest (``"block5_pool"`` for VGG16).
    weights : "imagenet", None or path, default="imagenet"
        The base's starting weights, as in :class:`ConvNetFeatureExtractor`. ``None`` with
        ``unfreeze_from`` at the first layer trains the whole network from scratch.
    image_size : (int, int) or int, default=None
        ``(height, width)`` every image is resized to; None is the backbone's customary size
        (150 x 150 for VGG16, as in the book; 224 x 224 for the others).
    head_epochs : int or "auto", default="auto"
        Training of phase 1 (frozen base, head only). ``"auto"``: to convergence; a head
        without hidden layers is fit exactly as a logistic regression on the standardised
        features (L-BFGS), its inverse penalty ``C`` chosen among 1e-4 ... 10 by 5-fold
        cross-validation (views of one image kept in one fold); a head with hidden layers
        trains with early stopping on ``validation_fraction`` of the images. An int: that
        many epochs of ``optimizer`` at ``head_learning_rate``; ``0`` leaves the head as
        initialised.
    fine_tune_epochs : int, default=10
        Epochs of phase 2 (top of the base and head). ``0`` is pure feature extraction with a
        trained head.
    unfreeze_from : str or None, default=None
        Where phase 2 starts training, at or below ``layer``: a cut point (the block that
        ends there and everything above it are trained) or any other layer of the backbone
        (that layer and everything above it). None: the whole stage that ``layer`` ends in
        (``block5`` for VGG16's ``"block5_pool"``, ``conv5`` for ResNet-50's deepest cut).
        Batch normalisation stays in inference mode in every phase.
    augmentation : bool or list of keras layers, default=True
        ``True``: random horizontal flips, rotations up to 40 degrees, zooms and shifts up to
        20% (Keras preprocessing layers, active in training only). ``False``: none. A list
        of Keras layers replaces them (copied afresh for each fit).
    augmented_views : int or None, default=3
        Augmented views of each training image drawn once, before training; the frozen
        layers' output of each view and of the original is stored, and every epoch shows each
        image in one of them. None: fresh augmentation in every epoch, as in the book, which
        runs the whole network in every epoch.
    batch_size : int, default=20
        Images per training and prediction step.
    random_state : int, RandomState instance or None, default=None
        Seeds the head's initial weights, dropout, augmentation, shuffling, the probe's folds
        and the validation split: the same seed gives the same model on the CPU.
    precision : {"float32", "bfloat16"}, default="float32"
        Compute precision; weights are kept in float32.
    verbose : int, default=0
        ``1`` shows Keras' progress bar for each epoch, ``2`` one line per epoch.
    pooling : {None, "avg", "max"}, default="avg"
        How the head reduces the base's activation: global average or max pooling, or
        flattening (None, as in the book).
    hidden_layer_sizes : array-like of int, default=()
        Units of the head's hidden ReLU layers; ``()``: a linear (logistic) head.
    dropout : float, default=0.5
        Dropout rate after each hidden layer.
    head_learning_rate : float, default=1e-3
        Learning rate of phase 1, when the head is trained by epochs.
    fine_tune_learning_rate : float, default=1e-5
        Learning rate of phase 2; low, so as not to destroy the pretrained features.
    optimizer : {"adam", "rmsprop", "sgd"}, default="adam"
        The Keras optimizer of the phases trained by epochs (a fresh one per phase).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified) and stop a phase
        when the validation loss has not improved for ``n_iter_no_change`` epochs, restoring
        the best weights.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=10
        Patience of early stopping, in epochs.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``.
    max_stored_bytes : int, default=2**31
        Most bytes of frozen-layer outputs kept in memory during ``fit`` (freed when it
        ends). Beyond it, fine-tuning runs the frozen layers again in every epoch, on fresh
        augmentation.
    image_shape : (int, int, int), default=None
        How 2-D rows are read, as in :class:`ConvNetFeatureExtractor`.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    model_ : keras.Model
        The trained network (without optimizer state), from pixels to class probabilities.
    history_ : dict
        Per phase (``"head"``, ``"fine_tune"``), Keras' per-epoch ``loss`` and ``accuracy``,
        and ``val_loss`` / ``val_accuracy`` with early stopping. A head fit as a logistic
        regression records its ``C`` and its final training ``loss`` and ``accuracy``.
    n_features_in_ : int
        Number of columns of a 2-D ``X`` seen in ``fit`` (only for 2-D ``X``).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` seen in ``fit`` (only for DataFrames).
    data_min_, data_max_ : ndarray
        Per-column range of tabular rows seen in ``fit`` (only for such rows).

    Notes
    -----
    ``X`` is read as by :class:`ConvNetFeatureExtractor`: 4-D arrays of images, 2-D rows, or
    image files (decoded batch by batch in every epoch, never all held in memory).

    Layers that no phase trains run once per image and view; the head, then the unfrozen
    layers, train on their stored output (up to ``max_stored_bytes``).

    Examples
    --------
    >>> import numpy as np
    >>> from skconvnet import FineTunedConvNetClassifier
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    >>> labels = ["cat", "dog"] * 4
    >>> clf = FineTunedConvNetClassifier(
    ...     weights=None, image_size=(32, 32), layer="block2_pool", fine_tune_epochs=1,
    ...     random_state=0).fit(images, labels)
    >>> clf.classes_
    array(['cat', 'dog'], dtype='<U3')
    >>> clf.predict_proba(images[:2]).shape
    (2, 2)
    >>> sorted(clf.history_), sorted(clf.history_["head"])
    (['fine_tune', 'head'], ['C', 'accuracy', 'loss'])
    """

    _keras_models = ("model_",)

    _parameter_constraints = {
        "backbone": [StrOptions(set(specs.BACKBONES))],
        "layer": [None, str],
        "weights": [None, str, os.PathLike],
        "image_size": [None, "array-like", Interval(Integral, 1, None, closed="left")],
        "head_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "fine_tune_epochs": [Interval(Integral, 0, None, closed="left")],
        "unfreeze_from": [None, str],
        "augmentation": ["boolean", list, tuple],
        "augmented_views": [None, Interval(Integral, 1, None, closed="left")],
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
        "max_stored_bytes": [Interval(Integral, 0, None, closed="left")],
        "image_shape": [None, "array-like"],
    }

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
        augmentation=True,
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
        class_weight=None,
        max_stored_bytes=2**31,
        image_shape=None,
    ):
        self.backbone = backbone
        self.layer = layer
        self.weights = weights
        self.image_size = image_size
        self.head_epochs = head_epochs
        self.fine_tune_epochs = fine_tune_epochs
        self.unfreeze_from = unfreeze_from
        self.augmentation = augmentation
        self.augmented_views = augmented_views
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
        self.max_stored_bytes = max_stored_bytes
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
        spec = self._spec()
        layer, unfreeze_from = self._check_layers(spec)
        image_size = self._image_size()
        output_shape(spec, layer, image_size)
        if self.head_epochs == 0 and self.fine_tune_epochs == 0:
            raise ValueError(
                "head_epochs and fine_tune_epochs are both 0: nothing would be trained. Set "
                "head_epochs >= 1 or 'auto' (and fine_tune_epochs >= 0)."
            )
        weights = resolve_weights(spec, self.weights)
        source, classes, y_index, sample_weight = self._check_data(X, y, sample_weight)
        seed = check_random_state(self.random_state).randint(2**31 - 1000)

        from .training import network as _network

        n_outputs = 1 if len(classes) == 2 else len(classes)
        augmentation = (
            _network.book_augmentation(seed) if self.augmentation is True
            else _network.fresh_copies(self.augmentation or [])
        )
        hidden_layer_sizes = self._hidden_layer_sizes()
        network = _network.build_network(
            weights, layer=layer, pooling=self.pooling, image_size=image_size,
            hidden_layer_sizes=hidden_layer_sizes, dropout=self.dropout,
            n_outputs=n_outputs, augmentation=augmentation, precision=self.precision,
            seed=seed,
        )
        model, _, _, head = network
        probe = self.head_epochs == "auto" and not hidden_layer_sizes
        top = frozen_top(spec, unfreeze_from)  # the deepest cut never trained
        stored, features, n_views = self._store(
            source, weights, layer, top, image_size, augmentation, probe
        )
        history = {}
        if probe:
            kernel, bias, history["head"] = _probe.logistic_probe(
                features, y_index, sample_weight, seed
            )
            head.get_layer("probability").set_weights([kernel, bias])
        phases = []
        if self.head_epochs and not probe:
            phases.append(("head", self.head_epochs, self.head_learning_rate))
        if self.fine_tune_epochs:
            phases.append(("fine_tune", self.fine_tune_epochs, self.fine_tune_learning_rate))
        for phase, epochs, learning_rate in phases:
            trained, load, views = self._phase_data(
                phase, network, spec, top, unfreeze_from, source, stored, features, n_views
            )
            history[phase] = self._train(
                trained, load, views, y_index, sample_weight, n_outputs,
                epochs=MAX_HEAD_EPOCHS if epochs == "auto" else epochs,
                early_stopping=self.early_stopping or epochs == "auto",
                learning_rate=learning_rate, seed=(seed, phase == "fine_tune"),
            )
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
        proba = run_model(self.model_, self._spec(), source,
                          batch_size=self.batch_size).astype(np.float64)
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

    def _spec(self):
        return specs.get(self.backbone)

    def _check_layers(self, spec):
        """``(layer, unfreeze_from)``, by default the deepest cut and the stage it ends."""
        layer = spec.layer_names[-1] if self.layer is None else self.layer
        layer = check_layer(spec, layer)
        if self.unfreeze_from is None:
            return layer, spec.default_unfreeze_from(layer)
        return layer, check_unfreeze_from(spec, self.unfreeze_from, layer)

    def _check_data(self, X, y, sample_weight):
        """``(source, classes, y_index, sample_weight)`` of the training data."""
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
        return source, classes, y_index, sample_weight

    @staticmethod
    def _phase_data(phase, network, spec, top, unfreeze_from, source, stored, features,
                    n_views):
        """``(model to train, load(rows), views per image)`` for a phase.

        The head trains on stored pooled features where there are some, fine-tuning on the
        stored activations of the highest frozen layer; otherwise the whole network trains
        on pixels.
        """

        from .training import network as _network

        model, base, pool, head = network
        if phase == "fine_tune":
            _network.unfreeze(base, spec, unfreeze_from)
        if phase == "head" and features is not None:
            return head, _stored.loader(features), features.shape[1]
        if phase == "fine_tune" and stored is not None:
            upper = _network.upper_model(base, pool, head, spec=spec, top=top)
            return upper, _stored.loader(stored), n_views
        return model, _network.pixel_loader(source, spec), None

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

    def _split(self, y_index, seed, early_stopping):
        """Training rows and, with early stopping, stratified validation rows (else None)."""
        rows = np.arange(len(y_index))
        if not early_stopping:
            return rows, None
        try:
            return train_test_split(
                rows, test_size=self.validation_fraction, stratify=y_index, random_state=seed
            )
        except ValueError as error:
            cause = ("early_stopping" if self.early_stopping
                     else "head_epochs='auto' with hidden layers (it stops early)")
            raise ValueError(
                f"{cause} cannot hold out validation_fraction={self.validation_fraction} of "
                f"{len(rows)} samples with every class represented ({error}). Give more "
                "samples or a larger validation_fraction, or train for a fixed number of "
                "epochs (early_stopping=False, head_epochs=30)."
            ) from None

    def _store(self, source, weights, layer, top, image_size, augmentation, probe):
        """Run the layers that stay frozen once: ``(stored, features, n_views)``.

        ``stored``: the activations of ``top``, the deepest cut point that fine-tuning leaves
        frozen, for every training image
        and view, for fine-tuning (None where fine-tuning runs the whole network in every
        epoch: fresh augmentation, or more than ``max_stored_bytes``). ``features``: the
        pooled rows the head is trained on (None where the head trains on pixels).
        """
        fresh = bool(augmentation) and self.augmented_views is None
        n_views = 1 + (self.augmented_views if augmentation and not fresh else 0)
        head_on_features = self.head_epochs != 0 and (probe or not fresh)
        common = dict(precision=self.precision, batch_size=self.batch_size,
                      verbose=self.verbose, augmentation=augmentation)
        if self.fine_tune_epochs and not fresh:
            if self._fits(weights.spec, source, n_views, top, image_size, pooling=False):
                stored = _stored.store(source, weights, top=top, pooling=False,
                                       n_views=n_views, **common)
                features = None
                if head_on_features:
                    features = _stored.pooled(
                        stored, weights, top=top, layer=layer, pooling=self.pooling,
                        precision=self.precision, batch_size=self.batch_size,
                    )
                return stored, features, n_views
        if not head_on_features:
            return None, None, n_views
        views = 1 if fresh else n_views
        if self._fits(weights.spec, source, views, layer, image_size, pooling=self.pooling):
            features = _stored.store(source, weights, top=layer, pooling=self.pooling,
                                     n_views=views, **common)
            return None, features, n_views
        if probe:
            size = _stored.nbytes(weights.spec, source.n_samples, views, top=layer,
                                  image_size=image_size,
                                  pooling=self.pooling, precision=self.precision)
            pool_them = ", pool the features (pooling='avg')" if self.pooling is None else ""
            raise ValueError(
                f"head_epochs='auto' fits a logistic regression on the frozen features of all "
                f"{source.n_samples} images ({views} view(s) each): {size} bytes, more than "
                f"max_stored_bytes={self.max_stored_bytes}. Raise max_stored_bytes{pool_them} "
                "or train the head for a number of epochs (e.g. head_epochs=30)."
            )
        return None, None, n_views

    def _fits(self, spec, source, n_views, top, image_size, pooling):
        size = _stored.nbytes(spec, source.n_samples, n_views, top=top, image_size=image_size,
                              pooling=pooling, precision=self.precision)
        return size <= self.max_stored_bytes

    def _train(self, trained, load, views, y_index, sample_weight, n_outputs, *,
               epochs, early_stopping, learning_rate, seed):
        """Train ``trained`` on batches of ``load``; Keras' per-epoch history."""
        from .training import network as _network


        targets = y_index.astype(np.float32 if n_outputs == 1 else np.int32)
        train_rows, validation_rows = self._split(y_index, seed[0], early_stopping)
        train = _network.Batches(load, train_rows, targets, sample_weight, self.batch_size,
                                 shuffle_seed=seed, n_views=views)
        validation, callbacks = None, []
        if validation_rows is not None:
            validation = _network.Batches(load, validation_rows, targets, sample_weight,
                                          self.batch_size, n_views=views)
            callbacks = [_network.early_stopping(self.n_iter_no_change)]
        _network.compile_for(
            trained, optimizer=self.optimizer, learning_rate=learning_rate, n_outputs=n_outputs,
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
        return {key: [float(v) for v in values] for key, values in result.history.items()}


MAX_HEAD_EPOCHS = 200  # head_epochs="auto" with hidden layers: early stopping ends it first
