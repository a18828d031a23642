"""The classifier's training plan: what the frozen layers store, what each phase trains and
on what, for how long.

It is decided from the parameters, the number of images and byte sizes alone, before any
network is built, so that a fit that cannot be carried out fails before it starts.
"""

from dataclasses import dataclass

from ..backbones.graph import frozen_top
from .stored import nbytes

MAX_HEAD_EPOCHS = 200  # head_epochs="auto" with hidden layers: early stopping ends it first


@dataclass(frozen=True)
class Phase:
    """A phase trained by epochs, with a fresh optimizer; its Keras history is
    ``history_[name]``.

    ``trains``: ``"head"``, the head alone on the stored pooled features; ``"upper"``, the
    layers above the plan's ``top`` and the head, on the stored activations of ``top``;
    ``"network"``, the whole network on pixels, its frozen layers run in every epoch.
    ``stream``: which of the fit's random streams shuffles the phase, the generator seeded
    with ``[seed, stream]``.
    """

    name: str
    epochs: int
    learning_rate: float
    early_stopping: bool
    trains: str
    stream: int


@dataclass(frozen=True)
class TrainingPlan:
    """How a fit goes, in the order it runs.

    The base is cut at ``layer``; ``top`` is the deepest cut point that fine-tuning (from
    ``unfreeze_from``) leaves frozen, None where it trains from the pixels. Each image is
    seen in ``n_views`` views: itself and augmented views drawn once. The frozen layers run
    once, storing what the phases train on; then the head is fit (by the logistic ``probe``,
    or by the ``head`` phase), then fine-tuned with the top of the base (``fine_tune``).
    A phase that is not run is None.
    """

    layer: str
    unfreeze_from: str
    top: str | None
    image_size: tuple
    n_views: int
    probe: bool
    head: Phase | None
    fine_tune: Phase | None

    @property
    def stores_features(self):
        """Whether the pooled rows at ``layer`` of every image and view are stored."""
        return self.probe or (self.head is not None and self.head.trains == "head")

    @property
    def stores_activations(self):
        """Whether the activations of ``top`` of every image and view are stored."""
        return self.fine_tune is not None and self.fine_tune.trains == "upper"


def plan_training(spec, params, *, layer, unfreeze_from, image_size, hidden_layer_sizes,
                  n_images):
    """The plan of a fit on ``n_images`` images.

    Parameters
    ----------
    spec : Backbone
        The backbone's spec.
    params : dict
        The classifier's parameters (``get_params(deep=False)``).
    layer, unfreeze_from : str
        The checked cut point and start of fine-tuning.
    image_size : (int, int)
        The checked image size.
    hidden_layer_sizes : list of int
        The checked sizes of the head's hidden layers.
    n_images : int
        Number of training images.

    Returns
    -------
    plan : TrainingPlan

    Raises
    ------
    ValueError
        Where ``head_epochs="auto"`` fits the logistic probe and its features would take
        more than ``max_stored_bytes``.

    Notes
    -----
    Outputs of frozen layers are stored where they take at most ``max_stored_bytes``: for
    fine-tuning, the activations of ``top`` (the head's features then come from them);
    otherwise, for the head alone, the pooled rows at ``layer``. Fresh augmentation in
    every epoch (``augmented_views=None``) stores nothing that fine-tuning trains on.
    """
    head_epochs, fine_tune_epochs = params["head_epochs"], params["fine_tune_epochs"]
    augmented = bool(params["augmentation"])
    fresh = augmented and params["augmented_views"] is None  # new views in every epoch
    n_views = 1 + (params["augmented_views"] if augmented and not fresh else 0)
    probe = head_epochs == "auto" and not hidden_layer_sizes
    top = frozen_top(spec, unfreeze_from)

    def size(cut, pooling):
        return nbytes(spec, n_images, n_views, top=cut, image_size=image_size,
                      pooling=pooling, precision=params["precision"])

    budget = params["max_stored_bytes"]
    stores_activations = (bool(fine_tune_epochs) and not fresh
                          and size(top, pooling=False) <= budget)
    head_on_features = head_epochs != 0 and (probe or not fresh)
    stores_features = head_on_features and (
        stores_activations or size(layer, params["pooling"]) <= budget)
    if probe and not stores_features:
        pool_them = ", pool the features (pooling='avg')" if params["pooling"] is None else ""
        raise ValueError(
            f"head_epochs='auto' fits a logistic regression on the frozen features of all "
            f"{n_images} images ({n_views} view(s) each): {size(layer, params['pooling'])} "
            f"bytes, more than max_stored_bytes={budget}. Raise max_stored_bytes{pool_them} "
            "or train the head for a number of epochs (e.g. head_epochs=30)."
        )
    head = fine_tune = None
    if head_epochs and not probe:
        head = Phase(
            "head", MAX_HEAD_EPOCHS if head_epochs == "auto" else head_epochs,
            params["head_learning_rate"],
            early_stopping=bool(params["early_stopping"] or head_epochs == "auto"),
            trains="head" if stores_features else "network", stream=0,
        )
    if fine_tune_epochs:
        fine_tune = Phase(
            "fine_tune", fine_tune_epochs, params["fine_tune_learning_rate"],
            early_stopping=bool(params["early_stopping"]),
            trains="upper" if stores_activations else "network", stream=1,
        )
    return TrainingPlan(
        layer=layer, unfreeze_from=unfreeze_from, top=top, image_size=tuple(image_size),
        n_views=n_views, probe=probe, head=head, fine_tune=fine_tune,
    )
