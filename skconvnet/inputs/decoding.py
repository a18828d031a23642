"""Decoding image files (paths or encoded bytes) with Pillow, and resizing images.

Every image is resized on its own, by one function, so that a row's pixels never depend on
its batch-mates and a picture gives the same pixels as a file, a uint8 array or a float array.
"""

import io
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_BILINEAR = Image.Resampling.BILINEAR


FILE_TYPES = (str, bytes, os.PathLike)


def is_encoded(item):
    """Whether ``item`` holds an encoded image rather than a path: paths never hold a NUL
    byte, and JPEG, PNG, GIF, TIFF, BMP and WebP headers all do."""
    return isinstance(item, bytes) and b"\0" in item[:64]


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
            image = np.asarray(_resized(Image.fromarray(pixels), image_size))
            image = image.reshape(height, width, -1)
        else:
            image = np.stack(
                [np.asarray(_resized(Image.fromarray(image[..., k].astype(np.float32)),
                                     image_size))
                 for k in range(image.shape[-1])],
                axis=-1,
            )
    image = image.astype(np.float32)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def _resized(image, image_size):
    """A Pillow image at ``(height, width)``, bilinear: the one resize of every input."""
    height, width = image_size
    return image.resize((width, height), _BILINEAR)


DECODE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


def decode_problem(file, image_size):
    try:
        decode(file, image_size)
    except DECODE_ERRORS as error:
        return f"cannot be decoded ({error})"


def open_image(file):
    """Pillow's lazy image of a file: a path or its encoded bytes."""
    return Image.open(io.BytesIO(file) if is_encoded(file) else file)


def decode(file, image_size):
    """One image file (a path or encoded bytes) as float32 RGB pixels ``(height, width, 3)``
    in 0-255, resized as an array of its pixels is (:func:`resize`)."""
    with open_image(file) as image:
        # Decoded at full size, never in JPEG's draft mode: that reduced-scale decoding
        # would give other pixels (up to 5% other features) than the decoded array.
        ImageOps.exif_transpose(image, in_place=True)
        if image.mode in _WIDE_GRAY:  # Pillow's RGB conversion would clip at 255
            levels = _gray_levels(np.asarray(image, dtype=np.float32), image.mode)
            return resize(levels[..., np.newaxis], image_size)
        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != image_size[::-1]:  # resize's 8-bit path, before leaving Pillow
            image = _resized(image, image_size)
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


def header_problem(file):
    try:
        with open_image(file):
            return None
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "is a directory, not an image file"
    except UnidentifiedImageError:
        if not is_encoded(file) and os.path.getsize(file) == 0:
            return "is empty (0 bytes)"
        return "is not an image file Pillow can read"
    except Image.DecompressionBombError as error:
        return (f"is too large to decode safely ({error}); set PIL.Image.MAX_IMAGE_PIXELS "
                "higher if you trust this file")
    except OSError as error:
        return f"cannot be opened ({error})"


def raise_for(files, problems):
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
    if is_encoded(file):
        return f"X[{index}] (an encoded image of {len(file)} bytes)"
    return os.fsdecode(file)
