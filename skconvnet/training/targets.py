"""What the network learns for each kind of target: the output layer, the loss, and ``y`` as
the loss takes it.

- ``"classes"``, one class per image: a sigmoid for two classes (binary cross-entropy), a
  softmax over three or more (categorical cross-entropy of the class index);
- ``"tags"``, any number of labels per image (scikit-learn's multilabel indicator): one
  sigmoid per label, binary cross-entropy averaged over the labels;
- ``"numbers"``, one or several numbers per image: linear outputs of the standardised
  targets, squared error — the loss the ridge probe minimises, so fine-tuning goes on from
  the probe's optimum of the same objective; standardised, every target weighs alike and
  the learning rate does not depend on the targets' units.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Targets:
    """``y`` of a fit, as the network learns it.

    ``values``: the class index of each image (``"classes"``), its 0/1 row of labels
    (``"tags"``), or its standardised numbers ``(y - mean) / scale`` (``"numbers"``, 2-D).
    """

    kind: str
    values: np.ndarray
    sample_weight: np.ndarray  # float32
    n_outputs: int
    names: np.ndarray | None = None  # the classes, or the labels; None for numbers
    mean: np.ndarray | None = None  # numbers: what standardising took away
    scale: np.ndarray | None = None

    @property
    def activation(self):
        if self.kind == "numbers":
            return "linear"
        return "sigmoid" if self.n_outputs == 1 or self.kind == "tags" else "softmax"

    @property
    def loss(self):
        if self.kind == "numbers":
            return "mean_squared_error"
        if self.activation == "softmax":
            return "sparse_categorical_crossentropy"
        return "binary_crossentropy"

    @property
    def metric(self):
        """Keras' metric in ``history_``: the accuracy of classes, of each label (``"accuracy"``
        would be Keras' categorical accuracy of the most probable label), the mean absolute
        error of standardised numbers."""
        return {"classes": "accuracy", "tags": "binary_accuracy",
                "numbers": "mean_absolute_error"}[self.kind]

    @property
    def strata(self):
        """What splits keep in proportion (class indices), or None."""
        return self.values if self.kind == "classes" else None

    def for_loss(self):
        """``values`` in the dtype the loss takes."""
        if self.activation == "softmax":
            return self.values.astype(np.int32)
        return self.values.astype(np.float32)


def class_targets(y_index, classes, sample_weight):
    """Targets of one class per image, ``y_index`` in ``0 ... len(classes) - 1``."""
    n_outputs = 1 if len(classes) == 2 else len(classes)
    return Targets("classes", y_index, sample_weight, n_outputs, names=classes)


def label_targets(indicator, labels, sample_weight):
    """Targets of tags: ``indicator`` ``(n_images, n_labels)`` of 0/1, its columns
    ``labels``."""
    return Targets("tags", indicator.astype(np.int64), sample_weight, indicator.shape[1],
                   names=labels)


def number_targets(y, sample_weight):
    """Targets of numbers, ``y`` ``(n_images, n_targets)``, standardised with the weighted
    mean and standard deviation (a constant target keeps scale 1, as ``StandardScaler``)."""
    y = np.asarray(y, np.float64)
    weight = np.asarray(sample_weight, np.float64)
    if weight.sum() <= 0:
        weight = np.ones_like(weight)
    mean = np.average(y, axis=0, weights=weight)
    scale = np.sqrt(np.average((y - mean) ** 2, axis=0, weights=weight))
    scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1)] = 1.0
    return Targets("numbers", (y - mean) / scale, sample_weight, y.shape[1], mean=mean,
                   scale=scale)
