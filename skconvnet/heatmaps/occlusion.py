"""Occlusion: how much the class's probability (a regressor's prediction) drops when a patch
of the photo is greyed out, for any fitted model of images."""

import copy

import numpy as np
from sklearn.base import is_regressor

from .maps import output_scores, positive_part

GREY = 128.0  # the pixel value a patch is greyed out to


def occlusion_grid(image_size):
    """``(patch, starts_y, starts_x)``: a square patch a fifth of the image's shorter side,
    moved by half its size, the last window at each edge (9 or 10 per side: about 100
    windows at any size)."""
    patch = max(1, round(min(image_size) / 5))
    stride = max(1, patch // 2)
    return patch, *(_starts(side, patch, stride) for side in image_size)


def occlusion_maps(model, images, source, targets):
    """Each image's map of the drop of its target class's probability (or decision score,
    for models without ``predict_proba``) when a patch covering a pixel is greyed out,
    averaged over the windows that cover it; the positive part. ``targets`` None: each
    image's most probable class. ``images`` is the step of ``model`` that reads the
    images."""
    scorer = _uncached(model, images)
    patch, starts_y, starts_x = occlusion_grid(source.image_size)
    windows = [(y, x) for y in starts_y for x in starts_x]
    maps = np.empty((source.n_samples, *source.image_size), np.float32)
    for i in range(source.n_samples):
        image = source.load(np.array([i]))[0]
        occluded = np.repeat(image[np.newaxis], len(windows) + 1, axis=0)
        for copy_, (y, x) in zip(occluded[1:], windows):
            copy_[y:y + patch, x:x + patch] = GREY
        scores = _scores(scorer, occluded)
        scores = scores[:, scores[0].argmax() if targets is None else targets[i]]
        drops = np.zeros(source.image_size)
        covered = np.zeros(source.image_size)
        for drop, (y, x) in zip(scores[0] - scores[1:], windows):
            drops[y:y + patch, x:x + patch] += drop
            covered[y:y + patch, x:x + patch] += 1
        maps[i] = drops / covered
    return positive_part(maps)


def _scores(model, images):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(images)
    if is_regressor(model):
        return output_scores(model, model.predict(images))
    return output_scores(model, model.decision_function(images))


def _uncached(model, images):
    """``model`` with its extractor's activation cache and progress bar off: occluded
    copies are never seen again, and would evict the activations of images that are."""
    if images is model:
        return model
    uncached = copy.copy(model)
    name, _ = model.steps[0]
    uncached.steps = [(name, copy.copy(images).set_params(cache=False, verbose=0)),
                      *model.steps[1:]]
    return uncached


def _starts(side, patch, stride):
    starts = list(range(0, side - patch + 1, stride))
    if starts[-1] != side - patch:
        starts.append(side - patch)
    return starts
