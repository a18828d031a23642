"""Labelled photos from a CSV file on the command line: evaluate and audit for classes, tags
and numbers."""

import csv
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from skconvnet.cli.options import PhotoOptions, same_targets


def write_photos(folder, n, seed=0, size=32):
    """``n`` texture photos (checks or stripes, dark or bright) in ``folder``, and what each
    holds: ``(names, checks, bright, brightness)``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, columns = np.mgrid[:size, :size]
    names, checks, bright, brightness = [], [], [], []
    for index in range(n):
        is_checks, is_bright = index % 2, (index // 2) % 2
        texture = (rows + columns) % 2 if is_checks else rows % 2
        low = 110 if is_bright else 40
        cells = rng.integers(low, low + 100, size=(size // 4, size // 4, 3))
        pixels = cells.repeat(4, 0).repeat(4, 1) + (8 * (2 * texture - 1))[..., np.newaxis]
        name = f"{index:02d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
        names.append(name)
        checks.append(is_checks)
        bright.append(is_bright)
        brightness.append(round(float(pixels.mean()), 2))
    return names, np.array(checks), np.array(bright), np.array(brightness)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    return path


def tags_csv(folder, n, seed=0, name="tags.csv"):
    """A CSV of separated tags: ``checks`` or ``stripes``, and ``bright`` for bright ones."""
    names, checks, bright, _ = write_photos(folder, n, seed)
    rows = [[file, "|".join(["checks" if c else "stripes", *(["bright"] if b else [])])]
            for file, c, b in zip(names, checks, bright)]
    return write_csv(folder / name, ["path", "tags"], rows)


def numbers_csv(folder, n, seed=0, name="numbers.csv"):
    """A CSV of two numbers per photo: its mean brightness and a copy of it halved."""
    names, _, _, brightness = write_photos(folder, n, seed)
    rows = [[file, f"{value:.2f}", f"{value / 2:.3f}"] for file, value in zip(names, brightness)]
    return write_csv(folder / name, ["path", "brightness", "half"], rows)


def options(**given):
    defaults = dict(weights="none", pooling="avg", image_size=32, max_per_class=None,
                    precision="float32", batch_size=None, random_state=0)
    return PhotoOptions.from_args(SimpleNamespace(**{**defaults, **given}))


# loading: a folder or a CSV file, the kind said


@pytest.mark.no_backend
def test_a_csv_is_read_with_its_kind_printed_and_a_folder_as_classes(photos, tmp_path, capsys):
    read = options().load_labelled(tags_csv(tmp_path, 8))
    assert (read.kind, read.target_names) == ("tags", ["bright", "checks", "stripes"])
    assert read.y.shape == (8, 3)
    assert capsys.readouterr().out == f"{tmp_path / 'tags.csv'}: 8 photos, tags (bright, " \
        "checks, stripes)\n"
    read = options(kind="numbers", label_columns="half").load_labelled(
        numbers_csv(tmp_path, 6))
    assert (read.kind, read.target_names, read.y.shape) == ("numbers", ["half"], (6,))
    assert "numbers.csv: 6 photos, numbers (half)" in capsys.readouterr().out
    train, _ = photos
    paths, y = read = options().load_labelled(train)
    assert (read.kind, read.target_names, len(paths)) == ("class", ["checks", "stripes"], 24)
    assert capsys.readouterr().out == ""  # a folder's photos are not announced


@pytest.mark.no_backend
def test_max_per_class_draws_from_the_classes_of_a_csv_and_refuses_tags(tmp_path):
    names, checks, _, _ = write_photos(tmp_path, 10)
    path = write_csv(tmp_path / "classes.csv", ["file", "label"],
                     [[name, "checks" if c else "stripes"] for name, c in zip(names, checks)])
    paths, y = options(max_per_class=3).load_labelled(path)
    assert sorted(y.tolist()) == ["checks"] * 3 + ["stripes"] * 3
    assert paths == sorted(paths)  # in the file's order
    assert paths == options(max_per_class=3).load_labelled(path).paths
    assert paths != options(max_per_class=3, random_state=1).load_labelled(path).paths
    with pytest.raises(ValueError, match=r"--max-per-class 3: .*tags.csv holds tags, which "
                                         "have no classes"):
        options(max_per_class=3).load_labelled(tags_csv(tmp_path, 4))


@pytest.mark.no_backend
def test_a_folder_with_a_kind_other_than_classes_is_refused(photos):
    train, _ = photos
    with pytest.raises(ValueError, match=r"is a folder of class folders, which holds classes, "
                                         "not tags: give a CSV file"):
        options(kind="tags").load_labelled(train)


@pytest.mark.no_backend
def test_test_photos_must_have_the_kind_and_targets_of_the_training_photos(photos, tmp_path):
    train_folder, _ = photos
    train = options().load_labelled(tags_csv(tmp_path / "train", 8))
    with pytest.raises(ValueError, match=r"--test T holds classes but A holds tags: give both "
                                         "the same kind"):
        same_targets(train, options().load_labelled(train_folder), "A", "T")
    only = write_csv(tmp_path / "train" / "few.csv", ["path", "tags"],
                     [["00.png", "checks"], ["01.png", "checks"]])
    aligned = same_targets(train, options(kind="tags").load_labelled(only), "A", "T")
    assert aligned.target_names == train.target_names
    assert aligned.y.tolist() == [[0, 1, 0], [0, 1, 0]]  # the tags no test photo has: zeros
    with pytest.raises(ValueError, match=r"--test A has tags that T lacks: bright, stripes"):
        same_targets(options(kind="tags").load_labelled(only), train, "T", "A")
    numbers = options().load_labelled(numbers_csv(tmp_path / "n", 4))
    half = options(label_columns="half").load_labelled(tmp_path / "n" / "numbers.csv")
    with pytest.raises(ValueError, match=r"--test T has the target columns half but A has "
                                         "brightness, half: give both the same columns"):
        same_targets(numbers, half, "A", "T")
