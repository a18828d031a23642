"""The evaluate command's HTML page, and the figures it is made of, from Python."""

import base64
import html
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    FAST_EVALUATE,
    hand_written_pipeline,
    small_classifier,
    texture_folder,
)
from PIL import Image

from skconvnet import (
    confident_errors,
    layer_scores,
    load_image_folder,
    plot_confident_errors,
    plot_training_curves,
)
from skconvnet.backbones import specs
from skconvnet.cli.commands import main
from skconvnet.report.layers import draw_layer_table
from skconvnet.report.evaluation import (
    EvaluationReport,
    LayerScore,
    Predictions,
    Settings,
    layer_figure,
    layer_table,
)

EPOCHS = ["--finetune", "--head-epochs", "2", "--fine-tune-epochs", "3"]
MISLABELLED = ["00.png", "01.png"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One evaluate run with --finetune, --report and --html; two test photos of checks are
    filed under stripes, as mislabelled photos are."""
    root = tmp_path_factory.mktemp("run")
    train, test = texture_folder(root / "train", 12, seed=1), texture_folder(root / "test", 8, seed=2)
    for name in MISLABELLED:
        (test / "checks" / name).rename(test / "stripes" / f"mislabelled_{name}")
    page, report = root / "page.html", root / "report.json"
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, *EPOCHS,
                 "--report", str(report), "--html", str(page), "--errors", "5"]) == 0
    return train, test, page.read_text(), json.loads(report.read_text())


def _images(page, kind):
    return [base64.b64decode(data) for data in
            re.findall(rf"src='data:image/{kind};base64,([A-Za-z0-9+/=]+)'", page)]


def _text(page):
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_page_shows_the_settings_and_the_accuracy(run):
    train, test, page, report = run
    text = " ".join(_text(page).split())
    assert f"Test accuracy {report['test_accuracy']:.3f}" in text
    assert f"fine-tuned {report['finetune_test_accuracy']:.3f}" in text
    for setting in (f"training photos {train}", f"test photos {test}", "backbones vgg16",
                    "weights none", "image size vgg16: 32×32", "precision float32",
                    "cross-validation 3 folds", f"wall time {report['seconds']:.0f} s",
                    "checks 12 6", "stripes 12 10", "all 24 16"):
        assert setting in text, setting
    assert report["train_counts"] == {"checks": 12, "stripes": 12}
    assert report["image_sizes"] == {"vgg16": [32, 32]}


def test_page_is_self_contained(run):
    """Nothing to fetch: every image is embedded, no script, no external link."""
    page = run[2]
    assert not re.findall(r"(?:src|href)=['\"](?!data:)", page)
    assert "<script" not in page and "http" not in page
    pngs, jpegs = _images(page, "png"), _images(page, "jpeg")
    assert len(pngs) == 3  # layer curve, confusion matrices, training curves
    for data in pngs + jpegs:
        Image.open(io.BytesIO(data)).verify()


def test_confusion_matrix_and_scores_are_scikit_learns(run):
    from sklearn.metrics import classification_report

    train, test, page, report = run
    X, y = load_image_folder(train)
    X_test, y_test = load_image_folder(test)
    predicted = hand_written_pipeline(report["best_layer"]).fit(X, y).predict(X_test)
    scores = classification_report(y_test, predicted, output_dict=True, zero_division=0)
    text = " ".join(_text(page).split())
    for label in ("checks", "stripes", "macro avg"):
        row = scores[label]
        assert (f"{label} {row['precision']:.3f} {row['recall']:.3f} {row['f1-score']:.3f} "
                f"{row['support']:.0f}") in text


def test_mistakes_are_the_most_confident_wrong_test_photos(run):
    train, test, page, report = run
    X, y = load_image_folder(train)
    X_test, y_test = load_image_folder(test)
    model = hand_written_pipeline(report["best_layer"]).fit(X, y)
    expected = confident_errors(model, X_test, y_test, n=5)
    assert 2 <= len(expected) <= 5  # the page has mistakes to show
    captions = re.findall(r"<figcaption><strong>(.*?)</strong><br>true (\w+), predicted (\w+) "
                          r"\((\d\.\d\d)\)</figcaption>", page)
    assert captions == [
        (X_test[row.index].name, row.true, row.predicted, f"{row.probability:.2f}")
        for row in expected.itertuples()
    ]
    assert {f"mislabelled_{name}" for name in MISLABELLED} <= {name for name, *_ in captions}
    figures = _figures(_between(page, "Most confident mistakes", "What the model looks at"))
    assert [name for name, *_ in figures] == [name for name, *_ in captions]
    for (name, photo, heatmap), row in zip(figures, expected.itertuples()):
        assert max(photo.size) <= 128 and max(heatmap.size) <= 128
        _assert_heatmap_of(model, X_test[row.index], heatmap)


def test_page_shows_each_classes_most_confident_right_photos_with_their_heatmaps(run):
    train, test, page, report = run
    X, y = load_image_folder(train)
    X_test, y_test = load_image_folder(test)
    model = hand_written_pipeline(report["best_layer"]).fit(X, y)
    proba = model.predict_proba(X_test)
    section = _between(page, "What the model looks at", "Fine-tuning")
    assert "the logistic regression's score of the features at each place" in _text(page)
    for column, label in enumerate(model.classes_):
        right = [i for i in np.argsort(-proba[:, column], kind="stable")
                 if y_test[i] == label and proba[i].argmax() == column][:3]
        assert len(right) == 3
        part = _between(section, f"<h3>{label}</h3>", "<h3>")
        captions = re.findall(r"<figcaption><strong>(.*?)</strong><br>(\w+) \((\d\.\d\d)\)"
                              r"</figcaption>", part)
        assert captions == [(X_test[i].name, label, f"{proba[i, column]:.2f}") for i in right]
        for (name, _, heatmap), i in zip(_figures(part), right):
            _assert_heatmap_of(model, X_test[i], heatmap)


def _between(page, start, end):
    """The part of ``page`` from the first ``start`` to the next ``end`` (or its end)."""
    part = page[page.index(start):]
    stop = part.find(end, len(start))
    return part if stop < 0 else part[:stop]


def _figures(part):
    """``(name, photo, heatmap overlay)`` of each figure of photos in ``part``."""
    return [(name, Image.open(io.BytesIO(base64.b64decode(photo))).convert("RGB"),
             Image.open(io.BytesIO(base64.b64decode(heatmap))).convert("RGB"))
            for name, photo, heatmap in re.findall(
                r"<figure><img alt='(.*?)' src='data:image/jpeg;base64,([^']+)'>"
                r"<img class='heatmap' alt='heatmap of .*?' src='data:image/jpeg;base64,"
                r"([^']+)'>", part)]


def _assert_heatmap_of(model, path, shown):
    """``shown`` is the photo as the model saw it with its heatmap drawn over it (as the
    page encodes it), not the photo alone."""
    from skconvnet import explain
    from skconvnet.heatmaps.figures import as_seen, overlay

    picture = as_seen(model, [path])[0]
    expected = _as_jpeg(overlay(picture, explain(model, [path])[0]))
    shown = np.asarray(shown, np.float64)
    assert np.abs(shown - expected).mean() < 1
    assert np.abs(shown - _as_jpeg(picture)).mean() > 10


def _as_jpeg(pixels):
    """``pixels`` as the page's thumbnails hold them: JPEG at quality 80, decoded."""
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=80)
    return np.asarray(Image.open(buffer).convert("RGB"), np.float64)


def test_page_without_finetune_has_no_training_curves(tmp_path):
    train, test = texture_folder(tmp_path / "train", 6), texture_folder(tmp_path / "test", 4, 1)
    page = tmp_path / "page.html"
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--errors", "0",
                 "--html", str(page)]) == 0
    text = page.read_text()
    assert "Fine-tuning" not in text and "fine-tuned" not in text
    assert len(_images(text, "png")) == 2
    assert not _images(_between(text, "Most confident mistakes", "What the model"), "jpeg")


def test_report_json_keys_in_order(run):
    assert list(run[3]) == [
        "kind", "cv_accuracy", "cv_accuracy_std", "best_layer", "test_accuracy", "n_train", "n_test",
        "classes", "train_counts", "test_counts", "train_dir", "test_dir", "backbones",
        "depth", "weights", "image_size", "image_sizes", "pooling", "precision", "cv_folds",
        "finetune_test_accuracy", "audit", "seconds",
    ]


def test_page_and_report_show_the_mislabelled_test_photos(run):
    """The two checks photos filed under stripes are the test photos probably mislabelled,
    on the page (in the section "The photos themselves") and in the JSON."""
    train, test, page, report = run
    section = _between(page, "The photos themselves", "Fine-tuning")
    mislabelled = {f"mislabelled_{name}" for name in MISLABELLED}
    listed = _between(section, "Test photos probably mislabelled", "Test photos that copy")
    captions = re.findall(r"<figcaption><strong>(.*?)</strong><br>given (\w+) → (\w+) "
                          r"\((\d\.\d\d)\)</figcaption>", listed)
    assert {name for name, *_ in captions} == mislabelled
    assert {(given, suggested) for _, given, suggested, _ in captions} == {("stripes", "checks")}
    issues = report["audit"]["test_label_issues"]
    assert {Path(issue["photo"]).name for issue in issues} == mislabelled
    assert all(issue["probability"] > 0.5 for issue in issues)
    for heading in ("Training photos probably mislabelled", "Copies among the training photos",
                    "Outliers"):
        assert heading in section


def _report(scores, best_layer):
    """A report of the given layer scores, the rest made up."""
    return EvaluationReport(
        layers=scores, best_layer=best_layer, test_accuracy=0.75, n_train=8, n_test=4,
        classes=["a", "b"], train_counts={"a": 4, "b": 4}, test_counts={"a": 2, "b": 2},
        settings=Settings(train_dir="train", test_dir="test",
                          backbones=list(dict.fromkeys(score.backbone for score in scores)),
                          weights="none", image_size=32, image_sizes={}, pooling="avg",
                          precision="float32", cv_folds=3),
        seconds=1.0, pipeline=None,
        predictions=Predictions(paths=[], labels=np.array([]), proba=np.zeros((0, 2))),
    )


def test_layer_figure_draws_the_table_layer_scores_makes_of_the_same_scores():
    """Out of depth order, backbones out of list_backbones' order: the figure's table is
    ordered and labelled as layer_scores orders and labels a search's results."""
    import pandas as pd

    layers = [("resnet50", "conv2_block3_out", 0.7), ("vgg16", "block3_pool", 0.8),
              ("vgg16", "block1_pool", 0.6), ("resnet50", "pool1_pool", 0.65)]
    scores = [LayerScore(f"{backbone}/{layer}", backbone, layer,
                         specs.get(backbone).depth(layer), mean, mean / 10)
              for backbone, layer, mean in layers]
    report = _report(scores, "vgg16/block3_pool")
    results = {"params": [{"backbone": backbone, "layer": layer} for backbone, layer, _ in layers],
               "param_layer": [layer for _, layer, _ in layers],
               "mean_test_score": [mean for *_, mean in layers],
               "std_test_score": [mean / 10 for *_, mean in layers]}
    expected = layer_scores(results, param="layer").drop(columns="params")
    table = layer_table(report)
    assert table.index.tolist() == ["vgg16/block1_pool", "vgg16/block3_pool",
                                    "resnet50/pool1_pool", "resnet50/conv2_block3_out"]
    pd.testing.assert_frame_equal(table, expected)
    ax = layer_figure(report).axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == table.index.tolist()
    (star,) = [line for line in ax.get_lines() if line.get_label().startswith("test accuracy")]
    assert star.get_ydata().tolist() == [0.75]


def test_layers_of_two_networks_at_one_depth_share_a_tick_without_overlapping():
    import pandas as pd

    table = pd.DataFrame(
        {"backbone": ["vgg16", "vgg16", "efficientnet_lite0", "efficientnet_lite0"],
         "depth": [specs.get("vgg16").depth("block3_pool"), len(specs.get("vgg16").cut_points),
                   specs.get("efficientnet_lite0").depth("stage2"),
                   len(specs.get("efficientnet_lite0").cut_points)],
         "mean_test_score": [0.8, 0.9, 0.85, 0.95], "std_test_score": [0.01] * 4},
        index=["vgg16/block3_pool", "vgg16/block5_pool", "efficientnet_lite0/stage2",
               "efficientnet_lite0/top"])
    ax = draw_layer_table(table)
    assert [label.get_text() for label in ax.get_xticklabels()] == [
        "vgg16/block3_pool", "vgg16/block5_pool\nefficientnet_lite0/top",
        "efficientnet_lite0/stage2"]
    assert ax.get_xticks().tolist() == pytest.approx([
        table["depth"].iloc[0] / len(specs.get("vgg16").cut_points), 1.0,
        table["depth"].iloc[2] / len(specs.get("efficientnet_lite0").cut_points)])
    scores = [LayerScore(label, row.backbone, label.split("/")[1], row.depth,
                         row.mean_test_score, row.std_test_score)
              for label, row in table.iterrows()]
    ax = layer_figure(_report(scores, "efficientnet_lite0/top")).axes[0]
    (star,) = [line for line in ax.get_lines() if line.get_label().startswith("test accuracy")]
    assert star.get_xdata().tolist() == [1.0]  # on the tick it shares with vgg16/block5_pool


@pytest.mark.parametrize("make_bad, problem", [
    (lambda tmp: tmp / "missing" / "page.html", "the folder .*missing does not exist"),
    (lambda tmp: tmp, "is a folder; name a file"),
])
def test_unwritable_html_path_is_named_before_the_run(photos, tmp_path, monkeypatch, capsys,
                                                      make_bad, problem):
    import skconvnet.cli.options as options

    monkeypatch.setattr(options, "load_image_folder",
                        lambda *args, **kwargs: pytest.fail("the run started"))
    train, test = photos
    bad = make_bad(tmp_path)
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--html", str(bad)]) == 1
    error = capsys.readouterr().err
    assert re.search(rf"error: --html {re.escape(str(bad))}: {problem}", error), error


def test_negative_errors_is_refused_before_the_run(photos, tmp_path, monkeypatch, capsys):
    import skconvnet.cli.options as options

    monkeypatch.setattr(options, "load_image_folder",
                        lambda *args, **kwargs: pytest.fail("the run started"))
    train, test = photos
    assert main(["evaluate", str(train), "--test", str(test), *FAST_EVALUATE, "--errors", "-1",
                 "--html", str(tmp_path / "page.html")]) == 1
    assert "--errors -1: give a number of mistakes to show, 0 or more" in capsys.readouterr().err


def test_test_classes_unknown_to_training_are_named_before_the_run(photos, tmp_path, capsys):
    train, test = photos
    other = tmp_path / "test"
    shutil.copytree(test, other)
    shutil.copytree(test / "checks", other / "dots")
    assert main(["evaluate", str(train), "--test", str(other), *FAST_EVALUATE]) == 1
    assert f"--test {other} has classes that {train} lacks: dots;" in capsys.readouterr().err


# from Python


def test_training_curves_of_both_phases(two_looks):
    X, y = two_looks
    clf = small_classifier(head_epochs=2, fine_tune_epochs=3, early_stopping=True,
                           validation_fraction=0.25).fit(X, y)
    loss, accuracy = plot_training_curves(clf)
    for ax, metric in ((loss, "loss"), (accuracy, "accuracy")):
        lines = {line.get_label(): line for line in ax.get_lines() if line.get_xydata().size}
        n_head = len(clf.history_["head"][metric])
        n_fine = len(clf.history_["fine_tune"][metric])
        assert {"head, training", "head, validation", "fine-tuning, training",
                "fine-tuning, validation"} <= set(lines)
        np.testing.assert_array_equal(lines["head, training"].get_ydata(),
                                      clf.history_["head"][metric])
        np.testing.assert_array_equal(lines["fine-tuning, validation"].get_ydata(),
                                      clf.history_["fine_tune"][f"val_{metric}"])
        assert list(lines["fine-tuning, training"].get_xdata()) == list(
            range(n_head + 1, n_head + n_fine + 1))
        assert ax.get_ylabel() == metric


def test_training_curves_show_a_logistic_head_as_one_point(two_looks):
    X, y = two_looks
    clf = small_classifier(head_epochs="auto", fine_tune_epochs=2).fit(X, y)
    loss, _ = plot_training_curves(clf.history_)
    (point,) = [line for line in loss.get_lines() if line.get_label().startswith("logistic")]
    assert point.get_xydata().tolist() == [[0, clf.history_["head"]["loss"][0]]]
    with pytest.raises(ValueError, match="fitted FineTunedConvNetClassifier or its history_"):
        plot_training_curves({"loss": [1.0]})


class Fixed:
    """A fitted classifier with given probabilities."""

    classes_ = np.array(["cat", "dog", "fox"])

    def __init__(self, proba):
        self.proba = np.asarray(proba)

    def predict_proba(self, X):
        return self.proba[: len(X)]


def test_confident_errors_lists_wrong_predictions_most_confident_first():
    proba = [[0.6, 0.3, 0.1],   # cat, right
             [0.1, 0.7, 0.2],   # dog for a cat: wrong, 0.7
             [0.2, 0.2, 0.6],   # fox for a dog: wrong, 0.6
             [0.05, 0.9, 0.05],  # dog for a fox: wrong, 0.9
             [0.1, 0.1, 0.8]]   # fox, right
    y = ["cat", "cat", "dog", "fox", "fox"]
    table = confident_errors(Fixed(proba), np.zeros((5, 1)), y)
    assert table["index"].tolist() == [3, 1, 2]
    assert table["true"].tolist() == ["fox", "cat", "dog"]
    assert table["predicted"].tolist() == ["dog", "dog", "fox"]
    np.testing.assert_allclose(table["probability"], [0.9, 0.7, 0.6])
    np.testing.assert_allclose(table["probability_of_true"], [0.05, 0.1, 0.2])
    assert confident_errors(Fixed(proba), np.zeros((5, 1)), y, n=1)["index"].tolist() == [3]
    with pytest.raises(ValueError, match=r"classes the estimator does not know: \['wolf'\]"):
        confident_errors(Fixed(proba), np.zeros((5, 1)), ["wolf"] * 5)


def test_plot_confident_errors_draws_each_mistake(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 200, 300, 3), dtype=np.uint8)
    proba = [[0.1, 0.8, 0.1]] * 5
    fig = plot_confident_errors(Fixed(proba), images, ["cat", "dog", "cat", "fox", "cat"], n=12)
    drawn = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in drawn] == ["cat → dog\n0.80", "cat → dog\n0.80",
                                                "fox → dog\n0.80", "cat → dog\n0.80"]
    assert drawn[0].get_images()[0].get_array().shape == (85, 128, 3)  # aspect kept
    paths = [tmp_path / f"{i}.jpg" for i in range(5)]
    for image, path in zip(images, paths):
        Image.fromarray(image).save(path)
    fig = plot_confident_errors(Fixed(proba), paths, ["cat"] * 5, n=2)
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2


# in a real browser


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="the browser test needs pip install selenium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))


def test_page_renders_in_a_headless_browser(run, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(run[2])
    browser = _browser()
    try:
        browser.get(page.as_uri())
        sizes = browser.execute_script(
            "return Array.from(document.images).map(i => "
            "[i.complete, i.naturalWidth, i.getBoundingClientRect().width, "
            "i.getBoundingClientRect().height]);")
        text = browser.find_element("tag name", "body").text
        screenshot = Image.open(io.BytesIO(browser.get_screenshot_as_png()))
    finally:
        browser.quit()
    assert len(sizes) == 3 + len(_images(run[2], "jpeg"))
    for complete, natural_width, width, height in sizes:
        assert complete and natural_width > 0 and width > 0 and height > 0
    assert f"Test accuracy {run[3]['test_accuracy']:.3f}" in text
    assert "The photos themselves" in text and "Test photos probably mislabelled" in text
    colours = np.asarray(screenshot.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 50  # drawn figures, not a blank page
