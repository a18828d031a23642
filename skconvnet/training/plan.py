"""The classifier's training plan: what the frozen layers store, what each phase trains and
on what, for how long.

It is decided from the parameters, the number of images and byte sizes alone, before any
network is built, so that a fit that cannot be carried out fails before it starts.
"""

from dataclasses import dataclass

from ..backbones.graph import frozen_top
from .frozen import nbytes

MAX_HEAD_EPOCHS = 200  # head_epochs="auto" with hidden layers: early stopping ends it first


@dataclass(frozen=True)
class TrainingParameters:
    """The classifier's parameters that shape a fit, checked: ``layer`` and
    ``unfreeze_from`` resolved (defaults included), ``image_size`` and
    ``hidden_layer_sizes`` as tuples of ints."""

    layer: str
    unfreeze_from: str
    image_size: tuple
    pooling: str | None
    hidden_layer_sizes: tuple
    dropout: float
    head_epochs: int | str
    fine_tune_epochs: int
    augmentation: bool | tuple  # True (the book's), False, or Keras layers
    augmented_views: int | None
    precision: str
    optimizer: str
    head_learning_rate: float
    fine_tune_learning_rate: float
    early_stopping: bool
    validation_fraction: float
    n_iter_no_change: int
    batch_size: int
    temp_folder: str


@dataclass(frozen=True)
class Phase:
    """A phase trained by epochs, with a fresh optimizer; its Keras history is
    ``history_[name]``.

    ``trains``: ``"head"``, the head alone on the stored pooled features; ``"upper"``, the
    layers above the plan's ``top`` and the head, on the stored activations of ``top``;
    ``"network"``, the whole network on pixels, its frozen layers run in every epoch.
    ``stream``: which child of the fit's shuffling seed sequence shuffles the phase (see
    :meth:`skconvnet.training.seeds.Seeds.shuffling`).
    """

    name: str
    epochs: int
    learning_rate: float
    early_stopping: bool
    trains: str
    stream: int


@dataclass(frozen=True)
class TrainingPlan:
    """How a fit with ``parameters`` goes, in the order it runs.

    The base is cut at the parameters' ``layer``; ``top`` is the deepest cut point that
    fine-tuning (from ``unfreeze_from``) leaves frozen, None where it trains from the pixels. Each image is
    seen in ``n_views`` views: itself and augmented views drawn once. The frozen layers run
    once, storing what the phases train on; then the head is fit (by the logistic ``probe``,
    or by the ``head`` phase), then fine-tuned with the top of the base (``fine_tune``).
    A phase that is not run is None.

    ``activations`` (of ``top``, for fine-tuning) and ``features`` (the pooled rows at
    ``layer``, for the head) say where the frozen layers' outputs of every image and view
    are stored: ``"memory"``, ``"disk"``, or None where they are not stored. ``notice``
    says why phases train on pixels, running the frozen layers in every epoch, and what
    that costs; None where none does.
    """

    parameters: TrainingParameters
    top: str | None
    n_views: int
    probe: bool
    head: Phase | None
    fine_tune: Phase | None
    activations: str | None
    features: str | None
    notice: str | None


def plan_training(spec, parameters, *, n_images, memory_bytes, disk_bytes):
    """The plan of a fit on ``n_images`` images.

    Parameters
    ----------
    spec : Backbone
        The backbone's spec.
    parameters : TrainingParameters
        The classifier's checked parameters.
    n_images : int
        Number of training images.
    memory_bytes, disk_bytes : int
        Bytes of stored outputs to keep in memory at most, and bytes free on the disk of
        the temporary folder.

    Returns
    -------
    plan : TrainingPlan

    Raises
    ------
    ValueError
        Where ``head_epochs="auto"`` fits the logistic probe and its features fit neither
        in memory nor on disk.

    Notes
    -----
    The frozen layers' outputs are stored in memory while they fit in ``memory_bytes``,
    beyond it on disk: for fine-tuning, the activations of ``top``, then the pooled rows at
    ``layer`` from them for the head. Fresh augmentation in every epoch
    (``augmented_views=None``), or outputs that fit nowhere, make the phases train on
    pixels, with a ``notice``.
    """
    p = parameters
    head_epochs, fine_tune_epochs = p.head_epochs, p.fine_tune_epochs
    augmented = bool(p.augmentation)
    fresh = augmented and p.augmented_views is None  # new views in every epoch
    n_views = 1 + (p.augmented_views if augmented and not fresh else 0)
    probe = head_epochs == "auto" and not p.hidden_layer_sizes
    top = frozen_top(spec, p.unfreeze_from)

    wants_activations = bool(fine_tune_epochs) and not fresh

    def size(cut, pooling, precision=p.precision):
        return nbytes(spec, n_images, n_views, top=cut, image_size=p.image_size,
                      pooling=pooling, precision=precision)

    room = {"memory": memory_bytes, "disk": disk_bytes}
    unplaced = 0  # bytes that fit nowhere

    def place(n_bytes):
        nonlocal unplaced
        for where in room:
            if n_bytes <= room[where]:
                room[where] -= n_bytes
                return where
        unplaced += n_bytes
        return None

    # the head's features first: small, and the probe has no other way to be fit; pooled
    # from stored activations they are float32 (the probe then reads them all into memory)
    features_size = size(p.layer, p.pooling, "float32" if wants_activations else p.precision)
    activations = features = None
    if head_epochs != 0 and (probe or not fresh):
        features = place(features_size)
    if wants_activations:
        activations = place(size(top, pooling=False))
    if probe and features is None:
        pool_them = ", pool the features (pooling='avg')" if p.pooling is None else ""
        raise ValueError(
            f"head_epochs='auto' fits a logistic regression on the frozen features of all "
            f"{n_images} images ({n_views} view(s) each): {features_size} "
            f"bytes, more than fit in memory (max_stored_bytes: {memory_bytes}) and on disk "
            f"({disk_bytes} bytes free in temp_folder). Free disk space, set temp_folder to "
            f"a disk with room{pool_them} or train the head for a number of epochs (e.g. "
            "head_epochs=30)."
        )
    head = fine_tune = None
    if head_epochs and not probe:
        head = Phase(
            "head", MAX_HEAD_EPOCHS if head_epochs == "auto" else head_epochs,
            p.head_learning_rate, early_stopping=p.early_stopping or head_epochs == "auto",
            trains="head" if features is not None else "network", stream=0,
        )
    if fine_tune_epochs:
        fine_tune = Phase(
            "fine_tune", fine_tune_epochs, p.fine_tune_learning_rate,
            early_stopping=p.early_stopping,
            trains="upper" if activations is not None else "network", stream=1,
        )
    on_pixels = [phase for phase in (head, fine_tune)
                 if phase is not None and phase.trains == "network"]
    notice = None
    if on_pixels:
        why = ("augmented_views=None asks for fresh augmentation in every epoch" if fresh
               else f"their stored outputs ({unplaced} bytes) fit neither in memory "
                    f"(max_stored_bytes: {memory_bytes} bytes) nor on disk ({disk_bytes} "
                    "bytes free in temp_folder)")
        notice = _notice(on_pixels, why, n_images, n_views=4 if fresh else n_views,
                         stored_by="augmented_views=3" if fresh else "storing them")
    return TrainingPlan(
        parameters=parameters, top=top, n_views=n_views, probe=probe, head=head,
        fine_tune=fine_tune,
        activations=activations, features=features, notice=notice,
    )


def _notice(phases, why, n_images, n_views, stored_by):
    """Why ``phases`` train on pixels, and what running the frozen layers in each of their
    epochs costs against one pass over ``n_views`` views of each image."""
    names = {"head": "the head", "fine_tune": "fine-tuning"}
    trained = " and ".join(
        f"{names[phase.name]} (up to {phase.epochs} epoch{'s' * (phase.epochs > 1)})"
        for phase in phases)
    passes = sum(phase.epochs for phase in phases)
    return (
        f"{trained[0].upper()}{trained[1:]} will train on pixels, running the frozen layers "
        f"in every epoch, because {why}: up to {passes} passes of the frozen layers over the "
        f"{n_images} images, where {stored_by} takes one pass over {n_views} "
        f"view{'s' * (n_views > 1)} of each "
        f"(about {passes / n_views:.3g}x the frozen layers' work)."
    )
