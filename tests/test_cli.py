"""The command line (``python -m skconvnet``) and ``load_image_folder``."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import small_extractor
from skconvnet import _backbone, load_image_folder
from skconvnet._cli import main

FAST = ["--weights", "none", "--image-size", "32", "--layers", "block1_pool,block2_pool",
        "--cv", "2"]


def _write_folder(root, per_class, seed=0, size=32):
    """Dark and bright random images, one sub-folder per class."""
    rng = np.random.default_rng(seed)
    for label, (low, high) in {"bright": (155, 256), "dark": (0, 100)}.items():
        (root / label).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(low, high, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{index:02d}.png")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return _write_folder(root / "train", 6, seed=1), _write_folder(root / "test", 4, seed=2)


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# load_image_folder


def test_load_image_folder_is_sorted_and_skips_what_is_not_an_image(tmp_path):
    _write_folder(tmp_path, 3)
    (tmp_path / "dark" / "notes.txt").write_text("not an image")
    (tmp_path / "dark" / ".hidden.png").write_bytes(b"")
    (tmp_path / ".thumbnails").mkdir()
    (tmp_path / "README.md").write_text("a file beside the class folders")
    paths, labels = load_image_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "bright/00.png", "bright/01.png", "bright/02.png", "dark/00.png", "dark/01.png",
        "dark/02.png",
    ]
    assert labels.tolist() == ["bright"] * 3 + ["dark"] * 3


def test_max_per_class_draws_a_seeded_sample(tmp_path):
    _write_folder(tmp_path, 10)
    paths, labels = load_image_folder(tmp_path, max_per_class=4, random_state=0)
    again, _ = load_image_folder(tmp_path, max_per_class=4, random_state=0)
    other, _ = load_image_folder(tmp_path, max_per_class=4, random_state=1)
    assert paths == again and paths != other
    assert labels.tolist() == ["bright"] * 4 + ["dark"] * 4
    assert paths == sorted(paths)
    assert load_image_folder(tmp_path, max_per_class=20)[0] == load_image_folder(tmp_path)[0]


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing does not exist.*one sub-folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match=r"flat has no class sub-folders"):
        load_image_folder(tmp_path / "flat")
    _write_folder(tmp_path / "classes", 2)
    (tmp_path / "classes" / "empty").mkdir()
    with pytest.raises(ValueError, match=r"Class folder .*empty holds no image files"):
        load_image_folder(tmp_path / "classes")
    with pytest.raises(ValueError, match=r"max_per_class must be a positive integer"):
        load_image_folder(tmp_path / "flat", max_per_class=0)


# evaluate


def test_evaluate_writes_table_report_and_plot(photos, tmp_path, capsys):
    train, test = photos
    report, plot = tmp_path / "report.json", tmp_path / "layers.png"
    assert main(["evaluate", str(train), "--test", str(test), *FAST,
                 "--report", str(report), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert set(result["cv_accuracy"]) == {"block1_pool", "block2_pool"}
    assert result["best_layer"] == max(result["cv_accuracy"], key=result["cv_accuracy"].get)
    assert (result["n_train"], result["n_test"]) == (12, 8)
    assert result["image_size"] == 32 and result["weights"] == "none"
    assert 0 <= result["test_accuracy"] <= 1 and result["seconds"] > 0
    assert "block1_pool" in out and "block2_pool" in out
    assert f"test accuracy, logistic regression on {result['best_layer']}" in out
    assert Image.open(plot).format == "PNG"


def test_evaluate_test_accuracy_is_that_of_the_best_layer_pipeline(photos, tmp_path):
    """The reported test accuracy is what the same pipeline, refitted by hand, scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = photos
    report = tmp_path / "report.json"
    main(["evaluate", str(train), "--test", str(test), *FAST, "--report", str(report)])
    result = json.loads(report.read_text())
    model = make_pipeline(
        small_extractor(layer=result["best_layer"]), StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    score = model.fit(*load_image_folder(train)).score(*load_image_folder(test))
    assert result["test_accuracy"] == pytest.approx(score)


def test_evaluate_finetune_adds_its_test_accuracy(photos, tmp_path, capsys):
    train, test = photos
    report = tmp_path / "report.json"
    assert main(["evaluate", str(train), "--test", str(test), *FAST, "--finetune",
                 "--head-epochs", "2", "--fine-tune-epochs", "1", "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    assert 0 <= result["finetune_test_accuracy"] <= 1
    assert "fine-tuned VGG16" in capsys.readouterr().out


def test_max_per_class_limits_the_images(photos, tmp_path):
    train, test = photos
    report = tmp_path / "report.json"
    main(["evaluate", str(train), "--test", str(test), *FAST, "--max-per-class", "3",
          "--report", str(report)])
    result = json.loads(report.read_text())
    assert (result["n_train"], result["n_test"]) == (6, 6)


# extract


def test_extract_writes_features_paths_and_labels(photos, tmp_path):
    train, _ = photos
    out = tmp_path / "features.npz"
    assert main(["extract", str(train), "--layer", "block2_pool", "--weights", "none",
                 "--image-size", "32", "--out", str(out)]) == 0
    saved = np.load(out)
    paths, labels = load_image_folder(train)
    assert saved["paths"].tolist() == [str(p) for p in paths]
    assert saved["labels"].tolist() == labels.tolist()
    np.testing.assert_array_equal(saved["features"], small_extractor().fit_transform(paths))
    assert saved["feature_names"][0] == "block2_pool_avg_ch0"


def test_module_and_script_run_as_programs():
    script = shutil.which("skconvnet", path=os.path.dirname(sys.executable))
    assert script, "no skconvnet script beside this Python: pip install -e ."
    for command in ([sys.executable, "-m", "skconvnet", "--help"], [script, "--help"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "evaluate" in result.stdout and "extract" in result.stdout


# errors: non-zero exit, one clear line


def test_missing_folder(photos, tmp_path, capsys):
    _, test = photos
    assert main(["evaluate", str(tmp_path / "nowhere"), "--test", str(test), *FAST]) == 1
    assert "nowhere does not exist" in _error_line(capsys)


def test_folder_without_class_folders(photos, tmp_path, capsys):
    _, test = photos
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["evaluate", str(tmp_path), "--test", str(test), *FAST]) == 1
    assert "has no class sub-folders" in _error_line(capsys)


def test_empty_class(photos, tmp_path, capsys):
    _, test = photos
    train = _write_folder(tmp_path / "train", 3)
    (train / "cats").mkdir()
    assert main(["evaluate", str(train), "--test", str(test), *FAST]) == 1
    assert "cats holds no image files" in _error_line(capsys)


def test_unknown_layer(photos, capsys):
    train, test = photos
    assert main(["evaluate", str(train), "--test", str(test), "--weights", "none",
                 "--layers", "block4_pool,block9_pool"]) == 1
    assert "Unknown layer 'block9_pool' for --layers" in _error_line(capsys)
    assert main(["extract", str(train), "--layer", "block1_pool,block2_pool", "--out",
                 "x.npz", "--weights", "none"]) == 1
    assert "--layer takes one layer" in _error_line(capsys)


def test_unreadable_images_are_named(photos, tmp_path, capsys):
    _, test = photos
    train = _write_folder(tmp_path / "train", 3)
    (train / "dark" / "broken.png").write_bytes(b"not a png")
    (train / "bright" / "cut.png").write_bytes((train / "bright" / "00.png").read_bytes()[:60])
    assert main(["evaluate", str(train), "--test", str(test), *FAST]) == 1
    line = _error_line(capsys)
    assert "broken.png" in line and "cut.png" in line


def test_weights_that_cannot_be_had_say_how_to_pass_a_file(photos, tmp_path, monkeypatch, capsys):
    import keras

    train, test = photos
    monkeypatch.setattr(_backbone, "IMAGENET_URL", (tmp_path / "gone.h5").as_uri())
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    _backbone._load.cache_clear()
    try:
        assert main(["evaluate", str(train), "--test", str(test), "--weights", "imagenet"]) == 1
    finally:
        _backbone._load.cache_clear()
    line = _error_line(capsys)
    assert "Could not download the ImageNet VGG16 weights" in line and "--weights PATH" in line
    assert main(["evaluate", str(train), "--test", str(test),
                 "--weights", str(tmp_path / "none.h5")]) == 1
    assert "none.h5'" in _error_line(capsys)


def test_plot_without_matplotlib_says_how_to_install_it(photos, monkeypatch, capsys):
    train, test = photos
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["evaluate", str(train), "--test", str(test), *FAST, "--plot", "x.png"]) == 1
    assert "pip install 'skconvnet[plot]'" in _error_line(capsys)


def test_real_photos(cats_and_dogs, hed_weights, tmp_path):
    """On the shared cats/dogs photos the best layer's features beat chance on held-out ones."""
    report = tmp_path / "report.json"
    assert main([
        "evaluate", str(cats_and_dogs / "train"), "--test", str(cats_and_dogs / "validation"),
        "--weights", str(hed_weights), "--image-size", "64", "--max-per-class", "100",
        "--cv", "3", "--report", str(report),
    ]) == 0
    result = json.loads(report.read_text())
    assert (result["n_train"], result["n_test"]) == (200, 200)
    assert set(result["cv_accuracy"]) == {"block3_pool", "block4_pool", "block5_pool"}
    assert result["cv_accuracy"][result["best_layer"]] > 0.6
    assert result["test_accuracy"] > 0.6  # chance is 0.5, its standard error here 0.035
