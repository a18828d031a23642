"""How a search's score varies with the layer: the table and its plot."""

from .._optional import require
from ..backbones import specs
from ..backbones.checks import check_layers


def layer_scores(search, param=None):
    """Cross-validated score of each layer in a fitted search, shallow to deep.

    Parameters
    ----------
    search : fitted GridSearchCV or RandomizedSearchCV, or its ``cv_results_`` dict
        A search whose candidates set a ``layer`` (e.g. ``"vgg__layer"``), and possibly a
        ``backbone`` beside it. The backbone of a candidate is the one it sets, else the
        search's estimator's, else (for a bare ``cv_results_``) the first of
        :func:`skconvnet.list_backbones` with such layers.
    param : str, default=None
        The searched parameter holding the layer; by default the one whose name ends in
        ``layer``.

    Returns
    -------
    table : pandas.DataFrame
        One row per layer, shallow to deep: ``backbone``, ``depth`` (position of the
        layer's deepest cut among the backbone's cut points, 1 for the shallowest),
        ``mean_test_score`` and ``std_test_score`` of the best candidate with that layer,
        and that candidate's ``params``. A list-valued layer is labelled ``"a+b"``; with
        several backbones, labels are ``"backbone/layer"`` and rows are ordered by backbone.

    Examples
    --------
    >>> from skconvnet import layer_scores
    >>> results = {
    ...     "params": [{"vgg__layer": "block5_pool"}, {"vgg__layer": "block3_pool"}],
    ...     "param_vgg__layer": ["block5_pool", "block3_pool"],
    ...     "mean_test_score": [0.74, 0.72], "std_test_score": [0.02, 0.03]}
    >>> layer_scores(results)[["backbone", "depth", "mean_test_score"]]
                backbone  depth  mean_test_score
    layer
    block3_pool    vgg16     10             0.72
    block5_pool    vgg16     18             0.74
    """
    pd = require("pandas", extra="plot", purpose="layer_scores")

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
    estimator_params = {}
    if hasattr(search, "estimator"):
        estimator_params = search.estimator.get_params()
    backbone_param = param[: -len("layer")] + "backbone"
    best = {}
    for params, mean, std in zip(
        results["params"], results["mean_test_score"], results["std_test_score"]
    ):
        layer = params[param]
        backbone = params.get(backbone_param, estimator_params.get(backbone_param))
        spec = specs.get(backbone) if backbone else _spec_with(layer)
        layers = check_layers(spec, layer)
        label = (spec.name, "+".join(layers))
        if label not in best or mean > best[label]["mean_test_score"]:
            depth = max(spec.depth(layer) for layer in layers)
            best[label] = {"backbone": spec.name, "layer": label[1], "depth": depth,
                           "mean_test_score": float(mean), "std_test_score": float(std),
                           "params": params}
    rows = list(best.values())
    if len({row["backbone"] for row in rows}) > 1:
        for row in rows:
            row["layer"] = f"{row['backbone']}/{row['layer']}"
    return ordered_table(pd, rows)


def ordered_table(pd, rows):
    """``rows`` (dicts of ``layer``, ``backbone``, ``depth``, ``mean_test_score``,
    ``std_test_score`` ...) as the table of :func:`layer_scores`: indexed by layer, ordered
    by backbone as :func:`skconvnet.list_backbones` lists them, then shallow to deep."""
    order = list(specs.BACKBONES)
    rows = sorted(rows, key=lambda row: (order.index(row["backbone"]), row["depth"]))
    return pd.DataFrame(rows).set_index("layer")


def _spec_with(layer):
    """The first backbone that has ``layer`` (a name or a list of names)."""
    layers = [layer] if isinstance(layer, str) else list(layer)
    for spec in specs.BACKBONES.values():
        if set(layers) <= set(spec.layer_names):
            return spec
    raise ValueError(
        f"No backbone has the layer(s) {layer!r}; name a backbone in the search (e.g. "
        "'<step>__backbone') or use layer names from skconvnet.list_layers(backbone)."
    )


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
    require("matplotlib.pyplot", extra="plot", purpose="plot_layer_scores")
    return draw_layer_table(layer_scores(search, param), ax=ax)


def draw_layer_table(table, ax=None):
    """Plot a table of layer scores: mean score and one standard deviation against depth.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per layer, indexed by label, as :func:`layer_scores` returns it (or
        :func:`skconvnet.report.evaluation.layer_table`): ``backbone``, ``depth``,
        ``mean_test_score`` and ``std_test_score``, rows grouped by backbone.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure by default.

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = require("matplotlib.pyplot", extra="plot", purpose="draw_layer_table")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    backbones = list(dict.fromkeys(table["backbone"]))
    x = table["depth"].astype(float)
    if len(backbones) > 1:  # depth as a share of each network's cut points, so they align
        x /= [len(specs.get(backbone).cut_points) for backbone in table["backbone"]]
    for backbone in backbones:
        rows = table["backbone"] == backbone
        ax.errorbar(x[rows], table["mean_test_score"][rows], yerr=table["std_test_score"][rows],
                    marker="o", capsize=3, label=specs.get(backbone).title)
    positions, labels = _ticks(x, table.index)
    ax.set_xticks(positions, labels, rotation=30, ha="right")
    if len(backbones) > 1:
        ax.legend()
        ax.set_xlabel("layer (shallow to deep, as a share of each network's cut points)")
    else:
        ax.set_xlabel(f"{specs.get(backbones[0]).title} layer (shallow to deep)")
    ax.set_ylabel("cross-validated score")
    ax.grid(alpha=0.3)
    best = table["mean_test_score"].idxmax()
    ax.set_title(f"Best layer: {best} ({table.loc[best, 'mean_test_score']:.3f})")
    ax.figure.tight_layout()
    return ax


def _ticks(x, labels, apart=0.04):
    """Tick positions and labels, one per layer; layers of several networks closer than
    ``apart`` of the axis share a tick, their labels on lines of their own."""
    span = (max(x) - min(x)) or 1.0
    positions, joined = [], []
    for position, label in zip(x, labels):
        near = next((i for i, other in enumerate(positions)
                     if abs(other - position) < apart * span), None)
        if near is None:
            positions.append(position)
            joined.append(label)
        else:
            joined[near] += "\n" + label
    return positions, joined
