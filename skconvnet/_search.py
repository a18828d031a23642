"""Reading a search over ``layer``: cross-validated score against depth."""

from . import _backbone


def layer_scores(search, param=None):
    """Cross-validated score of each VGG16 layer in a fitted search, shallow to deep.

    Parameters
    ----------
    search : fitted GridSearchCV or RandomizedSearchCV, or its ``cv_results_`` dict
        A search whose candidates set a VGG16 ``layer`` (e.g. ``"vgg__layer"``).
    param : str, default=None
        The searched parameter holding the layer; by default the one whose name ends in
        ``layer``.

    Returns
    -------
    table : pandas.DataFrame
        One row per layer, shallow to deep: ``depth`` (position of the layer's deepest cut in
        VGG16, 1 to 18), ``mean_test_score`` and ``std_test_score`` of the best candidate
        with that layer, and that candidate's ``params``. A list-valued layer is labelled
        ``"a+b"``.

    Examples
    --------
    >>> from skconvnet import layer_scores
    >>> results = {
    ...     "params": [{"vgg__layer": "block5_pool"}, {"vgg__layer": "block3_pool"}],
    ...     "param_vgg__layer": ["block5_pool", "block3_pool"],
    ...     "mean_test_score": [0.74, 0.72], "std_test_score": [0.02, 0.03]}
    >>> layer_scores(results)[["depth", "mean_test_score"]]
                 depth  mean_test_score
    layer
    block3_pool     10             0.72
    block5_pool     18             0.74
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "layer_scores needs pandas: pip install pandas (or pip install 'skconvnet[plot]')."
        ) from None

    results = getattr(search, "cv_results_", search)
    if param is None:
        candidates = [
            key[len("param_"):] for key in results
            if key.startswith("param_") and key.endswith("layer")
        ]
        if len(candidates) != 1:
            raise ValueError(
                f"Cannot tell which searched parameter is the layer (found {candidates}); "
                "pass param='<step>__layer'."
            )
        param = candidates[0]
    best = {}
    for params, mean, std in zip(
        results["params"], results["mean_test_score"], results["std_test_score"]
    ):
        layers = _backbone.check_layers(params[param])
        label = "+".join(layers)
        if label not in best or mean > best[label]["mean_test_score"]:
            depth = max(_backbone.LAYER_NAMES.index(layer) for layer in layers) + 1
            best[label] = {"layer": label, "depth": depth, "mean_test_score": float(mean),
                           "std_test_score": float(std), "params": params}
    table = pd.DataFrame(sorted(best.values(), key=lambda row: row["depth"]))
    return table.set_index("layer")


def plot_layer_scores(search, param=None, ax=None):
    """Plot cross-validated score against layer depth (mean and one standard deviation).

    Parameters
    ----------
    search : fitted search or its ``cv_results_`` dict
        As for :func:`layer_scores`.
    param : str, default=None
        As for :func:`layer_scores`.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "plot_layer_scores needs matplotlib: pip install matplotlib "
            "(or pip install 'skconvnet[plot]')."
        ) from None
    table = layer_scores(search, param)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(table["depth"], table["mean_test_score"], yerr=table["std_test_score"],
                marker="o", capsize=3)
    ax.set_xticks(table["depth"], table.index, rotation=30, ha="right")
    ax.set_xlabel("VGG16 layer (shallow to deep)")
    ax.set_ylabel("cross-validated score")
    ax.grid(alpha=0.3)
    best = table["mean_test_score"].idxmax()
    ax.set_title(f"Best layer: {best} ({table.loc[best, 'mean_test_score']:.3f})")
    ax.figure.tight_layout()
    return ax
