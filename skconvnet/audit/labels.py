"""Photos whose label is probably wrong, by confident learning on out-of-fold probabilities.

Confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty
in Dataset Labels", JAIR 2021), written here from the paper: the reference implementation,
cleanlab, is AGPL-licensed and cannot be a dependency of a BSD-licensed package.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import check_cv, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_consistent_length, column_or_1d

from .._extractor import ConvNetFeatureExtractor
from .._steps import unwrapped
from .features import file_names, photos
from .results import Findings


@dataclass(frozen=True)
class LabelIssues(Findings):
    """Photos whose given label is probably wrong, the most certain first.

    Attributes
    ----------
    indices : ndarray of shape (n_issues,)
        Positions of the photos in ``X``, by decreasing ``margin``.
    given, suggested : ndarray of shape (n_issues,)
        The label each photo has, and the class the model is confident it belongs to.
    margin : ndarray of shape (n_issues,)
        Out-of-fold probability of the suggested class minus that of the given one.
    proba : ndarray of shape (n_issues, n_classes)
        Out-of-fold probabilities of each class, columns in the order of ``classes``.
    photo : ndarray of shape (n_issues,) or None
        The photos' paths, where ``X`` holds paths.
    classes : ndarray of shape (n_classes,)
        The classes.
    thresholds : ndarray of shape (n_classes,)
        Per class, the mean out-of-fold probability of that class among the photos
        labelled with it: a photo belongs confidently to a class when it clears this.
    margins : ndarray of shape (n_photos,)
        Every photo's margin (of the most probable other class), in the order of ``X``:
        rank them to see past the flagged photos.
    """

    COLUMNS = ("indices", "given", "suggested", "margin", "proba", "photo")

    given: np.ndarray
    suggested: np.ndarray
    margin: np.ndarray
    proba: np.ndarray
    photo: np.ndarray | None
    classes: np.ndarray
    thresholds: np.ndarray
    margins: np.ndarray

    @property
    def probability(self):
        """ndarray of shape (n_issues,): each photo's probability of its suggested class."""
        columns = np.searchsorted(self.classes, self.suggested)
        return self.proba[np.arange(len(self.indices)), columns]

    def _column_names(self, name, width):
        return [f"proba_{label}" for label in self.classes.tolist()]


def find_label_issues(model, X, y=None, *, cv=5, n_jobs=None):
    """Find photos whose label is probably wrong.

    Each photo gets probabilities from a clone of ``model`` fitted without it
    (out-of-fold, ``cross_val_predict``); a pipeline that starts with a feature extractor
    computes the features once, and only the steps after it are cross-validated. Then
    confident learning: each class's threshold is the mean probability its own photos get
    for it; a photo is an issue when some other class clears that class's threshold while
    its own label does not, and issues are ranked by how much more probable the other
    class is.

    Parameters
    ----------
    model : classifier with ``predict_proba``
        A pipeline of a feature extractor and a scikit-learn classifier, a
        :class:`FineTunedConvNetClassifier` (then fine-tuned ``cv`` times: slow), or any
        classifier of ``X``; fitted or not (clones are fitted); a fitted search stands for
        its best estimator.
    X : list of image files, array of images, feature rows, or a folder of class folders
        The photos, as ``model`` takes them; a folder's photos are its class folders'.
    y : array-like of shape (n_photos,), default=None
        The given labels; None only for a folder (its class folders' names).
    cv : int, cross-validation generator or iterable, default=5
        As in :func:`sklearn.model_selection.cross_val_predict`.
    n_jobs : int, default=None
        Folds fitted in parallel.

    Returns
    -------
    issues : LabelIssues
        The suspect photos, the most certain first.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skconvnet import find_label_issues
    >>> rng = np.random.default_rng(0)
    >>> features = np.r_[rng.normal(-2, 1, (50, 2)), rng.normal(2, 1, (50, 2))]
    >>> labels = np.repeat(["cat", "dog"], 50)
    >>> labels[7] = "dog"  # a cat filed as a dog
    >>> issues = find_label_issues(LogisticRegression(), features, labels)
    >>> issues.indices[:1], issues.given[:1], issues.suggested[:1]
    (array([7]), array(['dog'], dtype='<U3'), array(['cat'], dtype='<U3'))
    """
    X, y = photos(X, y)
    if y is None:
        raise ValueError("find_label_issues needs the given labels: pass y, one per photo, "
                         "or X as a folder of class folders.")
    model = unwrapped(model, "find label issues with")
    if not hasattr(model, "predict_proba"):
        raise TypeError(f"find_label_issues needs a classifier with predict_proba; "
                        f"{type(model).__name__} has none.")
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    _check_classes(y, check_cv(cv, y, classifier=True).get_n_splits(X, y))
    inputs = X
    if isinstance(model, Pipeline) and isinstance(model.steps[0][1], ConvNetFeatureExtractor):
        inputs = clone(model.steps[0][1]).fit_transform(X)  # once, not once per fold
        model = Pipeline(model.steps[1:])
    proba = cross_val_predict(clone(model), inputs, y, cv=cv, n_jobs=n_jobs,
                              method="predict_proba")
    return label_issues(y, proba, np.unique(y), X=X)


def _check_classes(y, n_folds):
    """Every class needs photos in every fold's training part, or its out-of-fold
    probability is 0 and its threshold too (which every photo clears)."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"y holds one class ({classes.tolist()}): a label can only be wrong "
                         "among two classes or more.")
    few = [label for label, count in zip(classes.tolist(), counts) if count < n_folds]
    if few:
        raise ValueError(f"Classes {few} have fewer photos than the {n_folds} folds: give each "
                         "class as many photos as folds, or fewer folds (cv=...).")


def label_issues(y, proba, classes, *, X=None):
    """:func:`find_label_issues` from out-of-fold probabilities ``proba`` over ``classes``
    (sorted, as scikit-learn orders ``classes_``); ``X`` names the photos if it holds
    paths."""
    y, proba, classes = np.asarray(y), np.asarray(proba, dtype=np.float64), np.asarray(classes)
    given = np.searchsorted(classes, y)
    rows = np.arange(len(y))
    thresholds = np.array([proba[given == k, k].mean() if np.any(given == k) else np.inf
                           for k in range(len(classes))])
    confident = proba >= thresholds
    confident[rows, given] = False
    own = proba[rows, given]
    issue = confident.any(axis=1) & (own < thresholds[given])
    suggested = np.where(confident, proba, -np.inf).argmax(axis=1)
    margin = proba[rows, suggested] - own
    others = proba.copy()
    others[rows, given] = -np.inf
    order = np.flatnonzero(issue)
    order = order[np.argsort(-margin[order], kind="stable")]
    return LabelIssues(
        indices=order, given=classes[given[order]], suggested=classes[suggested[order]],
        margin=margin[order], proba=proba[order], photo=file_names(X, order),
        classes=classes, thresholds=thresholds, margins=others.max(axis=1) - own,
    )
