"""Multi-label and regression tasks built from the shared cats/dogs photos.

- mosaics (multi-label): 224x224 images of 2x2 cells, each cell a cat photo, a dog photo or a
  blank of one random plain colour; tags ``cat`` and ``dog`` (0/1) say what the mosaic holds.
  The four combinations (none, cat only, dog only, both) are equally frequent (within one).
  A mosaic with tags holds 1 to 4 photos (2 to 4 for both, at least one of each kind) at
  random cells.
- pasted (regression): each photo pasted on a 150x150 canvas of one random plain colour, as a
  square of side 0.3-1.0 of the canvas (uniform) at a random position where it fits whole;
  targets ``size`` (its side as a fraction of the canvas' side), ``x_center`` and
  ``y_center`` (its centre as fractions of the canvas' width and height, from the top left).

Photos are centre-cropped to a square before being resized. Training images are made from
the training photos, test images from the validation photos only: no photo is in both. Each
photo is used once before any is used again. The images (JPEG, quality 95) go into
``folder/train`` and ``folder/test``, and ``folder/train.csv`` and ``folder/test.csv`` list
them: ``path`` relative to the CSV's folder, then the targets. The same seed writes the same
files; the shared photos are only read.

    python benchmarks/targets.py mosaics|pasted FOLDER [--n-train 1000] [--n-test 500] [--seed 0]
"""

import argparse
import csv
from pathlib import Path

import numpy as np
from common import CATS_AND_DOGS
from PIL import Image, ImageOps

MOSAIC_SIDE = 224
CANVAS_SIDE = 150
SIZE_RANGE = (0.3, 1.0)
TAGS = ("cat", "dog")
POSITION = ("size", "x_center", "y_center")


def build_mosaics(folder, *, n_train, n_test, seed, photos=CATS_AND_DOGS):
    """Write the multi-label mosaics into ``folder``; return the paths of train.csv and
    test.csv."""
    return _build(folder, _mosaic, TAGS, n_train, n_test, seed, photos)


def build_pasted(folder, *, n_train, n_test, seed, photos=CATS_AND_DOGS):
    """Write the pasted-photo regression task into ``folder``; return the paths of train.csv
    and test.csv."""
    return _build(folder, _pasted, POSITION, n_train, n_test, seed, photos)


def read_csv(path, columns=None):
    """``(paths, y)`` of a CSV written here: absolute paths, and the target columns (all, or
    ``columns``) as a 2-D float array."""
    path = Path(path)
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    columns = list(columns or [name for name in rows[0] if name != "path"])
    paths = [str(path.parent / row["path"]) for row in rows]
    return paths, np.array([[float(row[name]) for name in columns] for row in rows])


def _build(folder, make, columns, n_train, n_test, seed, photos):
    folder = Path(folder)
    written = []
    for split, source, n, sequence in zip(
        ("train", "test"), ("train", "validation"), (n_train, n_test),
        np.random.SeedSequence(seed).spawn(2),
    ):
        rng = np.random.default_rng(sequence)
        pool = {label: _Photos(photos / source / f"{label}s", rng) for label in TAGS}
        (folder / split).mkdir(parents=True, exist_ok=True)
        rows = []
        for index, (picture, targets) in enumerate(make(n, pool, rng)):
            name = f"{split}/{index:05d}.jpg"
            picture.save(folder / name, quality=95)
            rows.append([name, *targets])
        written.append(folder / f"{split}.csv")
        with open(written[-1], "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["path", *columns])
            writer.writerows(rows)
    return tuple(written)


class _Photos:
    """The photos of one folder in a random order, each drawn once before any again."""

    def __init__(self, folder, rng):
        self.paths = sorted(folder.glob("*.jpg"))
        if not self.paths:
            raise FileNotFoundError(f"no .jpg photos in {folder}")
        self.rng = rng
        self.order = []

    def square(self, side):
        """The next photo, centre-cropped to a square and resized to ``side``."""
        if not self.order:
            self.order = list(self.rng.permutation(len(self.paths)))
        with Image.open(self.paths[self.order.pop()]) as picture:
            picture = ImageOps.exif_transpose(picture).convert("RGB")
        return ImageOps.fit(picture, (side, side), Image.Resampling.LANCZOS)


def _colour(rng):
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _mosaic(n, pool, rng):
    cell = MOSAIC_SIDE // 2
    combinations = [(0, 0), (1, 0), (0, 1), (1, 1)]
    tags = [combinations[i % 4] for i in rng.permutation(n)]
    for cat, dog in tags:
        if cat and dog:
            n_photos = int(rng.integers(2, 5))
            n_cats = int(rng.integers(1, n_photos))
        else:
            n_photos = int(rng.integers(1, 5)) if cat or dog else 0
            n_cats = n_photos if cat else 0
        kinds = ["cat"] * n_cats + ["dog"] * (n_photos - n_cats) + [None] * (4 - n_photos)
        picture = Image.new("RGB", (MOSAIC_SIDE, MOSAIC_SIDE))
        for position, kind in zip(rng.permutation(4), kinds):
            box = (int(position % 2) * cell, int(position // 2) * cell)
            content = (pool[kind].square(cell) if kind else
                       Image.new("RGB", (cell, cell), _colour(rng)))
            picture.paste(content, box)
        yield picture, (cat, dog)


def _pasted(n, pool, rng):
    kinds = [TAGS[i % 2] for i in rng.permutation(n)]
    for kind in kinds:
        side = round(rng.uniform(*SIZE_RANGE) * CANVAS_SIDE)
        left, top = (int(v) for v in rng.integers(0, CANVAS_SIDE - side + 1, size=2))
        picture = Image.new("RGB", (CANVAS_SIDE, CANVAS_SIDE), _colour(rng))
        picture.paste(pool[kind].square(side), (left, top))
        yield picture, (f"{side / CANVAS_SIDE:.6f}", f"{(left + side / 2) / CANVAS_SIDE:.6f}",
                        f"{(top + side / 2) / CANVAS_SIDE:.6f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["mosaics", "pasted"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    build = build_mosaics if args.task == "mosaics" else build_pasted
    for path in build(args.folder, n_train=args.n_train, n_test=args.n_test, seed=args.seed):
        print(path)


if __name__ == "__main__":
    main()
