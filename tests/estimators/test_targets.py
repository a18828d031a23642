"""Every kind of target: classes, tags (a multilabel indicator) and numbers, each learnt by
the fine-tuned estimators with the probe and the loss of its kind."""

import numpy as np
import pandas as pd
import pytest
from helpers import dark_and_bright, small_classifier, small_extractor, small_regressor, tagged
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline

from skconvnet import explain
from skconvnet.heatmaps import linear


@pytest.fixture(scope="module")
def looks():
    """Dark and bright images in random order, with their mean brightness."""
    X, y = dark_and_bright(12, shuffle=True)
    return X, y, X.mean(axis=(1, 2, 3))


# Tags


def test_tags_train_one_sigmoid_per_label_and_predict_the_indicator(looks):
    X, y, _ = looks
    tags = tagged(X, y)
    tagger = small_classifier().fit(X, tags)
    assert tagger.multilabel_ and tagger.classes_.tolist() == [0, 1]
    proba = tagger.predict_proba(X)
    predicted = tagger.predict(X)
    assert proba.shape == predicted.shape == (24, 2) and predicted.dtype.kind == "i"
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert not np.allclose(proba.sum(axis=1), 1)  # each label's probability is its own
    np.testing.assert_array_equal(predicted[:, 0], tags[:, 0])  # what the images show
    assert len(tagger.history_["head"]["C"]) == 2
    assert "binary_accuracy" in tagger.history_["fine_tune"]
    assert tagger.score(X, tags) == np.mean((predicted == tags).all(axis=1))  # subset accuracy


def test_tags_of_a_dataframe_are_named_by_its_columns(looks):
    X, y, _ = looks
    tags = pd.DataFrame(tagged(X, y), columns=["bright", "striped"])
    tagger = small_classifier(fine_tune_epochs=0).fit(X, tags)
    assert tagger.classes_.tolist() == ["bright", "striped"]
    heatmaps = explain(tagger, X[:2], target="bright")
    assert heatmaps.shape == (2, 32, 32)


def test_a_label_never_present_warns_and_is_predicted_absent(looks):
    X, y, _ = looks
    tags = np.column_stack([tagged(X, y), np.zeros(len(y), int)])
    with pytest.warns(UserWarning, match="Label 2 is never present in y: it is predicted "
                                         "absent for every image"):
        tagger = small_classifier().fit(X, tags)
    assert tagger.history_["head"]["C"][2] is None
    assert tagger.predict(X)[:, 2].sum() == 0
    assert tagger.predict_proba(X)[:, 2].max() < 0.1


def test_string_and_integer_classes_stay_single_label(looks):
    X, y, _ = looks
    for labels in (y, (y == "bright").astype(int)):
        clf = small_classifier(fine_tune_epochs=0).fit(X, labels)
        assert not clf.multilabel_ and clf.predict(X).shape == (24,)
        assert set(clf.predict(X).tolist()) <= set(labels.tolist())


def test_one_hot_classes_are_read_as_tags_with_a_warning(looks):
    X, y, _ = looks
    one_hot = np.column_stack([y == "dark", y == "bright"]).astype(int)
    with pytest.warns(UserWarning, match=r"y has shape \(24, 2\) with exactly one 1 in every "
                                         r"row.*read as tags.*pass y.argmax\(axis=1\)"):
        clf = small_classifier(fine_tune_epochs=0).fit(X, one_hot)
    assert clf.multilabel_


def test_2d_labels_that_are_not_an_indicator_are_refused(looks):
    X, _, _ = looks
    y = np.tile([[0, 2], [1, 0], [2, 1]], (8, 1))
    with pytest.raises(ValueError, match=r"y has shape \(24, 2\) but is not a 0/1 indicator"):
        small_classifier().fit(X, y)


# Numbers


def test_the_regressor_learns_a_number_the_images_show(looks):
    X, _, brightness = looks
    regressor = small_regressor().fit(X[:18], brightness[:18])
    predicted = regressor.predict(X[18:])
    assert predicted.shape == (6,) and predicted.dtype == np.float64
    assert r2_score(brightness[18:], predicted) > 0.9
    assert regressor.score(X[18:], brightness[18:]) == pytest.approx(
        r2_score(brightness[18:], predicted))
    assert sorted(regressor.history_["head"]) == ["alpha", "loss", "mean_absolute_error"]
    assert sorted(regressor.history_["fine_tune"]) == ["loss", "mean_absolute_error"]


def test_targets_are_standardised_inside(looks):
    """Targets in other units train the same network on the same standardised values: the
    predictions are the same numbers in those units."""
    X, _, brightness = looks
    plain = small_regressor().fit(X, brightness).predict(X)
    scaled = small_regressor().fit(X, 1000 * brightness + 5).predict(X)
    np.testing.assert_allclose(scaled, 1000 * plain + 5, rtol=1e-4)


def test_one_or_several_target_columns(looks):
    X, _, brightness = looks
    column = small_regressor(fine_tune_epochs=0).fit(X, brightness[:, None])
    assert column.n_outputs_ == 1 and column.predict(X).shape == (24,)
    both = small_regressor().fit(X, np.column_stack([brightness, 300 - 2 * brightness]))
    predicted = both.predict(X)
    assert both.n_outputs_ == 2 and predicted.shape == (24, 2)
    assert np.corrcoef(predicted.T)[0, 1] < -0.9  # each column is its own target
    assert len(both.history_["head"]["alpha"]) == 2


def test_a_constant_target_is_predicted(looks):
    X, _, _ = looks
    regressor = small_regressor().fit(X, np.full(24, 7.5))
    np.testing.assert_allclose(regressor.predict(X), 7.5, atol=1e-3)


@pytest.mark.parametrize("y, message", [
    (np.array(["a", "b"] * 12), r"y holds values that are not numbers \(e.g. np.str_\('a'\)\)"
                                r".*FineTunedConvNetClassifier for classes"),
    (np.full(24, np.nan), "Input y contains NaN"),
    (np.zeros(23), "X has 24 samples but y has 23 targets"),
    (None, "requires y to be passed"),
])
def test_bad_targets_are_refused_clearly(looks, y, message):
    X, _, _ = looks
    regressor = small_regressor()
    with pytest.raises(ValueError, match=message):
        regressor.fit(X, y)
    assert not hasattr(regressor, "model_")


# Where a prediction comes from


def test_a_linear_regressor_on_averaged_features_has_an_exact_map(looks):
    """The prediction is the mean over positions of each position's prediction."""
    X, _, brightness = looks
    pipeline = make_pipeline(small_extractor(), Ridge()).fit(X, brightness)
    assert linear.why_not_linear(pipeline) is None
    source = pipeline[0]._images(X[:4], reset=False)
    scores, pooled = linear.position_scores(pipeline, source)
    assert scores.shape == (4, 8, 8, 1)  # block2_pool of 32x32 images
    np.testing.assert_allclose(scores.mean(axis=(1, 2))[:, 0], pipeline.predict(X[:4]),
                               rtol=1e-4)
    np.testing.assert_allclose(pooled[:, 0], pipeline.predict(X[:4]), rtol=1e-4)
    assert explain(pipeline, X[:2]).shape == (2, 32, 32)


def test_occlusion_maps_what_raises_the_prediction():
    """Greying a bright half lowers a brightness regressor's prediction; greying a dark
    half raises it: the map lights up the bright half."""
    rng = np.random.default_rng(0)
    halves = rng.uniform(0, 255, size=(40, 1, 2, 1)).repeat(32, axis=1).repeat(16, axis=2)
    X = np.clip(halves + rng.normal(0, 10, size=(40, 32, 32, 3)), 0, 255).astype(np.uint8)
    regressor = small_regressor().fit(X, X.mean(axis=(1, 2, 3)))
    half = np.zeros((1, 32, 32, 3), np.uint8)
    half[:, :, :16] = 240
    half[:, :, 16:] = 20
    heatmap = explain(regressor, half, method="occlusion")[0]
    assert heatmap[:, :12].mean() > 2 * heatmap[:, 20:].mean()


@pytest.mark.parametrize("method", ["gradcam", "cam"])
def test_the_fine_tuned_regressor_has_maps(looks, method):
    X, _, brightness = looks
    regressor = small_regressor(fine_tune_epochs=1).fit(X, np.column_stack(
        [brightness, -brightness]))
    for target in (0, 1):
        heatmaps = explain(regressor, X[:3], target=target, method=method)
        assert heatmaps.shape == (3, 32, 32)
        assert heatmaps.min() >= 0 and heatmaps.max() <= 1
    with pytest.raises(ValueError, match=r"predicts 2 targets: say whose prediction to map "
                                         r"with target=0 \.\.\. 1"):
        explain(regressor, X[:3], method=method)
    with pytest.raises(ValueError, match=r"target=2: for a regressor of 2 target\(s\)"):
        explain(regressor, X[:3], target=2, method=method)
