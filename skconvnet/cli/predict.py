"""``python -m skconvnet predict``: a saved model's predictions for photos, as CSV.

An ``.onnx`` file runs on ONNX Runtime with decoding by :func:`skconvnet.load_images`:
neither TensorFlow nor Keras is imported. A ``.skops`` or ``.joblib`` file of a fitted
estimator or pipeline runs as it is.
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
    files = photo_files(args.photos)
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
                    labels = {} if labels is None else {"labels": np.array(labels).astype(str)}
                    store.add(usable, values=values, **labels)
                progress.update(len(batch))
        written = [file for file in good if file not in bad]
        store.finish(lambda file: _write_csv(file, model, store, written))
    print(f"{len(written)} predictions written to {args.output}")
    if bad:
        print(f"{len(bad)} files skipped:")
        for file, problem in bad.items():
            print(f"  {os.fspath(file)}: {problem}")


def _write_csv(file, model, store, files):
    """Write the kept results of ``files`` to the binary ``file`` as CSV: a header, then one
    row per file (its path as given, the label of a classifier, the values)."""
    values = store.gather(files, "values") if files else np.empty((0, len(model.columns)))
    columns = model.columns or [f"feature_{i}" for i in range(values.shape[1])]  # no width
    labels = store.gather(files, "labels").tolist() if files and model.classifier else None
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(["path"] + (["label"] if model.classifier else []) + columns)
    for index, path in enumerate(files):
        writer.writerow([os.fspath(path)] + ([] if labels is None else [labels[index]])
                        + values[index].tolist())
    text.flush()
    text.detach()  # the file stays open for the store to flush to disk


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
    if suffix in (".skops", ".joblib"):
        return EstimatorModel(_load_estimator(path))
    raise ValueError(f"MODEL {path}: unknown kind of file {suffix!r}; give an .onnx file "
                     "(skconvnet.to_onnx), or a .skops or .joblib file of a fitted estimator.")


def _load_estimator(path):
    if path.suffix.lower() == ".joblib":
        import joblib

        return joblib.load(path)
    import skops.io as sio

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
    """An exported graph on ONNX Runtime: ``uint8`` images in."""

    def __init__(self, path):
        from ..compute.graphs import session

        require("onnxruntime", extra="onnx", purpose="predicting with an .onnx model")
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
        outputs = [output.name for output in self.session.get_outputs()]
        self.classifier = len(outputs) == 2
        last = self.session.get_outputs()[-1]
        width = last.shape[-1] if isinstance(last.shape[-1], int) else None
        if self.classifier:
            classes = metadata.get("classes") or list(range(width or 0))
            self.columns = [f"probability_{label}" for label in classes]
        else:
            names = metadata.get("feature_names")
            self.columns = names or [f"feature_{i}" for i in range(width or 0)]

    def predict(self, files):
        outputs = self.session.run(None, {self.input: load_images(files, self.image_size)})
        return (outputs[0].tolist() if self.classifier else None), np.asarray(outputs[-1])


class EstimatorModel:
    """A fitted estimator or pipeline: files in, as its ``predict_proba`` or ``transform``
    takes them."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.classifier = hasattr(estimator, "predict_proba")
        if self.classifier:
            self.columns = [f"probability_{label}" for label in estimator.classes_]
        else:
            self.columns = [str(name) for name in estimator.get_feature_names_out()]

    def predict(self, files):
        if self.classifier:
            proba = self.estimator.predict_proba(files)
            return self.estimator.classes_[proba.argmax(axis=1)].tolist(), proba
        return None, self.estimator.transform(files)


def photo_files(photos):
    """Image files from PHOTOS: folders (searched recursively), a text file listing paths
    (one per line, relative to the list's folder), or image files."""
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
            files += listed
        else:
            files.append(entry)
    if not files:
        raise ValueError("PHOTOS names no image files.")
    return files


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
