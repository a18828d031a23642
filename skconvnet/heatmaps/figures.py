"""Heatmaps drawn over the photos: one blended picture, and a grid of them."""

import numpy as np

from .._optional import require
from .._steps import unwrapped
from .explain import explain, image_step


def as_seen(model, X):
    """The images of ``X`` as ``model`` sees them: ``(n_images, height, width, 3)`` float32
    pixels at its ``image_size``, the size of their heatmaps."""
    source = image_step(unwrapped(model, "explain"))._images(X, reset=False)
    return source.load(np.arange(source.n_samples))


def overlay(picture, heatmap, *, alpha=0.5, cmap="jet"):
    """``picture`` (``(height, width, 3)``, 0-255) with ``heatmap`` (``(height, width)`` in
    [0, 1]) drawn over it in the colour map ``cmap``, ``alpha`` opaque: uint8 RGB."""
    matplotlib = require("matplotlib", extra="plot", purpose="overlay")
    colours = matplotlib.colormaps[cmap](np.clip(heatmap, 0, 1))[..., :3] * 255
    blended = (1 - alpha) * np.asarray(picture, np.float64) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def plot_explanations(model, X, y=None, *, target=None, method="auto", columns=6, alpha=0.5,
                      cmap="jet"):
    """Each image as the model saw it, with its heatmap (:func:`explain`) drawn over it and
    the true and predicted classes and the probability of the prediction above it.

    Parameters
    ----------
    model, X, target, method
        As for :func:`explain`.
    y : array-like of shape (n_images,), default=None
        The true classes, shown where given. With ``target``, the class mapped is shown
        too.
    columns : int, default=6
        Images per row.
    alpha : float, default=0.5
        Opacity of the heatmap.
    cmap : str, default="jet"
        The matplotlib colour map of the heatmap (blue: no evidence; red: the strongest).

    Returns
    -------
    fig : matplotlib Figure
    """
    plt = require("matplotlib.pyplot", extra="plot", purpose="plot_explanations")
    model = unwrapped(model, "explain")
    heatmaps = explain(model, X, target=target, method=method)
    pictures = as_seen(model, X)
    predicted = model.predict(pictures)
    proba = (model.predict_proba(pictures).max(axis=1) if hasattr(model, "predict_proba")
             else None)
    truth = None if y is None else np.asarray(y)
    mapped = None if target is None else np.broadcast_to(np.asarray(target, dtype=object),
                                                         len(heatmaps))
    rows = max(1, -(-len(heatmaps) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:len(heatmaps)]):
        ax.imshow(overlay(pictures[i], heatmaps[i], alpha=alpha, cmap=cmap))
        title = f"{predicted[i]}" + ("" if proba is None else f" ({proba[i]:.2f})")
        if truth is not None:
            title = f"{truth[i]} → {title}"
        if mapped is not None:
            title += f"\nmap of {mapped[i]}"
        ax.set_title(title, fontsize="small")
    fig.tight_layout()
    return fig
