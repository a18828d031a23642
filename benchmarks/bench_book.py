"""The book's table on the shared cats/dogs photos: accuracy and fit time of each approach.

Deep Learning with Python (first edition, chapter 5) compares, on 2,000 training and 1,000
validation photos of cats and dogs at 150x150, a convnet trained from scratch, a dense head
on frozen VGG16 features, the same with data augmentation, and fine-tuning. This benchmark
runs each approach with skconvnet on the shared photos and the ImageNet-grade VGG16 base, in
one process, and prints its validation accuracy, its fit time (wall clock, from the JPEG
paths, activation cache emptied before each fit) and the book's number beside it:

1. from scratch: VGG16's first three blocks from random weights, no augmentation, at
   ``--scratch-size`` for ``--scratch-epochs`` epochs (the book trains a small convnet of
   that size for 30 epochs at 150x150; a CPU makes this a smaller run);
2. frozen features + logistic regression: ``VGGFeatureExtractor`` at block4_pool and
   block5_pool (average pooling), ``StandardScaler``, ``LogisticRegression`` with C chosen by
   5-fold cross-validation; the better layer on the validation photos is reported (its
   time includes extracting the validation photos' features);
3. frozen features + dense head, the book's: flatten, Dense(256), dropout, 30 epochs RMSprop
   at 2e-5, no augmentation (``BOOK_RECIPE`` with ``fine_tune_epochs=0``);
4. frozen features + augmentation: the classifier's defaults without fine-tuning (a logistic
   head on each photo and 3 augmented views of it);
5. the book's literal fine-tuning (``BOOK_RECIPE``: fresh augmentation in every epoch, the
   whole base run in every epoch) for ``--book-head-epochs`` + ``--book-fine-tune-epochs``
   epochs instead of 30 + 100; its time for the full recipe is extrapolated from the measured
   seconds per epoch of each phase;
6. the classifier's defaults: ``FineTunedConvNetClassifier(weights=..., random_state=0)``.

    python benchmarks/bench_book.py [--precision float32] [--scratch-size 64]
        [--scratch-epochs 10] [--book-head-epochs 2] [--book-fine-tune-epochs 1]
        [--plot docs/images/book_table.png] [--only 'skconvnet defaults' ...]
"""

import argparse
import time

import numpy as np
from bench_finetune import epoch_times
from common import IMAGENET_WEIGHTS, device, photo_paths


def frozen_logistic_regression(train, y_train, validation, y_validation, precision):
    """Validation accuracy of the best frozen-features pipeline, and which layer it was."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skconvnet import VGGFeatureExtractor

    layers = ["block4_pool", "block5_pool"]
    extractor = VGGFeatureExtractor(layer=layers, weights=IMAGENET_WEIGHTS, pooling="avg",
                                    precision=precision, cache=False)
    features = extractor.fit_transform(train)
    validation_features = extractor.transform(validation)
    scores = {}
    for index, layer in enumerate(layers):
        columns = slice(512 * index, 512 * (index + 1))
        search = GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
            {"logisticregression__C": np.logspace(-4, 1, 6)}, cv=5,
        ).fit(features[:, columns], y_train)
        scores[layer] = search.score(validation_features[:, columns], y_validation)
    best = max(scores, key=scores.get)
    return scores[best], best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--scratch-size", type=int, default=64)
    parser.add_argument("--scratch-epochs", type=int, default=10)
    parser.add_argument("--book-head-epochs", type=int, default=2)
    parser.add_argument("--book-fine-tune-epochs", type=int, default=1)
    parser.add_argument("--plot", help="write accuracy against fit time to this PNG file")
    parser.add_argument("--only", nargs="+", metavar="APPROACH",
                        help="run only the approaches whose names start with these words, "
                             "e.g. --only 'skconvnet defaults'")
    args = parser.parse_args()

    from skconvnet import BOOK_RECIPE, FineTunedConvNetClassifier, clear_cache

    train, validation = photo_paths(2000), photo_paths(1000, split="validation")
    if not train or not IMAGENET_WEIGHTS.is_file():
        raise SystemExit("needs the shared cats/dogs photos and the ImageNet-grade weights")
    y_train = [p.parent.name for p in train]
    y_validation = [p.parent.name for p in validation]
    print(f"device: {device()}")
    print(f"{len(train)} training, {len(validation)} validation photos; {args.precision}\n")

    common = dict(weights=IMAGENET_WEIGHTS, precision=args.precision, random_state=0)
    book_epochs = (args.book_head_epochs, args.book_fine_tune_epochs)
    rows = [
        ("from scratch", 0.71, f"VGG16 blocks 1-3 from random weights, {args.scratch_size}px, "
         f"{args.scratch_epochs} epochs", FineTunedConvNetClassifier(
             weights=None, layer="block3_pool", unfreeze_from="block1_conv1", head_epochs=0,
             fine_tune_epochs=args.scratch_epochs, fine_tune_learning_rate=1e-4,
             augmentation=False, image_size=args.scratch_size, precision=args.precision,
             random_state=0)),
        ("frozen + logistic regression", 0.90, "", None),
        ("frozen + dense head (book)", 0.90, "BOOK_RECIPE, fine_tune_epochs=0, no augmentation",
         FineTunedConvNetClassifier(**{**BOOK_RECIPE, "fine_tune_epochs": 0,
                                       "augmentation": False}, **common)),
        ("frozen + augmentation", 0.96, "defaults, fine_tune_epochs=0",
         FineTunedConvNetClassifier(fine_tune_epochs=0, **common)),
        (f"book's fine-tuning, {book_epochs[0]}+{book_epochs[1]} epochs", 0.97,
         f"BOOK_RECIPE, {book_epochs[0]} + {book_epochs[1]} epochs",
         FineTunedConvNetClassifier(**{**BOOK_RECIPE, "head_epochs": book_epochs[0],
                                       "fine_tune_epochs": book_epochs[1]}, **common)),
        ("skconvnet defaults", None, "weights and random_state only",
         FineTunedConvNetClassifier(weights=IMAGENET_WEIGHTS, random_state=0)),
    ]
    if args.only:
        rows = [row for row in rows if row[0].startswith(tuple(args.only))]
    results = []
    print(f"{'approach':30s} {'accuracy':>8s} {'fit':>9s} {'book':>5s}  setting")
    for name, book, setting, model in rows:
        clear_cache()
        start = time.perf_counter()
        with epoch_times() as phases:
            if model is None:
                accuracy, layer = frozen_logistic_regression(
                    train, y_train, validation, y_validation, args.precision)
                setting = f"{layer}, avg, StandardScaler, C by 5-fold cv"
            else:
                model.fit(train, y_train)
        seconds = time.perf_counter() - start
        if model is not None:
            accuracy = model.score(validation, y_validation)
        if name.startswith("book's fine-tuning"):  # the full 30 + 100 epochs, extrapolated
            head, fine_tune = (np.median(epochs) for epochs in phases)
            full = seconds + (30 - book_epochs[0]) * head + (100 - book_epochs[1]) * fine_tune
            setting += f"; 30 + 100 epochs: {full / 3600:.1f} h (extrapolated)"
        results.append((name, accuracy, seconds, book))
        book_text = f"{book:.2f}" if book else "—"
        print(f"{name:30s} {accuracy:8.3f} {seconds:7.0f} s {book_text:>5s}  {setting}",
              flush=True)
    if args.plot:
        plot(results, args.plot)


def plot(results, path):
    """Accuracy against fit time, one point per approach, the book's numbers as dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for index, (name, accuracy, seconds, book) in enumerate(results):
        ax.scatter(seconds / 60, accuracy, color="tab:blue", zorder=3)
        ax.annotate(name, (seconds / 60, accuracy), textcoords="offset points", fontsize=8,
                    xytext=(6, 5 if index % 2 else -11))
        if book:
            ax.axhline(book, color="gray", linewidth=0.6, linestyle=":")
            ax.annotate(f"book {book:.2f}", (0, book), xycoords=("axes fraction", "data"),
                        xytext=(4, 2), textcoords="offset points", fontsize=7, color="gray")
    ax.set_xlim(0, 1.3 * max(seconds for _, _, seconds, _ in results) / 60)
    ax.set_xlabel("fit time from the JPEG files, minutes (2 CPU cores)")
    ax.set_ylabel("accuracy on 1,000 validation photos")
    ax.set_title("Cats vs dogs, 2,000 training photos at 150x150")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
