"""End to end on real photos: the shared cats/dogs subset with the shared pretrained weights."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skconvnet import FineTunedConvNetClassifier, VGGFeatureExtractor

pytestmark = pytest.mark.slow


def photos(root, split, per_class):
    """The first ``per_class`` photos of each class, by number, with their labels."""
    paths, labels = [], []
    for label in ("cats", "dogs"):
        files = sorted((root / split / label).glob("*.jpg"), key=lambda p: int(p.stem.split(".")[1]))
        paths += files[:per_class]
        labels += [label] * per_class
    return paths, np.array(labels)


def test_pretrained_features_beat_random_ones(cats_and_dogs, hed_weights):
    X_train, y_train = photos(cats_and_dogs, "train", 150)
    X_test, y_test = photos(cats_and_dogs, "validation", 100)

    def accuracy(weights):
        model = Pipeline([
            ("vgg", VGGFeatureExtractor(weights=weights, layer="block4_pool", pooling="avg")),
            ("clf", LogisticRegression(max_iter=2000)),
        ])
        return model.fit(X_train, y_train).score(X_test, y_test)

    pretrained, random = accuracy(hed_weights), accuracy(None)
    print(f"accuracy with pretrained weights {pretrained:.3f}, with random weights {random:.3f}")
    assert pretrained >= 0.7, pretrained
    assert pretrained >= random + 0.05, (pretrained, random)


def test_fine_tuning_learns_from_real_photos(cats_and_dogs, hed_weights):
    """Fine-tuned and frozen-features models both beat chance on 200 held-out photos.

    Which of the two is ahead is not asserted: at this scale (300 photos at 64x64, a few
    epochs) they lie within a few points of each other, and the standard error of each
    accuracy on 200 photos is about 0.035; an ordering would be a coin flip.
    """
    X_train, y_train = photos(cats_and_dogs, "train", 150)
    X_test, y_test = photos(cats_and_dogs, "validation", 100)
    common = dict(weights=hed_weights, layer="block4_pool", pooling="avg", image_size=(64, 64))

    frozen = Pipeline([
        ("vgg", VGGFeatureExtractor(**common)),
        ("clf", LogisticRegression(max_iter=2000)),
    ]).fit(X_train, y_train).score(X_test, y_test)
    classifier = FineTunedConvNetClassifier(
        **common, unfreeze_from="block4_conv1", head_epochs=10, fine_tune_epochs=5,
        head_learning_rate=1e-3, fine_tune_learning_rate=1e-5, augmentation=False,
        random_state=0,
    ).fit(X_train, y_train)
    fine_tuned = classifier.score(X_test, y_test)
    print(f"accuracy fine-tuned {fine_tuned:.3f}, frozen features + logistic regression {frozen:.3f}")
    # chance is 0.5: 0.6 lies about 3 standard errors above it
    assert frozen >= 0.6, frozen
    assert fine_tuned >= 0.6, fine_tuned
    assert classifier.history_["fine_tune"]["loss"][-1] < classifier.history_["head"]["loss"][0]
