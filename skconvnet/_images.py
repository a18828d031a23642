"""Every accepted ``X`` as a stream of resized RGB batches of float32 pixels in 0-255.

Three kinds of input, one interface (:class:`ImageSource`):

- a 4-D array ``(n, height, width, channels)``, channels 1 or 3;
- a 2-D array: rows that flatten an image (``image_shape``, or ``height * width * 3`` values
  for ``image_size``) are reshaped back; rows of any other width are tabular features, each
  column min-max scaled to 0-255 (range learned in ``fit``) and drawn as a horizontal band;
- a list or 1-D array of image files — paths, or their encoded contents as bytes — decoded
  with Pillow.

Every image is resized on its own, by one function, so that a row's pixels never depend on
its batch-mates and a picture gives the same pixels as a file, a uint8 array or a float array.
"""

import hashlib
import io
import os
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import sparse
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

_BILINEAR = Image.Resampling.BILINEAR


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
        what = (f"image file's contents ({len(X)} bytes)" if _is_encoded(X)
                else f"path ({X!r})")
        raise TypeError(f"X is a single {what}; pass a list of image files, e.g. [X].")
    if _looks_like_files(X):
        return FileImages(X, image_size)
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
            "or image file paths as a list or 1-D array (a DataFrame column as df['path'], "
            "not df[['path']])."
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
    return len(items) > 0 and isinstance(items[0], _FILE_TYPES)


_FILE_TYPES = (str, bytes, os.PathLike)


def _is_encoded(item):
    """Whether ``item`` holds an encoded image rather than a path: paths never hold a NUL
    byte, and JPEG, PNG, GIF, TIFF, BMP and WebP headers all do."""
    return isinstance(item, bytes) and b"\0" in item[:64]


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


class ImageSource:
    """``n_samples`` images, loaded as float32 batches ``(b, height, width, 3)``."""

    dtype = np.float32  # the dtype features of these images are returned in

    def __init__(self, n_samples, image_size):
        self.n_samples = n_samples
        self.image_size = image_size

    def load(self, indices):
        """The images at ``indices`` (an integer array), as one float32 batch."""
        raise NotImplementedError

    def keys(self):
        """One digest per image of what determines its pixels, to key cached activations."""
        raise NotImplementedError

    def stream(self, chunks, preprocess):
        """Yield each index array's images, loaded and ``preprocess``-ed (None for an empty one).

        The next two chunks are loaded in background threads while the caller works on this
        one, each split over all cores, so that decoding and preprocessing hide behind the
        network and the first batch is not decoded on one core while the rest wait. At most
        three chunks are held in memory.
        """
        workers = min(os.cpu_count() or 1, _MAX_LOADERS)
        loader = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="skconvnet-load")

        def submit(chunk):
            return [loader.submit(lambda part: preprocess(self.load(part)), part)
                    for part in np.array_split(chunk, workers) if len(part)]

        try:
            pending = deque(submit(chunk) for chunk in chunks[:_AHEAD])
            for following in chunks[_AHEAD:] + [None] * _AHEAD:
                parts = [future.result() for future in pending.popleft()]
                if following is not None:
                    pending.append(submit(following))
                yield np.concatenate(parts) if parts else None
        finally:  # on an error or an abandoned stream, decode nothing more
            loader.shutdown(wait=True, cancel_futures=True)


_MAX_LOADERS = 8  # decoding threads; more only contend with the network for cores
_AHEAD = 2  # chunks loaded ahead of the one in use


def _digest(*parts):
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part)
    return digest.digest()


class ArrayImages(ImageSource):
    def __init__(self, images, image_size):
        super().__init__(len(images), image_size)
        self.images = images
        if images.dtype == np.float64:
            self.dtype = np.float64

    def load(self, indices):
        return np.stack([resize(image, self.image_size) for image in self.images[indices]])

    def keys(self):
        kind = f"array {self.images.dtype.str} {self.images.shape[1:]}".encode()
        return [_digest(kind, np.ascontiguousarray(image).data) for image in self.images]


def resize(image, image_size):
    """One image ``(height, width, 1 or 3)`` as float32 RGB at ``image_size``, bilinear.

    8-bit pixels — decoded files, uint8 arrays, and other arrays holding whole numbers —
    are resized in Pillow's 8-bit modes, so that a picture gives the same pixels whichever
    way it comes; other values in its 32-bit float mode, channel by channel, unrounded.
    """
    height, width = image_size
    if image.shape[:2] != (height, width):
        if image.dtype == np.uint8 or np.array_equal(image, np.rint(image)):
            pixels = image.astype(np.uint8)
            pixels = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
            image = np.asarray(Image.fromarray(pixels).resize((width, height), _BILINEAR))
            image = image.reshape(height, width, -1)
        else:
            image = np.stack(
                [np.asarray(Image.fromarray(image[..., k].astype(np.float32))
                            .resize((width, height), _BILINEAR))
                 for k in range(image.shape[-1])],
                axis=-1,
            )
    image = image.astype(np.float32)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


class BandImages(ImageSource):
    """Tabular rows drawn as gray images: column ``j`` fills the ``j``-th horizontal band.

    Bands run left to right, stacked top to bottom, so that they survive the horizontal
    flips and shifts of training-time augmentation; with more columns than the image is high
    they wrap into several stacks side by side.
    """

    def __init__(self, X, data_min, data_max, image_size):
        super().__init__(len(X), image_size)
        self.X = X
        if X.dtype == np.float64:
            self.dtype = np.float64
        self.data_min = data_min
        span = data_max - data_min
        self.scale = 255.0 / np.where(span > 0, span, 1.0)
        self.pixel_column = _band_layout(X.shape[1], image_size)

    def load(self, indices):
        values = np.clip((self.X[indices] - self.data_min) * self.scale, 0, 255)
        blank = np.zeros((len(values), 1))
        gray = np.hstack([values, blank]).astype(np.float32)[:, self.pixel_column]
        return np.repeat(gray[..., np.newaxis], 3, axis=-1)

    def keys(self):
        drawing = _digest(b"bands", self.X.dtype.str.encode(), self.data_min.tobytes(),
                          self.scale.tobytes())
        return [_digest(drawing, np.ascontiguousarray(row).data) for row in self.X]


def _band_layout(n_columns, image_size):
    """``(height, width)`` array: which column each pixel shows (``n_columns`` = blank)."""
    height, width = image_size
    per_stack = min(n_columns, height)
    n_stacks = -(-n_columns // per_stack)
    if n_stacks > width:
        raise ValueError(
            f"X has {n_columns} columns, more than an image of image_size={image_size} can "
            f"show as bands ({height * width}). Increase image_size, or pass image_shape if "
            "the rows are flattened images."
        )
    band = np.arange(height) * per_stack // height
    stack = np.arange(width) * n_stacks // width
    column = stack[np.newaxis, :] * per_stack + band[:, np.newaxis]
    return np.minimum(column, n_columns)


class FileImages(ImageSource):
    """Image files — paths, or their encoded contents as bytes — decoded with Pillow,
    converted to RGB and resized.

    Every file is opened (header only) up front so that all missing or unreadable files are
    reported together; when a file fails there or while decoding (a truncated one), every
    file is decoded once to report all bad files together.
    """

    def __init__(self, files, image_size):
        files = list(files)
        for index, file in enumerate(files):
            if not isinstance(file, _FILE_TYPES):
                raise TypeError(
                    f"X[{index}] is {file!r} ({type(file).__name__}); a list of image files "
                    "must hold only paths (str, bytes or os.PathLike) or encoded images (bytes)."
                )
        super().__init__(len(files), image_size)
        self.files = files
        problems = [_header_problem(file) for file in files]
        if any(problems):  # name the truncated files too, at once
            problems = [problem or _decode_problem(file, image_size)
                        for file, problem in zip(files, problems)]
        _raise_for(files, problems)

    def keys(self):
        keys = []
        for file in self.files:
            if _is_encoded(file):
                keys.append(_digest(b"file", file))
                continue
            with open(file, "rb") as opened:
                keys.append(_digest(b"file", opened.read()))
        return keys

    def load(self, indices):
        try:
            return np.stack([decode(self.files[i], self.image_size) for i in indices])
        except _DECODE_ERRORS:  # decode every file, to name all the bad ones at once
            _raise_for(self.files, [_decode_problem(file, self.image_size)
                                    for file in self.files])
            raise


_DECODE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


def _decode_problem(file, image_size):
    try:
        decode(file, image_size)
    except _DECODE_ERRORS as error:
        return f"cannot be decoded ({error})"


def _open(file):
    return Image.open(io.BytesIO(file) if _is_encoded(file) else file)


def decode(file, image_size):
    """One image file (a path or encoded bytes) as float32 RGB pixels ``(height, width, 3)``
    in 0-255, resized as an array of its pixels is (:func:`resize`)."""
    height, width = image_size
    with _open(file) as image:
        # Decoded at full size, never in JPEG's draft mode: that reduced-scale decoding
        # would give other pixels (up to 5% other features) than the decoded array.
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode in _WIDE_GRAY:  # Pillow's RGB conversion would clip at 255
            levels = _gray_levels(np.asarray(image, dtype=np.float32), image.mode)
            return resize(levels[..., np.newaxis], image_size)
        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != (width, height):  # resize's 8-bit path, before leaving Pillow
            image = image.resize((width, height), _BILINEAR)
        return np.asarray(image, dtype=np.float32)


_WIDE_GRAY = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}


def _gray_levels(values, mode):
    """Gray levels of a 16-bit, 32-bit integer or float image, mapped to 0-255.

    16-bit images span 0-65535. Mode ``I`` (32-bit) holds 8-bit levels when converted
    from an 8-bit image and 16-bit levels when read from a 16-bit file: its range tells
    which. Floats are read as 0-255 levels. Anything else has no one meaning as pixels.
    """
    high, low = float(values.max()), float(values.min())
    if mode.startswith("I;16") or (mode == "I" and 255 < high <= 65535 and low >= 0):
        return values / 257
    if low < 0 or high > 255:
        raise ValueError(
            f"its {mode!r} pixels range from {low:g} to {high:g}, not 0-255 or 0-65535; "
            "convert it to an 8-bit or 16-bit image"
        )
    return values


def _header_problem(file):
    try:
        with _open(file):
            return None
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "is a directory, not an image file"
    except UnidentifiedImageError:
        if not _is_encoded(file) and os.path.getsize(file) == 0:
            return "is empty (0 bytes)"
        return "is not an image file Pillow can read"
    except Image.DecompressionBombError as error:
        return (f"is too large to decode safely ({error}); set PIL.Image.MAX_IMAGE_PIXELS "
                "higher if you trust this file")
    except OSError as error:
        return f"cannot be opened ({error})"


def _raise_for(files, problems):
    named = [(_name(index, file), problem)
             for index, (file, problem) in enumerate(zip(files, problems)) if problem]
    if not named:
        return
    lines = "\n".join(f"  {name}: {problem}" for name, problem in named)
    message = f"{len(named)} of {len(files)} image files cannot be used:\n{lines}"
    if all(problem == "no such file" for _, problem in named):
        raise FileNotFoundError(message)
    raise ValueError(message)


def _name(index, file):
    if _is_encoded(file):
        return f"X[{index}] (an encoded image of {len(file)} bytes)"
    return os.fsdecode(file)
