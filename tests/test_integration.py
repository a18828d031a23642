"""End to end on real photos: the shared cats/dogs subset with the ImageNet-grade weights."""

import numpy as np
import pytest
from helpers import FAST_PRECISION
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

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


def test_pretrained_features_beat_random_ones(cats_and_dogs, imagenet_weights):
    """In bfloat16 where the CPU has it, to halve the time."""
    X_train, y_train = photos(cats_and_dogs, "train", 150)
    X_test, y_test = photos(cats_and_dogs, "validation", 100)

    def accuracy(weights):
        model = Pipeline([
            ("vgg", VGGFeatureExtractor(weights=weights, layer="block4_pool", pooling="avg",
                                        precision=FAST_PRECISION)),
            ("clf", LogisticRegression(max_iter=2000)),
        ])
        return model.fit(X_train, y_train).score(X_test, y_test)

    pretrained, random = accuracy(imagenet_weights), accuracy(None)
    print(f"accuracy with pretrained weights {pretrained:.3f}, with random weights {random:.3f}")
    assert pretrained >= 0.8, pretrained
    assert pretrained >= random + 0.1, (pretrained, random)


def best_frozen_pipeline(weights, X_train, y_train, X_test, y_test, precision):
    """Test accuracy of the better of block4_pool and block5_pool (average pooling,
    standardised, logistic regression with C chosen by 5-fold cross-validation)."""
    extractor = VGGFeatureExtractor(weights=weights, layer=["block4_pool", "block5_pool"],
                                    pooling="avg", precision=precision)
    train, test = extractor.fit_transform(X_train), extractor.transform(X_test)
    scores = []
    for columns in (slice(0, 512), slice(512, 1024)):
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
            {"logisticregression__C": np.logspace(-4, 1, 6)}, cv=5,
        ).fit(train[:, columns], y_train)
        scores.append(search.score(test[:, columns], y_test))
    return max(scores)


def upright_and_upside_down(paths, labels, size=150):
    """Four classes from two: each photo as it is and turned upside down (a rotation the
    augmentation never makes), as 4-D arrays."""
    images = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size)))
                       for p in paths])
    X = np.concatenate([images, images[:, ::-1, ::-1]])
    y = np.concatenate([labels, np.char.add(labels, " upside down")])
    return X, y


@pytest.mark.parametrize("n_classes", [2, 4])
def test_defaults_match_the_best_frozen_pipeline_on_100_photos_per_class(
    cats_and_dogs, imagenet_weights, n_classes
):
    """Small data: the defaults (linear probing, then fine-tuning block5 on stored views) do
    not lose to frozen features + a cross-validated logistic regression by more than 0.01.

    Both are scored on the same 500 validation images (the comparison is paired), in
    bfloat16 where the CPU has it, to halve the time (float32 figures: ``bench_book.py``).
    Four classes: the same photos, and each turned upside down.
    """
    X_train, y_train = photos(cats_and_dogs, "train", 100)
    X_test, y_test = photos(cats_and_dogs, "validation", 250 if n_classes == 2 else 125)
    if n_classes == 4:
        (X_train, y_train), (X_test, y_test) = (
            upright_and_upside_down(X_train, y_train), upright_and_upside_down(X_test, y_test))
    frozen = best_frozen_pipeline(imagenet_weights, X_train, y_train, X_test, y_test,
                                  precision=FAST_PRECISION)
    classifier = FineTunedConvNetClassifier(
        weights=imagenet_weights, precision=FAST_PRECISION, random_state=0,
    ).fit(X_train, y_train)
    fine_tuned = classifier.score(X_test, y_test)
    print(f"{n_classes} classes: accuracy fine-tuned {fine_tuned:.3f}, best frozen pipeline "
          f"{frozen:.3f}")
    assert len(classifier.classes_) == n_classes
    assert fine_tuned >= frozen - 0.01, (fine_tuned, frozen)
    assert fine_tuned >= 0.8, fine_tuned  # far above chance, as a pretrained base gives
    assert len(classifier.history_["fine_tune"]["loss"]) == classifier.fine_tune_epochs


def test_efficientnet_lite0_from_the_shared_preset_beats_random_weights_and_fine_tunes(
        cats_and_dogs):
    """The shared ImageNet EfficientNet-Lite0 keras-hub preset, frozen: pretrained beats its
    random weights by a margin, a search over its cut points picks the layer that scores
    best in cross-validation, and fine-tuning it scores as well as its frozen features."""
    pytest.importorskip("keras_hub")
    from helpers import EFFICIENTNET_LITE0 as preset

    from skconvnet import ConvNetFeatureExtractor, list_layers

    if not preset.is_dir():
        pytest.skip(f"shared preset not found at {preset}")
    X_train, y_train = photos(cats_and_dogs, "train", 60)
    X_test, y_test = photos(cats_and_dogs, "validation", 60)
    layers = list_layers("efficientnet_lite0")[-4:]

    def search(weights):
        pipeline = Pipeline([
            ("features", ConvNetFeatureExtractor(backbone="efficientnet_lite0",
                                                 weights=weights, pooling="avg")),
            ("clf", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ])
        return GridSearchCV(pipeline, {"features__layer": layers}, cv=3).fit(X_train, y_train)

    pretrained, random = search(preset), search(None)
    means = pretrained.cv_results_["mean_test_score"]
    assert pretrained.best_params_["features__layer"] == layers[int(np.argmax(means))]
    frozen = pretrained.score(X_test, y_test)
    print(f"EfficientNet-Lite0 frozen: pretrained {frozen:.3f} "
          f"({pretrained.best_params_['features__layer']}), random "
          f"{random.score(X_test, y_test):.3f}")
    assert frozen >= random.score(X_test, y_test) + 0.15

    classifier = FineTunedConvNetClassifier(
        backbone="efficientnet_lite0", weights=preset, layer="top", head_epochs=10,
        fine_tune_epochs=3, augmented_views=1, random_state=0).fit(X_train, y_train)
    fine_tuned = classifier.score(X_test, y_test)
    print(f"EfficientNet-Lite0 fine-tuned: {fine_tuned:.3f}")
    assert fine_tuned >= frozen - 0.05
