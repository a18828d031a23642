"""``python -m skconvnet predict``: a saved model's predictions for photos, as CSV.

An ``.onnx`` file runs on ONNX Runtime with decoding by :func:`skconvnet.load_images`:
neither TensorFlow nor Keras is imported. A ``.skops``, ``.joblib`` or ``.pkl`` file of a
fitted estimator or pipeline runs as it is.

The columns after ``path`` depend on what the model gives (its ``kind``, the same for an
``.onnx`` file and the estimator it was exported from):

- ``"classes"``: ``label``, then ``probability_<class>`` per class;
- ``"tags"``: ``labels``, the predicted tags joined by ``|`` (as
  :func:`skconvnet.load_image_csv` reads them back), then ``probability_<tag>`` per tag;
- ``"numbers"``: ``prediction`` for one target, ``target_0``, ``target_1`` ... for several;
- ``"features"``: the feature names (``feature_0`` ... where the file has none).
"""

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from .._optional import require
from ..datasets import load_images
from ..inputs import decoding
from .options import check_output
from .partial import PartialStore
from .progress import Progress


def predict_command(args):
    check_output(args.output, "--output")
    model = load_model(args.model)
    files = photo_files(args.photos, args.path_column)
    store = PartialStore(args.output, {"model": _digest(args.model)}, restart=args.restart)
    problems = {file: decoding.header_problem(file) for file in files}
    bad = {file: problem for file, problem in problems.items() if problem}
    if bad and not args.skip_bad:
        _refuse(bad, len(files))
    good = [file for file in files if file not in bad]
    with store.kept_on_failure():
        todo = store.resume(good)
        with Progress(len(good), already=len(good) - len(todo)) as progress:
            for start in range(0, len(todo), args.batch_size):
                batch = todo[start:start + args.batch_size]
                usable, labels, values, failed = _predict(model, batch)
                if failed and not args.skip_bad:
                    _refuse(failed, len(files))
                bad.update(failed)
                if usable:
                    labels = {} if labels is None else {"labels": np.array(labels, dtype=str)}
                    store.add(usable, values=values, **labels)
                progress.update(len(batch))
        written = [file for file in good if file not in bad]
        store.finish(lambda file: _write_csv(file, model, store, written))
    print(f"{len(written)} predictions written to {args.output}")
    if bad:
        print(f"{len(bad)} files skipped:")
        for file, problem in bad.items():
            print(f"  {os.fspath(file)}: {problem}")


#: The column of the predicted label(s), by kind of model.
LABEL_COLUMNS = {"classes": "label", "tags": "labels"}
#: What separates the predicted tags in the ``labels`` column.
TAG_SEPARATOR = "|"


def _write_csv(file, model, store, files):
    """Write the kept results of ``files`` to the binary ``file`` as CSV: a header, then one
    row per file (its path as given, the label(s) of a classifier, the values)."""
    values = store.gather(files, "values") if files else np.empty((0, model.width or 0))
    columns = value_columns(model.kind, model.names, values.shape[1])
    label = LABEL_COLUMNS.get(model.kind)
    labels = store.gather(files, "labels").tolist() if files and label else None
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(["path"] + ([label] if label else []) + columns)
    for index, path in enumerate(files):
        writer.writerow([os.fspath(path)] + ([] if labels is None else [labels[index]])
                        + values[index].tolist())
    text.flush()
    text.detach()  # the file stays open for the store to flush to disk


def value_columns(kind, names, width):
    """The names of the ``width`` value columns of a model of ``kind``, whose outputs are
    ``names`` (classes, tags, features; None where unknown)."""
    if kind in LABEL_COLUMNS:
        return [f"probability_{name}" for name in names]
    if names:
        return [str(name) for name in names]
    if kind == "numbers":
        return ["prediction"] if width == 1 else [f"target_{i}" for i in range(width)]
    return [f"feature_{i}" for i in range(width)]


def _joined_tags(indicator, tags):
    """Each row's tags (where ``indicator`` is 1), joined by :data:`TAG_SEPARATOR`."""
    return [TAG_SEPARATOR.join(str(tag) for tag, on in zip(tags, row) if on)
            for row in np.asarray(indicator)]


def _predict(model, batch):
    """``(files predicted, their labels or None, their values, {file: problem} of those
    that fail only when decoded (truncated))``."""
    try:
        return batch, *model.predict(batch), {}
    except (OSError, ValueError):
        usable, failed = _decodable(batch)
        if not failed:
            raise
        return usable, *(model.predict(usable) if usable else (None, None)), failed


def _digest(path):
    """The model file's content digest: a rerun with another model computes everything."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_model(path):
    """The model in ``path``: an ``.onnx`` graph, or a ``.skops``/``.joblib`` estimator."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MODEL {path}: no such file. Give an .onnx, .skops or "
                                ".joblib file.")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return OnnxModel(path)
    if suffix in (".skops", ".joblib", ".pkl", ".pickle"):
        return EstimatorModel(_load_estimator(path))
    raise ValueError(f"MODEL {path}: unknown kind of file {suffix!r}; give an .onnx file "
                     "(skconvnet.to_onnx), or a .skops, .joblib or .pkl file of a fitted "
                     "estimator.")


def _load_estimator(path):
    if path.suffix.lower() != ".skops":  # joblib reads plain pickles too
        import joblib

        return joblib.load(path)
    sio = require("skops.io", extra="skops", purpose="reading a .skops model")

    from .._persistence import TRUSTED_TYPES

    untrusted = sio.get_untrusted_types(file=path)
    unknown = [name for name in untrusted
               if name not in TRUSTED_TYPES and not name.startswith("sklearn.")]
    if unknown:
        raise ValueError(f"MODEL {path} holds types that are neither skconvnet's nor "
                         f"scikit-learn's: {', '.join(unknown)}. Load it with skops.io.load "
                         "and trust them yourself if you know them.")
    return sio.load(path, trusted=untrusted)


class OnnxModel:
    """An exported graph on ONNX Runtime: ``uint8`` images in.

    Its ``kind`` and the names of its columns come from the metadata
    :func:`skconvnet.to_onnx` writes; a file without them is read by its outputs.
    """

    def __init__(self, path):
        from ..compute.graphs import session

        require("onnxruntime", extra="serve", purpose="predicting with an .onnx model")
        try:
            self.session = session(os.fspath(path))
        except Exception as error:
            raise ValueError(f"MODEL {path} is not an ONNX graph ONNX Runtime can run: "
                             f"{str(error).splitlines()[0]}") from None
        metadata = {key[len("skconvnet."):]: json.loads(value) for key, value
                    in self.session.get_modelmeta().custom_metadata_map.items()
                    if key.startswith("skconvnet.")}
        (graph_input,) = self.session.get_inputs()
        height, width = graph_input.shape[1:3]
        self.image_size = tuple(metadata.get("image_size", (height, width)))
        if not all(isinstance(size, int) for size in self.image_size):
            raise ValueError(f"MODEL {path} takes images of no fixed size "
                             f"({graph_input.shape}); export it with skconvnet.to_onnx.")
        self.input = graph_input.name
        outputs = self.session.get_outputs()
        self.kind = metadata.get("kind") or _graph_kind(outputs)
        last = outputs[-1].shape
        self.width = last[-1] if len(last) == 2 and isinstance(last[-1], int) else None
        if self.kind in LABEL_COLUMNS:
            self.names = metadata.get("classes") or list(range(self.width or 0))
        else:
            self.names = metadata.get("feature_names") or metadata.get("target_names")

    def predict(self, files):
        outputs = self.session.run(None, {self.input: load_images(files, self.image_size)})
        values = np.asarray(outputs[-1]).reshape(len(files), -1)
        if self.kind == "tags":
            return _joined_tags(outputs[0], self.names), values
        return (outputs[0].tolist() if self.kind == "classes" else None), values


def _graph_kind(outputs):
    """The kind of a graph's outputs, for files written without ``skconvnet.kind``."""
    if len(outputs) == 2:
        return "tags" if len(outputs[0].shape) == 2 else "classes"
    return "numbers" if outputs[0].name == "variable" else "features"


class EstimatorModel:
    """A fitted estimator or pipeline: files in, as its ``predict_proba`` (classes, tags),
    ``predict`` (numbers) or ``transform`` (features) takes them."""

    def __init__(self, estimator):
        from ..export.converters import output_kind

        self.estimator = estimator
        self.kind = output_kind(estimator)
        self.width = None
        if self.kind in LABEL_COLUMNS:
            self.names = list(estimator.classes_)
        elif self.kind == "features":
            self.names = list(estimator.get_feature_names_out())
        else:
            self.names = None

    def predict(self, files):
        if self.kind == "numbers":
            return None, np.asarray(self.estimator.predict(files)).reshape(len(files), -1)
        if self.kind == "features":
            return None, self.estimator.transform(files)
        proba = self.estimator.predict_proba(files)
        if self.kind == "tags":  # as the classifier's predict: each tag above one half
            return _joined_tags(proba > 0.5, self.names), proba
        return self.estimator.classes_[proba.argmax(axis=1)].tolist(), proba


def photo_files(photos, path_column=None):
    """Image files from PHOTOS: folders (searched recursively), a text file listing paths
    (one per line, relative to the list's folder), a CSV file with a header (its column of
    paths, as :func:`skconvnet.load_image_csv` finds it), or image files.

    A ``.csv`` file without a header (its first cell names an image file: one that exists,
    or a name ending in an image extension) lists the paths in its first column; with a
    header (or a ``path_column``), in its column ``path_column`` (None: found by its name).
    """
    extensions = set(_registered_extensions())
    files = []
    for entry in map(Path, photos):
        if entry.is_dir():
            found = sorted(path for path in entry.rglob("*")
                           if path.is_file() and path.suffix.lower() in extensions
                           and not any(part.startswith(".")
                                       for part in path.relative_to(entry).parts))
            if not found:
                raise ValueError(f"PHOTOS {entry}: the folder holds no image files.")
            files += found
        elif entry.suffix.lower() in (".txt", ".csv", ".lst"):
            if not entry.is_file():
                raise FileNotFoundError(f"PHOTOS {entry}: no such list of paths.")
            lines = [line.strip() for line in entry.read_text().splitlines()]
            listed = [entry.parent / line for line in lines
                      if line and not line.startswith("#")]
            if not listed:
                raise ValueError(f"PHOTOS {entry}: the list of paths names no image files.")
            if entry.suffix.lower() == ".csv":  # its first column, or a header's path column
                first = entry.parent / next(csv.reader([lines[0]]))[0].strip()
                listed = (_csv_paths(entry, path_column)
                          if path_column or _names_a_column(first, extensions)
                          else [entry.parent / row[0].strip() for row in csv.reader(
                              line for line in lines if line and not line.startswith("#"))])
            files += listed
        else:
            files.append(entry)
    if not files:
        raise ValueError("PHOTOS names no image files.")
    return files


def _names_a_column(first, extensions):
    """Whether the first line of a ``.csv`` list of photos is a header: it names no image
    file."""
    return not first.is_file() and first.suffix.lower() not in extensions


def _csv_paths(csv, path_column):
    """The image files of a CSV file's column of paths (relative to its folder), every one
    checked to exist; the labels beside them are not read."""
    from ..datasets import _column_index, _path_column, _paths, _read_csv

    name = os.fspath(csv)
    header, rows = _read_csv(csv, ",")
    where = _column_index(header, name)
    column = _path_column(header, path_column, where)
    return _paths(rows, where[column], column, csv.parent, None, name)


def _registered_extensions():
    from PIL import Image

    return Image.registered_extensions()


def _decodable(files):
    """``(files that decode, {file: problem})`` of a batch."""
    problems = {file: decoding.decode_problem(file, (8, 8)) for file in files}
    return ([file for file in files if not problems[file]],
            {file: problem for file, problem in problems.items() if problem})


def _refuse(bad, total):
    lines = "\n".join(f"  {os.fspath(file)}: {problem}" for file, problem in bad.items())
    raise ValueError(f"{len(bad)} of {total} image files cannot be used (pass --skip-bad to "
                     f"skip them):\n{lines}")
