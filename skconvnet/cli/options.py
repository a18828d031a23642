"""What the commands share: labelled photos drawn from a folder or a CSV file, their
features, output files."""

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from ..backbones import specs
from ..backbones.weights import resolve_weights
from ..datasets import LabelledImages, load_image_csv, load_image_folder

#: What each kind of target is called in the lines the commands print.
KIND_NAMES = {"class": "classes", "tags": "tags", "numbers": "numbers"}
_NAMES_SHOWN = 8  # target names in the line a CSV's photos are announced with


@dataclass(frozen=True)
class PhotoOptions:
    """How a command draws photos from a folder and turns them into features.

    Attributes
    ----------
    weights : str
        ``--weights`` as given: ``"imagenet"``, ``"none"`` or a weights file, or a comma list
        of them, one per backbone.
    pooling : {"avg", "max", "flatten"}
        ``--pooling``.
    image_size : int or None
        ``--image-size``; None for each backbone's customary size.
    max_per_class : int or None
        ``--max-per-class``; None for every photo.
    precision : {"float32", "bfloat16"}
        ``--precision``.
    batch_size : int or None
        ``--batch-size``; None for 32 images per forward pass, and the fine-tuned
        classifier's own default.
    random_state : int
        ``--random-state``: seeds the sampling (and, in ``evaluate`` and ``audit``, the
        folds; in ``evaluate``, fine-tuning).
    kind : {"auto", "class", "tags", "numbers"}
        ``--kind``: the kind of target of a CSV file (a folder of class folders holds
        classes).
    path_column : str or None
        ``--path-column``: a CSV file's column of image files; None to find it by name.
    label_columns : str or None
        ``--label-columns``: a CSV file's columns of labels, comma-separated; None for every
        other column.
    """

    weights: str
    pooling: str
    image_size: int | None
    max_per_class: int | None
    precision: str
    batch_size: int | None
    random_state: int
    kind: str = "auto"
    path_column: str | None = None
    label_columns: str | None = None

    @classmethod
    def from_args(cls, args):
        """The options of parsed command-line arguments (those a command lacks keep their
        defaults)."""
        return cls(**{field.name: getattr(args, field.name, field.default)
                      for field in fields(cls)})

    @property
    def extractor_pooling(self):
        """``pooling`` as the estimators take it (None flattens)."""
        return None if self.pooling == "flatten" else self.pooling

    def load_folder(self, directory):
        """``(paths, labels)`` of the photos of ``directory``, sampled as the options say."""
        return load_image_folder(directory, max_per_class=self.max_per_class,
                                 random_state=self.random_state)

    def load_labelled(self, source, *, training=True):
        """The labelled photos of ``source``: a folder of class folders, or a CSV file.

        A CSV file (any existing file, or a name ending in ``.csv`` or ``.tsv``) is read by
        :func:`skconvnet.load_image_csv` with ``--kind``, ``--path-column`` and
        ``--label-columns`` (tab-separated for ``.tsv``), and a line says what it holds,
        e.g. ``train.csv: 2000 photos, tags (cat, dog)``. ``--max-per-class`` draws from
        each class of either; tags and numbers have no classes to draw from. Photos to
        train on (``training``) need two tags or more: one is two classes.

        Returns
        -------
        labelled : LabelledImages
            ``paths, y`` with ``kind`` (``"class"`` for a folder) and ``target_names``.
        """
        path, name = Path(source), os.fspath(source)
        if not path.is_file() and path.suffix.lower() not in (".csv", ".tsv"):
            if self.kind not in ("auto", "class"):
                raise ValueError(
                    f"{name} is a folder of class folders, which holds classes, not "
                    f"{self.kind}: give a CSV file of paths and {self.kind}, or leave out "
                    "--kind."
                )
            for option, value in (("--path-column", self.path_column),
                                  ("--label-columns", self.label_columns)):
                if value is not None:
                    raise ValueError(f"{option} {value}: {name} is a folder of class folders, "
                                     f"which has no columns; {option} picks a CSV file's.")
            paths, y = self.load_folder(source)
            return LabelledImages(paths, y, "class", np.unique(y).tolist())
        columns = self.label_columns
        read = load_image_csv(
            source, path_column=self.path_column, kind=self.kind,
            label_columns=None if columns is None else [
                column.strip() for column in columns.split(",") if column.strip()],
            delimiter="\t" if path.suffix.lower() == ".tsv" else ",",
        )
        if training and read.kind == "tags" and len(read.target_names) < 2:
            raise ValueError(
                f"{name} holds one tag ({read.target_names[0]!r}): with or without it are two "
                "classes. Give --kind class (a 0/1 column is read as two classes), or "
                "photos with at least two tags."
            )
        if self.max_per_class is not None:
            read = self._draw_per_class(read, name)
        names = ", ".join(map(str, read.target_names[:_NAMES_SHOWN]))
        more = len(read.target_names) - _NAMES_SHOWN
        print(f"{name}: {len(read.paths)} photos, {KIND_NAMES[read.kind]} ({names}"
              f"{f', ... {more} more' if more > 0 else ''})")
        return read

    def _draw_per_class(self, read, name):
        """``read`` with at most ``max_per_class`` photos of each class, drawn at random as
        :func:`skconvnet.load_image_folder` draws them, in the file's order."""
        if read.kind != "class":
            raise ValueError(
                f"--max-per-class {self.max_per_class}: {name} holds {read.kind}, which have "
                "no classes to draw photos from; leave out --max-per-class, or give a CSV "
                "file of fewer rows."
            )
        rng = np.random.RandomState(self.random_state)
        kept = []
        for label in read.target_names:
            members = np.flatnonzero(read.y == label)
            if len(members) > self.max_per_class:
                members = members[np.sort(rng.choice(len(members), self.max_per_class,
                                                     replace=False))]
            kept.extend(members.tolist())
        kept.sort()
        return LabelledImages([read.paths[i] for i in kept], read.y[kept], read.kind,
                              read.target_names)

    def resolve_weights(self, backbones):
        """``{backbone: weights}`` from ``--weights`` (one value, or one per backbone),
        resolved now, so that a missing download fails before any work is done."""
        text = self.weights
        values = [value.strip() for value in text.split(",")] if "," in text else [text]
        if len(values) == 1:
            values *= len(backbones)
        if len(values) != len(backbones):
            raise ValueError(f"--weights {text!r}: give one value, or one per backbone "
                             f"({len(backbones)}).")
        weights = {}
        for backbone, value in zip(backbones, values):
            weights[backbone] = None if value.lower() == "none" else value
            try:
                resolve_weights(specs.get(backbone), weights[backbone])
            except OSError as error:
                raise OSError(f"{error} On the command line: --weights PATH.") from None
        return weights

    def extractor(self, backbone, layer, weights):
        """An unfitted feature extractor at ``layer`` (a name or a list) of ``backbone``."""
        from .. import ConvNetFeatureExtractor

        return ConvNetFeatureExtractor(
            backbone=backbone, layer=layer, weights=weights, image_size=self.image_size,
            batch_size=32 if self.batch_size is None else self.batch_size,
            pooling=self.extractor_pooling, precision=self.precision, verbose=1,
        )


def same_targets(train, test, train_name, test_name):
    """``test`` (:class:`LabelledImages`) checked against ``train``: the same kind of target,
    test classes the training photos have, the same target columns; tags of the training
    photos that no test photo has are added as columns of zeros.

    Returns
    -------
    test : LabelledImages
        With ``y`` in the columns of ``train``'s (tags).
    """
    if test.kind != train.kind:
        raise ValueError(
            f"--test {test_name} holds {KIND_NAMES[test.kind]} but {train_name} holds "
            f"{KIND_NAMES[train.kind]}: give both the same kind of labels (--kind sets the "
            "kind of both CSV files)."
        )
    known, given = list(train.target_names), list(test.target_names)
    if test.kind == "class":
        # by their text: a folder's classes are names, a CSV's may be whole numbers
        classes = {str(label): label for label in np.unique(train.y).tolist()}
        given = [str(label) for label in np.asarray(test.y).tolist()]
        unknown = sorted(set(given) - set(classes))
        if unknown:
            raise ValueError(f"--test {test_name} has classes that {train_name} lacks: "
                             f"{', '.join(unknown)}; a classifier cannot predict "
                             "them. Give both the same classes.")
        y = np.array([classes[label] for label in given], dtype=np.asarray(train.y).dtype)
        return LabelledImages(test.paths, y, test.kind, np.unique(y).tolist())
    if test.kind == "numbers":
        if given != known:
            raise ValueError(
                f"--test {test_name} has the target columns {', '.join(given)} but "
                f"{train_name} has {', '.join(known)}: give both the same columns "
                "(--label-columns picks them)."
            )
        return test
    unknown = [tag for tag in given if tag not in known]
    if unknown:
        raise ValueError(f"--test {test_name} has tags that {train_name} lacks: "
                         f"{', '.join(map(str, unknown))}; a model cannot predict them. Give "
                         "the training photos every tag.")
    y = np.zeros((len(test.paths), len(known)), dtype=test.y.dtype)
    y[:, [known.index(tag) for tag in given]] = test.y
    return LabelledImages(test.paths, y, test.kind, known)


def check_output(path, option):
    """Fail now, not after the long run, if ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a folder; name a file.")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: cannot write there (permission denied).")
