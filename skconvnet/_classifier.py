"""``FineTunedConvNetClassifier``: the book's transfer-learning recipe as a classifier, of
one class per image or of any number of tags."""

import numpy as np
from scipy import sparse
from sklearn.base import ClassifierMixin
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from . import _parameters
from ._finetuned import FineTunedConvNet
from ._fitting import warn_at_caller
from ._sklearn import StrOptions
from .compute.graphs import class_values, classifier_graph
from .export.converters import OnnxOutput
from .training.targets import class_targets, label_targets

BOOK_RECIPE = {
    "layer": "block5_pool", "pooling": None, "hidden_layer_sizes": (256,), "dropout": 0.5,
    "head_epochs": 30, "head_learning_rate": 2e-5, "unfreeze_from": "block5_conv1",
    "fine_tune_epochs": 100, "fine_tune_learning_rate": 1e-5, "optimizer": "rmsprop",
    "augmentation": True, "augmented_views": None, "batch_size": 20,
}
"""The book's fine-tuning recipe (first edition, cats and dogs at 150x150) as parameters:
``FineTunedConvNetClassifier(**BOOK_RECIPE, weights=...)``."""


class FineTunedConvNetClassifier(ClassifierMixin, FineTunedConvNet):
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

    ``y`` is one class per image (two or more classes: a sigmoid or a softmax output), or
    tags: a 2-D indicator of 0/1, one column per label, any number of them per image
    (scikit-learn's multilabel format). Tags get one sigmoid output per label, trained with
    binary cross-entropy, their probe a logistic regression per label; ``predict`` gives
    the indicator, ``predict_proba`` each label's probability.

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
{training}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight`` (for tags, a list of one
        dict per label, or "balanced", as :func:`sklearn.utils.class_weight.compute_sample_weight`
        takes them).
{storage}
{image_shape}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) or (n_labels,)
        The class labels; for tags, the labels' names: the columns of a DataFrame ``y``,
        else ``0 ... n_labels - 1`` (as scikit-learn's ``MLPClassifier`` has them).
    multilabel_ : bool
        Whether ``y`` was tags (a 2-D indicator).
    model_ : keras.Model
        The trained network (without optimizer state), from pixels to class probabilities.
    history_ : dict
        Per phase (``"head"``, ``"fine_tune"``), Keras' per-epoch ``loss`` and ``accuracy``
        (``binary_accuracy`` for tags), and ``val_loss`` / ``val_accuracy`` with early
        stopping. A head fit as a logistic regression records its ``C`` (one per label for
        tags; None for a label every image has, or none) and its final training ``loss``
        and ``accuracy``.
{input_attributes}

    Notes
    -----
{x_note}
{training_notes}

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

    Tags, any number per image:

    >>> tags = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 2)
    >>> tagger = FineTunedConvNetClassifier(
    ...     weights=None, image_size=(32, 32), layer="block2_pool", fine_tune_epochs=1,
    ...     random_state=0).fit(images, tags)
    >>> tagger.predict(images[:3]).shape, tagger.classes_
    ((3, 2), array([0, 1]))
    """.format(
        backbone=_parameters.BACKBONE,
        layer=_parameters.LAYER.format(kind="str", default="None", role=" the head sits on"),
        weights=_parameters.WEIGHTS,
        image_size=_parameters.IMAGE_SIZE.format(default="None"),
        training=_parameters.TRAINING.format(
            probe=_parameters.paragraph(
                "a logistic regression (L-BFGS; for tags, one per label), its inverse penalty "
                "``C`` among 1e-4 ... 10."),
            augmentation_default="True",
            augmentation_why=_parameters.paragraph(
                "Augmentation must not change the target: a flip would swap tags such as "
                "\"left\" and \"right\", zooms and shifts can push a small tagged object out "
                "of the picture; give such tags a list without them."),
            split="stratified by class",
            pooling=_parameters.POOLING.format(default='"avg"'),
        ),
        storage=_parameters.STORAGE,
        image_shape=_parameters.IMAGE_SHAPE,
        input_attributes=_parameters.INPUT_ATTRIBUTES,
        x_note=_parameters.X_NOTE,
        training_notes=_parameters.TRAINING_NOTES,
    )

    _per_sample = "label"
    _onnx_options = {"zipmap": [True, False, "columns"], "nocl": [True, False]}

    _parameter_constraints = {
        **_parameters.TRAINING_CONSTRAINTS,
        "class_weight": [None, StrOptions({"balanced"}), dict, list],
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
        self.class_weight = class_weight

    def predict_proba(self, X):
        """Class probabilities of each image (for tags, each label's).

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Images (see Notes).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes) or (n_samples, n_labels)
            Columns follow ``classes_``; rows of classes sum to 1, each label's probability
            is its own.
        """
        proba = self._outputs(X)
        if self._multilabel():
            return proba
        if proba.shape[1] == 1:
            return np.hstack([1 - proba, proba])
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each image; for tags, the labels more probable than
        not, as a 0/1 indicator.

        Parameters
        ----------
        X : array-like of shape (n_images, height, width, channels) or (n_samples, n_columns), \
                or list of paths
            Images (see Notes).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        proba = self.predict_proba(X)
        if self._multilabel():
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _multilabel(self):
        return getattr(self, "multilabel_", False)

    def _onnx_graph(self, opset):
        """The label and probabilities of ``uint8`` images as an ONNX graph (see
        :mod:`skconvnet.export`)."""
        return classifier_graph(self.model_, self._spec(), self._image_size(), self.classes_,
                                opset, multilabel=self._multilabel())

    def _onnx_outputs(self):
        if self._multilabel():
            return [OnnxOutput("label", "int64", len(self.classes_)),
                    OnnxOutput("probabilities", "float", len(self.classes_))]
        numbers = class_values(self.classes_).dtype == np.int64
        return [OnnxOutput("label", "int64" if numbers else "string", None),
                OnnxOutput("probabilities", "float", len(self.classes_))]

    # Targets

    def _targets(self, y, sample_weight, columns):
        """Classes or tags, as the network learns them."""
        weight = self._sample_weight(sample_weight, y.shape[0])
        if self.class_weight is not None:
            weight = weight * compute_sample_weight(self.class_weight, y).astype(np.float32)
        if y.ndim == 2:
            labels = np.arange(y.shape[1]) if columns is None else np.asarray(list(columns))
            _warn_constant_labels(y, labels)
            return label_targets(y, labels, weight)
        classes, y_index = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0].item()!r}); a classifier needs samples of at "
                "least 2 classes."
            )
        return class_targets(y_index, classes, weight)

    def _fitted(self, targets, model):
        self.classes_ = targets.names
        self.multilabel_ = targets.kind == "tags"
        self.model_ = model

    def _check_y(self, y):
        """A 1-D array of class labels, or a 2-D 0/1 indicator of labels."""
        if sparse.issparse(y):
            y = y.toarray()
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim == 2 and y.shape[1] > 1:
            if type_of_target(y) != "multilabel-indicator":
                raise ValueError(
                    f"y has shape {y.shape} but is not a 0/1 indicator of labels "
                    f"(scikit-learn's type of target: {type_of_target(y)!r}). Give one label "
                    "per sample, shape (n_samples,) (for one-hot classes pass "
                    "y.argmax(axis=1)), or tags as a 0/1 matrix with one column per label "
                    "(sklearn.preprocessing.MultiLabelBinarizer makes one from lists of tags)."
                )
            if (y.sum(axis=1) == 1).all():
                warn_at_caller(
                    f"y has shape {y.shape} with exactly one 1 in every row, as one-hot classes "
                    "have: it is read as tags (scikit-learn's multilabel indicator), each "
                    "column its own yes or no. For one class per sample pass y.argmax(axis=1).",
                    UserWarning)
            return y.astype(np.int64)
        y = column_or_1d(y, warn=True)
        if type_of_target(y) == "unknown":
            kinds = sorted({type(label).__name__ for label in y})
            raise ValueError(
                f"Unknown label type: y mixes labels of types {', '.join(kinds)}. Give labels "
                "of one type, e.g. all str or all int, and no None."
            )
        check_classification_targets(y)
        return y


def _warn_constant_labels(indicator, labels):
    """Warn of labels that every image has, or none: nothing to learn, a constant is
    predicted (as :class:`~sklearn.multiclass.OneVsRestClassifier` warns)."""
    counts, labels = indicator.sum(axis=0), np.asarray(labels).tolist()
    for index in np.flatnonzero((counts == 0) | (counts == len(indicator))):
        state = "never present" if counts[index] == 0 else "present in every sample"
        warn_at_caller(
            f"Label {labels[index]!r} is {state} in y: it is predicted "
            f"{'absent' if counts[index] == 0 else 'present'} for every image. Give samples "
            "with and without it to learn it.", UserWarning)
