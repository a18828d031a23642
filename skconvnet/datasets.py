"""Labelled photos from a folder: one sub-folder per class."""

import os
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.utils import check_random_state


def load_image_folder(directory, *, max_per_class=None, random_state=0):
    """Image file paths and their labels from one sub-folder per class.

    The layout ``keras.utils.image_dataset_from_directory`` reads: ``directory/cats/*.jpg``,
    ``directory/dogs/*.jpg`` ... Sub-folders are classes (sorted by name); files Pillow does
    not recognise by their extension, and hidden files and folders, are skipped.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder holding one sub-folder per class.
    max_per_class : int, default=None
        Keep at most this many images of each class, drawn at random (``random_state``).
    random_state : int, RandomState instance or None, default=0
        Seeds the draw of ``max_per_class`` images.

    Returns
    -------
    paths : list of pathlib.Path
        Sorted by class, then by file name.
    labels : ndarray of str
        The class (sub-folder name) of each path.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> from skconvnet import load_image_folder
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["cats/1.jpg", "cats/2.jpg", "dogs/1.png"]:
    ...     (folder / name).parent.mkdir(exist_ok=True)
    ...     Image.new("RGB", (8, 8)).save(folder / name)
    >>> _ = (folder / "dogs" / "notes.txt").write_text("not an image")
    >>> paths, labels = load_image_folder(folder)
    >>> [p.name for p in paths], labels.tolist()
    (['1.jpg', '2.jpg', '1.png'], ['cats', 'cats', 'dogs'])
    """
    if max_per_class is not None and (
        not isinstance(max_per_class, int) or isinstance(max_per_class, bool)
        or max_per_class < 1
    ):
        raise ValueError(f"max_per_class must be a positive integer, got {max_per_class!r}.")
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise FileNotFoundError(f"{os.fspath(directory)} {what}: pass a folder holding one "
                                "sub-folder of images per class.")
    classes = sorted(p for p in directory.iterdir() if p.is_dir() and not _hidden(p))
    if not classes:
        raise ValueError(
            f"{os.fspath(directory)} has no class sub-folders: put the images of each class in a "
            "sub-folder named after it, e.g. cats/ and dogs/."
        )
    rng = check_random_state(random_state)
    extensions = set(Image.registered_extensions())
    paths, labels = [], []
    for folder in classes:
        files = sorted(
            p for p in folder.iterdir()
            if p.is_file() and not _hidden(p) and p.suffix.lower() in extensions
        )
        if not files:
            raise ValueError(
                f"Class folder {os.fspath(folder)} holds no image files; add images to it or "
                "remove it."
            )
        if max_per_class is not None and len(files) > max_per_class:
            chosen = rng.choice(len(files), size=max_per_class, replace=False)
            files = [files[i] for i in np.sort(chosen)]
        paths += files
        labels += [folder.name] * len(files)
    return paths, np.array(labels)


def _hidden(path):
    return path.name.startswith(".")


def load_images(images, image_size):
    """Images decoded and resized exactly as the estimators do, as ``uint8`` pixels.

    What an exported ONNX graph takes (:func:`skconvnet.to_onnx`): decoding and resizing
    stay outside the graph, and this function gives the pixels ``transform`` and
    ``predict`` use. It imports no deep-learning backend, so that a server needs only
    Pillow, NumPy and ONNX Runtime.

    Parameters
    ----------
    images : list of image files, or array of shape (n_images, height, width, channels)
        Paths (``str`` or ``os.PathLike``) or encoded contents (``bytes``) of JPEG, PNG ...
        files; or uint8 (or whole-number) pixels in 0-255, 1 or 3 channels.
    image_size : (int, int) or int
        ``(height, width)`` to resize to: the estimator's ``image_size``.

    Returns
    -------
    pixels : ndarray of shape (n_images, height, width, 3), dtype uint8
        RGB. 16-bit images are rounded to 8 bits.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> from skconvnet import load_images
    >>> png = io.BytesIO()
    >>> Image.new("RGB", (64, 48), (200, 100, 50)).save(png, format="PNG")
    >>> pixels = load_images([png.getvalue()], (32, 32))
    >>> pixels.shape, pixels.dtype, pixels[0, 0, 0].tolist()
    ((1, 32, 32, 3), dtype('uint8'), [200, 100, 50])
    """
    from .inputs.adapters import check_image_size, image_source

    size = check_image_size(image_size)
    if np.ndim(images) == 2 and not isinstance(images, (list, tuple)):
        raise ValueError(
            f"images has shape {np.shape(images)}: load_images takes image files or a 4-D "
            "array (n_images, height, width, channels); reshape flattened rows first."
        )
    source = image_source(None, images, image_size=size, reset=False)
    pixels = source.load(np.arange(source.n_samples))
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
