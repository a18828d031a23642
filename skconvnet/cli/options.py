"""What the commands share: photos drawn from a folder, their features, output files."""

import os
from dataclasses import dataclass, fields

from ..backbones import specs
from ..backbones.weights import resolve_weights
from ..datasets import load_image_folder


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
        ``--random-state``: seeds the sampling (and, in ``evaluate``, the folds and
        fine-tuning).
    """

    weights: str
    pooling: str
    image_size: int | None
    max_per_class: int | None
    precision: str
    batch_size: int | None
    random_state: int

    @classmethod
    def from_args(cls, args):
        """The options of parsed command-line arguments."""
        return cls(**{field.name: getattr(args, field.name) for field in fields(cls)})

    @property
    def extractor_pooling(self):
        """``pooling`` as the estimators take it (None flattens)."""
        return None if self.pooling == "flatten" else self.pooling

    def load_folder(self, directory):
        """``(paths, labels)`` of the photos of ``directory``, sampled as the options say."""
        return load_image_folder(directory, max_per_class=self.max_per_class,
                                 random_state=self.random_state)

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


def check_output(path, option):
    """Fail now, not after the long run, if ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a folder; name a file.")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: cannot write there (permission denied).")
