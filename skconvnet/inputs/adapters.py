"""Every accepted ``X`` checked and adapted to an image source.

Three kinds of input, one interface (:class:`skconvnet.inputs.sources.ImageSource`):

- a 4-D array ``(n, height, width, channels)``, channels 1 or 3;
- a 2-D array: rows that flatten an image (``image_shape``, or ``height * width * 3`` values
  for ``image_size``) are reshaped back; rows of any other width are tabular features, each
  column min-max scaled to 0-255 (range learned in ``fit``) and drawn as a horizontal band;
- a list or 1-D array of image files — paths, or their encoded contents as bytes — or a
  DataFrame of one column of them (what ``ColumnTransformer`` passes for ``["photo"]``).
"""

import os
import warnings
from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from .decoding import FILE_TYPES, is_encoded
from .sources import ArrayImages, BandImages, FileImages


def check_image_size(image_size):
    """``(height, width)`` from an ``image_size`` parameter (an int means a square)."""
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    size = tuple(image_size)
    if len(size) != 2 or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(
            f"image_size must be (height, width) with two positive integers, got {image_size!r}."
        )
    return tuple(int(s) for s in size)


def check_image_shape(image_shape):
    """``(height, width, channels)`` from an ``image_shape`` parameter, or None."""
    if image_shape is None:
        return None
    shape = tuple(image_shape)
    if (
        len(shape) != 3
        or not all(isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in shape)
        or shape[2] not in (1, 3)
    ):
        raise ValueError(
            "image_shape must be (height, width, channels) with positive integers and "
            f"channels 1 or 3, got {image_shape!r}."
        )
    return tuple(int(s) for s in shape)


def image_source(estimator, X, *, image_size, image_shape=None, reset):
    """Validate ``X`` and return its images as an :class:`ImageSource`.

    With ``reset=True`` (in ``fit``) what an earlier fit learned from its ``X`` is forgotten;
    then 2-D input sets ``n_features_in_`` (and ``feature_names_in_``) through
    ``validate_data``, and tabular rows set ``data_min_`` and ``data_max_`` on ``estimator``.
    With ``reset=False`` these are checked and used.
    """
    if reset:
        for name in ("n_features_in_", "feature_names_in_", "data_min_", "data_max_"):
            estimator.__dict__.pop(name, None)
    if isinstance(X, (str, bytes, os.PathLike)):
        what = (f"image file's contents ({len(X)} bytes)" if is_encoded(X)
                else f"path ({X!r})")
        raise TypeError(f"X is a single {what}; pass a list of image files, e.g. [X].")
    if _looks_like_files(X):
        return FileImages(X, image_size)
    column = _file_column(X)
    if column is not None:
        if estimator is not None:  # its column name, as for other DataFrames
            validate_data(estimator, X, reset=reset, skip_check_array=True)
        return FileImages(column, image_size)
    received = X
    if not sparse.issparse(X) and getattr(X, "ndim", None) is None:
        X = _as_array(X)
    _require_numbers(X)
    ndim = 2 if sparse.issparse(X) else X.ndim
    if ndim == 1 and X.size == 0:
        raise ValueError(
            "X is empty: it holds no images. Pass at least one image (array row or file path)."
        )
    if ndim == 2:
        return _rows(estimator, X, image_size, image_shape, reset)
    if ndim == 4:
        return ArrayImages(_check_pixels(X), image_size)
    if ndim == 0:
        raise TypeError(f"X is {_describe(received)}; {_EXPECTED}")
    raise ValueError(_WRONG_NDIM.get(ndim, _WRONG_NDIM["other"]).format(shape=np.shape(X)))


class ImageInput:
    """Mixin for estimators with a backbone (``_spec()``), ``image_size`` and
    ``image_shape``: ``X`` as images."""

    def _image_size(self):
        """``(height, width)``; ``image_size=None`` is the backbone's customary size."""
        if self.image_size is None:
            return self._spec().image_size
        return check_image_size(self.image_size)

    def _images(self, X, *, reset):
        return image_source(
            self,
            X,
            image_size=self._image_size(),
            image_shape=check_image_shape(self.image_shape),
            reset=reset,
        )


_EXPECTED = (
    "expected a 4-D array (n_images, height, width, channels), a 2-D array with one sample "
    "per row, or a list of image file paths."
)


def _describe(value):
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def _as_array(X):
    """``X`` (a list, a tuple, ...) as a NumPy array, with an error that says why it is not one."""
    if isinstance(X, (list, tuple)):
        shapes = {np.shape(item) for item in X}
        if len(shapes) > 1 and all(len(shape) == 3 for shape in shapes):
            raise ValueError(
                f"X is a list of images of different shapes ({', '.join(map(str, sorted(shapes)))}); "
                "arrays must all have one shape to be stacked. Resize them to one size and "
                "pass np.stack(X), or pass their image files: files of any size are resized "
                "to image_size."
            )
    try:
        return np.asarray(X)
    except ValueError as error:
        raise ValueError(
            f"X cannot be read as an array ({error}). Pass a 4-D array of images, a 2-D "
            "array, or a list of image file paths."
        ) from None


def _require_numbers(X):
    """Refuse text and complex numbers in array input, naming what was found."""
    dtypes = getattr(X, "dtypes", None)  # a DataFrame's columns
    dtypes = [X.dtype] if dtypes is None else list(dtypes)
    if any(dtype.kind == "c" for dtype in dtypes):
        raise ValueError(
            "Complex data not supported: X holds complex numbers; expected real pixel values "
            "or features."
        )
    if not any(dtype.kind in "OUS" for dtype in dtypes):
        return
    values = np.asarray(X, dtype=object).ravel()
    text = next((v for v in values if isinstance(v, (str, bytes))), None)
    if text is not None:
        raise TypeError(
            f"X holds text ({text!r}), not numbers. Pass pixel values or features as numbers, "
            "or image file paths as a list, a 1-D array or a DataFrame of one column "
            "(df['path'] or df[['path']])."
        )


_WRONG_NDIM = {
    1: "X is a 1-D array of numbers (shape {shape}) and not a list of image file paths. "
    "Expected a 4-D array (n_images, height, width, channels), a 2-D array with one sample "
    "per row, or a list of paths. Reshape your data either using X.reshape(-1, 1) if it has a "
    "single feature or X.reshape(1, -1) if it contains a single sample.",
    3: "X is a 3-D array (shape {shape}); expected a 4-D array (n_images, height, width, "
    "channels). Add the channel axis of grayscale images with X[..., np.newaxis], or make a "
    "single RGB image a batch with X[np.newaxis].",
    "other": "X has shape {shape}; " + _EXPECTED,
}


def _looks_like_files(X):
    if isinstance(X, (list, tuple)):
        items = X
    elif getattr(X, "ndim", None) == 1 and getattr(getattr(X, "dtype", None), "kind", None) in ("O", "U", "S"):
        items = list(X)
    else:
        return False
    return len(items) > 0 and isinstance(items[0], FILE_TYPES)


def _file_column(X):
    """The column of a one-column DataFrame of image files, as a Series; else None."""
    if getattr(X, "ndim", None) != 2 or not hasattr(X, "iloc") or X.shape[1] != 1:
        return None
    column = X.iloc[:, 0]
    return column if _looks_like_files(column) else None


def _check_pixels(X):
    """A 4-D numeric array of 1- or 3-channel images with values in 0-255."""
    X = check_array(X, allow_nd=True, dtype="numeric", input_name="X")
    if X.dtype.kind not in "uif":
        raise TypeError(
            f"X has dtype {X.dtype}; expected pixel values as uint8, integers or floats."
        )
    if 0 in X.shape[1:3]:
        raise ValueError(
            f"X has shape {X.shape}: images of {X.shape[1]}x{X.shape[2]} pixels hold no "
            "pixels; each image needs a height and width of at least 1."
        )
    if X.shape[-1] not in (1, 3):
        raise ValueError(
            f"X has shape {X.shape}: {X.shape[-1]} channels in its last axis, expected 1 "
            "(grayscale) or 3 (RGB) in channels-last layout (n_images, height, width, channels). "
            "Channels-first arrays: X.transpose(0, 2, 3, 1); RGBA images: X[..., :3]."
        )
    if X.dtype != np.uint8:
        low, high = X.min(), X.max()
        if low < 0 or high > 255:
            raise ValueError(
                f"X holds pixel values from {low} to {high}; expected 0-255 as in uint8 images "
                "(as the networks' preprocessing expects). Rescale X to 0-255, "
                "e.g. X / 257 for 16-bit images."
            )
        if X.dtype.kind == "f" and X.size and high <= 1:
            warnings.warn(
                "X holds pixel values in 0-1, but skconvnet expects 0-255 as in uint8 images: "
                "multiply by 255 if these images were scaled.",
                UserWarning,
                stacklevel=4,
            )
    return X


def _rows(estimator, X, image_size, image_shape, reset):
    X = validate_data(estimator, X, reset=reset, dtype=(np.float64, np.float32))
    width = X.shape[1]
    if image_shape is None and width == image_size[0] * image_size[1] * 3:
        image_shape = (*image_size, 3)
    if image_shape is not None:
        if width != np.prod(image_shape):
            raise ValueError(
                f"X has {width} columns but image_shape={image_shape} flattens to "
                f"{int(np.prod(image_shape))} values per image."
            )
        return ArrayImages(_check_pixels(X.reshape(-1, *image_shape)), image_size)
    if reset:
        estimator.data_min_ = X.min(axis=0)
        estimator.data_max_ = X.max(axis=0)
    elif not hasattr(estimator, "data_min_"):
        raise ValueError(
            f"X has {width} columns, which is not a flattened image of image_size={image_size}, "
            "and this estimator was not fitted on such rows. Fit it on rows of the same width, "
            "or pass images."
        )
    return BandImages(X, estimator.data_min_, estimator.data_max_, image_size)
