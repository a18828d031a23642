"""Looking at a fitted classifier: its training curves and its most confident mistakes."""

import numpy as np

from .._optional import require
from ..inputs.decoding import open_image

PHASES = {"head": "head", "fine_tune": "fine-tuning"}
#: The second curve of each kind of history, with its axis' label: the accuracy of classes,
#: of each tag (Keras' binary accuracy; a logistic head records its mean over tags as
#: ``accuracy``), the mean absolute error of standardised numbers.
SECOND_METRICS = {"accuracy": "accuracy", "binary_accuracy": "accuracy (of each tag)",
                  "mean_absolute_error": "mean absolute error (standardised)"}


def plot_training_curves(history, axes=None):
    """Plot loss and accuracy (mean absolute error for numbers) per epoch of both phases of
    a fitted classifier or regressor.

    Parameters
    ----------
    history : FineTunedConvNetClassifier, FineTunedConvNetRegressor or dict
        A fitted estimator, or its ``history_``. Epochs of the head, then of fine-tuning,
        are numbered on; validation curves are drawn where there are some (early stopping).
        A head fit as a logistic (or ridge) regression has no epochs: its final training
        loss and accuracy (mean absolute error) are one point at epoch 0.
    axes : pair of matplotlib Axes, default=None
        Where to draw loss and accuracy; a new figure by default.

    Returns
    -------
    axes : ndarray of two matplotlib Axes
    """
    plt = _pyplot("plot_training_curves")
    history = getattr(history, "history_", history)
    if not isinstance(history, dict) or not set(history) & set(PHASES):
        raise ValueError("plot_training_curves takes a fitted FineTunedConvNetClassifier or its "
                         f"history_ (a dict with 'head' and 'fine_tune'), got {history!r:.80}.")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes = np.asarray(axes)
    first_epoch = 1
    seconds = []
    for phase, title in PHASES.items():
        record = history.get(phase) or {}
        second = next((metric for metric in SECOND_METRICS if metric in record), "accuracy")
        seconds.append(second)
        if "C" in record or "alpha" in record:  # the linear probe: one fit, no epochs
            for ax, metric in zip(axes, ("loss", second)):
                ax.plot([0], record[metric], "D", color="tab:green", label=_probe_label(record))
            continue
        n_epochs = len(record.get("loss", []))
        if not n_epochs:
            continue
        epochs = np.arange(first_epoch, first_epoch + n_epochs)
        for ax, metric in zip(axes, ("loss", second)):
            line, = ax.plot(epochs, record[metric], marker=".", label=f"{title}, training")
            if f"val_{metric}" in record:
                ax.plot(epochs, record[f"val_{metric}"], marker=".", linestyle="--",
                        color=line.get_color(), label=f"{title}, validation")
            if first_epoch > 1:
                ax.axvline(first_epoch - 0.5, color="gray", linewidth=1, linestyle=":")
        first_epoch += n_epochs
    for ax, metric in zip(axes, ("loss", SECOND_METRICS[seconds[-1]])):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].figure.tight_layout()
    return axes


def _probe_label(record):
    """The legend of a linear probe's point: its penalty, or how it was chosen."""
    if "alpha" in record:
        alphas = record["alpha"]
        return (f"ridge head (alpha={alphas[0]:g})" if len(alphas) == 1
                else "ridge head (alpha per target)")
    penalties = record["C"]
    if len(penalties) == 1 and penalties[0] is not None:
        return f"logistic head (C={penalties[0]:g})"
    return "logistic heads (C per tag)"


def confident_errors(estimator, X, y, *, n=24):
    """The images a fitted classifier gets wrong, the most confident mistakes first.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba`` and ``classes_``
        E.g. a :class:`FineTunedConvNetClassifier`, or a pipeline of a feature extractor
        and a scikit-learn classifier.
    X : image files, encoded images or a 4-D array
        The images, as the estimator takes them.
    y : array-like of shape (n_images,)
        Their true classes.
    n : int, default=24
        At most this many mistakes.

    Returns
    -------
    table : pandas.DataFrame
        One row per mistake, most confident first: ``index`` (the image's position in ``X``),
        ``true``, ``predicted``, ``probability`` (of the predicted class) and
        ``probability_of_true``.
    """
    proba = estimator.predict_proba(X)
    return errors_table(y, proba, estimator.classes_, n=n)


def errors_table(y, proba, classes, *, n=24):
    """:func:`confident_errors` from predicted probabilities ``proba`` over ``classes``."""
    pd = require("pandas", extra="plot", purpose="confident_errors")
    y, proba, classes = np.asarray(y), np.asarray(proba), np.asarray(classes)
    if len(y) != len(proba):
        raise ValueError(f"y has {len(y)} labels for {len(proba)} images; give one per image.")
    predicted = proba.argmax(axis=1)
    columns = {label: column for column, label in enumerate(classes.tolist())}
    unknown = sorted(set(y.tolist()) - set(columns))
    if unknown:
        raise ValueError(f"y holds classes the estimator does not know: {unknown[:5]}; it "
                         f"knows {classes.tolist()}.")
    true = np.array([columns[label] for label in y.tolist()], dtype=int)
    wrong = np.flatnonzero(predicted != true)
    confidence = proba[wrong, predicted[wrong]]
    wrong = wrong[np.argsort(-confidence, kind="stable")][:n]
    return pd.DataFrame({
        "index": wrong,
        "true": classes[true[wrong]],
        "predicted": classes[predicted[wrong]],
        "probability": proba[wrong, predicted[wrong]],
        "probability_of_true": proba[wrong, true[wrong]],
    })


def plot_confident_errors(estimator, X, y, *, n=12, columns=6):
    """Thumbnails of the most confident mistakes (:func:`confident_errors`), with the true
    and predicted class and the probability of the prediction.

    Parameters
    ----------
    estimator, X, y
        As for :func:`confident_errors`.
    n : int, default=12
        At most this many mistakes.
    columns : int, default=6
        Thumbnails per row.

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = _pyplot("plot_confident_errors")
    table = confident_errors(estimator, X, y, n=n)
    images = X if isinstance(X, np.ndarray) else list(X)  # by position, a Series' too
    rows = max(1, -(-len(table) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), table.itertuples()):
        ax.imshow(thumbnail(images[row.index]))
        ax.set_title(f"{row.true} → {row.predicted}\n{row.probability:.2f}", fontsize="small")
    if table.empty:
        axes[0, 0].set_title("no mistakes")
    fig.tight_layout()
    return fig


def thumbnail(image, size=128):
    """A PIL image at most ``size`` pixels wide and high, of an image file, its encoded
    bytes, or an image array (H, W, 3) of 0-255 values."""
    from PIL import Image

    if isinstance(image, np.ndarray) and image.ndim == 3:
        picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    elif isinstance(image, np.ndarray) or np.ndim(image) != 0:
        raise ValueError(f"Thumbnails need images (files, encoded bytes or (H, W, 3) arrays), "
                         f"got an array of shape {np.shape(image)}.")
    else:
        picture = open_image(image)
        picture.draft("RGB", (size, size))  # a thumbnail needs no full-size decoding
        picture = picture.convert("RGB")
    picture.thumbnail((size, size))
    return picture


def _pyplot(function):
    return require("matplotlib.pyplot", extra="plot", purpose=function)
