"""``FineTunedConvNetClassifier``: the book's transfer-learning recipe as a classifier."""

import os
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import EfficiencyWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from . import _parameters
from ._fitting import unfitted_on_failure, warn_at_caller
from ._persistence import Persistent
from ._sklearn import Interval, StrOptions, _check_sample_weight, _fit_context
from .backbones import specs
from .backbones.checks import check_layer, check_pooling, check_unfreeze_from, output_shape
from .backbones.weights import resolve_weights, spec_for
from .compute.activations import run_model
from .compute.graphs import class_values, classifier_graph
from .export.converters import OnnxOperator, OnnxOutput
from .inputs.adapters import ImageInput
from .inputs.sources import ImageSource
from .training.frozen import run_frozen
from .training.plan import TrainingParameters, plan_training
from .training.probe import logistic_probe
from .training.seeds import Seeds
from .training.storage import Storage, free_bytes, memory_budget, temp_folder

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
    __doc__ = """A pretrained convolutional base with a new head, trained in the book's two phases.

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
{backbone}
{layer}
{weights}
        They are the base's starting weights: ``None`` with ``unfreeze_from`` at the first
        layer trains the whole network from scratch.
{image_size}
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
        Units of the head's hidden ReLU layers; ``()``: a linear (logistic) head.
    dropout : float, default=0.5
        Dropout rate after each hidden layer.
    head_learning_rate : float, default=1e-3
        Learning rate of phase 1, when the head is trained by epochs.
    fine_tune_learning_rate : float, default=1e-5
        Learning rate of phase 2; low, so as not to destroy the pretrained features.
    optimizer : {{"adam", "rmsprop", "sgd"}}, default="adam"
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
        epoch, with an ``EfficiencyWarning``.
{image_shape}

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
{input_attributes}

    Notes
    -----
{x_note}
    Image files are decoded batch by batch, never all held in memory: once where the frozen
    layers' outputs are stored, in every epoch where the network trains on pixels.

    Layers that no phase trains run once per image and view; the head, then the unfrozen
    layers, train on their stored output (in memory up to ``max_stored_bytes``, beyond it
    on disk in ``temp_folder``).

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
    """.format(
        backbone=_parameters.BACKBONE,
        layer=_parameters.LAYER.format(kind="str", default="None", role=" the head sits on"),
        weights=_parameters.WEIGHTS,
        image_size=_parameters.IMAGE_SIZE.format(default="None"),
        pooling=_parameters.POOLING.format(default='"avg"'),
        image_shape=_parameters.IMAGE_SHAPE,
        input_attributes=_parameters.INPUT_ATTRIBUTES,
        x_note=_parameters.X_NOTE,
    )

    _keras_models = ("model_",)
    _added_parameters = {"temp_folder": None}  # where fit stores; nothing a fitted model uses
    _onnx_options = {"zipmap": [True, False, "columns"], "nocl": [True, False]}

    _parameter_constraints = {
        **_parameters.CONSTRAINTS,
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
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "max_stored_bytes": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "temp_folder": [None, str, os.PathLike],
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
        max_stored_bytes="auto",
        temp_folder=None,
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
        self.temp_folder = temp_folder
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
        # The Keras side of training is imported here: ``import skconvnet`` stays light.
        from .training.network import build_network, inference_copy, unfreeze

        parameters = self._check_parameters()
        weights = resolve_weights(self._spec(), self.weights)
        classes, data = self._check_data(X, y, sample_weight)
        seeds = Seeds(self.random_state)
        plan = plan_training(
            self._spec(), parameters, n_images=data.source.n_samples,
            memory_bytes=memory_budget(self.max_stored_bytes),
            disk_bytes=free_bytes(parameters.temp_folder),
        )
        if plan.notice is not None:
            warn_at_caller(plan.notice, EfficiencyWarning)
        network = build_network(weights, parameters, n_outputs=data.n_outputs, seeds=seeds)
        history = {}
        with Storage(parameters.temp_folder) as storage:
            stored = run_frozen(plan, data.source, weights, storage,
                                augmentation=network.augmentation, verbose=self.verbose)
            if plan.probe:
                history["head"] = self._fit_probe(plan, network, stored, data, seeds)
            elif plan.head is not None:
                history["head"] = self._fit_phase(plan.head, plan, network, stored, data,
                                                  seeds)
            if plan.fine_tune is not None:
                unfreeze(network.base, self._spec(), parameters.unfreeze_from)
                history["fine_tune"] = self._fit_phase(plan.fine_tune, plan, network, stored,
                                                       data, seeds)
        self.classes_ = classes
        self.history_ = history
        self.model_ = inference_copy(network.model)
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

    def _onnx_graph(self, opset):
        """The label and probabilities of ``uint8`` images as an ONNX graph (see
        :mod:`skconvnet.export`)."""
        return classifier_graph(self.model_, self._spec(), self._image_size(), self.classes_,
                                opset)

    def _onnx_outputs(self):
        numbers = class_values(self.classes_).dtype == np.int64
        return [OnnxOutput("label", "int64" if numbers else "string", None),
                OnnxOutput("probabilities", "float", len(self.classes_))]

    def _spec(self):
        return spec_for(specs.get(self.backbone), self.weights)

    # Checks

    def _check_parameters(self):
        """The :class:`~skconvnet.training.plan.TrainingParameters`, checked before any data
        is read."""
        spec = self._spec()
        layer, unfreeze_from = self._check_layers(spec)
        image_size = self._image_size()
        output_shape(spec, layer, image_size)
        if self.head_epochs == 0 and self.fine_tune_epochs == 0:
            raise ValueError(
                "head_epochs and fine_tune_epochs are both 0: nothing would be trained. Set "
                "head_epochs >= 1 or 'auto' (and fine_tune_epochs >= 0)."
            )
        augmentation = self.augmentation
        return TrainingParameters(
            layer=layer, unfreeze_from=unfreeze_from, image_size=tuple(image_size),
            pooling=check_pooling(spec, self.pooling),
            hidden_layer_sizes=self._hidden_layer_sizes(),
            dropout=self.dropout, head_epochs=self.head_epochs,
            fine_tune_epochs=self.fine_tune_epochs,
            augmentation=(tuple(augmentation) if isinstance(augmentation, (list, tuple))
                          else bool(augmentation)),
            augmented_views=self.augmented_views, precision=self.precision,
            optimizer=self.optimizer, head_learning_rate=self.head_learning_rate,
            fine_tune_learning_rate=self.fine_tune_learning_rate,
            early_stopping=bool(self.early_stopping),
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change, batch_size=self.batch_size,
            temp_folder=temp_folder(self.temp_folder),
        )

    def _check_layers(self, spec):
        """``(layer, unfreeze_from)``, by default the deepest cut and the stage it ends."""
        layer = spec.layer_names[-1] if self.layer is None else self.layer
        layer = check_layer(spec, layer)
        if self.unfreeze_from is None:
            return layer, spec.default_unfreeze_from(layer)
        return layer, check_unfreeze_from(spec, self.unfreeze_from, layer)

    def _check_data(self, X, y, sample_weight):
        """``(classes, training set)``: ``X`` adapted once to an image source, the labels
        as class indices, the sample weights with the class weights."""
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
        n_outputs = 1 if len(classes) == 2 else len(classes)
        return classes, _TrainingSet(source, y_index, sample_weight, n_outputs)

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
        return tuple(int(s) for s in sizes)

    # The phases of fit

    def _fit_probe(self, plan, network, stored, data, seeds):
        """The head as a logistic regression on the stored features, folded into it."""
        features = stored.features.read(np.arange(stored.features.n_rows))
        kernel, bias, history = logistic_probe(
            features.reshape(len(data.y_index), plan.n_views, -1), data.y_index,
            data.sample_weight, seeds.one("probe"),
        )
        network.head.get_layer("probability").set_weights([kernel, bias])
        return history

    def _fit_phase(self, phase, plan, network, stored, data, seeds):
        """Train what ``phase`` trains for its epochs, on its inputs; Keras' per-epoch
        history."""
        from .training.network import Batches, compile_for, early_stopping, phase_inputs

        parameters = plan.parameters
        model, load, n_views = phase_inputs(phase, plan, network, stored, data.source,
                                            self._spec())
        targets = data.y_index.astype(np.float32 if data.n_outputs == 1 else np.int32)
        train_rows, validation_rows = self._split(parameters, data.y_index,
                                                  seeds.one("split"), phase.early_stopping)
        train = Batches(load, train_rows, targets, data.sample_weight, parameters.batch_size,
                        shuffle_seed=seeds.shuffling(phase), n_views=n_views)
        validation, callbacks = None, []
        if validation_rows is not None:
            validation = Batches(load, validation_rows, targets, data.sample_weight,
                                 parameters.batch_size, n_views=n_views)
            callbacks = [early_stopping(parameters.n_iter_no_change)]
        compile_for(model, optimizer=parameters.optimizer, learning_rate=phase.learning_rate,
                    n_outputs=data.n_outputs)
        try:
            result = model.fit(
                train, validation_data=validation, epochs=phase.epochs, callbacks=callbacks,
                verbose=min(int(self.verbose), 2),
                shuffle=False,  # Batches shuffles with its own seeded generator
            )
        finally:
            for batches in (train, validation):
                if batches is not None:
                    batches.release()
        return {key: [float(v) for v in values] for key, values in result.history.items()}

    def _split(self, parameters, y_index, seed, early_stopping):
        """Training rows and, with early stopping, stratified validation rows (else None)."""
        rows = np.arange(len(y_index))
        if not early_stopping:
            return rows, None
        try:
            return train_test_split(
                rows, test_size=parameters.validation_fraction, stratify=y_index,
                random_state=seed,
            )
        except ValueError as error:
            cause = ("early_stopping" if parameters.early_stopping
                     else "head_epochs='auto' with hidden layers (it stops early)")
            raise ValueError(
                f"{cause} cannot hold out validation_fraction={parameters.validation_fraction} "
                f"of {len(rows)} samples with every class represented ({error}). Give more "
                "samples or a larger validation_fraction, or train for a fixed number of "
                "epochs (early_stopping=False, head_epochs=30)."
            ) from None


class _TrainingSet(NamedTuple):
    """The training data as the network sees it."""

    source: ImageSource  # the images, adapted once from X
    y_index: np.ndarray  # each sample's class, 0 ... n_classes - 1
    sample_weight: np.ndarray  # float32, the class weights included
    n_outputs: int  # 1 (a sigmoid) for two classes, else one per class
