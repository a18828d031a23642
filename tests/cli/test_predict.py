"""``python -m skconvnet predict`` and ``evaluate --export``."""

import csv
import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
from helpers import (
    FAST_EVALUATE,
    error_line,
    small_classifier,
    small_extractor,
    small_regressor,
    texture_folder,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skconvnet import load_image_folder, to_onnx
from skconvnet.cli.commands import main

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")


@pytest.fixture(scope="module")
def train(photos):
    return photos[0]


@pytest.fixture(scope="module")
def pipeline(train):
    paths, labels = load_image_folder(train)
    return make_pipeline(small_extractor(), StandardScaler(),
                         LogisticRegression()).fit(paths, labels)


def read(csv_path):
    with open(csv_path, newline="") as file:
        header, *rows = list(csv.reader(file))
    return header, rows


def check_predictions(csv_path, model, paths):
    """The CSV holds each path, the model's label and its probabilities, in order."""
    header, rows = read(csv_path)
    assert header == ["path", "label"] + [f"probability_{c}" for c in model.classes_]
    assert [row[0] for row in rows] == [str(path) for path in paths]
    np.testing.assert_array_equal([row[1] for row in rows], model.predict(paths))
    np.testing.assert_allclose(np.array([row[2:] for row in rows], float),
                               model.predict_proba(paths), atol=1e-5)


def test_an_onnx_model_predicts_without_tensorflow_or_keras(train, pipeline, tmp_path):
    to_onnx(pipeline, tmp_path / "model.onnx")
    output = tmp_path / "predictions.csv"
    code = ("import sys; from skconvnet.cli.commands import main; status = main(sys.argv[1:]);"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'keras', 'tensorflow', 'tf2onnx', 'jax'})); sys.exit(status)")
    result = subprocess.run(
        [sys.executable, "-c", code, "predict", str(tmp_path / "model.onnx"), str(train),
         "--output", str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    paths, _ = load_image_folder(train)
    assert f"{len(paths)} predictions written" in result.stdout
    assert f"{len(paths)}/{len(paths)} images" in result.stderr  # the progress bar
    check_predictions(output, pipeline, paths)


@pytest.mark.parametrize("kind", ["joblib", "skops"])
def test_a_saved_estimator_predicts(kind, train, tmp_path):
    import skops.io as sio

    paths, labels = load_image_folder(train)
    clf = small_classifier(head_epochs=2, fine_tune_epochs=0).fit(paths, labels)
    model = tmp_path / f"model.{kind}"
    joblib.dump(clf, model) if kind == "joblib" else sio.dump(clf, model)
    assert main(["predict", str(model), str(train), "--output",
                 str(tmp_path / "out.csv")]) == 0
    check_predictions(tmp_path / "out.csv", clf, paths)


def test_an_extractor_writes_features(train, tmp_path):
    paths, _ = load_image_folder(train)
    extractor = small_extractor().fit(paths)
    to_onnx(extractor, tmp_path / "features.onnx")
    assert main(["predict", str(tmp_path / "features.onnx"), str(paths[0]), str(paths[3]),
                 "--output", str(tmp_path / "out.csv")]) == 0
    header, rows = read(tmp_path / "out.csv")
    assert header == ["path", *extractor.get_feature_names_out()]
    np.testing.assert_allclose(np.array([row[1:] for row in rows], float),
                               extractor.transform([paths[0], paths[3]]), rtol=1e-4, atol=1e-4)


def test_a_list_of_paths(train, pipeline, tmp_path):
    paths, _ = load_image_folder(train)
    listing = train / "chosen.txt"
    listing.write_text("# two photos\n" + "\n".join(
        str(path.relative_to(train)) for path in paths[4:6]) + "\n")
    to_onnx(pipeline, tmp_path / "model.onnx")
    assert main(["predict", str(tmp_path / "model.onnx"), str(listing), "--output",
                 str(tmp_path / "out.csv")]) == 0
    listing.unlink()
    _, rows = read(tmp_path / "out.csv")
    assert [row[0] for row in rows] == [str(path) for path in paths[4:6]]


def test_bad_files_are_named_or_skipped(train, pipeline, tmp_path, capsys):
    folder = tmp_path / "photos"
    paths, _ = load_image_folder(train)
    folder.mkdir()
    for path in paths[:3]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "cut.png").write_bytes(paths[0].read_bytes()[:80])  # truncated
    to_onnx(pipeline, tmp_path / "model.onnx")
    command = ["predict", str(tmp_path / "model.onnx"), str(folder), "--output",
               str(tmp_path / "out.csv")]
    assert main(command) == 1
    line = error_line(capsys)
    assert "broken.png" in line and "--skip-bad" in line
    assert main(command + ["--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "3 predictions written" in out and "2 files skipped" in out
    assert "broken.png" in out and "cut.png" in out
    _, rows = read(tmp_path / "out.csv")
    assert sorted(row[0].rsplit("/", 1)[1] for row in rows) == sorted(p.name for p in paths[:3])


@pytest.mark.parametrize("arguments, message", [
    (["missing.onnx", "."], "MODEL missing.onnx: no such file"),
    (["{model_txt}", "."], "unknown kind of file '.txt'"),
    (["{model_onnx}", "{empty}"], "the folder holds no image files"),
    (["{model_onnx}", "{model_txt}"], "list of paths names no image files"),
])
def test_predict_mistakes(arguments, message, tmp_path, pipeline, capsys):
    (tmp_path / "model.txt").write_text("")
    to_onnx(pipeline, tmp_path / "model.onnx")
    (tmp_path / "empty").mkdir()
    names = {"model_txt": str(tmp_path / "model.txt"), "empty": str(tmp_path / "empty"),
             "model_onnx": str(tmp_path / "model.onnx")}
    arguments = [argument.format(**names) for argument in arguments]
    assert main(["predict", *arguments, "--output", str(tmp_path / "out.csv")]) == 1
    assert message in error_line(capsys)


def test_evaluate_export_writes_the_best_pipeline_and_the_fine_tuned_classifier(
        tmp_path, capsys):
    train = texture_folder(tmp_path / "train", 8, seed=1)
    test = texture_folder(tmp_path / "test", 4, seed=2)
    model = tmp_path / "model.onnx"
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--finetune",
                 "--head-epochs", "1", "--fine-tune-epochs", "0", "--export", str(model),
                 "--report", str(tmp_path / "report.json")]) == 0
    out = capsys.readouterr().out
    assert f"Model written to {model}" in out
    assert (tmp_path / "model.finetuned.onnx").is_file()
    assert main(["predict", str(model), str(test), "--output", str(tmp_path / "out.csv")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    _, rows = read(tmp_path / "out.csv")
    paths, labels = load_image_folder(test)
    accuracy = np.mean([row[1] for row in rows] == labels)
    assert accuracy == pytest.approx(report["test_accuracy"])
    fine = tmp_path / "fine.csv"  # the fine-tuned classifier's file scores as it did
    assert main(["predict", str(tmp_path / "model.finetuned.onnx"), str(test), "--output",
                 str(fine)]) == 0
    _, rows = read(fine)
    accuracy = np.mean([row[1] for row in rows] == labels)
    assert accuracy == pytest.approx(report["finetune_test_accuracy"])


# tags and numbers


def brightness(paths):
    """Two numbers per photo: its mean and its standard deviation, in 0 ... 1."""
    from skconvnet import load_images

    pixels = load_images(paths, 32) / 255
    return np.column_stack([pixels.mean(axis=(1, 2, 3)), pixels.std(axis=(1, 2, 3))])


@pytest.fixture(scope="module")
def fitted(train):
    """``{name: (estimator, the columns predict writes)}``: tags, one number, two numbers."""
    import pandas as pd

    paths, labels = load_image_folder(train)
    tags = pd.DataFrame({"checks": labels == "checks", "even": np.arange(len(paths)) % 2 == 0})
    tagger = small_classifier(fine_tune_epochs=1).fit(paths, tags.astype(int))
    numbers = brightness(paths)
    return {
        "tags": (tagger, ["path", "labels", "probability_checks", "probability_even"]),
        "number": (small_regressor(fine_tune_epochs=1).fit(paths, numbers[:, 0]),
                   ["path", "prediction"]),
        "numbers": (small_regressor(fine_tune_epochs=1).fit(paths, numbers),
                    ["path", "target_0", "target_1"]),
    }


@pytest.mark.parametrize("name", ["tags", "number", "numbers"])
def test_tags_and_numbers_as_onnx_and_as_estimators(name, fitted, train, tmp_path):
    """An .onnx file and the estimator it was exported from write the same columns, the
    estimator's predictions."""
    estimator, expected = fitted[name]
    to_onnx(estimator, tmp_path / "model.onnx")
    joblib.dump(estimator, tmp_path / "model.pkl")
    tables = {}
    for model in ("model.onnx", "model.pkl"):
        output = tmp_path / f"{model}.csv"
        assert main(["predict", str(tmp_path / model), str(train), "--output",
                     str(output)]) == 0
        tables[model] = read(output)
    paths, _ = load_image_folder(train)
    for header, rows in tables.values():
        assert header == expected
        assert [row[0] for row in rows] == [str(path) for path in paths]
    (_, onnx_rows), (_, pickle_rows) = tables.values()
    if name == "tags":
        predicted = estimator.predict(paths)
        joined = ["|".join(tag for tag, on in zip(estimator.classes_, row) if on)
                  for row in predicted]
        assert [row[1] for row in onnx_rows] == [row[1] for row in pickle_rows] == joined
        assert 0 < predicted.sum() < predicted.size  # some tags given, not all
        expected_values = estimator.predict_proba(paths)
        onnx_rows, pickle_rows = ([row[2:] for row in rows] for rows in (onnx_rows, pickle_rows))
    else:
        expected_values = estimator.predict(paths).reshape(len(paths), -1)
        onnx_rows, pickle_rows = ([row[1:] for row in rows] for rows in (onnx_rows, pickle_rows))
    onnx_values, pickle_values = (np.array(rows, float) for rows in (onnx_rows, pickle_rows))
    np.testing.assert_allclose(onnx_values, pickle_values, atol=1e-5)
    np.testing.assert_allclose(pickle_values, expected_values, atol=1e-5)
    np.testing.assert_allclose(onnx_values, expected_values, atol=1e-5)


def test_tags_written_by_predict_read_back_as_tags(fitted, train, tmp_path):
    from skconvnet import load_image_csv

    tagger, _ = fitted["tags"]
    to_onnx(tagger, tmp_path / "model.onnx")
    output = tmp_path / "tags.csv"
    assert main(["predict", str(tmp_path / "model.onnx"), str(train), "--output",
                 str(output)]) == 0
    paths, _ = load_image_folder(train)
    read = load_image_csv(output, label_columns="labels", kind="tags")
    predicted = tagger.predict(paths)
    present = predicted.any(axis=0)  # a tag no photo was given has no column when read back
    assert read.target_names == tagger.classes_[present].tolist()
    np.testing.assert_array_equal(read.y, predicted[:, present])


def test_a_csv_with_a_header_gives_its_column_of_paths(train, pipeline, tmp_path):
    paths, labels = load_image_folder(train)
    chosen = [2, 5, 13]
    to_onnx(pipeline, tmp_path / "model.onnx")
    headed = train / "labelled.csv"
    headed.write_text("path,label\n" + "".join(
        f"{paths[i].relative_to(train)},{labels[i]}\n" for i in chosen))
    plain = train / "plain.csv"  # no header: a list of paths, as before
    plain.write_text("".join(f"{paths[i].relative_to(train)}\n" for i in chosen))
    other = train / "other.csv"  # the paths in a column found by --path-column
    other.write_text("label,photo\n" + "".join(
        f"{labels[i]},{paths[i].relative_to(train)}\n" for i in chosen))
    bare = train / "bare.csv"  # no header, the paths first: every row a photo
    bare.write_text("".join(f"{paths[i].relative_to(train)},{labels[i]}\n" for i in chosen))
    try:
        for listing, options in [(headed, []), (plain, []), (other, ["--path-column", "photo"]),
                                 (bare, [])]:
            output = tmp_path / f"{listing.stem}.csv"
            assert main(["predict", str(tmp_path / "model.onnx"), str(listing), *options,
                         "--output", str(output)]) == 0
            check_predictions(output, pipeline, [paths[i] for i in chosen])
    finally:
        for listing in (headed, plain, other, bare):
            listing.unlink()


def test_a_csv_naming_a_missing_photo_names_its_row(train, pipeline, tmp_path, capsys):
    paths, _ = load_image_folder(train)
    listing = tmp_path / "photos.csv"
    listing.write_text(f"path,label\n{paths[0]},checks\nmissing.png,checks\n"
                       f"{paths[1]},checks\n")
    to_onnx(pipeline, tmp_path / "model.onnx")
    assert main(["predict", str(tmp_path / "model.onnx"), str(listing), "--output",
                 str(tmp_path / "out.csv")]) == 1
    line = error_line(capsys)
    assert "1 of 3 image files do not exist" in line and "row 3: missing.png" in line
    assert main(["predict", str(tmp_path / "model.onnx"), str(listing), "--path-column",
                 "file", "--output", str(tmp_path / "out.csv")]) == 1
    assert "path_column='file' is not a column" in error_line(capsys)
