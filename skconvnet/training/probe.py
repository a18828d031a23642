"""Linear probing: the head fit to convergence on frozen features before any fine-tuning.

A linear model on standardised features, its L2 penalty chosen by cross-validation, is the
strongest simple use of frozen features: a logistic regression for classes, one per label
for tags, a ridge regression for numbers. Fitting it exactly and folding it into the
network's output layer starts fine-tuning from that optimum instead of from a random head,
which then does not distort the pretrained features ("linear probing, then fine-tuning",
Kumar et al., ICLR 2022).
"""

import warnings

import numpy as np
from scipy.linalg import LinAlgWarning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss
from sklearn.model_selection import KFold, StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

CS = np.logspace(-4, 1, 6)  # inverse penalties tried, weakest penalty last
ALPHAS = np.logspace(-2, 6, 9)  # ridge penalties tried
N_FOLDS = 5


def fit_probe(features, targets, seed):
    """The probe of ``targets``' kind (a :class:`~.targets.Targets`) on ``features``
    ``(n_images, n_views, n_features)``: ``(kernel, bias, history)`` of the output layer."""
    if targets.kind == "numbers":
        return ridge_probe(features, targets.values, targets.sample_weight, seed)
    if targets.kind == "tags":
        return label_probe(features, targets.values, targets.sample_weight, seed)
    return logistic_probe(features, targets.values, targets.sample_weight, seed)


def logistic_probe(features, y_index, sample_weight, seed):
    """Fit the probe on ``features`` ``(n_images, n_views, n_features)``.

    Every view of an image stays in the same fold, and folds are scored on the original
    images only, as predictions will be made. Returns ``(kernel, bias, history)``: the
    output layer's weights on unstandardised features (one output for two classes, else one
    per class), and the chosen inverse penalty ``C`` with the training ``loss`` and
    ``accuracy`` it reached.
    """
    n_images, n_views, _ = features.shape
    X = features.reshape(n_images * n_views, -1)
    y = np.repeat(y_index, n_views)
    weight = np.repeat(sample_weight, n_views)
    scaler = StandardScaler().fit(X)
    X = scaler.transform(X)
    C = _choose_C(X, y, weight, y_index, n_views, seed)
    model = _fit(X, y, weight, C)
    kernel = (model.coef_ / scaler.scale_).T
    bias = model.intercept_ - scaler.mean_ @ kernel
    history = {
        "C": [C],
        "loss": [log_loss(y, model.predict_proba(X), sample_weight=weight)],
        "accuracy": [model.score(X, y, sample_weight=weight)],
    }
    return kernel.astype(np.float32), bias.astype(np.float32), history


def _fit(X, y, sample_weight, C, warm=None):
    model = warm or LogisticRegression(max_iter=1000, warm_start=True)
    model.set_params(C=C)
    with warnings.catch_warnings():  # a weak penalty on separable data converges slowly
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, sample_weight=sample_weight)


def _choose_C(X, y, sample_weight, y_index, n_views, seed):
    """The C of ``CS`` with the least cross-validated log loss on the original images.

    With fewer than 2 images in some class there is nothing to validate on: C = 1.
    """
    n_folds = min(N_FOLDS, np.bincount(y_index).min())
    if n_folds < 2:
        return 1.0
    folds = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
    images = np.arange(len(y_index))
    losses = np.zeros(len(CS))
    for train_images, test_images in folds.split(images, y_index, groups=images):
        train = (train_images[:, None] * n_views + np.arange(n_views)).ravel()
        test = test_images * n_views  # view 0: the originals
        model = None
        for index, C in enumerate(CS):  # weakest penalty last, each fit warm-started
            model = _fit(X[train], y[train], sample_weight[train], C, warm=model)
            losses[index] += log_loss(
                y[test], model.predict_proba(X[test]), sample_weight=sample_weight[test],
                labels=model.classes_,
            )
    return float(CS[np.argmin(losses)])


def label_probe(features, indicator, sample_weight, seed):
    """One logistic probe per label of ``indicator`` ``(n_images, n_labels)``, each with
    its own ``C``. A label that every image has, or none, gets a constant: the logit of its
    frequency, smoothed by half an image each way. ``history``: each label's ``C`` (None
    for a constant), the mean ``loss`` and ``accuracy`` over labels."""
    kernels, biases, history = [], [], {"C": [], "loss": [], "accuracy": []}
    n_images, n_views, n_features = features.shape
    for column in indicator.T:
        if column.min() == column.max():
            rate = (column.sum() + 0.5) / (n_images + 1)
            kernel, bias = np.zeros((n_features, 1)), np.log([rate / (1 - rate)])
            label = {"C": [None], "loss": [log_loss(column, np.full(n_images, rate),
                                                    labels=[0, 1])],
                     "accuracy": [1.0]}
        else:
            kernel, bias, label = logistic_probe(features, column, sample_weight, seed)
        kernels.append(kernel)
        biases.append(bias)
        for key in history:
            history[key].append(label[key][0])
    history["loss"] = [float(np.mean(history["loss"]))]
    history["accuracy"] = [float(np.mean(history["accuracy"]))]
    return (np.hstack(kernels).astype(np.float32), np.concatenate(biases).astype(np.float32),
            history)


def ridge_probe(features, targets, sample_weight, seed):
    """A ridge regression of the standardised ``targets`` ``(n_images, n_targets)``, its
    penalty ``alpha`` chosen per target among ``ALPHAS`` by the least cross-validated
    squared error on the original images (views of one image kept in one fold).
    ``history``: each target's ``alpha``, the training ``loss`` (mean squared error) and
    ``mean_absolute_error``, of the standardised targets."""
    n_images, n_views, _ = features.shape
    X = features.reshape(n_images * n_views, -1)
    y = np.repeat(targets, n_views, axis=0)
    weight = np.repeat(sample_weight, n_views)
    scaler = StandardScaler().fit(X)
    X = scaler.transform(X)
    alpha = _choose_alpha(X, y, weight, n_images, n_views, seed)
    model = _ridge(X, y, weight, alpha)
    kernel = (model.coef_.reshape(y.shape[1], -1) / scaler.scale_).T
    bias = np.reshape(model.intercept_, -1) - scaler.mean_ @ kernel
    errors = model.predict(X).reshape(y.shape) - y
    history = {
        "alpha": [float(a) for a in alpha],
        "loss": [float(np.average(errors ** 2, weights=weight, axis=0).mean())],
        "mean_absolute_error": [float(np.average(np.abs(errors), weights=weight,
                                                 axis=0).mean())],
    }
    return kernel.astype(np.float32), bias.astype(np.float32), history


def _ridge(X, y, sample_weight, alpha):
    with warnings.catch_warnings():  # the weakest penalties solve ill-conditioned systems
        warnings.simplefilter("ignore", LinAlgWarning)
        return Ridge(alpha=alpha).fit(X, y, sample_weight=sample_weight)


def _choose_alpha(X, y, sample_weight, n_images, n_views, seed):
    """Per target, the alpha of ``ALPHAS`` with the least cross-validated squared error on
    the original images; with fewer than 2 images, 1."""
    n_folds = min(N_FOLDS, n_images)
    if n_folds < 2:
        return np.ones(y.shape[1])
    errors = np.zeros((len(ALPHAS), y.shape[1]))
    for train_images, test_images in KFold(n_folds, shuffle=True,
                                           random_state=seed).split(np.arange(n_images)):
        train = (train_images[:, None] * n_views + np.arange(n_views)).ravel()
        test = test_images * n_views  # view 0: the originals
        for index, alpha in enumerate(ALPHAS):
            model = _ridge(X[train], y[train], sample_weight[train], alpha)
            residuals = model.predict(X[test]).reshape(y[test].shape) - y[test]
            errors[index] += (sample_weight[test, None] * residuals ** 2).sum(axis=0)
    return ALPHAS[np.argmin(errors, axis=0)]
