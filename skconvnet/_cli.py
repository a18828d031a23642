"""The command line: ``python -m skconvnet evaluate`` and ``extract``."""

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time

import numpy as np

from . import _backbone
from ._activations import n_pooled
from .datasets import load_image_folder

DEFAULT_LAYERS = "block3_pool,block4_pool,block5_pool"


def main(argv=None):
    """Run the command line; returns the exit status (0, or 1 after a one-line error)."""
    args = _parser().parse_args(argv)
    _import_keras_quietly()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes of each segment
    try:
        args.run(args)
    except (OSError, ValueError, TypeError, ImportError) as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"skconvnet {args.command}: error: {message}", file=sys.stderr)
        return 1
    return 0


def _import_keras_quietly():
    """Import Keras (and TensorFlow) without TensorFlow's C++ start-up lines.

    TensorFlow logs its oneDNN and CUDA notices (and "failed call to cuInit" on machines
    without a GPU) to the process's stderr while it loads, some before it reads
    ``TF_CPP_MIN_LOG_LEVEL``: stderr is captured during the import and all but those log
    lines are written back.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if not _STARTUP_LINE.match(line):
                    sys.stderr.write(line)


# glog/absl-formatted lines ("I0000 00:00:...") and absl's note that precedes them
_STARTUP_LINE = re.compile(r"[IWEF]\d{4} \d\d:\d\d:|WARNING: All log messages before absl")


def _parser():
    parser = argparse.ArgumentParser(
        prog="skconvnet",
        description="Pretrained VGG16 features for folders of labelled photos "
        "(one sub-folder per class).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser(
        "evaluate",
        help="which VGG16 layer gives the best features, and how accurate a classifier is",
        description="Cross-validate a logistic regression on the features of each layer "
        "(one pass over the photos), refit on the best layer and score it on TEST_DIR.",
    )
    evaluate.add_argument("train_dir", metavar="TRAIN_DIR")
    evaluate.add_argument("--test", required=True, metavar="TEST_DIR")
    evaluate.add_argument("--layers", default=DEFAULT_LAYERS,
                          help=f"comma-separated VGG16 layers (default: {DEFAULT_LAYERS})")
    evaluate.add_argument("--cv", type=int, default=5, help="cross-validation folds (default: 5)")
    evaluate.add_argument("--finetune", action="store_true",
                          help="also fine-tune VGG16 on the best layer and score it")
    evaluate.add_argument("--head-epochs", type=_head_epochs, default=None,
                          help="with --finetune: head epochs, or 'auto' (default: the "
                          "classifier's, 'auto': a logistic regression fit to convergence)")
    evaluate.add_argument("--fine-tune-epochs", type=int, default=None,
                          help="with --finetune: fine-tuning epochs (default: the classifier's)")
    evaluate.add_argument("--report", metavar="FILE.json", help="write the results as JSON")
    evaluate.add_argument("--plot", metavar="FILE.png",
                          help="plot accuracy against layer depth (needs matplotlib)")
    evaluate.set_defaults(run=evaluate_command)

    extract = commands.add_parser(
        "extract", help="write the features of a folder's photos to a .npz file",
        description="Features of every photo of DIR at one layer, with their paths and labels.",
    )
    extract.add_argument("directory", metavar="DIR")
    extract.add_argument("--layer", required=True)
    extract.add_argument("--out", required=True, metavar="FEATURES.npz")
    extract.set_defaults(run=extract_command)

    for command in (evaluate, extract):
        command.add_argument("--weights", default="imagenet",
                             help='"imagenet" (downloaded once by Keras), a weights file of a '
                             'Keras VGG16 conv base, or "none" (random weights, a baseline)')
        command.add_argument("--pooling", choices=["avg", "max", "flatten"], default="avg")
        command.add_argument("--image-size", type=int, default=150, metavar="N",
                             help="images are resized to N x N (default: 150)")
        command.add_argument("--max-per-class", type=int, metavar="N",
                             help="use at most N images of each class, drawn at random")
        command.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
        command.add_argument("--batch-size", type=int, metavar="N",
                             help="images per batch (default: 32 for extracting features, the "
                             "classifier's 20 for fine-tuning)")
        command.add_argument("--random-state", type=int, default=0,
                             help="seeds the sampling, the folds and fine-tuning (default: 0)")
    return parser


def evaluate_command(args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    layers = _layers(args.layers, "--layers")
    if args.plot:
        _need_plotting()
    start = time.perf_counter()
    train_paths, train_labels = _folder(args.train_dir, args)
    test_paths, test_labels = _folder(args.test, args)
    weights = _weights(args.weights)

    print(f"Extracting {', '.join(layers)} from {len(train_paths)} training images "
          f"({len(set(train_labels))} classes) in one pass")
    extractor = _extractor(args, layers, weights)
    features = extractor.fit_transform(train_paths)
    folds = StratifiedKFold(args.cv, shuffle=True, random_state=args.random_state)

    def head():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    columns = _columns(extractor, layers)
    scores = {
        layer: cross_val_score(head(), features[:, columns[layer]], train_labels, cv=folds)
        for layer in layers
    }
    best_layer = max(layers, key=lambda layer: scores[layer].mean())

    print(f"Scoring {best_layer} on {len(test_paths)} test images")
    best = head().fit(features[:, columns[best_layer]], train_labels)
    test_features = _extractor(args, best_layer, weights).fit_transform(test_paths)
    test_accuracy = best.score(test_features, test_labels)

    report = {
        "cv_accuracy": {layer: float(scores[layer].mean()) for layer in layers},
        "cv_accuracy_std": {layer: float(scores[layer].std()) for layer in layers},
        "best_layer": best_layer,
        "test_accuracy": float(test_accuracy),
        "n_train": len(train_paths),
        "n_test": len(test_paths),
        "classes": sorted(set(train_labels.tolist())),
        "weights": os.fspath(args.weights),
        "image_size": args.image_size,
        "pooling": args.pooling,
        "precision": args.precision,
        "cv_folds": args.cv,
    }
    if args.finetune:
        report["finetune_test_accuracy"] = _finetune(
            args, best_layer, weights, train_paths, train_labels, test_paths, test_labels
        )
    report["seconds"] = round(time.perf_counter() - start, 1)

    print(_table(report, layers))
    if args.report:
        with open(args.report, "w") as file:
            json.dump(report, file, indent=2)
        print(f"Report written to {args.report}")
    if args.plot:
        _plot(report, layers, args.plot)
        print(f"Plot written to {args.plot}")


def extract_command(args):
    layers = _layers(args.layer, "--layer")
    if len(layers) != 1:
        raise ValueError(f"--layer takes one layer, got {args.layer!r}; evaluate compares several.")
    layer = layers[0]
    paths, labels = _folder(args.directory, args)
    extractor = _extractor(args, layer, _weights(args.weights))
    features = extractor.fit_transform(paths)
    np.savez(
        args.out, features=features, paths=np.array([os.fspath(p) for p in paths]),
        labels=labels, feature_names=extractor.get_feature_names_out().astype(str), layer=layer,
    )
    print(f"{features.shape[0]} x {features.shape[1]} features at {layer} written to {args.out}")


def _layers(text, option):
    layers = [name.strip() for name in text.split(",") if name.strip()]
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(f"{option} {text!r}: name VGG16 layers, each once, e.g. block4_pool.")
    return [_backbone.check_layer(layer, option) for layer in layers]


def _folder(directory, args):
    return load_image_folder(directory, max_per_class=args.max_per_class,
                             random_state=args.random_state)


def _weights(weights):
    """``weights`` resolved now, so that a missing download fails before any work is done."""
    if weights.lower() == "none":
        return None
    try:
        _backbone.resolve_weights(weights)
    except OSError as error:
        raise OSError(f"{error} On the command line: --weights PATH.") from None
    return weights


def _extractor(args, layer, weights):
    from . import VGGFeatureExtractor

    return VGGFeatureExtractor(
        layer=layer, weights=weights, image_size=args.image_size,
        batch_size=32 if args.batch_size is None else args.batch_size,
        pooling=_pooling(args), precision=args.precision, verbose=1,
    )


def _pooling(args):
    return None if args.pooling == "flatten" else args.pooling


def _columns(extractor, layers):
    """Which feature columns belong to each layer of a fitted multi-layer extractor."""
    columns, start = {}, 0
    for layer in layers:
        width = n_pooled(extractor.feature_shapes_[layer], extractor.pooling)
        columns[layer] = slice(start, start + width)
        start += width
    return columns


def _finetune(args, layer, weights, train_paths, train_labels, test_paths, test_labels):
    from . import FineTunedConvNetClassifier

    classifier = FineTunedConvNetClassifier(
        layer=layer, weights=weights, image_size=args.image_size, pooling=_pooling(args),
        precision=args.precision, random_state=args.random_state, verbose=1,
    )
    given = {"head_epochs": args.head_epochs, "fine_tune_epochs": args.fine_tune_epochs,
             "batch_size": args.batch_size}  # the classifier's own defaults otherwise
    classifier.set_params(**{name: value for name, value in given.items() if value is not None})
    print(f"Fine-tuning VGG16 on {layer} (head: {classifier.head_epochs}, then "
          f"{classifier.fine_tune_epochs} fine-tuning epochs)")
    classifier.fit(train_paths, train_labels)
    return float(classifier.score(test_paths, test_labels))


def _head_epochs(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: give a number of epochs or 'auto'") from None


def _table(report, layers):
    rows = ["", f"{'layer':14s} {'depth':>5s}  {'cv accuracy':>14s}"]
    for layer in layers:
        mean, std = report["cv_accuracy"][layer], report["cv_accuracy_std"][layer]
        mark = "  <- best" if layer == report["best_layer"] else ""
        depth = _backbone.LAYER_NAMES.index(layer) + 1
        rows.append(f"{layer:14s} {depth:5d}  {mean:7.3f} ± {std:.3f}{mark}")
    rows.append("")
    rows.append(f"test accuracy, logistic regression on {report['best_layer']}: "
                f"{report['test_accuracy']:.3f} ({report['n_train']} training, "
                f"{report['n_test']} test images)")
    if "finetune_test_accuracy" in report:
        rows.append(f"test accuracy, fine-tuned VGG16 on {report['best_layer']}: "
                    f"{report['finetune_test_accuracy']:.3f}")
    rows.append(f"{report['seconds']:.0f} s")
    return "\n".join(rows)


def _need_plotting():
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
    except ImportError:
        raise ImportError(
            "--plot needs matplotlib and pandas: pip install 'skconvnet[plot]' (or pip install "
            "matplotlib pandas), or leave out --plot."
        ) from None


def _plot(report, layers, filename):
    import matplotlib

    matplotlib.use("Agg")
    from ._search import plot_layer_scores

    results = {
        "params": [{"layer": layer} for layer in layers],
        "param_layer": layers,
        "mean_test_score": [report["cv_accuracy"][layer] for layer in layers],
        "std_test_score": [report["cv_accuracy_std"][layer] for layer in layers],
    }
    ax = plot_layer_scores(results, param="layer")
    ax.set_ylabel(f"{report['cv_folds']}-fold cross-validated accuracy")
    ax.figure.savefig(filename, dpi=120)
