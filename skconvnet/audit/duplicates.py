"""Copies of a photo: exact ones and near ones (re-saved, resized, cropped, recoloured), within
a set of photos and between two (a training photo leaked into the test set)."""

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import NearestNeighbors

from ..inputs.decoding import open_image
from .features import by_position, photos, unit_features
from .results import Findings

#: Cosine similarity of average-pooled features from which two photos count as copies:
#: midway between the least similar of 40 leaked copies (0.951) and the most similar of two
#: distinct photos (0.936) on VGG16's block4_pool at 150x150 (benchmarks/bench_audit.py,
#: seeds 0 and 1; docs/checking_photos.md).
THRESHOLD = 0.945


@dataclass(frozen=True)
class Duplicates(Findings):
    """Pairs of photos that are copies of each other, the most similar first.

    Attributes
    ----------
    indices : ndarray
        Positions in ``X`` of the photos that have a copy, the most similar first.
    pairs : ndarray of shape (n_pairs, 2)
        Positions of the two photos of each pair: in ``X`` and in ``X_other``, or both in
        ``X`` (the smaller first).
    similarity : ndarray of shape (n_pairs,)
        Cosine similarity of the pair's features, decreasing.
    exact : ndarray of bool, shape (n_pairs,)
        Whether the two photos have the same decoded pixels (the same feature rows, for
        feature rows).
    groups : list of ndarray
        Within ``X``: the sets of photos that are copies of one another (pairs joined), the
        largest first; empty between two sets.
    conflicting : list of ndarray
        The groups whose photos do not all have the same label in ``y``.
    leaked : ndarray
        Between two sets: positions in ``X_other`` of the photos that copy a photo of
        ``X``, the most similar first; empty within one set.
    """

    pairs: np.ndarray
    similarity: np.ndarray
    exact: np.ndarray
    groups: list
    conflicting: list
    leaked: np.ndarray

    def __len__(self):
        return len(self.pairs)

    def to_frame(self):
        """The pairs as a pandas DataFrame, the most similar first.

        Returns
        -------
        frame : pandas.DataFrame
            ``first`` and ``second`` (positions, as in ``pairs``), ``similarity``, ``exact``.
        """
        from .._optional import require

        pd = require("pandas", extra="plot", purpose="Duplicates.to_frame")
        return pd.DataFrame({"first": self.pairs[:, 0], "second": self.pairs[:, 1],
                             "similarity": self.similarity, "exact": self.exact})


def find_duplicates(extractor, X, X_other=None, *, y=None, threshold=THRESHOLD,
                    block_size=1024):
    """Find copies among photos, or photos of one set copied into another.

    Photos are compared by the cosine similarity of their features: a re-saved, resized,
    slightly cropped or recoloured copy keeps nearly the same features, distinct photos do
    not. Pairs above ``threshold`` are found by nearest-neighbour search
    (:class:`~sklearn.neighbors.NearestNeighbors` on unit-length features, ``block_size``
    photos at a time), so memory grows with the number of photos and pairs, never with its
    square. Pairs whose decoded pixels are the same are marked exact.

    Parameters
    ----------
    extractor : ConvNetFeatureExtractor, pipeline starting with one, or None
        What gives the features (a clone is fitted on ``X``); None when ``X`` and
        ``X_other`` are feature rows. VGG16's ``block4_pool``, average-pooled, is where
        ``threshold`` was measured; deeper layers confuse distinct photos of one kind.
    X : list of image files, array of images, feature rows, or a folder of class folders
        The photos (e.g. the training set).
    X_other : same kinds as ``X``, default=None
        Another set (e.g. the test set): then only pairs across the two are sought, the
        leaks from ``X`` into ``X_other``.
    y : array-like of shape (n_photos,), default=None
        Labels of ``X`` (a folder's own by default), to find copies labelled differently.
    threshold : float, default=0.945
        Cosine similarity from which two photos count as copies.
    block_size : int, default=1024
        Photos searched at a time.

    Returns
    -------
    duplicates : Duplicates

    Examples
    --------
    >>> import numpy as np
    >>> from skconvnet import find_duplicates
    >>> rng = np.random.default_rng(0)
    >>> train, test = rng.random((100, 64)), rng.random((30, 64))
    >>> test[5] = train[42] + rng.normal(0, 0.01, 64)  # a near copy leaked into the test set
    >>> leaks = find_duplicates(None, train - 0.5, test - 0.5)
    >>> leaks.pairs, leaks.leaked
    (array([[42,  5]]), array([5]))
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r}: give a cosine similarity in (0, 1], e.g. "
                         f"{THRESHOLD}.")
    X, y = photos(X, y)
    X_other, _ = photos(X_other, None)
    first, second = unit_features(extractor, "find_duplicates", X, X_other)
    if y is not None and len(y) != len(first):
        raise ValueError(f"y has {len(y)} labels for {len(first)} photos; give one per photo "
                         "of X.")
    images = X, X if X_other is None else X_other  # feature rows: exact when rows are equal
    return duplicates_of(first, second, y=y, threshold=threshold, images=images,
                         block_size=block_size)


def duplicates_of(first, second=None, *, images, y=None, threshold=THRESHOLD,
                  block_size=1024):
    """:func:`find_duplicates` on unit-length feature rows ``first`` and ``second`` (None:
    within ``first``); ``images``, the photos (or feature rows) of both sets, tell exact
    copies apart."""
    within = second is None
    second = first if within else second
    pairs, similarity = _pairs_above(first, second, threshold, within, block_size)
    ours = _Pixels(images[0])
    theirs = ours if within else _Pixels(images[1])
    exact = [ours.digest(i) == theirs.digest(j) for i, j in pairs]
    groups, conflicting, leaked = [], [], np.array([], dtype=int)
    if within:
        groups = _groups(pairs, len(first))
        if y is not None:
            labels = np.asarray(y)
            conflicting = [group for group in groups if len(set(labels[group].tolist())) > 1]
    else:
        leaked = np.array(list(dict.fromkeys(pairs[:, 1].tolist())), dtype=int)
    indices = np.array(list(dict.fromkeys(pairs.ravel().tolist() if within
                                          else pairs[:, 0].tolist())), dtype=int)
    return Duplicates(indices=indices, pairs=pairs, similarity=similarity,
                      exact=np.array(exact, dtype=bool), groups=groups,
                      conflicting=conflicting, leaked=leaked)


def _pairs_above(first, second, threshold, within, block_size):
    """Pairs ``(i, j)`` of rows of ``first`` and ``second`` (unit length) whose dot product
    is at least ``threshold``, the most similar first; within one set, each pair once."""
    radius = np.sqrt(max(2 - 2 * threshold, 0.0)) + 1e-9  # unit rows: |a - b|² = 2 - 2 a·b
    search = NearestNeighbors(radius=radius).fit(second)
    found_i, found_j = [], []
    for start in range(0, len(first), block_size):
        _, neighbours = search.radius_neighbors(first[start:start + block_size])
        for offset, columns in enumerate(neighbours):
            i = start + offset
            columns = columns[columns > i] if within else columns
            found_i.append(np.full(len(columns), i))
            found_j.append(columns)
    i = np.concatenate(found_i).astype(int) if found_i else np.array([], dtype=int)
    j = np.concatenate(found_j).astype(int) if found_j else np.array([], dtype=int)
    similarity = np.einsum("ij,ij->i", first[i], second[j]) if len(i) else np.array([])
    keep = similarity >= threshold
    i, j, similarity = i[keep], j[keep], similarity[keep]
    order = np.lexsort((j, i, -similarity))
    return np.stack([i[order], j[order]], axis=1).reshape(-1, 2), similarity[order]


def _groups(pairs, n):
    """Connected sets of photos joined by ``pairs``, the largest first."""
    if not len(pairs):
        return []
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members = np.unique(pairs)
    groups = [members[component[members] == c] for c in np.unique(component[members])]
    return sorted(groups, key=len, reverse=True)


class _Pixels:
    """Digests of the decoded pixels of a set of images (of the values of feature rows),
    computed for those asked about."""

    def __init__(self, images):
        self.images = by_position(images)
        self.digests = {}

    def digest(self, i):
        if i not in self.digests:
            item = self.images[i]
            if isinstance(item, np.ndarray):
                pixels = np.ascontiguousarray(item)
            else:
                with open_image(item) as picture:
                    pixels = np.asarray(picture.convert("RGB"))
            digest = hashlib.blake2b(str(pixels.shape).encode(), digest_size=16)
            digest.update(pixels.tobytes())
            self.digests[i] = digest.digest()
        return self.digests[i]
