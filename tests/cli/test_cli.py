"""The command line (``python -m skconvnet``) and ``load_image_folder``."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import (
    EVALUATE_LAYERS,
    FAST_EVALUATE,
    error_line,
    hand_written_pipeline,
    small_extractor,
    texture_folder,
)
from PIL import Image

from skconvnet import load_image_folder
from skconvnet.backbones import weights
from skconvnet.cli.commands import main
from skconvnet.compute import activations


def _hand_cv(layer, X, y, random_state=0, **params):
    """That pipeline's scores on evaluate's folds (3, stratified, shuffled by random_state)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(3, shuffle=True, random_state=random_state)
    return cross_val_score(hand_written_pipeline(layer, **params), X, y, cv=folds)


# load_image_folder


def test_load_image_folder_is_sorted_and_skips_what_is_not_an_image(tmp_path):
    texture_folder(tmp_path, 3)
    (tmp_path / "stripes" / "notes.txt").write_text("not an image")
    (tmp_path / "stripes" / ".hidden.png").write_bytes(b"")
    (tmp_path / ".thumbnails").mkdir()
    (tmp_path / "README.md").write_text("a file beside the class folders")
    paths, labels = load_image_folder(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "checks/00.png", "checks/01.png", "checks/02.png", "stripes/00.png", "stripes/01.png",
        "stripes/02.png",
    ]
    assert labels.tolist() == ["checks"] * 3 + ["stripes"] * 3


def test_max_per_class_draws_a_seeded_sample(tmp_path):
    texture_folder(tmp_path, 10)
    paths, labels = load_image_folder(tmp_path, max_per_class=4, random_state=0)
    again, _ = load_image_folder(tmp_path, max_per_class=4, random_state=0)
    other, _ = load_image_folder(tmp_path, max_per_class=4, random_state=1)
    assert paths == again and paths != other
    assert labels.tolist() == ["checks"] * 4 + ["stripes"] * 4
    assert paths == sorted(paths)
    assert load_image_folder(tmp_path, max_per_class=20)[0] == load_image_folder(tmp_path)[0]


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing does not exist.*one sub-folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match=r"flat has no class sub-folders"):
        load_image_folder(tmp_path / "flat")
    texture_folder(tmp_path / "classes", 2)
    (tmp_path / "classes" / "empty").mkdir()
    with pytest.raises(ValueError, match=r"Class folder .*empty holds no image files"):
        load_image_folder(tmp_path / "classes")
    with pytest.raises(ValueError, match=r"max_per_class must be a positive integer"):
        load_image_folder(tmp_path / "flat", max_per_class=0)


# evaluate


def test_evaluate_writes_table_report_and_plot(photos, tmp_path, capsys):
    train, test = photos
    report, plot = tmp_path / "report.json", tmp_path / "layers.png"
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE,
                 "--report", str(report), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert list(result["cv_accuracy"]) == EVALUATE_LAYERS
    assert (result["n_train"], result["n_test"]) == (24, 16)
    assert result["image_size"] == 32 and result["weights"] == "none"
    assert result["classes"] == ["checks", "stripes"] and result["seconds"] > 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("block")}
    assert set(rows) == set(EVALUATE_LAYERS)
    assert [layer for layer, row in rows.items() if row.endswith("<- best")] == ["block1_pool"]
    assert f"{result['cv_accuracy']['block1_pool']:.3f}" in rows["block1_pool"]
    assert (f"test accuracy, logistic regression on block1_pool: {result['test_accuracy']:.3f}"
            in out)
    assert Image.open(plot).format == "PNG"


def test_evaluate_scores_each_layer_as_the_hand_written_pipeline_does(photos, tmp_path):
    """Each layer's cv accuracy, the best layer and the test accuracy are those of the same
    pipeline on that layer alone, fitted by hand with the same folds."""
    train, test = photos
    report = tmp_path / "report.json"
    main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--report", str(report)])
    result = json.loads(report.read_text())
    X, y = load_image_folder(train)
    X_test, y_test = load_image_folder(test)
    cv = {layer: _hand_cv(layer, X, y) for layer in EVALUATE_LAYERS}
    tested = {layer: hand_written_pipeline(layer).fit(X, y).score(X_test, y_test) for layer in EVALUATE_LAYERS}
    # The data tells the layers apart: one clear best, a test accuracy of its own.
    ranked = sorted(EVALUATE_LAYERS, key=lambda layer: cv[layer].mean(), reverse=True)
    assert cv[ranked[0]].mean() - cv[ranked[1]].mean() >= 0.05, cv
    assert all(tested[ranked[0]] != tested[layer] for layer in ranked[1:]), tested

    for layer in EVALUATE_LAYERS:
        assert result["cv_accuracy"][layer] == pytest.approx(cv[layer].mean(), abs=1e-12)
        assert result["cv_accuracy_std"][layer] == pytest.approx(cv[layer].std(), abs=1e-12)
    assert result["best_layer"] == ranked[0]
    assert result["test_accuracy"] == pytest.approx(tested[ranked[0]], abs=1e-12)


def test_evaluate_options_reach_the_extractor(photos, tmp_path, monkeypatch):
    """--pooling, --precision, --random-state (sampling and folds) and --batch-size."""
    train, test = photos
    report = tmp_path / "report.json"
    batches = []
    predict = activations.predict_batch
    monkeypatch.setattr(activations, "predict_batch",
                        lambda model, batch, **options: batches.append(len(batch))
                        or predict(model, batch, **options))
    main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--pooling", "max",
          "--precision", "bfloat16", "--random-state", "3", "--max-per-class", "9",
          "--batch-size", "4", "--report", str(report)])
    result = json.loads(report.read_text())
    assert (result["pooling"], result["precision"]) == ("max", "bfloat16")
    assert batches and max(batches) == 4

    X, y = load_image_folder(train, max_per_class=9, random_state=3)
    assert X != load_image_folder(train, max_per_class=9, random_state=0)[0]
    for layer in EVALUATE_LAYERS:
        expected = _hand_cv(layer, X, y, random_state=3, pooling="max", precision="bfloat16")
        assert result["cv_accuracy"][layer] == pytest.approx(expected.mean(), abs=1e-12), layer
    main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--pooling", "flatten",
          "--report", str(report)])
    flat = json.loads(report.read_text())
    assert flat["pooling"] == "flatten"
    expected = _hand_cv("block3_pool", *load_image_folder(train), pooling=None)
    assert flat["cv_accuracy"]["block3_pool"] == pytest.approx(expected.mean(), abs=1e-12)


def test_evaluate_finetune_fine_tunes_the_best_layer_with_the_options(
    photos, tmp_path, monkeypatch, capsys
):
    from skconvnet import FineTunedConvNetClassifier

    train, test = photos
    report = tmp_path / "report.json"
    fitted = []
    fit = FineTunedConvNetClassifier.fit
    monkeypatch.setattr(FineTunedConvNetClassifier, "fit",
                        lambda self, X, y: fitted.append(self) or fit(self, X, y))
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--finetune",
                 "--head-epochs", "2", "--fine-tune-epochs", "1", "--batch-size", "6",
                 "--random-state", "4", "--report", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["best_layer"] == "block1_pool"
    (classifier,) = fitted
    expected = dict(layer="block1_pool", unfreeze_from=None, head_epochs=2,
                    fine_tune_epochs=1, batch_size=6, random_state=4, pooling="avg",
                    precision="float32", weights=None, image_size=32)
    assert {name: classifier.get_params()[name] for name in expected} == expected
    assert result["finetune_test_accuracy"] == pytest.approx(
        classifier.score(*load_image_folder(test)), abs=1e-12)
    assert (f"test accuracy, fine-tuned on block1_pool: "
            f"{result['finetune_test_accuracy']:.3f}") in capsys.readouterr().out


def test_evaluate_finetune_keeps_the_classifier_defaults(
    photos, tmp_path, monkeypatch
):
    from skconvnet import FineTunedConvNetClassifier

    train, test = photos
    fitted = []
    monkeypatch.setattr(FineTunedConvNetClassifier, "fit",
                        lambda self, X, y: fitted.append(self) or self)
    monkeypatch.setattr(FineTunedConvNetClassifier, "score", lambda self, X, y: 0.5)
    main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--finetune"])
    (classifier,) = fitted
    defaults = FineTunedConvNetClassifier()
    assert classifier.batch_size == defaults.batch_size
    assert classifier.head_epochs == defaults.head_epochs == "auto"
    assert classifier.fine_tune_epochs == defaults.fine_tune_epochs


def test_head_epochs_is_a_number_or_auto(photos, capsys):
    train, test = photos
    with pytest.raises(SystemExit):
        main(["evaluate", str(train), "--test", str(test), "--finetune", "--head-epochs", "some"])
    assert "invalid value 'some': give a number of epochs or 'auto'" in capsys.readouterr().err


def test_max_per_class_limits_the_images(photos, tmp_path):
    train, test = photos
    report = tmp_path / "report.json"
    main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--max-per-class", "6",
          "--report", str(report)])
    result = json.loads(report.read_text())
    assert (result["n_train"], result["n_test"]) == (12, 12)


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


def test_a_run_prints_no_tensorflow_start_up_lines(photos, tmp_path):
    train, _ = photos
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "skconvnet", "extract", str(train), "--layer", "block1_pool",
         "--weights", "none", "--image-size", "32", "--out", str(tmp_path / "features.npz")],
        capture_output=True, text=True, env=environment,
    )
    assert result.returncode == 0, result.stderr
    for noise in ("cuInit", "oneDNN", "cuda", "absl", "I0000", "E0000"):
        assert noise not in result.stdout + result.stderr, result.stderr


# errors: non-zero exit, one clear line


def test_missing_folder(photos, tmp_path, capsys):
    _, test = photos
    assert main(["evaluate", str(tmp_path / "nowhere"), "--test", str(test), *FAST_EVALUATE]) == 1
    assert "nowhere does not exist" in error_line(capsys)


def test_folder_without_class_folders(photos, tmp_path, capsys):
    _, test = photos
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["evaluate", str(tmp_path), "--test", str(test), *FAST_EVALUATE]) == 1
    assert "has no class sub-folders" in error_line(capsys)


def test_empty_class(photos, tmp_path, capsys):
    _, test = photos
    train = texture_folder(tmp_path / "train", 3)
    (train / "cats").mkdir()
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE]) == 1
    assert "cats holds no image files" in error_line(capsys)


def test_unknown_layer(photos, capsys):
    train, test = photos
    assert main(["evaluate", str(train), "--test", str(test), "--weights", "none",
                 "--layers", "block4_pool,block9_pool"]) == 1
    assert "Unknown layer 'block9_pool' for --layers" in error_line(capsys)
    assert main(["extract", str(train), "--layer", "block1_pool,block2_pool", "--out",
                 "x.npz", "--weights", "none"]) == 1
    assert "--layer takes one layer" in error_line(capsys)


@pytest.mark.parametrize("backbones, layers, size, deep, depth", [
    ("vgg16,resnet50",
     "vgg16/block1_pool,vgg16/block2_pool,resnet50/pool1_pool,resnet50/conv2_block3_out", "32",
     "resnet50/conv2_block3_out", 5),
    # a convnet beside a keras-hub transformer
    ("vgg16,dinov2_small", "vgg16/block1_pool,dinov2_small/block1,dinov2_small/block2", "28",
     "dinov2_small/block2", 2),
])
def test_evaluate_compares_backbones(photos, tmp_path, capsys, backbones, layers, size, deep,
                                     depth):
    """One pass per backbone; the report, the table and the layer curve hold them all."""
    if "dinov2" in backbones:
        pytest.importorskip("keras_hub")
    train, test = photos
    report, plot = tmp_path / "report.json", tmp_path / "layers.png"
    assert main(["evaluate", str(train), "--test", str(test), "--weights", "none",
                 "--image-size", size, "--cv", "3", "--backbone", backbones,
                 "--layers", layers, "--report", str(report), "--plot", str(plot)]) == 0
    result = json.loads(report.read_text())
    assert list(result["cv_accuracy"]) == layers.split(",")
    assert result["backbones"] == backbones.split(",")
    assert result["depth"][deep] == depth
    assert result["best_layer"] == max(result["cv_accuracy"], key=result["cv_accuracy"].get)
    out = capsys.readouterr().out
    assert all(layer in out for layer in layers.split(","))
    assert Image.open(plot).size[0] > 0


def test_backbone_and_layer_mistakes(photos, capsys):
    train, test = photos
    common = ["evaluate", str(train), "--test", str(test), "--weights", "none"]
    assert main([*common, "--backbone", "resnet"]) == 1
    assert "Unknown --backbone='resnet'" in error_line(capsys)
    assert main([*common, "--backbone", "vgg16,resnet50", "--layers", "block5_pool"]) == 1
    assert "Unknown layer 'block5_pool' for --layers. ResNet-50" in error_line(capsys)
    assert main([*common, "--backbone", "vgg16", "--layers", "resnet50/pool1_pool"]) == 1
    assert "'resnet50' is not one of --backbone 'vgg16'" in error_line(capsys)
    assert main([*common, "--backbone", "vgg16,resnet50", "--layers", "vgg16/block5_pool"]) == 1
    assert "names no layer of resnet50; add some as resnet50/LAYER" in error_line(capsys)


def test_batch_size_below_one(photos, capsys):
    train, test = photos
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--batch-size", "0"]) == 1
    assert "'batch_size' parameter of ConvNetFeatureExtractor must be an int in the range [1, inf)" \
        in error_line(capsys)


def test_unreadable_images_are_named(photos, tmp_path, capsys):
    _, test = photos
    train = texture_folder(tmp_path / "train", 3)
    (train / "stripes" / "broken.png").write_bytes(b"not a png")
    (train / "checks" / "cut.png").write_bytes((train / "checks" / "00.png").read_bytes()[:60])
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE]) == 1
    line = error_line(capsys)
    assert "broken.png" in line and "cut.png" in line


def test_weights_that_cannot_be_had_say_how_to_pass_a_file(photos, tmp_path, monkeypatch, capsys):
    import keras

    train, test = photos
    from keras.src.utils import file_utils

    def unreachable(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", unreachable)
    (tmp_path / "keras_home").mkdir()
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    weights._load.cache_clear()
    try:
        assert main(["evaluate", str(train), "--test", str(test), "--weights", "imagenet"]) == 1
    finally:
        weights._load.cache_clear()
    line = error_line(capsys)
    assert "Could not download the ImageNet weights of vgg16" in line and "--weights PATH" in line
    assert main(["evaluate", str(train), "--test", str(test),
                 "--weights", str(tmp_path / "none.h5")]) == 1
    assert "none.h5'" in error_line(capsys)


def test_plot_without_matplotlib_says_how_to_install_it(photos, monkeypatch, capsys):
    train, test = photos
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--plot", "x.png"]) == 1
    assert "pip install 'skconvnet[plot]'" in error_line(capsys)


@pytest.mark.slow
def test_real_photos(cats_and_dogs, imagenet_weights, tmp_path):
    """On the shared cats/dogs photos a deep layer beats a shallow one by far, as the book
    says: block1_pool sees edges and colours, block4_pool parts of animals."""
    report = tmp_path / "report.json"
    assert main([
        "evaluate", str(cats_and_dogs / "train"), "--test", str(cats_and_dogs / "validation"),
        "--weights", str(imagenet_weights), "--image-size", "64", "--max-per-class", "100",
        "--layers", "block1_pool,block4_pool,block3_pool", "--cv", "3", "--report", str(report),
    ]) == 0
    result = json.loads(report.read_text())
    assert (result["n_train"], result["n_test"]) == (200, 200)
    assert result["best_layer"] == "block4_pool"
    # a paired difference of cv accuracies on 200 photos scatters by about 0.04
    assert result["cv_accuracy"]["block4_pool"] >= result["cv_accuracy"]["block1_pool"] + 0.1
    assert result["test_accuracy"] > 0.65  # chance is 0.5, its standard error here 0.035
