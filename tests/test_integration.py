"""End to end on real photos: the shared cats/dogs subset with the shared pretrained weights."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skconvnet import VGGFeatureExtractor


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
