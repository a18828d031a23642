"""Image sources: images loaded batch by batch as float32 RGB pixels in 0-255, resized,
streamed a few batches ahead in background threads."""

import hashlib
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import decoding


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


class Part(ImageSource):
    """The images at ``indices`` of ``source``; ``keys`` is a shared list of the keys of all
    of ``source``'s images, filled on first use (so that files are read for keys once, for
    all parts)."""

    def __init__(self, source, indices, keys):
        super().__init__(len(indices), source.image_size)
        self.source, self.indices, self._keys = source, np.asarray(indices), keys
        self.dtype = source.dtype

    def load(self, indices):
        return self.source.load(self.indices[indices])

    def keys(self):
        if not self._keys:
            self._keys.extend(self.source.keys())
        return [self._keys[i] for i in self.indices]


def parts(source, size):
    """``source`` as consecutive :class:`Part` s of at most ``size`` images."""
    keys = []
    return [Part(source, np.arange(start, min(start + size, source.n_samples)), keys)
            for start in range(0, source.n_samples, size)]


class ArrayImages(ImageSource):
    def __init__(self, images, image_size):
        super().__init__(len(images), image_size)
        self.images = images
        if images.dtype == np.float64:
            self.dtype = np.float64

    def load(self, indices):
        return np.stack([decoding.resize(image, self.image_size)
                         for image in self.images[indices]])

    def keys(self):
        kind = f"array {self.images.dtype.str} {self.images.shape[1:]}".encode()
        return [_digest(kind, np.ascontiguousarray(image).data) for image in self.images]


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
        self.span = np.where(data_max > data_min, data_max - data_min, 1.0)
        with np.errstate(over="ignore"):
            self.scale = 255.0 / self.span
        # A span below ~1e-306 (subnormal) overflows 255 / span: such columns are divided.
        self.divided = ~np.isfinite(self.scale)
        self.pixel_column = _band_layout(X.shape[1], image_size)

    def load(self, indices):
        shifted = self.X[indices] - self.data_min
        with np.errstate(over="ignore", invalid="ignore"):
            values = shifted * self.scale
        if self.divided.any():
            values[:, self.divided] = shifted[:, self.divided] / self.span[self.divided] * 255
        values = np.clip(values, 0, 255)
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
            if not isinstance(file, decoding.FILE_TYPES):
                raise TypeError(
                    f"X[{index}] is {file!r} ({type(file).__name__}); a list of image files "
                    "must hold only paths (str, bytes or os.PathLike) or encoded images (bytes)."
                )
        super().__init__(len(files), image_size)
        self.files = files
        problems = [decoding.header_problem(file) for file in files]
        if any(problems):  # name the truncated files too, at once
            problems = [problem or decoding.decode_problem(file, image_size)
                        for file, problem in zip(files, problems)]
        decoding.raise_for(files, problems)

    def keys(self):
        keys = []
        for file in self.files:
            if decoding.is_encoded(file):
                keys.append(_digest(b"file", file))
                continue
            with open(file, "rb") as opened:
                keys.append(_digest(b"file", opened.read()))
        return keys

    def load(self, indices):
        try:
            return np.stack([decoding.decode(self.files[i], self.image_size) for i in indices])
        except decoding.DECODE_ERRORS:  # decode every file, to name all the bad ones at once
            decoding.raise_for(self.files, [decoding.decode_problem(file, self.image_size)
                                    for file in self.files])
            raise
