"""Labelled photos from a folder of one sub-folder per class, or from a CSV file."""

import csv as _csv
import os
import re
from collections import namedtuple
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.preprocessing import MultiLabelBinarizer
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


class LabelledImages(namedtuple("LabelledImages", ["paths", "y"])):
    """The pair ``(paths, y)`` that :func:`load_image_csv` reads, with the kind of target.

    A tuple of two: ``paths, y = load_image_csv(...)`` unpacks it.

    Attributes
    ----------
    paths : list of pathlib.Path
        The image files, in the CSV's order.
    y : ndarray
        The targets (see :func:`load_image_csv`).
    kind : {"class", "tags", "numbers"}
        The kind of target ``y`` holds: inferred, or the ``kind`` passed.
    target_names : list
        As in scikit-learn's datasets: the classes (sorted; str or int, as in ``y``) for
        ``"class"``; the names of the columns of ``y`` for ``"tags"`` (one per tag) and
        ``"numbers"`` (the label columns).
    """

    def __new__(cls, paths, y, kind, target_names):
        read = super().__new__(cls, paths, y)
        read.kind, read.target_names = kind, target_names
        return read

    def __getnewargs__(self):
        return (*self, self.kind, self.target_names)

    def __repr__(self):
        return (f"LabelledImages(<{len(self.paths)} paths>, y of shape {np.shape(self.y)}, "
                f"kind={self.kind!r}, target_names={self.target_names!r})")


_KINDS = ("auto", "class", "tags", "numbers")
# Names of the path column, compared ignoring case, in the header's order.
_PATH_COLUMNS = ("path", "file", "filename", "file_name", "filepath", "image", "image_path",
                 "image_name", "image_id", "img", "id")
_TAG_SEPARATORS = ("|", ";", ",")
_INTEGER = re.compile(r"[+-]?\d+")
_SHOWN = 10  # missing files named in an error


def load_image_csv(csv, *, path_column=None, label_columns=None, kind="auto",
                   tag_separator=None, image_folder=None, extension=None, delimiter=","):
    """Image file paths and their targets from a CSV file: one row per image.

    The layout most labelled photo collections come in (Kaggle's): a header row naming the
    columns, then a column of image files and one or more columns of labels::

        path,label          path,tags           path,cat,dog        path,width,height
        a.jpg,cat           a.jpg,cat|dog       a.jpg,1,1           a.jpg,2.5,1.25
        b.jpg,dog           b.jpg,dog           b.jpg,0,1           b.jpg,3.0,2.5

    The kind of target is inferred from the label columns, as scikit-learn's
    ``type_of_target`` reads ``y``, and can be set with ``kind``:

    - ``"class"`` — one column of class names or whole numbers (written without a decimal
      point): ``y`` is 1-D, of str or of int;
    - ``"tags"`` (multi-label) — one column of tags separated by ``tag_separator``, or several
      columns of 0 and 1, one per tag: ``y`` is scikit-learn's multi-label indicator, a 2-D
      int array of 0 and 1 with one column per tag (``target_names``). An empty cell of a
      column of separated tags is an image with none of the tags;
    - ``"numbers"`` (regression) — one or more columns of numbers, at least one with a decimal
      point when inferred: ``y`` is float64, of shape ``(n,)`` for one column, ``(n, k)`` for
      several. Whole numbers are inferred as classes: pass ``kind="numbers"`` for counts or
      ages.

    Inferred with ``kind="auto"``: several columns all of 0 and 1 are tags, several columns of
    numbers are numbers; one column of whole numbers is classes, of other numbers numbers,
    of text holding ``|``, ``;`` or ``,`` tags, of other text classes (one column of 0 and 1
    is binary classes, as scikit-learn reads it). The returned pair carries the kind in its
    ``kind`` attribute: print it to see what was inferred.

    Parameters
    ----------
    csv : str or os.PathLike
        The CSV file, UTF-8 (a byte-order mark, as Excel writes, is skipped). Blank rows are
        skipped; rows shorter than the header are padded with empty cells.
    path_column : str, default=None
        The column of image files. ``None``: the first column named (ignoring case) ``path``,
        ``file``, ``filename``, ``file_name``, ``filepath``, ``image``, ``image_path``,
        ``image_name``, ``image_id``, ``img`` or ``id``, else the first named column.
    label_columns : str or list of str, default=None
        The column(s) of labels. ``None``: every other column with a name (an unnamed one,
        such as the index pandas writes, is left out).
    kind : {"auto", "class", "tags", "numbers"}, default="auto"
        The kind of target, see above.
    tag_separator : str, default=None
        What separates the tags in a single column of tags. ``None``: the first of ``|``,
        ``;`` and ``,`` that appears in the column; with ``kind="tags"`` and none of them,
        whitespace (Kaggle's "haze primary"). Class names may hold spaces ("golden
        retriever"): whitespace never makes tags unless ``kind="tags"`` or
        ``tag_separator=" "``.
    image_folder : str or os.PathLike, default=None
        The folder the relative paths of the CSV are relative to (absolute paths stay as they
        are): for CSVs beside a folder of images, as Kaggle's ``train.csv`` and ``train/``.
        ``None``: the CSV's own folder.
    extension : str, default=None
        Appended to every value of the path column, for CSVs that name images by an id
        without extension: ``extension=".jpg"`` reads ``0a1b2c`` as ``0a1b2c.jpg``.
    delimiter : str, default=","
        The character between cells: ``"\\t"`` for TSV, ``";"`` for some spreadsheets.

    Returns
    -------
    LabelledImages
        The pair ``(paths, y)`` (it unpacks as such), with ``kind`` and ``target_names``:

        paths : list of pathlib.Path
            The image files, in the CSV's order; each is checked to exist.
        y : ndarray of shape (n_images,) or (n_images, n_targets)
            The targets, as described above for each ``kind``.
        kind : {"class", "tags", "numbers"}
            The kind of target: inferred, or the ``kind`` passed.
        target_names : list
            The classes (sorted) for ``"class"``; the names of ``y``'s columns for
            ``"tags"`` (the tags) and ``"numbers"`` (the label columns).

    See Also
    --------
    load_image_folder : Paths and labels from one sub-folder per class.

    Notes
    -----
    Errors name the CSV file and the row, counted as a spreadsheet shows it (the header is
    row 1): a missing image file (every missing file, up to ten), an empty label, a value
    that is not a number in a numeric target, a column name that is not in the header.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from PIL import Image
    >>> from skconvnet import load_image_csv
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ["1.jpg", "2.jpg", "3.png"]:
    ...     Image.new("RGB", (8, 8)).save(folder / name)
    >>> _ = (folder / "classes.csv").write_text("path,label\\n1.jpg,cat\\n2.jpg,dog\\n3.png,cat\\n")
    >>> paths, y = load_image_csv(folder / "classes.csv")
    >>> [p.name for p in paths], y.tolist()
    (['1.jpg', '2.jpg', '3.png'], ['cat', 'dog', 'cat'])
    >>> _ = (folder / "tags.csv").write_text("path,tags\\n1.jpg,cat|dog\\n2.jpg,dog\\n3.png,\\n")
    >>> read = load_image_csv(folder / "tags.csv")
    >>> read.kind, read.target_names, read.y.tolist()
    ('tags', ['cat', 'dog'], [[1, 1], [0, 1], [0, 0]])
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}, got {kind!r}.")
    if tag_separator is not None and (not isinstance(tag_separator, str) or not tag_separator):
        raise ValueError(
            f"tag_separator must be a non-empty string such as '|', or None, got "
            f"{tag_separator!r}."
        )
    if extension is not None and not isinstance(extension, str):
        raise ValueError(f"extension must be a string such as '.jpg', got {extension!r}.")
    csv = Path(csv)
    if not csv.is_file():
        what = "is a folder" if csv.is_dir() else "does not exist"
        raise FileNotFoundError(f"{os.fspath(csv)} {what}: pass a CSV file of image paths "
                                "and labels.")
    name = os.fspath(csv)
    header, rows = _read_csv(csv, delimiter)
    where = _column_index(header, name)
    path_column = _path_column(header, path_column, where)
    label_columns = _label_columns(header, path_column, label_columns, where, name)
    folder = csv.parent if image_folder is None else Path(image_folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image_folder={os.fspath(image_folder)!r} is not a folder: pass the folder that "
            "holds the images."
        )
    paths = _paths(rows, where[path_column], path_column, folder, extension, name)
    cells = [[row[where[column]] for column in label_columns] for _, row in rows]
    numbers = [number for number, _ in rows]
    kind = _infer_kind(cells, label_columns, tag_separator, name) if kind == "auto" else kind
    if kind == "numbers":
        y = _numbers(cells, numbers, label_columns, name)
        return LabelledImages(paths, y, kind, list(label_columns))
    if kind == "class":
        y = _classes(cells, numbers, label_columns, name)
        return LabelledImages(paths, y, kind, np.unique(y).tolist())
    y, tags = _tags(cells, numbers, label_columns, tag_separator, name)
    return LabelledImages(paths, y, kind, tags)


def _read_csv(csv, delimiter):
    """The stripped header and ``(row number, cells)`` of each non-blank row after it."""
    name = os.fspath(csv)
    try:
        with open(csv, newline="", encoding="utf-8-sig") as file:
            records = list(_csv.reader(file, delimiter=delimiter))
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{name} is not UTF-8 text ({error}); save it as UTF-8 (\"CSV UTF-8\" in "
            "spreadsheets)."
        ) from None
    rows = [(number, [cell.strip() for cell in record])
            for number, record in enumerate(records, start=1) if any(c.strip() for c in record)]
    if not rows:
        raise ValueError(
            f"{name} is empty: it needs a header row naming its columns (e.g. path,label) "
            "and one row per image."
        )
    (_, header), rows = rows[0], rows[1:]
    if not rows:
        raise ValueError(f"{name} has a header row but no rows of images below it.")
    width = len(header)
    for number, cells in rows:
        if len(cells) > width and any(cells[width:]):
            raise ValueError(
                f"{name}, row {number}: {len(cells)} cells, but the header names {width} "
                f"columns. Quote cells that hold the delimiter {delimiter!r}, or pass the "
                "file's delimiter= ."
            )
        cells[:] = (cells + [""] * width)[:width]
    return header, rows


def _column_index(header, name):
    """``{column name: index}``, for the named columns of the header."""
    where = {}
    for index, column in enumerate(header):
        if column in where:
            raise ValueError(
                f"{name} names column {column!r} twice in its header; give each column its "
                "own name."
            )
        if column:
            where[column] = index
    return where


def _check_column(column, where, parameter):
    if not isinstance(column, str) or column not in where:
        raise ValueError(
            f"{parameter}={column!r} is not a column of the CSV file; its columns are "
            f"{', '.join(map(repr, where))}."
        )


def _path_column(header, path_column, where):
    if path_column is not None:
        _check_column(path_column, where, "path_column")
        return path_column
    named = [column for column in header if column]
    known = [column for column in named if column.lower() in _PATH_COLUMNS]
    return (known or named)[0]


def _label_columns(header, path_column, label_columns, where, name):
    if label_columns is None:
        label_columns = [column for column in header if column and column != path_column]
        if not label_columns:
            raise ValueError(
                f"{name} has no column of labels beside its column of paths {path_column!r}: "
                "add one (e.g. path,label)."
            )
        return label_columns
    label_columns = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    if not label_columns:
        raise ValueError("label_columns is empty: name at least one column of labels.")
    for column in label_columns:
        _check_column(column, where, "label_columns")
        if column == path_column:
            raise ValueError(
                f"label_columns names the column of paths {path_column!r}; pass the columns "
                "of labels, or path_column= the column of image files."
            )
    return label_columns


def _paths(rows, index, path_column, folder, extension, name):
    paths, missing = [], []
    for number, cells in rows:
        value = cells[index]
        if not value:
            raise ValueError(f"{name}, row {number}: the image path in column "
                             f"{path_column!r} is empty.")
        path = folder / (value + (extension or ""))
        if not path.is_file():
            shown = os.fspath(path)
            missing.append(f"  row {number}: {value}" + ("" if shown == value else f" ({shown})"))
        paths.append(path)
    if missing:
        more = len(missing) - _SHOWN
        lines = "\n".join(missing[:_SHOWN] + ([f"  ... and {more} more"] if more > 0 else []))
        raise FileNotFoundError(
            f"{name}: {len(missing)} of {len(rows)} image files do not exist:\n{lines}\n"
            f"Relative paths are read from {os.fspath(folder)}: pass image_folder= the folder "
            "that holds the images, or extension= if the CSV names them without one."
        )
    return paths


def _is_number(text):
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def _infer_kind(cells, label_columns, tag_separator, name):
    values = [value for row in cells for value in row if value]
    if len(label_columns) > 1:
        if all(value in ("0", "1") for value in values):
            return "tags"
        if all(_is_number(value) for value in values):
            return "numbers"
        raise ValueError(
            f"{name}: the label columns {', '.join(map(repr, label_columns))} hold neither "
            "only 0 and 1 (one column per tag) nor only numbers. Pass label_columns= the one "
            "column of classes, or kind=."
        )
    if values and all(_INTEGER.fullmatch(value) for value in values):
        return "class"
    if values and all(_is_number(value) for value in values):
        return "numbers"
    separators = _TAG_SEPARATORS if tag_separator is None else (tag_separator,)
    if any(separator in value for value in values for separator in separators):
        return "tags"
    return "class"


def _require_labels(cells, numbers, label_columns, name, fix):
    for number, row in zip(numbers, cells):
        for column, value in zip(label_columns, row):
            if not value:
                raise ValueError(
                    f"{name}, row {number}: the label in column {column!r} is empty; {fix}"
                )


def _numbers(cells, numbers, label_columns, name):
    _require_labels(cells, numbers, label_columns, name,
                    "fill it in or remove the row.")
    for number, row in zip(numbers, cells):
        for column, value in zip(label_columns, row):
            if not _is_number(value):
                raise ValueError(
                    f"{name}, row {number}: {value!r} in column {column!r} is not a finite "
                    "number, and kind='numbers' reads every label column as numbers. Fix the "
                    "value, or pass label_columns= only the numeric columns."
                )
    y = np.array([[float(value) for value in row] for row in cells], dtype=np.float64)
    return y[:, 0] if len(label_columns) == 1 else y


def _classes(cells, numbers, label_columns, name):
    if len(label_columns) > 1:
        raise ValueError(
            f"kind='class' reads one column of classes, got {len(label_columns)} label "
            f"columns ({', '.join(map(repr, label_columns))}): pass label_columns= the column "
            "of classes."
        )
    _require_labels(cells, numbers, label_columns, name,
                    "fill in the class of this image or remove the row.")
    labels = [row[0] for row in cells]
    if all(_INTEGER.fullmatch(label) for label in labels):
        return np.array([int(label) for label in labels], dtype=np.int64)
    return np.array(labels)


def _tags(cells, numbers, label_columns, tag_separator, name):
    values = [value for row in cells for value in row if value]
    if all(value in ("0", "1") for value in values):  # one column per tag
        _require_labels(cells, numbers, label_columns, name,
                        "write 1 if the image has this tag, 0 if not.")
        return np.array(cells, dtype=np.int64), list(label_columns)
    if len(label_columns) > 1:
        number, column, value = next(
            (number, column, value) for number, row in zip(numbers, cells)
            for column, value in zip(label_columns, row) if value not in ("0", "1"))
        raise ValueError(
            f"{name}, row {number}: {value!r} in column {column!r} is not 0 or 1. kind='tags' "
            "reads one column of separated tags, or one column of 0 and 1 per tag."
        )
    if tag_separator is None:
        tag_separator = next((separator for separator in _TAG_SEPARATORS
                              if any(separator in value for value in values)), None)
    tag_sets = [[tag.strip() for tag in row[0].split(tag_separator) if tag.strip()]
                for row in cells]
    binarizer = MultiLabelBinarizer()
    y = binarizer.fit_transform(tag_sets)
    return y, binarizer.classes_.tolist()



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
