"""plot_explanations(): each photo as the model saw it, its heatmap drawn over it."""

import matplotlib
import numpy as np
import pytest
from helpers import patch_task
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skconvnet import VGGFeatureExtractor, explain, plot_explanations
from skconvnet.heatmaps.figures import overlay

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def model_and_images():
    X, y, _ = patch_task(60, size=32, patch=8)
    model = make_pipeline(
        VGGFeatureExtractor(layer="block2_pool", pooling="avg", weights=None,
                            image_size=(32, 32)),
        LogisticRegression(max_iter=2000),
    ).fit(X[:50], y[:50])
    return model, X[50:], y[50:]


def test_each_image_is_drawn_with_its_heatmap_and_labels(model_and_images):
    model, X, y = model_and_images
    fig = plot_explanations(model, X[:7], y[:7], columns=4)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 8 and len(drawn) == 7
    proba = model.predict_proba(X[:7]).max(axis=1)
    predicted = model.predict(X[:7])
    heatmaps = explain(model, X[:7])
    for i, ax in enumerate(drawn):
        assert ax.get_title() == f"{y[i]} → {predicted[i]} ({proba[i]:.2f})"
        shown = ax.images[0].get_array()
        np.testing.assert_array_equal(shown, overlay(X[i], heatmaps[i]))
        assert np.abs(shown.astype(float) - X[i]).mean() > 10  # not the photo alone


def test_a_target_is_named_in_each_title(model_and_images):
    model, X, _ = model_and_images
    fig = plot_explanations(model, X[:2], target="red")
    predicted = model.predict(X[:2])
    assert [ax.get_title().splitlines() for ax in fig.axes if ax.images] == [
        [f"{predicted[i]} ({model.predict_proba(X[i:i + 1]).max():.2f})", "map of red"]
        for i in range(2)
    ]


def test_overlay_blends_the_colour_map_over_the_picture():
    picture = np.full((2, 2, 3), 100, np.uint8)
    heatmap = np.array([[0.0, 1.0], [0.5, 0.0]])
    blended = overlay(picture, heatmap, alpha=0.0)
    np.testing.assert_array_equal(blended, picture)
    red = overlay(picture, heatmap, alpha=1.0)[0, 1]
    assert red[0] > 100 and red[2] < 50  # jet's top is red
    np.testing.assert_array_equal(overlay(picture, heatmap, alpha=1.0)[0, 0],
                                  overlay(picture, heatmap, alpha=1.0)[1, 1])
