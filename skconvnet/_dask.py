"""Featurizing a large collection of images on a Dask cluster."""

from sklearn.utils.validation import check_is_fitted

from ._optional import require


def dask_transform(extractor, X, *, partition_size=256):
    """The features of ``X`` as a lazy ``dask.array``, one task per partition of images.

    Each task sends the small fitted ``extractor`` to a worker, which resolves the weights
    once per process and streams its partition's files batch by batch, as ``transform``
    does. The blocks come back in the order of ``X``: ``dask_transform(...).compute()``
    equals ``extractor.transform(X)``. Tasks are pure, so Dask recomputes those of a worker
    that dies, and the result stays complete and in order.

    Parameters
    ----------
    extractor : fitted ConvNetFeatureExtractor or VGGFeatureExtractor
    X : list of image file paths, or array of images
        Paths must be readable from every worker (a shared file system).
    partition_size : int, default=256
        Images per task: large enough to amortise scheduling, small enough to balance and
        to lose little when a worker dies.

    Returns
    -------
    features : dask.array.Array of shape (n_samples, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from skconvnet import VGGFeatureExtractor, dask_transform
    >>> images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    >>> extractor = VGGFeatureExtractor(layer="block2_pool", pooling="avg", weights=None,
    ...                                 image_size=(32, 32)).fit(images)
    >>> features = dask_transform(extractor, images, partition_size=4)
    >>> features.chunks
    ((4, 2), (128,))
    >>> np.array_equal(features.compute(scheduler="synchronous"), extractor.transform(images))
    True
    """
    dask, da = require("dask", "dask.array", extra="dask", purpose="dask_transform")
    check_is_fitted(extractor)
    if isinstance(partition_size, bool) or not isinstance(partition_size, int) or (
        partition_size < 1
    ):
        raise ValueError(f"partition_size must be a positive integer, got {partition_size!r}.")
    n_samples = len(X)
    if n_samples == 0:
        raise ValueError("X is empty: it holds no images. Pass at least one image path.")
    n_features = len(extractor.get_feature_names_out())
    dtype = extractor._images(X[:1], reset=False).dtype  # transform's rule, on one image
    fitted = dask.delayed(extractor, pure=True)  # shipped once, shared by every task
    blocks = [
        da.from_delayed(
            dask.delayed(_transform, pure=True)(fitted, X[start : start + partition_size]),
            shape=(min(partition_size, n_samples - start), n_features),
            dtype=dtype,
        )
        for start in range(0, n_samples, partition_size)
    ]
    return da.concatenate(blocks)


def _transform(extractor, X):
    return extractor.transform(X)
