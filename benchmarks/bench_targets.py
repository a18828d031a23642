"""Do the fine-tuned estimators' defaults beat frozen features + the matching scikit-learn head
on multi-label and regression tasks built from real photos, and what does augmentation do to
the regressor?

Two tasks built by ``targets.py`` from the shared cats/dogs photos into a temporary folder
(training images from the training photos, test images from the validation photos):

1. multi-label: 2x2 mosaics of cat photos, dog photos and blank cells, tags ``cat`` and
   ``dog`` (none, one or both, equally often). Rows: predicting every tag (the trivial
   baseline); frozen VGG16 ``block5_pool`` average-pooled features + ``StandardScaler`` +
   ``OneVsRestClassifier(LogisticRegressionCV)`` (C among 1e-4 ... 10 by 5-fold
   cross-validated log loss per tag, as the classifier's probe chooses it);
   ``FineTunedConvNetClassifier(weights=..., random_state=0)`` fitted on the 2-D indicator
   ``y``. Test micro-F1, mean average precision (macro over the tags), subset accuracy.
2. regression: each photo pasted as a square of side 0.3-1.0 of a plain 150x150 canvas at a
   random position; target ``size`` (with ``--several`` also ``size, x_center, y_center``).
   Rows: the training mean (the mean predictor); frozen features + ``StandardScaler`` +
   ``RidgeCV(alphas=np.logspace(-2, 5, 8))``; ``FineTunedConvNetRegressor(weights=...,
   random_state=0)`` with its defaults, and with ``augmentation`` set to ``False``, to a
   horizontal flip + shifts up to 10% (``fill_mode="nearest"`` extends the plain background:
   the size stays, the position moves), and to ``True`` (the book's, whose zooms change the
   size: expected to hurt). With several targets, colour changes only (contrast and
   brightness up to 20%) keep all three targets; flips and shifts change the position. A row
   is left out where it would repeat the defaults. Test R² (averaged over the targets), mean
   absolute error of each target, and the mean of MAE / the mean predictor's MAE.

Every row's fit time is wall clock from the JPEG files (the frozen rows' includes extracting
the training images' features, ``cache=False``), beside its ratio to the frozen row's, measured
in this one process; the predict time likewise from the test files.

Sizes: on 2 cores (Xeon with AMX) the frozen rows took 45-70 s to fit on 1,000 images and
20-35 s to predict 500 (others' processes sharing the cores); fine-tuning costs about
0.1-0.2 s per training image and stored view (the original, and 3 augmented views unless
``augmentation=False``), so the defaults, 600 training and 300 test images per task, take
about 25-35 minutes, and ``--several`` (four more regressor fits) about 20 minutes more.

    python benchmarks/bench_targets.py [--n-train 600] [--n-test 300] [--seed 0]
        [--only multilabel|regression] [--several] [--quick]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from common import CATS_AND_DOGS, cpu_flags, device, shared_weights  # noqa: E402

import targets  # noqa: E402

IMAGE_SIZE = (150, 150)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["multilabel", "regression"])
    parser.add_argument("--several", action="store_true",
                        help="also fit the regressor on size, x_center and y_center together")
    parser.add_argument("--quick", action="store_true",
                        help="40 training and 20 test images: checks that the script runs")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_test = 40, 20

    weights = shared_weights()
    if weights is None or not CATS_AND_DOGS.is_dir():
        sys.exit("needs ../shared/data/cats_and_dogs and the shared VGG16 weights")
    print(f"{device()}; {cpu_flags()}")
    print(f"VGG16 ({weights.name}) at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, {args.n_train} training "
          f"and {args.n_test} test images, seed {args.seed}")
    # Keras, TensorFlow and the weights loaded once before any timed fit
    _frozen_model(None, weights)[0].fit_transform(np.zeros((1, *IMAGE_SIZE, 3), np.uint8))
    with tempfile.TemporaryDirectory() as folder:
        if args.only in (None, "multilabel"):
            csvs = targets.build_mosaics(Path(folder) / "mosaics", n_train=args.n_train,
                                         n_test=args.n_test, seed=args.seed)
            multilabel(*csvs, weights)
        if args.only in (None, "regression"):
            csvs = targets.build_pasted(Path(folder) / "pasted", n_train=args.n_train,
                                        n_test=args.n_test, seed=args.seed)
            for columns in [["size"], list(targets.POSITION)][:1 + args.several]:
                regression(*csvs, weights, columns)


def fitted(model, train, y_train, test, method="predict"):
    """``(fit seconds, seconds of the first method, the test outputs of each method)``."""
    started = time.perf_counter()
    model.fit(train, y_train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    outputs = [getattr(model, method.split()[0])(test)]
    predict_seconds = time.perf_counter() - started
    outputs += [getattr(model, name)(test) for name in method.split()[1:]]
    return fit_seconds, predict_seconds, outputs


def multilabel(train_csv, test_csv, weights):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score
    from sklearn.multiclass import OneVsRestClassifier

    from skconvnet import FineTunedConvNetClassifier

    train, y_train = targets.read_csv(train_csv)
    test, y_test = targets.read_csv(test_csv)
    y_train, y_test = y_train.astype(int), y_test.astype(int)
    combinations = ", ".join(f"{c}: {k}" for c, k in zip(
        *np.unique([f"{a}{b}" for a, b in y_train], return_counts=True)))
    print(f"\nmulti-label mosaics, tags {', '.join(targets.TAGS)} (training cat/dog "
          f"combinations {combinations})")
    print(f"{'':44s} {'micro-F1':>8s} {'mAP':>6s} {'subset':>6s} {'fit s':>7s} "
          f"{'x frozen':>8s} {'predict s':>9s}")

    def row(name, predicted, scores, fit_s=None, predict_s=None):
        line = (f"{name:44s} {f1_score(y_test, predicted, average='micro'):8.3f} "
                f"{average_precision_score(y_test, scores, average='macro'):6.3f} "
                f"{accuracy_score(y_test, predicted):6.3f}")
        if fit_s is not None:
            line += f" {fit_s:7.1f} {fit_s / frozen_fit:8.2f} {predict_s:9.1f}"
        print(line, flush=True)

    ones = np.ones_like(y_test)
    row("every tag (baseline)", ones, ones / 2)
    head = OneVsRestClassifier(LogisticRegressionCV(
        Cs=np.logspace(-4, 1, 6), l1_ratios=(0,), scoring="neg_log_loss", max_iter=2000,
        use_legacy_attributes=False))
    frozen_fit, predict_s, (predicted, scores) = fitted(
        _frozen_model(head, weights), train, y_train, test, "predict predict_proba")
    row("frozen block5_pool + logistic per tag", predicted, scores, frozen_fit, predict_s)
    model = FineTunedConvNetClassifier(weights=weights, random_state=0)
    fit_s, predict_s, (predicted, scores) = fitted(model, train, y_train, test,
                                                   "predict predict_proba")
    row("FineTunedConvNetClassifier defaults", predicted, scores, fit_s, predict_s)


def _frozen_model(head, weights):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skconvnet import VGGFeatureExtractor

    return make_pipeline(
        VGGFeatureExtractor(weights=weights, layer="block5_pool", pooling="avg",
                            image_size=IMAGE_SIZE, cache=False),
        StandardScaler(), head,
    )


def regression(train_csv, test_csv, weights, columns):
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import mean_absolute_error, r2_score

    train, y_train = targets.read_csv(train_csv, columns)
    test, y_test = targets.read_csv(test_csv, columns)
    if len(columns) == 1:
        y_train, y_test = y_train[:, 0], y_test[:, 0]
    mean_mae = mean_absolute_error(y_test, np.broadcast_to(y_train.mean(axis=0), y_test.shape),
                                   multioutput="raw_values")
    print(f"\nregression, pasted photos, target{'s' * (len(columns) > 1)} {', '.join(columns)}")
    print(f"{'':44s} {'R2':>6s} " + " ".join(f"{'MAE ' + c:>10s}" for c in columns)
          + f" {'/ mean':>6s} {'fit s':>7s} {'x frozen':>8s} {'predict s':>9s}")

    def row(name, predicted, fit_s=None, predict_s=None):
        mae = mean_absolute_error(y_test, predicted, multioutput="raw_values")
        line = (f"{name:44s} {r2_score(y_test, predicted):6.3f} "
                + " ".join(f"{value:10.4f}" for value in mae) + f" {np.mean(mae / mean_mae):6.3f}")
        if fit_s is not None:
            line += f" {fit_s:7.1f} {fit_s / frozen_fit:8.2f} {predict_s:9.1f}"
        print(line, flush=True)

    row("mean predictor", np.broadcast_to(y_train.mean(axis=0), y_test.shape))
    frozen_fit, predict_s, (predicted,) = fitted(
        _frozen_model(RidgeCV(alphas=np.logspace(-2, 5, 8)), weights), train, y_train, test)
    row("frozen block5_pool + RidgeCV", predicted, frozen_fit, predict_s)
    from skconvnet import FineTunedConvNetRegressor

    default = FineTunedConvNetRegressor().augmentation
    for name, augmentation in [("defaults", None), *_augmentations(len(columns) > 1)]:
        if augmentation is not None and augmentation is default:
            continue
        params = {} if augmentation is None else {"augmentation": augmentation}
        if augmentation is None and isinstance(default, bool):
            name += f" (augmentation={default})"
        model = FineTunedConvNetRegressor(weights=weights, random_state=0, **params)
        fit_s, predict_s, (predicted,) = fitted(model, train, y_train, test)
        row(f"regressor {name}", predicted, fit_s, predict_s)


def _augmentations(several):
    """``(name, augmentation)`` of each setting measured besides the defaults."""
    import keras

    settings = [
        ("augmentation=False", False),
        ("flip + shifts 10%", [keras.layers.RandomFlip("horizontal"),
                               keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest")]),
    ]
    if several:
        settings.append(("contrast + brightness 20%", [keras.layers.RandomContrast(0.2),
                                                       keras.layers.RandomBrightness(0.2)]))
    return [*settings, ("augmentation=True (book: zooms)", True)]


if __name__ == "__main__":
    main()
