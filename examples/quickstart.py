"""
Quickstart: pretrained features and a logistic regression
=========================================================

Cats vs dogs from pretrained VGG16 features and a logistic regression, in a few lines.

    python examples/quickstart.py [DATA_DIR] [--weights WEIGHTS] [--per-class N]

DATA_DIR holds train/ and validation/ folders with one sub-folder of photos per class
(default: ../shared/data/cats_and_dogs), read with ``skconvnet.load_image_folder``: N photos
of each class to train on and N / 2 to test on, drawn at random with a fixed seed (default
N: 150). WEIGHTS is "imagenet" (downloaded by Keras) or a
weights file of a Keras VGG16 conv base (default: ../shared/weights/vgg16_imagenet_notop.weights.h5
where present, else "imagenet").
"""

import argparse
import time
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skconvnet import VGGFeatureExtractor, load_image_folder

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main():
    parser = argparse.ArgumentParser(description="Pretrained VGG16 features + logistic regression.")
    parser.add_argument("data", nargs="?", default=SHARED / "data" / "cats_and_dogs", type=Path)
    default_weights = SHARED / "weights" / "vgg16_imagenet_notop.weights.h5"
    parser.add_argument("--weights", default=default_weights if default_weights.is_file() else "imagenet")
    parser.add_argument("--per-class", type=int, default=150)
    args = parser.parse_args()

    # Every image file of each class sub-folder (at most --per-class, drawn at random, seeded)
    X_train, y_train = load_image_folder(args.data / "train", max_per_class=args.per_class)
    X_test, y_test = load_image_folder(args.data / "validation",
                                       max_per_class=max(1, args.per_class // 2))
    model = make_pipeline(
        VGGFeatureExtractor(layer="block4_pool", pooling="avg", weights=args.weights, verbose=1),
        LogisticRegression(max_iter=2000),
    )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)
    print(f"trained on {len(X_train)} photos, tested on {len(X_test)}: accuracy {accuracy:.3f} "
          f"({time.perf_counter() - start:.0f} s, weights {args.weights})")


if __name__ == "__main__":
    main()
