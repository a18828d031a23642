"""``python -m skconvnet extract`` on a CSV file of photos and their classes, tags or
numbers: the .npz holds the targets beside the features."""

import numpy as np
import pytest
from helpers import error_line, small_extractor

from skconvnet import load_image_csv, load_image_folder
from skconvnet.cli.commands import main

EXTRACT = ["--layer", "block2_pool", "--weights", "none", "--image-size", "32"]


@pytest.fixture(scope="module")
def photos_and_features(photos):
    """The training photos (class folders), their paths and labels, and their features."""
    train, _ = photos
    paths, labels = load_image_folder(train)
    return train, paths, labels, small_extractor().fit_transform(paths)


def write_csv(path, header, rows):
    path.write_text("\n".join(",".join(map(str, row)) for row in [header, *rows]) + "\n")
    return path


def extract(source, out, *options):
    return main(["extract", str(source), *EXTRACT, "--out", str(out), *options])


@pytest.mark.parametrize("kind", ["tags", "numbers"])
def test_a_csv_of_tags_or_numbers(kind, photos_and_features, tmp_path, capsys):
    train, paths, labels, features = photos_and_features
    relative = [path.relative_to(train) for path in paths]
    if kind == "tags":  # the class, and "even" on every other photo
        rows = [[name, "|".join([label] + (["even"] if i % 2 == 0 else []))]
                for i, (name, label) in enumerate(zip(relative, labels))]
        source, announced = write_csv(train / "tags.csv", ["path", "tags"], rows), \
            "tags (checks, even, stripes)"
    else:
        rows = [[name, f"{i / 4:.2f}", f"{i * 1.5:.1f}"] for i, name in enumerate(relative)]
        source, announced = write_csv(train / "numbers.csv", ["path", "width", "height"], rows), \
            "numbers (width, height)"
    out = tmp_path / "features.npz"
    try:
        assert extract(source, out) == 0
        expected = load_image_csv(source)
    finally:
        source.unlink()
    assert f"{source}: {len(paths)} photos, {announced}" in capsys.readouterr().out
    saved = np.load(out)
    assert saved["kind"] == kind
    assert saved["paths"].tolist() == [str(path) for path in paths]
    assert saved["target_names"].tolist() == expected.target_names
    np.testing.assert_array_equal(saved["labels"], expected.y)
    assert saved["labels"].shape == (len(paths), 3 if kind == "tags" else 2)
    np.testing.assert_array_equal(saved["features"], features)


def test_a_csv_of_classes_gives_what_the_folder_gives(photos_and_features, tmp_path):
    train, paths, labels, features = photos_and_features
    source = write_csv(tmp_path / "classes.csv", ["file", "label"],
                       [[path, label] for path, label in zip(paths, labels)])
    assert extract(source, tmp_path / "csv.npz") == 0
    assert extract(train, tmp_path / "folder.npz") == 0
    from_csv, from_folder = np.load(tmp_path / "csv.npz"), np.load(tmp_path / "folder.npz")
    for saved in (from_csv, from_folder):
        assert saved["kind"] == "class"
        assert saved["labels"].tolist() == labels.tolist()
        assert saved["target_names"].tolist() == ["checks", "stripes"]
        np.testing.assert_array_equal(saved["features"], features)
    assert from_csv["paths"].tolist() == from_folder["paths"].tolist()


def test_a_csv_naming_a_missing_photo_names_its_row(photos_and_features, tmp_path, capsys):
    _, paths, _, _ = photos_and_features
    source = write_csv(tmp_path / "tags.csv", ["path", "tags"],
                       [[paths[0], "a|b"], [tmp_path / "gone.png", "a"], [paths[1], "b"]])
    assert extract(source, tmp_path / "features.npz") == 1
    line = error_line(capsys)
    assert "1 of 3 image files do not exist" in line and "row 3: " in line and "gone.png" in line
    assert not (tmp_path / "features.npz").exists()


def test_options_of_a_csv(photos_and_features, tmp_path, capsys):
    """--kind, --label-columns and --path-column reach the reading of the CSV file."""
    _, paths, _, _ = photos_and_features
    source = write_csv(tmp_path / "counts.csv", ["photo", "id", "count", "note"],
                       [[path, i, i % 3, "x"] for i, path in enumerate(paths)])
    out = tmp_path / "counts.npz"
    assert extract(source, out, "--path-column", "photo", "--label-columns", "count",
                   "--kind", "numbers") == 0
    saved = np.load(out)
    assert saved["kind"] == "numbers" and saved["target_names"].tolist() == ["count"]
    np.testing.assert_array_equal(saved["labels"], np.arange(len(paths)) % 3)
    assert saved["labels"].dtype == np.float64
    capsys.readouterr()
    assert extract(source, out, "--path-column", "photo", "--max-per-class", "2",
                   "--kind", "numbers", "--label-columns", "count") == 1
    assert "have no classes to draw photos from" in error_line(capsys)
