"""Labelled photos from a CSV file on the command line: evaluate and audit for classes, tags
and numbers."""

import csv
import re
from pathlib import Path
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
        low = 76 if is_bright else 70
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
    with pytest.raises(ValueError, match=r"--label-columns size: .* is a folder of class "
                                         r"folders, which has no columns"):
        options(label_columns="size").load_labelled(train)


@pytest.mark.no_backend
def test_test_photos_must_have_the_kind_and_targets_of_the_training_photos(photos, tmp_path):
    train_folder, _ = photos
    train = options().load_labelled(tags_csv(tmp_path / "train", 8))
    with pytest.raises(ValueError, match=r"--test T holds classes but A holds tags: give both "
                                         "the same kind"):
        same_targets(train, options().load_labelled(train_folder), "A", "T")
    only = write_csv(tmp_path / "train" / "few.csv", ["path", "tags"],
                     [["00.png", "checks"], ["01.png", "checks"]])
    aligned = same_targets(train, options(kind="tags").load_labelled(only, training=False), "A", "T")
    assert aligned.target_names == train.target_names
    assert aligned.y.tolist() == [[0, 1, 0], [0, 1, 0]]  # the tags no test photo has: zeros
    with pytest.raises(ValueError, match=r"--test A has tags that T lacks: bright, stripes"):
        same_targets(options(kind="tags").load_labelled(only, training=False), train, "T", "A")
    numbers = options().load_labelled(numbers_csv(tmp_path / "n", 4))
    half = options(label_columns="half").load_labelled(tmp_path / "n" / "numbers.csv")
    with pytest.raises(ValueError, match=r"--test T has the target columns half but A has "
                                         "brightness, half: give both the same columns"):
        same_targets(numbers, half, "A", "T")


@pytest.mark.no_backend
def test_the_csv_options_reach_the_photo_options():
    from skconvnet.cli.commands import _parser

    for command in (["evaluate", "a.csv", "--test", "b.csv"], ["audit", "a.csv"]):
        args = _parser().parse_args([*command, "--kind", "numbers", "--path-column", "photo",
                                     "--label-columns", "width,height"])
        chosen = PhotoOptions.from_args(args)
        assert (chosen.kind, chosen.path_column, chosen.label_columns) == (
            "numbers", "photo", "width,height")
    assert PhotoOptions.from_args(_parser().parse_args(["audit", "a.csv"])).kind == "auto"


# evaluate: tags and numbers


LAYERS = ["block2_pool", "block1_pool", "block3_pool"]
FAST = ["--weights", "none", "--image-size", "32", "--layers", ",".join(LAYERS), "--cv", "3"]


@pytest.fixture(scope="module")
def tags_run(tmp_path_factory):
    """evaluate on a CSV of tags, with --report and --html: ``(train, test, out, report,
    page)``."""
    return _run(tmp_path_factory.mktemp("tags"), tags_csv)


@pytest.fixture(scope="module")
def numbers_run(tmp_path_factory):
    """evaluate on a CSV of two numbers per photo, with --report and --html (--errors 5)."""
    return _run(tmp_path_factory.mktemp("numbers"), numbers_csv, "--errors", "5")


def _run(root, make, *options):
    import json

    from skconvnet.cli.commands import main

    train, test = make(root / "train", 24, seed=1), make(root / "test", 16, seed=2)
    report, page = root / "report.json", root / "page.html"
    out = _captured(lambda: main(["evaluate", str(train), "--test", str(test), *FAST,
                                  "--report", str(report), "--html", str(page), *options]))
    return train, test, out, json.loads(report.read_text()), page.read_text()


def _captured(run):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run() == 0
    return out.getvalue()


def _pipeline(layer, head):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from helpers import small_extractor

    return make_pipeline(small_extractor(layer=layer), StandardScaler(), head)


def _tags_head():
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(LogisticRegression(max_iter=2000))


def _ridge():
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=np.logspace(-2, 6, 9), alpha_per_target=True)


def _hand_cv(X, y, head, scoring):
    """Each layer's scores on evaluate's folds (3, not stratified, shuffled by 0)."""
    from sklearn.model_selection import KFold, cross_validate

    folds = KFold(3, shuffle=True, random_state=0)
    return {layer: cross_validate(_pipeline(layer, head()), X, y, cv=folds, scoring=scoring)
            for layer in LAYERS}


def test_evaluate_tags_scores_each_layer_as_the_hand_written_pipeline_does(tags_run):
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score

    from skconvnet import load_image_csv

    train, test, out, report, _ = tags_run
    assert f"{train}: 24 photos, tags (bright, checks, stripes)" in out
    assert "kind: tags (3 tags: bright, checks, stripes)" in out
    assert list(report) == [
        "kind", "cv_mean_average_precision", "cv_mean_average_precision_std", "cv_micro_f1",
        "cv_micro_f1_std", "best_layer", "test_micro_f1", "test_mean_average_precision",
        "test_subset_accuracy", "test_per_tag", "n_train", "n_test", "tags", "train_counts",
        "test_counts", "train_dir", "test_dir", "backbones", "depth", "weights", "image_size",
        "image_sizes", "pooling", "precision", "cv_folds", "audit", "seconds"]
    assert report["kind"] == "tags" and report["tags"] == ["bright", "checks", "stripes"]
    assert report["train_counts"] == {"bright": 12, "checks": 12, "stripes": 12}
    X, y = load_image_csv(train)
    X_test, y_test = load_image_csv(test)
    cv = _hand_cv(X, y, _tags_head, {"map": "average_precision", "f1": "f1_micro"})
    for layer in LAYERS:
        assert report["cv_mean_average_precision"][layer] == pytest.approx(
            cv[layer]["test_map"].mean(), abs=1e-12)
        assert report["cv_micro_f1"][layer] == pytest.approx(cv[layer]["test_f1"].mean(),
                                                             abs=1e-12)
        assert report["cv_micro_f1_std"][layer] == pytest.approx(cv[layer]["test_f1"].std(),
                                                                 abs=1e-12)
    # the layers differ, and the best mean average precision wins (equals: the micro-F1)
    best = max(LAYERS, key=lambda layer: (cv[layer]["test_map"].mean(),
                                          cv[layer]["test_f1"].mean()))
    assert report["best_layer"] == best
    assert len({round(cv[layer]["test_f1"].mean(), 6) for layer in LAYERS}) == 3
    model = _pipeline(best, _tags_head()).fit(X, y)
    predicted, proba = model.predict(X_test), model.predict_proba(X_test)
    assert 0 < accuracy_score(y_test, predicted) < 1  # some wrong tags to show
    assert report["test_micro_f1"] == pytest.approx(f1_score(y_test, predicted,
                                                             average="micro"), abs=1e-12)
    assert report["test_mean_average_precision"] == pytest.approx(
        average_precision_score(y_test, proba), abs=1e-12)
    assert report["test_subset_accuracy"] == pytest.approx(accuracy_score(y_test, predicted))
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("block")}
    assert rows[best].endswith("<- best")
    assert (f"{report['cv_mean_average_precision'][best]:.3f} ± "
            f"{report['cv_mean_average_precision_std'][best]:.3f}") in rows[best]


def test_the_page_of_tags_has_a_table_per_tag_and_the_most_confident_wrong_tags(tags_run):
    import re

    from sklearn.metrics import classification_report

    from skconvnet import load_image_csv

    train, test, _, report, page = tags_run
    X, y = load_image_csv(train)
    X_test, y_test = load_image_csv(test)
    model = _pipeline(report["best_layer"], _tags_head()).fit(X, y)
    predicted, proba = model.predict(X_test), model.predict_proba(X_test)
    scores = classification_report(y_test, predicted, output_dict=True, zero_division=0,
                                   target_names=report["tags"])
    text = _text(_between(page, "Scores per tag", "Most confident wrong tags"))
    for tag in report["tags"]:
        row = scores[tag]
        assert (f"{tag} {row['precision']:.3f} {row['recall']:.3f} {row['f1-score']:.3f} "
                f"{report['test_per_tag'][tag]['average_precision']:.3f} "
                f"{row['support']:.0f}") in text
    section = _between(page, "Most confident wrong tags", "The photos themselves")
    captions = re.findall(r"<figcaption><strong>(.*?)</strong><br>(.*?)</figcaption>", section)
    wrong = (predicted != y_test).any(axis=1)
    assert {name for name, _ in captions} == {X_test[i].name for i in np.flatnonzero(wrong)}
    confidence = np.where(predicted != y_test, np.where(y_test == 1, 1 - proba, proba), 0)
    first = int(np.argmax(confidence.max(axis=1)))
    row, column = first, int(np.argmax(confidence[first]))
    what = "missed" if y_test[row, column] else "not tagged"
    assert captions[0] == (X_test[row].name, f"{report['tags'][column]}: {what} "
                                             f"({proba[row, column]:.2f})")
    assert "Photos probably mislabelled: not sought (confident learning needs classes; " \
           "tags have none)" in _text(page)
    assert len(re.findall(r"data:image/png", page)) == 1  # the layer curve


def test_evaluate_numbers_scores_each_layer_as_the_hand_written_ridge_does(numbers_run):
    from sklearn.metrics import mean_absolute_error, r2_score

    from skconvnet import load_image_csv

    train, test, out, report, _ = numbers_run
    assert f"{train}: 24 photos, numbers (brightness, half)" in out
    assert "kind: numbers (2 targets: brightness, half)" in out
    assert list(report) == [
        "kind", "cv_r2", "cv_r2_std", "cv_mae", "cv_mae_std", "best_layer", "test_r2",
        "test_mae", "test_mae_of_mean", "test_per_target", "n_train", "n_test", "targets",
        "train_mean", "train_std", "test_mean", "test_std", "train_dir", "test_dir",
        "backbones", "depth", "weights", "image_size", "image_sizes", "pooling", "precision",
        "cv_folds", "audit", "seconds"]
    X, y = load_image_csv(train)
    X_test, y_test = load_image_csv(test)
    assert y.shape == (24, 2)
    cv = _hand_cv(X, y, _ridge, {"r2": "r2", "mae": "neg_mean_absolute_error"})
    for layer in LAYERS:
        assert report["cv_r2"][layer] == pytest.approx(cv[layer]["test_r2"].mean(), abs=1e-9)
        assert report["cv_mae"][layer] == pytest.approx(-cv[layer]["test_mae"].mean(),
                                                        abs=1e-9)
    best = max(LAYERS, key=lambda layer: cv[layer]["test_r2"].mean())
    assert report["best_layer"] == best
    predicted = _pipeline(best, _ridge()).fit(X, y).predict(X_test)
    assert report["test_r2"] == pytest.approx(r2_score(y_test, predicted), abs=1e-9)
    assert report["test_mae"] == pytest.approx(mean_absolute_error(y_test, predicted), abs=1e-9)
    of_mean = np.abs(y_test - y.mean(axis=0)).mean(axis=0)
    assert report["test_mae_of_mean"] == pytest.approx(of_mean.mean())
    half = report["test_per_target"]["half"]
    assert half["mae"] == pytest.approx(mean_absolute_error(y_test[:, 1], predicted[:, 1]),
                                        abs=1e-9)
    assert half["mae_of_mean"] == pytest.approx(of_mean[1])
    assert report["test_mae"] < report["test_mae_of_mean"] / 3  # brightness is seen
    assert report["train_mean"]["brightness"] == pytest.approx(y[:, 0].mean())
    for target in ("brightness", "half"):  # a line per target
        assert re.search(rf"^{target}\s+{report['test_per_target'][target]['r2']:.3f} ", out,
                         re.MULTILINE)


def test_the_page_of_numbers_has_the_scatter_the_residuals_and_the_largest_errors(
        numbers_run):
    import re

    from skconvnet import load_image_csv

    train, test, _, report, page = numbers_run
    for title, following in (("Predicted against true", "Residuals"),
                             ("Residuals", "Largest errors")):
        section = _between(page, f"<h2>{title}</h2>", following)
        (figure,) = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", section)
        _image(figure).verify()
    X, y = load_image_csv(train)
    X_test, y_test = load_image_csv(test)
    predicted = _pipeline(report["best_layer"], _ridge()).fit(X, y).predict(X_test)
    section = _between(page, "Largest errors", "The photos themselves")
    assert "the exact class activation map" in section
    for column, target in enumerate(("brightness", "half")):
        part = _between(section, f"<h3>{target}</h3>", "<h3>")
        names = re.findall(r"<figcaption><strong>(.*?)</strong>", part)
        worst = np.argsort(-np.abs(predicted[:, column] - y_test[:, column]), kind="stable")
        assert names == [X_test[i].name for i in worst[:5]]  # --errors 5
        heatmaps = re.findall(r"class='heatmap' alt='heatmap of .*?' "
                              r"src='data:image/jpeg;base64,([A-Za-z0-9+/=]+)'", part)
        assert len(heatmaps) == 5
        assert np.ptp(np.asarray(_image(heatmaps[0]))) > 0


# fine-tuning and export


def test_evaluate_finetune_fits_the_regressor_of_one_number_and_exports_both(
        tmp_path, monkeypatch):
    import json

    import onnx
    from sklearn.metrics import r2_score

    from skconvnet import FineTunedConvNetRegressor, load_image_csv
    from skconvnet.cli.commands import main

    train = numbers_csv(tmp_path / "train", 16, seed=1)
    test = numbers_csv(tmp_path / "test", 8, seed=2)
    fitted = []
    fit = FineTunedConvNetRegressor.fit
    monkeypatch.setattr(FineTunedConvNetRegressor, "fit",
                        lambda self, X, y: fitted.append(self) or fit(self, X, y))
    report, model = tmp_path / "report.json", tmp_path / "model.onnx"
    out = _captured(lambda: main([
        "evaluate", str(train), "--test", str(test), *FAST, "--no-audit", "--label-columns",
        "half", "--finetune", "--fine-tune-epochs", "1", "--report", str(report),
        "--export", str(model), "--html", str(tmp_path / "page.html")]))
    result = json.loads(report.read_text())
    assert result["targets"] == ["half"] and list(result["test_per_target"]) == ["half"]
    (regressor,) = fitted
    assert (regressor.layer, regressor.fine_tune_epochs, regressor.image_size) == (
        result["best_layer"], 1, 32)
    X_test, y_test = load_image_csv(test, label_columns="half")
    assert y_test.ndim == 1
    assert result["finetune_test_r2"] == pytest.approx(
        r2_score(y_test, regressor.predict(X_test)), abs=1e-9)
    assert list(result["finetune_test_per_target"]) == ["half"]
    assert f"test, fine-tuned on {result['best_layer']}: R² {result['finetune_test_r2']:.3f}" \
        in out
    assert "Fine-tuned regressor written to" in out
    assert "kind: numbers (1 target: half)" in out and "images (1 target) in one pass" in out
    for path in (model, tmp_path / "model.finetuned.onnx"):
        assert [output.name for output in onnx.load(path).graph.output] == ["variable"]
        predictions = tmp_path / f"{path.stem}.csv"  # named as the CSV names the target
        _captured(lambda: main(["predict", str(path), str(test), "--output", str(predictions)]))
        assert predictions.read_text().splitlines()[0] == "path,half"
    page = (tmp_path / "page.html").read_text()
    curves = _between(page, "<h2>Fine-tuning</h2>", "</body>")
    assert "Test scores fine-tuned on" in _text(curves) and "data:image/png" in curves


def test_evaluate_finetune_fits_a_classifier_of_tags(tmp_path, monkeypatch):
    import json

    from sklearn.metrics import f1_score

    from skconvnet import FineTunedConvNetClassifier, load_image_csv
    from skconvnet.cli.commands import main

    train, test = tags_csv(tmp_path / "train", 16, seed=1), tags_csv(tmp_path / "test", 8, 2)
    fitted = []
    fit = FineTunedConvNetClassifier.fit
    monkeypatch.setattr(FineTunedConvNetClassifier, "fit",
                        lambda self, X, y: fitted.append((self, y)) or fit(self, X, y))
    report, model = tmp_path / "report.json", tmp_path / "model.onnx"
    _captured(lambda: main(["evaluate", str(train), "--test", str(test), *FAST, "--no-audit",
                            "--finetune", "--fine-tune-epochs", "1", "--report", str(report),
                            "--html", str(tmp_path / "page.html"), "--export", str(model)]))
    for path in (model, tmp_path / "model.finetuned.onnx"):  # tags named as in the CSV
        predictions = tmp_path / f"{path.stem}.csv"
        _captured(lambda: main(["predict", str(path), str(test), "--output", str(predictions)]))
        assert predictions.read_text().splitlines()[0] == (
            "path,labels,probability_bright,probability_checks,probability_stripes")
    result = json.loads(report.read_text())
    ((classifier, y),) = fitted
    assert y.shape == (16, 3) and classifier.multilabel_
    X_test, y_test = load_image_csv(test)
    assert result["finetune_test_micro_f1"] == pytest.approx(
        f1_score(y_test, classifier.predict(X_test), average="micro"), abs=1e-9)
    assert set(result["finetune_test_per_tag"]) == {"bright", "checks", "stripes"}
    assert "<h2>Fine-tuning</h2>" in (tmp_path / "page.html").read_text()


# a CSV of classes is a folder of class folders


def test_a_csv_of_classes_evaluates_and_audits_as_its_folder_does(photos, tmp_path):
    import json

    from skconvnet import load_image_folder
    from skconvnet.cli.commands import main

    csvs = {}
    for split in photos:  # absolute paths, in the folder's order
        paths, labels = load_image_folder(split)
        csvs[split] = write_csv(tmp_path / f"{split.name}.csv", ["image", "class"],
                                [[path, label] for path, label in zip(paths, labels)])
    train, test = photos
    results = []
    for given in ((train, test), (csvs[train], csvs[test])):
        report = tmp_path / "report.json"
        out = _captured(lambda: main(["evaluate", str(given[0]), "--test", str(given[1]),
                                      *FAST, "--report", str(report)]))
        results.append((out, json.loads(report.read_text())))
        audit = tmp_path / "audit.json"
        _captured(lambda: main(["audit", str(given[0]), *FAST, "--report", str(audit)]))
        results[-1] += (json.loads(audit.read_text()),)
    (folder_out, folder, folder_audit), (csv_out, read, read_audit) = results
    assert f"{csvs[train]}: 24 photos, classes (checks, stripes)" in csv_out
    assert folder["kind"] == read["kind"] == "class"
    for result, audit in ((folder, folder_audit), (read, read_audit)):
        for found in (result, result["audit"], audit):
            found.pop("seconds")
        result.pop("train_dir"), result.pop("test_dir")
    assert read == folder and read_audit == folder_audit
    assert _table(csv_out) == _table(folder_out)


def _table(out):
    return out[out.index("layer "):out.index("photos: ")]


# the audit command on a CSV file of tags


def test_audit_command_on_a_csv_of_tags_finds_copies_and_no_label_issues(tmp_path, capsys):
    import json
    import shutil

    from skconvnet.cli.commands import main

    path = tags_csv(tmp_path / "photos", 12)
    shutil.copyfile(tmp_path / "photos" / "03.png", tmp_path / "photos" / "copy.png")
    with open(path, "a") as file:
        file.write("copy.png,checks\n")  # 03.png is checks|bright: labelled differently
    report, page = tmp_path / "audit.json", tmp_path / "audit.html"
    assert main(["audit", str(path), *FAST, "--report", str(report), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 13 photos, tags (bright, checks, stripes)" in out
    assert "Checking the photos: copies on block3_pool, outliers on " in out
    assert "label issues: not sought (confident learning needs classes; tags have none)" in out
    found = json.loads(report.read_text())
    assert list(found) == ["copy_layer", "outlier_layers", "label_issues_skipped",
                           "duplicates", "conflicting_duplicates", "outliers", "seconds"]
    copies = [sorted(Path(photo).name for photo in group)
              for group in found["conflicting_duplicates"]]
    assert any({"03.png", "copy.png"} <= set(group) for group in copies)
    text = _text(page.read_text())
    assert "Photos probably mislabelled: not sought" in text
    assert "Training photos probably mislabelled" not in text
    assert "bright|checks" in text  # copies named by their tags


# mistakes: one line each


def test_test_and_training_photos_of_different_kinds_are_refused(tmp_path, capsys):
    from helpers import error_line

    from skconvnet.cli.commands import main

    train, test = tags_csv(tmp_path / "train", 4), numbers_csv(tmp_path / "test", 4)
    assert main(["evaluate", str(train), "--test", str(test), *FAST]) == 1
    assert f"--test {test} holds numbers but {train} holds tags: give both the same kind" \
        in error_line(capsys)


def test_a_csv_naming_a_missing_photo_is_refused_with_its_row(tmp_path, capsys):
    from helpers import error_line

    from skconvnet.cli.commands import main

    train = tags_csv(tmp_path / "train", 4)
    (tmp_path / "train" / "02.png").unlink()
    assert main(["evaluate", str(train), "--test", str(train), *FAST]) == 1
    line = error_line(capsys)
    assert f"{train}: 1 of 4 image files do not exist: row 4: 02.png" in line
    assert main(["audit", str(train), *FAST]) == 1
    assert "row 4: 02.png" in error_line(capsys)


def _between(page, start, end):
    part = page[page.index(start):]
    stop = part.find(end, len(start))
    return part if stop < 0 else part[:stop]


def _text(page):
    import html
    import re

    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _image(data):
    import base64
    import io

    return Image.open(io.BytesIO(base64.b64decode(data)))


def _two_tags_csv(folder, n, seed):
    """A CSV of two tags, ``checks`` and ``bright``: none, either or both per photo."""
    names, checks, bright, _ = write_photos(folder, n, seed)
    return write_csv(folder / "tags.csv", ["path", "checks", "bright"],
                     [[name, c, b] for name, c, b in zip(names, checks, bright)])


def test_two_tags_are_scored_as_tags_not_as_two_classes(tmp_path):
    """scikit-learn's scorers take a model of the tags [0, 1] for a binary classifier."""
    import json

    from skconvnet.cli.commands import main

    train = _two_tags_csv(tmp_path / "train", 24, seed=1)
    test = _two_tags_csv(tmp_path / "test", 8, seed=2)
    report = tmp_path / "report.json"
    _captured(lambda: main(["evaluate", str(train), "--test", str(test), *FAST, "--no-audit",
                            "--kind", "tags", "--report", str(report)]))
    result = json.loads(report.read_text())
    assert result["tags"] == ["checks", "bright"]
    scores = result["cv_mean_average_precision"]
    assert all(0 < score <= 1 for score in scores.values())  # a failing scorer gives NaN
    assert result["best_layer"] == max(scores, key=lambda layer: (
        scores[layer], result["cv_micro_f1"][layer]))


def test_one_tag_is_refused_as_two_classes(tmp_path, capsys):
    from helpers import error_line

    from skconvnet.cli.commands import main

    names, checks, _, _ = write_photos(tmp_path, 8)
    train = write_csv(tmp_path / "one.csv", ["path", "checks"],
                      [[name, c] for name, c in zip(names, checks)])
    assert main(["evaluate", str(train), "--test", str(train), *FAST, "--kind", "tags"]) != 0
    assert re.search(r"one\.csv holds one tag \('checks'\): with or without it are two "
                     r"classes\. Give --kind class", error_line(capsys))


def test_a_folder_of_classes_named_by_numbers_beside_a_csv_of_them(tmp_path):
    """A folder's classes are names ('0', '1'), a CSV's whole numbers (0, 1): the same."""
    options_ = options()
    folder = tmp_path / "train"
    for label in ("0", "1"):
        names, _, _, _ = write_photos(folder / label, 3, seed=int(label))
    names, _, _, _ = write_photos(tmp_path / "test", 4)
    test_csv = write_csv(tmp_path / "test" / "test.csv", ["path", "class"],
                         [[name, index % 2] for index, name in enumerate(names)])
    train, test = options_.load_labelled(folder), options_.load_labelled(test_csv)
    assert test.y.dtype.kind == "i"
    checked = same_targets(train, test, "train", "test.csv")
    assert checked.y.tolist() == ["0", "1", "0", "1"]
