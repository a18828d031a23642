"""End to end on real photos: the shared cats/dogs subset with the shared pretrained weights."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skconvnet import FineTunedConvNetClassifier, VGGFeatureExtractor


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


def test_fine_tuning_at_least_matches_frozen_features(cats_and_dogs, hed_weights):
    """The book's claim at a small scale: fine-tuning the top block beats frozen features."""
    X_train, y_train = photos(cats_and_dogs, "train", 150)
    X_test, y_test = photos(cats_and_dogs, "validation", 100)
    common = dict(weights=hed_weights, layer="block4_pool", pooling="avg", image_size=(64, 64))

    frozen = Pipeline([
        ("vgg", VGGFeatureExtractor(**common)),
        ("clf", LogisticRegression(max_iter=2000)),
    ]).fit(X_train, y_train).score(X_test, y_test)
    fine_tuned = FineTunedConvNetClassifier(
        **common, unfreeze_from="block4_conv1", head_epochs=10, fine_tune_epochs=5,
        head_learning_rate=1e-3, fine_tune_learning_rate=1e-5, augmentation=False,
        random_state=0,
    ).fit(X_train, y_train).score(X_test, y_test)
    print(f"accuracy fine-tuned {fine_tuned:.3f}, frozen features + logistic regression {frozen:.3f}")
    assert fine_tuned >= frozen
