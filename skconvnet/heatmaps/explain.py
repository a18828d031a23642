"""``explain``: where a fitted model looked, one heatmap per image."""

import numpy as np
from sklearn.base import is_regressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .._extractor import ConvNetFeatureExtractor
from .._finetuned import FineTunedConvNet
from .. import _steps
from .._steps import unwrapped
from ..inputs.sources import parts
from . import linear, network, occlusion

METHODS = ("cam", "gradcam", "occlusion")
_IMAGES_AT_ONCE = 256


def explain(model, X, *, target=None, method="auto"):
    """Heatmaps of where a fitted model found the evidence for a class (or a prediction) in
    each image.

    Parameters
    ----------
    model : fitted classifier or regressor of images
        A :class:`FineTunedConvNetClassifier` or :class:`FineTunedConvNetRegressor`, or a
        ``Pipeline`` whose first step is a :class:`ConvNetFeatureExtractor` (or
        :class:`VGGFeatureExtractor`) and whose last is a classifier or a regressor; a
        fitted search (``GridSearchCV``) stands for its best estimator.
    X : image files, encoded images or a 4-D array
        The images, as the model takes them.
    target : class label, int, array-like of shape (n_images,) or None, default=None
        The class whose evidence is mapped (for tags, the label): one for all images, one
        per image, or None for the class the model predicts for each (for occlusion, the
        most probable one). For a regressor, the index of the target whose prediction is
        mapped (None: the only one): the map shows what raises the prediction.
    method : {"auto", "cam", "gradcam", "occlusion"}, default="auto"
        - ``"cam"``, the exact class activation map, where the features are averaged over
          positions (``pooling="avg"``, one layer) and everything after them is linear
          (scalers, PCA, feature selection, then ``LogisticRegression``, ``LinearSVC``,
          ``RidgeClassifier``...; or the classifier's own linear head): the class score is
          then the mean over positions of the score of each position's activation. One
          forward pass. Scaled to [0, 1] between each map's lowest and highest value.
        - ``"gradcam"``, Grad-CAM, for :class:`FineTunedConvNetClassifier`: the activation
          of the network's last convolutional layer, its channels weighted by the mean
          gradient of the class's logit; positive part. One forward and one backward pass.
        - ``"occlusion"``, for any model: the drop of the class's probability (its decision
          score without ``predict_proba``) when a grey square a fifth of the image's side is
          put over a pixel, averaged over the windows covering it, at strides of half a
          square; positive part. About 100 forward passes per image (82 at 150x150).
        - ``"auto"``: ``"gradcam"`` for a :class:`FineTunedConvNetClassifier`, ``"cam"``
          for a pipeline where it applies, ``"occlusion"`` for any other.

    Returns
    -------
    heatmaps : ndarray of shape (n_images, height, width)
        float32 in [0, 1], at the size the model resizes images to (``image_size``): 1
        where the evidence for the class is strongest.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from skconvnet import VGGFeatureExtractor, explain
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    >>> model = make_pipeline(
    ...     VGGFeatureExtractor(layer="block2_pool", pooling="avg", weights=None,
    ...                         image_size=(32, 32)),
    ...     LogisticRegression()).fit(images, [0, 1] * 3)
    >>> heatmaps = explain(model, images[:2])
    >>> heatmaps.shape, float(heatmaps.min()), float(heatmaps.max())
    ((2, 32, 32), 0.0, 1.0)
    """
    model = unwrapped(model, "explain")
    images = image_step(model)
    method = _method(model, images, method)
    source = images._images(X, reset=False)
    targets = (_output_targets(model, target, source.n_samples) if is_regressor(model)
               else _targets(model.classes_, target, source.n_samples))

    def maps(part, targets):
        if method == "occlusion":
            return occlusion.occlusion_maps(model, images, part, targets)
        if method == "gradcam":
            return network.gradcam_maps(model, part, targets)
        return (network if images is model else linear).linear_maps(model, part, targets)

    return np.concatenate([  # in parts, to bound the activations held at once
        maps(part, None if targets is None else targets[part.indices])
        for part in parts(source, _IMAGES_AT_ONCE)
    ])


def method_for(model, method="auto"):
    """The method :func:`explain` takes for ``model`` when given ``method``."""
    model = unwrapped(model, "explain")
    return _method(model, image_step(model), method)


def image_step(model):
    """The fitted estimator of ``model`` that reads the images: the fine-tuned estimator
    itself, or the pipeline's extractor, its first step; with a clear error for anything
    else."""
    first = _steps.image_step(model)
    if isinstance(first, FineTunedConvNet) and first is model:
        check_is_fitted(model)
        return model
    if not (isinstance(first, ConvNetFeatureExtractor) and isinstance(model, Pipeline)
            and model.steps[0][1] is first):
        raise TypeError(
            f"explain takes a FineTunedConvNetClassifier, a FineTunedConvNetRegressor or a "
            f"Pipeline whose first step is a ConvNetFeatureExtractor (or VGGFeatureExtractor), "
            f"got {_describe(model)}."
        )
    check_is_fitted(model)
    check_is_fitted(first)
    if not (hasattr(model, "classes_") or is_regressor(model)):
        raise TypeError(
            f"explain maps the evidence for a class or a prediction: the pipeline's last step "
            f"({type(model.steps[-1][1]).__name__}) is neither a classifier (it has no "
            "classes_) nor a regressor."
        )
    return first


def _method(model, images, method):
    """The method ``method`` asks for and that applies to ``model``, with a clear error."""
    if method not in ("auto", *METHODS):
        raise ValueError(f"method must be 'auto', 'cam', 'gradcam' or 'occlusion', got "
                         f"{method!r}.")
    pipeline = images is not model
    why_not = (linear if pipeline else network).why_not_linear(model)
    if method == "auto":
        return "gradcam" if not pipeline else "occlusion" if why_not else "cam"
    if method == "cam" and why_not:
        raise ValueError(
            f"method='cam' (the exact class activation map) does not apply to this "
            f"{'pipeline' if pipeline else 'network'}: {why_not}. Use method='occlusion' "
            f"(any model){'' if pipeline else ' or method=' + repr('gradcam')}."
        )
    if method == "gradcam" and pipeline:
        raise ValueError(
            "method='gradcam' needs a network trained end to end (FineTunedConvNetClassifier or "
            "FineTunedConvNetRegressor); "
            "a pipeline's steps after the extractor have no gradient. Use method='cam' "
            "(average pooling and linear steps) or method='occlusion' (any pipeline)."
        )
    return method


def _targets(classes, target, n_images):
    """``target`` as class indices, one per image (None stays None: the predicted class)."""
    if target is None:
        return None
    labels = np.asarray(target, dtype=object)
    labels = np.full(n_images, target, dtype=object) if labels.ndim == 0 else labels
    if labels.ndim != 1 or len(labels) != n_images:
        raise ValueError(
            f"target has shape {np.shape(target)}; give one class label for all images, one "
            f"per image ({n_images}), or None for the predicted class."
        )
    index = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    unknown = [label for label in dict.fromkeys(labels.tolist()) if label not in index]
    if unknown:
        raise ValueError(f"target holds classes the model does not know: {unknown[:5]}; it "
                         f"knows {list(index)}.")
    return np.array([index[label] for label in labels.tolist()])


def _output_targets(regressor, target, n_images):
    """A regressor's ``target``, the index of one of its outputs, for each image."""
    n_outputs = _n_outputs(regressor)
    if target is None:
        if n_outputs > 1:
            raise ValueError(
                f"The regressor predicts {n_outputs} targets: say whose prediction to map "
                f"with target=0 ... {n_outputs - 1}."
            )
        target = 0
    indices = np.broadcast_to(np.asarray(target), (n_images,)) if np.ndim(target) == 0 \
        else np.asarray(target)
    if (indices.shape != (n_images,) or indices.dtype.kind not in "iu"
            or indices.min(initial=0) < 0 or indices.max(initial=0) >= n_outputs):
        raise ValueError(
            f"target={target!r}: for a regressor of {n_outputs} target(s) give the index of "
            f"one (0 ... {n_outputs - 1}), for all images or one per image ({n_images})."
        )
    return indices


def _n_outputs(regressor):
    """The number of targets a fitted regressor (or a pipeline's) predicts."""
    final = regressor.steps[-1][1] if isinstance(regressor, Pipeline) else regressor
    if hasattr(final, "n_outputs_"):
        return final.n_outputs_
    coef = getattr(final, "coef_", None)
    return 1 if coef is None or np.ndim(coef) == 1 else np.shape(coef)[0]


def _describe(model):
    text = repr(model)
    return text if len(text) <= 80 else text[:77] + "..."
