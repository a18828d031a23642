"""Linear probing: the head fit to convergence on frozen features before any fine-tuning.

A logistic regression on standardised features, its L2 penalty chosen by cross-validation,
is the strongest simple use of frozen features; fitting it exactly (L-BFGS) and folding it
into the network's output layer starts fine-tuning from that optimum instead of from a
random head, which then does not distort the pretrained features ("linear probing, then
fine-tuning", Kumar et al., ICLR 2022).
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

CS = np.logspace(-4, 1, 6)  # inverse penalties tried, weakest penalty last
N_FOLDS = 5


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
