"""Photos unlike every other photo of their class: a stray screenshot, a photo of the wrong
kind of thing."""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from .features import file_names, photos, unit_features
from .results import Findings

#: Modified z-score from which a photo is flagged (Iglewicz and Hoaglin, 1993).
CUTOFF = 3.5
#: Neighbours a photo's distance is averaged over: more than the photos of one foreign kind
#: that may come together (five screenshots of one program are each other's nearest
#: neighbours, and hide each other from a 5-neighbour distance; benchmarks/bench_audit.py).
N_NEIGHBORS = 20


@dataclass(frozen=True)
class Outliers(Findings):
    """Photos far from the others of their class, the farthest first.

    Attributes
    ----------
    indices : ndarray of shape (n_outliers,)
        Positions in ``X`` of the flagged photos, by decreasing ``distance``.
    distance : ndarray of shape (n_outliers,)
        Each flagged photo's mean cosine distance to its ``n_neighbors`` nearest photos of
        the same class.
    z_score : ndarray of shape (n_outliers,)
        How far the logarithm of ``distance`` lies above its class's median, in robust
        standard deviations (the modified z-score, from the median absolute deviation).
    label : ndarray of shape (n_outliers,) or None
        Their labels, with ``y``.
    photo : ndarray of shape (n_outliers,) or None
        Their paths, where ``X`` holds paths.
    distances : ndarray of shape (n_photos,)
        Every photo's distance, in the order of ``X``: rank them to see more than the
        flagged ones.
    """

    COLUMNS = ("indices", "distance", "z_score", "label", "photo")

    distance: np.ndarray
    z_score: np.ndarray
    label: np.ndarray | None
    photo: np.ndarray | None
    distances: np.ndarray


def find_outliers(extractor, X, y=None, *, n_neighbors=N_NEIGHBORS, cutoff=CUTOFF):
    """Find photos far from every other photo of their class (of the set, without ``y``).

    A photo's distance is its mean cosine distance to its ``n_neighbors`` nearest
    neighbours of its class in feature space; a photo is flagged when the logarithm of that
    distance lies more than ``cutoff`` robust standard deviations above its class's median
    (the modified z-score of Iglewicz and Hoaglin, whose usual cutoff 3.5 is the default).
    Distances have a long right tail; their logarithms are nearly symmetric, so that the
    cutoff flags few photos of a clean class.

    Parameters
    ----------
    extractor : ConvNetFeatureExtractor, pipeline starting with one, or None
        What gives the features (a clone is fitted on ``X``); None when ``X`` holds
        feature rows. A deep layer (VGG16's ``block5_pool``) tells kinds of things apart.
    X : list of image files, array of images, feature rows, or a folder of class folders
        The photos.
    y : array-like of shape (n_photos,), default=None
        Their labels (a folder's own by default): each photo is compared with its class.
    n_neighbors : int, default=20
        Neighbours a photo's distance is averaged over: more than the foreign photos of
        one kind there may be (they are each other's neighbours).
    cutoff : float, default=3.5
        Modified z-score from which a photo is flagged.

    Returns
    -------
    outliers : Outliers

    Examples
    --------
    >>> import numpy as np
    >>> from skconvnet import find_outliers
    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(0, 1, (200, 8)) + [5, 0, 0, 0, 0, 0, 0, 0]
    >>> features[17] = [0, 0, 0, 0, 0, 0, 0, 9]  # unlike the rest
    >>> find_outliers(None, features).indices
    array([17])
    """
    X, y = photos(X, y)
    rows = unit_features(extractor, "find_outliers", X)[0]
    return outliers_of(rows, y, n_neighbors=n_neighbors, cutoff=cutoff, X=X)


def outliers_of(rows, y=None, *, n_neighbors=N_NEIGHBORS, cutoff=CUTOFF, X=None):
    """:func:`find_outliers` on unit-length feature rows; ``X`` names the photos if it holds
    paths."""
    if not isinstance(n_neighbors, numbers.Integral) or n_neighbors < 1:
        raise ValueError(f"n_neighbors={n_neighbors!r}: give a number of neighbours, 1 or more.")
    labels = np.zeros(len(rows), dtype=int) if y is None else np.asarray(y)
    if len(labels) != len(rows):
        raise ValueError(f"y has {len(labels)} labels for {len(rows)} photos; give one per photo.")
    distances, z_scores = np.empty(len(rows)), np.empty(len(rows))
    for label in np.unique(labels).tolist():
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise ValueError(f"Class {label!r} has one photo: nothing to compare it with. Give "
                             "each class 2 photos or more, or y=None.")
        search = NearestNeighbors().fit(rows[members])
        gaps, _ = search.kneighbors(n_neighbors=min(n_neighbors, len(members) - 1))  # not itself
        distances[members] = (gaps ** 2 / 2).mean(axis=1)  # unit rows: cosine distance
        z_scores[members] = _modified_z(np.log(np.maximum(distances[members], 1e-12)))
    flagged = np.flatnonzero(z_scores > cutoff)
    flagged = flagged[np.argsort(-distances[flagged], kind="stable")]
    return Outliers(indices=flagged, distance=distances[flagged], z_score=z_scores[flagged],
                    label=None if y is None else labels[flagged],
                    photo=file_names(X, flagged), distances=distances)


def _modified_z(values):
    median = np.median(values)
    spread = np.median(np.abs(values - median))
    if spread == 0:
        return np.zeros_like(values)
    return 0.6745 * (values - median) / spread
