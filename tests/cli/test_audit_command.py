"""Checking the photos from the command line: evaluate's audit (and --no-audit), and the
audit command."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import FAST_EVALUATE, error_line, texture_folder
from PIL import Image

from skconvnet import load_image_folder
from skconvnet.audit.collection import audit_collection
from skconvnet.cli.commands import main


@pytest.mark.no_backend
def test_the_test_accuracy_is_recomputed_without_the_leaked_photos():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(60, 16)), rng.normal(size=(20, 16))
    test[[3, 11]] = train[[5, 40]]
    y, y_test = np.repeat(["a", "b"], 30), np.repeat(["a", "b"], 10)
    correct = np.arange(20) % 4 != 0  # 3 and 11 are right, 15 of the 20 are
    audit = audit_collection(y, probe=train, copies=train, outliers=[train], folds=3,
                             paths=train, test_probe=test, test_copies=test, y_test=y_test,
                             test_paths=test, test_correct=correct)  # rows stand for pixels
    assert audit.leaks.pairs.tolist() == [[5, 3], [40, 11]]
    assert audit.test_accuracy_without_leaks == pytest.approx(13 / 18)


def test_evaluate_reports_a_copied_test_photo_as_an_exact_leak(tmp_path):
    train, test = texture_folder(tmp_path / "train", 12, seed=1), texture_folder(
        tmp_path / "test", 8, seed=2)
    source, leaked = train / "checks" / "03.png", test / "checks" / "copy.png"
    shutil.copyfile(source, leaked)
    report = tmp_path / "report.json"
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE,
                 "--report", str(report)]) == 0
    leaks = json.loads(report.read_text())["audit"]["leaks"]
    copy = next(leak for leak in leaks if leak["test"] == str(leaked)
                and leak["train"] == str(source))
    assert copy["exact"] and copy["similarity"] == pytest.approx(1)
    assert all(not leak["exact"] for leak in leaks if leak is not copy)


def test_no_audit_leaves_the_audit_out_of_the_table_json_and_page(photos, tmp_path, capsys):
    train, test = photos
    report, page = tmp_path / "report.json", tmp_path / "page.html"
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--no-audit",
                 "--report", str(report), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "Checking the photos" not in out and "photos: label issues" not in out
    assert "audit" not in json.loads(report.read_text())
    assert "The photos themselves" not in page.read_text()


def test_evaluate_prints_what_the_audit_found(photos, capsys):
    train, test = photos
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE]) == 0
    out = capsys.readouterr().out
    assert "Checking the photos: label issues on block1_pool, copies on block3_pool, " \
           "outliers on block2_pool, block1_pool, block3_pool" in out
    assert "photos: label issues: " in out and "outliers: " in out


def test_audit_command_writes_the_findings_and_their_page(tmp_path, capsys):
    folder = texture_folder(tmp_path / "photos", 30, seed=4)
    misfiled = folder / "stripes" / "misfiled.png"
    (folder / "checks" / "05.png").rename(misfiled)
    report, page = tmp_path / "audit.json", tmp_path / "audit.html"
    assert main(["audit", str(folder), "--weights", "none", "--image-size", "32", "--layers",
                 "block1_pool,block2_pool", "--cv", "3", "--report", str(report),
                 "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "Checking the photos: label issues on block1_pool" in out
    found = json.loads(report.read_text())
    assert list(found) == ["probe_layer", "copy_layer", "outlier_layers", "C", "label_issues",
                           "duplicates", "conflicting_duplicates", "outliers", "seconds"]
    assert (found["copy_layer"], found["outlier_layers"]) == (
        "block2_pool", ["block1_pool", "block2_pool"])
    assert found["label_issues"][0]["photo"] == str(misfiled)
    assert (found["label_issues"][0]["given"], found["label_issues"][0]["suggested"]) == (
        "stripes", "checks")
    text = page.read_text()
    assert "<h2>The photos themselves</h2>" in text and "Test photos" not in text
    assert "misfiled.png" in text
    for data in _jpegs(text):
        Image.open(io.BytesIO(data)).verify()


def test_audit_command_mistakes_are_named(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "missing"), "--weights", "none"]) == 1
    assert "does not exist" in error_line(capsys)
    assert main(["audit", str(tmp_path), "--weights", "none", "--html",
                 str(tmp_path / "nowhere" / "page.html")]) == 1
    assert "does not exist" in error_line(capsys)


@pytest.mark.slow
def test_evaluate_finds_a_flipped_label_a_leaked_copy_and_a_foreign_picture(
        cats_and_dogs, imagenet_weights, tmp_path):
    """Real photos, each fault injected once: the audit names each."""
    root = tmp_path / "photos"
    for split, per_class in (("train", 60), ("validation", 20)):
        paths, labels = load_image_folder(cats_and_dogs / split, max_per_class=per_class)
        flipped = paths[7] if split == "train" else None  # a cat filed as a dog
        for path, label in zip(paths, labels):
            label = "dogs" if path == flipped else label
            (root / split / label).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / split / label / path.name)
        if split == "train":
            flipped_name, source = flipped.name, root / "train" / "dogs" / paths[70].name
    picture = Image.open(source)
    picture.crop((10, 10, picture.width, picture.height)).resize(
        (picture.width * 4 // 5, picture.height * 4 // 5)).save(
        root / "validation" / "dogs" / "copy.jpg", quality=60)
    noise = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).resize((400, 300)).save(root / "train" / "cats" / "noise.png")
    report_path = tmp_path / "report.json"
    assert main(["evaluate", str(root / "train"), "--test", str(root / "validation"),
                 "--weights", str(imagenet_weights), "--layers", "block4_pool,block5_pool",
                 "--report", str(report_path)]) == 0
    audit = json.loads(report_path.read_text())["audit"]
    assert Path(audit["label_issues"][0]["photo"]).name == flipped_name
    assert [(Path(leak["train"]).name, Path(leak["test"]).name) for leak in audit["leaks"]] == [
        (source.name, "copy.jpg")]
    assert Path(audit["outliers"][0]["photo"]).name == "noise.png"


def _jpegs(page):
    import base64
    import re

    return [base64.b64decode(data) for data in
            re.findall(r"src='data:image/jpeg;base64,([A-Za-z0-9+/=]+)'", page)]
