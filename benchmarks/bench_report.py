"""Does the HTML page stay small and quick to build for thousands of test photos?

Builds the page of ``evaluate --html`` for every shared cats/dogs photo (train and
validation, 3,000 JPEGs) taken as a test photo, with predicted probabilities drawn at random
so that about one in ten is wrong, and prints its size and the seconds it took, for each
``--errors`` limit; the heatmaps beside the photos shown are computed by a pipeline of
VGG16's average-pooled ``block5_pool`` (the shared weights where present) and a logistic
regression, as in a run. (An ``evaluate`` run on 1,000 test photos prints the same two
figures beside its total time.)

    python benchmarks/bench_report.py [--errors 24,200]
"""

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np
from common import CATS_AND_DOGS, shared_weights

matplotlib.use("Agg")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", default="24,200")
    args = parser.parse_args()

    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skconvnet import VGGFeatureExtractor, load_image_folder
    from skconvnet.report.evaluation import (
        EvaluationReport,
        LayerScore,
        Predictions,
        Settings,
    )
    from skconvnet.report.page import write_report_page

    paths, labels = [], []
    for split in ("train", "validation"):
        split_paths, split_labels = load_image_folder(CATS_AND_DOGS / split)
        paths += list(split_paths)
        labels += list(split_labels)
    labels = np.asarray(labels)
    rng = np.random.default_rng(0)
    right = (labels == "dogs").astype(float)
    confidence = rng.uniform(0.5, 1.0, len(labels))
    flip = rng.random(len(labels)) < 0.1
    dog = np.where(flip, 1 - right, right) * confidence + np.where(flip, right, 1 - right) * (
        1 - confidence)
    proba = np.column_stack([1 - dog, dog])
    counts = {label: int(count) for label, count in zip(*np.unique(labels, return_counts=True))}
    layers = [LayerScore(layer, "vgg16", layer, depth, mean, 0.02)
              for layer, depth, mean in [("block3_pool", 10, 0.8), ("block4_pool", 14, 0.93),
                                         ("block5_pool", 18, 0.94)]]
    settings = Settings(train_dir="train", test_dir="test", backbones=["vgg16"],
                        weights="imagenet", image_size=None, image_sizes={"vgg16": (150, 150)},
                        pooling="avg", precision="float32", cv_folds=5)
    report = EvaluationReport(
        layers=layers, best_layer="block5_pool", test_accuracy=float(np.mean(~flip)),
        n_train=len(labels), n_test=len(labels), classes=["cats", "dogs"],
        train_counts=counts, test_counts=counts, settings=settings, seconds=0.0,
        predictions=Predictions(paths=paths, labels=labels, proba=proba),
        pipeline=make_pipeline(
            VGGFeatureExtractor(pooling="avg", weights=shared_weights()), StandardScaler(),
            LogisticRegression(),
        ).fit(paths[::150], labels[::150]),
    )
    print(f"{len(paths)} test photos, {int(flip.sum())} wrong")
    print(f"{'errors shown':>12s}  {'page MB':>8s}  {'seconds':>8s}")
    with tempfile.TemporaryDirectory() as folder:
        for n_errors in map(int, args.errors.split(",")):
            page = Path(folder) / f"page{n_errors}.html"
            start = time.perf_counter()
            write_report_page(page, report, n_errors=n_errors)
            seconds = time.perf_counter() - start
            print(f"{n_errors:12d}  {page.stat().st_size / 1e6:8.2f}  {seconds:8.2f}")


if __name__ == "__main__":
    main()
