"""The command line: ``python -m skconvnet evaluate``, ``extract`` and ``predict``."""

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time

import numpy as np

from .._optional import require
from ..backbones import specs
from ..backbones.checks import check_layer
from ..backbones.weights import resolve_weights
from ..compute.activations import n_pooled
from ..datasets import load_image_folder


def main(argv=None):
    """Run the command line; returns the exit status (0, or 1 after a one-line error)."""
    args = _parser().parse_args(argv)
    if args.command != "predict" or not args.model.lower().endswith(".onnx"):
        _import_keras_quietly()  # an .onnx file runs without TensorFlow and Keras
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
        description="Pretrained convnet features for folders of labelled photos "
        "(one sub-folder per class).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser(
        "evaluate",
        help="which backbone and layer give the best features, and how accurate a "
        "classifier is",
        description="Cross-validate a logistic regression on the features of each layer "
        "(one pass over the photos per backbone), refit on the best layer and score it on "
        "TEST_DIR.",
    )
    evaluate.add_argument("train_dir", metavar="TRAIN_DIR")
    evaluate.add_argument("--test", required=True, metavar="TEST_DIR")
    evaluate.add_argument("--backbone", default="vgg16", metavar="NAME[,NAME...]",
                          help="comma-separated backbones to compare (default: vgg16; "
                          f"known: {', '.join(specs.BACKBONES)})")
    evaluate.add_argument("--layers",
                          help="comma-separated layers, BACKBONE/LAYER to name one backbone's "
                          "(default: the last cut point of each of the three deepest stages, "
                          "block3_pool,block4_pool,block5_pool for vgg16)")
    evaluate.add_argument("--cv", type=int, default=5, help="cross-validation folds (default: 5)")
    evaluate.add_argument("--finetune", action="store_true",
                          help="also fine-tune the best backbone on its best layer and score it")
    evaluate.add_argument("--head-epochs", type=_head_epochs, default=None,
                          help="with --finetune: head epochs, or 'auto' (default: the "
                          "classifier's, 'auto': a logistic regression fit to convergence)")
    evaluate.add_argument("--fine-tune-epochs", type=int, default=None,
                          help="with --finetune: fine-tuning epochs (default: the classifier's)")
    evaluate.add_argument("--report", metavar="FILE.json", help="write the results as JSON")
    evaluate.add_argument("--plot", metavar="FILE.png",
                          help="plot accuracy against layer depth (needs matplotlib)")
    evaluate.add_argument("--html", metavar="FILE.html",
                          help="write a self-contained page to look at: settings, layer curve, "
                          "confusion matrix, the most confident mistakes, training curves "
                          "(needs matplotlib)")
    evaluate.add_argument("--export", metavar="MODEL.onnx",
                          help="write the refit best pipeline as one ONNX graph for "
                          "'skconvnet predict' or ONNX Runtime (with --finetune, the "
                          "fine-tuned classifier too, as MODEL.finetuned.onnx; needs the "
                          "onnx extra)")
    evaluate.add_argument("--errors", type=int, default=24, metavar="N",
                          help="with --html: show at most N mistakes (default: 24)")
    evaluate.set_defaults(run=evaluate_command)

    extract = commands.add_parser(
        "extract", help="write the features of a folder's photos to a .npz file",
        description="Features of every photo of DIR at one layer, with their paths and labels.",
    )
    extract.add_argument("directory", metavar="DIR")
    extract.add_argument("--backbone", default="vgg16", metavar="NAME",
                         help="the backbone (default: vgg16)")
    extract.add_argument("--layer", required=True)
    extract.add_argument("--out", required=True, metavar="FEATURES.npz")
    extract.set_defaults(run=extract_command)

    predict = commands.add_parser(
        "predict", help="a saved model's predictions for photos, written as CSV",
        description="Run MODEL (an .onnx file from skconvnet.to_onnx or evaluate --export, "
        "on ONNX Runtime without TensorFlow; or a .skops or .joblib file of a fitted "
        "estimator) on PHOTOS and write one row per photo: its path, the predicted label and "
        "each class's probability (an extractor's features instead).",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("photos", metavar="PHOTOS", nargs="+",
                         help="folders (searched recursively), a .txt file listing image "
                         "paths (one per line), or image files")
    predict.add_argument("--output", required=True, metavar="PREDICTIONS.csv")
    predict.add_argument("--skip-bad", action="store_true",
                         help="skip files that cannot be decoded, and list them at the end")
    predict.add_argument("--batch-size", type=int, default=32, metavar="N",
                         help="images per batch (default: 32)")
    predict.set_defaults(run=_predict_command)

    for command in (evaluate, extract):
        command.add_argument("--weights", default="imagenet",
                             help='"imagenet" (downloaded once by Keras), a weights file of the '
                             'backbone\'s Keras model (include_top=False), or "none" (random '
                             'weights, a baseline); comma-separated, one per backbone')
        command.add_argument("--pooling", choices=["avg", "max", "flatten"], default="avg")
        command.add_argument("--image-size", type=int, metavar="N",
                             help="images are resized to N x N (default: the backbone's "
                             "customary size, 150 for vgg16, 224 for the others)")
        command.add_argument("--max-per-class", type=int, metavar="N",
                             help="use at most N images of each class, drawn at random")
        command.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
        command.add_argument("--batch-size", type=int, metavar="N",
                             help="images per batch (default: 32 for extracting features, the "
                             "classifier's 20 for fine-tuning)")
        command.add_argument("--random-state", type=int, default=0,
                             help="seeds the sampling, the folds and fine-tuning (default: 0)")
    return parser


def _predict_command(args):
    from .predict import predict_command

    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: give 1 or more images per batch.")
    predict_command(args)


def evaluate_command(args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    candidates = _candidates(args.backbone, args.layers)
    several = len(candidates) > 1
    for option in ("report", "plot", "html", "export"):
        if getattr(args, option):
            _check_writable(getattr(args, option), f"--{option}")
    if args.export:
        require("onnx", "onnxruntime", "tf2onnx", "skl2onnx", extra="onnx", purpose="--export")
    if args.plot or args.html:
        _need_plotting("--plot" if args.plot else "--html")
    if args.errors < 0:
        raise ValueError(f"--errors {args.errors}: give a number of mistakes to show, 0 or more.")
    start = time.perf_counter()
    train_paths, train_labels = _folder(args.train_dir, args)
    test_paths, test_labels = _folder(args.test, args)
    unknown = sorted(set(test_labels.tolist()) - set(train_labels.tolist()))
    if unknown:
        raise ValueError(f"--test {args.test} has classes that {args.train_dir} lacks: "
                         f"{', '.join(unknown)}; a classifier cannot predict them. Give both "
                         "folders the same class sub-folders.")
    weights = _weights(args.weights, list(candidates))
    folds = StratifiedKFold(args.cv, shuffle=True, random_state=args.random_state)

    def head():
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))

    scores, features = {}, {}
    for backbone, layers in candidates.items():
        print(f"Extracting {', '.join(layers)} of {backbone} from {len(train_paths)} training "
              f"images ({len(set(train_labels))} classes) in one pass")
        extractor = _extractor(args, backbone, layers, weights[backbone])
        all_layers = extractor.fit_transform(train_paths)
        for layer, columns in _columns(extractor, layers).items():
            label = f"{backbone}/{layer}" if several else layer
            features[label] = (backbone, layer, all_layers[:, columns])
            scores[label] = cross_val_score(head(), features[label][2], train_labels, cv=folds)
    best_label = max(scores, key=lambda label: scores[label].mean())
    best_backbone, best_layer, best_features = features[best_label]

    print(f"Scoring {best_label} on {len(test_paths)} test images")
    best = head().fit(best_features, train_labels)
    test_features = _extractor(args, best_backbone, best_layer, weights[best_backbone])
    test_proba = best.predict_proba(test_features.fit_transform(test_paths))
    test_accuracy = np.mean(best.classes_[test_proba.argmax(axis=1)] == test_labels)

    report = {
        "cv_accuracy": {label: float(score.mean()) for label, score in scores.items()},
        "cv_accuracy_std": {label: float(score.std()) for label, score in scores.items()},
        "best_layer": best_label,
        "test_accuracy": float(test_accuracy),
        "n_train": len(train_paths),
        "n_test": len(test_paths),
        "classes": best.classes_.tolist(),
        "train_counts": _counts(train_labels),
        "test_counts": _counts(test_labels),
        "train_dir": os.fspath(args.train_dir),
        "test_dir": os.fspath(args.test),
        "backbones": list(candidates),
        "depth": {label: specs.get(backbone).depth(layer)
                  for label, (backbone, layer, _) in features.items()},
        "weights": os.fspath(args.weights),
        "image_size": args.image_size,
        "image_sizes": {backbone: list(specs.get(backbone).image_size
                                       if args.image_size is None else (args.image_size,) * 2)
                        for backbone in candidates},
        "pooling": args.pooling,
        "precision": args.precision,
        "cv_folds": args.cv,
    }
    classifier = None
    if args.finetune:
        classifier = _finetune(args, best_backbone, best_layer, weights[best_backbone],
                               train_paths, train_labels)
        report["finetune_test_accuracy"] = float(classifier.score(test_paths, test_labels))
    report["seconds"] = round(time.perf_counter() - start, 1)

    print(_table(report))
    if args.report:
        with open(args.report, "w") as file:
            json.dump(report, file, indent=2)
        print(f"Report written to {args.report}")
    if args.plot:
        _layer_figure(report, features).savefig(args.plot, dpi=120)
        print(f"Plot written to {args.plot}")
    if args.export:
        _export(args.export, test_features, best, classifier)
    if args.html:
        from ..report.page import write_report_page

        started = time.perf_counter()
        write_report_page(args.html, report, layer_figure=_layer_figure(report, features),
                          y_test=test_labels, proba=test_proba, test_paths=test_paths,
                          classifier=classifier, n_errors=args.errors)
        print(f"Page written to {args.html} ({os.path.getsize(args.html) / 1e6:.2f} MB in "
              f"{time.perf_counter() - started:.1f} s)")


def _export(path, extractor, head, classifier):
    """Write the best pipeline (and the fine-tuned classifier) as ONNX graphs."""
    from sklearn.pipeline import Pipeline

    from ..export.estimators import to_onnx

    to_onnx(Pipeline([("features", extractor), *head.steps]), path)
    print(f"Model written to {path}")
    if classifier is not None:
        stem, suffix = os.path.splitext(path)
        to_onnx(classifier, f"{stem}.finetuned{suffix or '.onnx'}")
        print(f"Fine-tuned classifier written to {stem}.finetuned{suffix or '.onnx'}")


def extract_command(args):
    spec = specs.get(args.backbone, "--backbone")
    layers = [name.strip() for name in args.layer.split(",") if name.strip()]
    if len(layers) != 1:
        raise ValueError(f"--layer takes one layer, got {args.layer!r}; evaluate compares several.")
    layer = check_layer(spec, layers[0], "--layer")
    paths, labels = _folder(args.directory, args)
    weights = _weights(args.weights, [spec.name])[spec.name]
    extractor = _extractor(args, spec.name, layer, weights)
    features = extractor.fit_transform(paths)
    np.savez(
        args.out, features=features, paths=np.array([os.fspath(p) for p in paths]),
        labels=labels, feature_names=extractor.get_feature_names_out().astype(str), layer=layer,
        backbone=spec.name,
    )
    print(f"{features.shape[0]} x {features.shape[1]} features at {layer} of {spec.name} "
          f"written to {args.out}")


def _candidates(backbone_text, layers_text):
    """``{backbone: [layers]}`` from ``--backbone`` and ``--layers``.

    A plain layer goes to every backbone, ``backbone/layer`` to that one; a backbone that
    ``--layers`` leaves without layers is searched at its default cut points.
    """
    backbones = _names(backbone_text, "--backbone", "backbones, e.g. resnet50")
    chosen = [specs.get(name, "--backbone") for name in backbones]
    if layers_text is None:
        return {spec.name: spec.default_search() for spec in chosen}
    candidates = {spec.name: [] for spec in chosen}
    for entry in _names(layers_text, "--layers", "layers, e.g. block4_pool"):
        backbone, _, layer = entry.rpartition("/")
        if backbone and backbone not in candidates:
            raise ValueError(f"--layers {entry!r}: {backbone!r} is not one of --backbone "
                             f"{backbone_text!r}.")
        for spec in chosen if not backbone else [specs.get(backbone)]:
            candidates[spec.name].append(check_layer(spec, layer, "--layers"))
    empty = [name for name, layers in candidates.items() if not layers]
    if empty:
        raise ValueError(f"--layers {layers_text!r} names no layer of {', '.join(empty)}; "
                         f"add some as {empty[0]}/LAYER.")
    return candidates


def _names(text, option, what):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{option} {text!r}: name {what}, each once.")
    return names


def _folder(directory, args):
    return load_image_folder(directory, max_per_class=args.max_per_class,
                             random_state=args.random_state)


def _weights(text, backbones):
    """``{backbone: weights}`` from ``--weights`` (one value, or one per backbone), resolved
    now, so that a missing download fails before any work is done."""
    values = [value.strip() for value in text.split(",")] if "," in text else [text]
    if len(values) == 1:
        values *= len(backbones)
    if len(values) != len(backbones):
        raise ValueError(f"--weights {text!r}: give one value, or one per backbone "
                         f"({len(backbones)}).")
    weights = {}
    for backbone, value in zip(backbones, values):
        weights[backbone] = None if value.lower() == "none" else value
        try:
            resolve_weights(specs.get(backbone), weights[backbone])
        except OSError as error:
            raise OSError(f"{error} On the command line: --weights PATH.") from None
    return weights


def _extractor(args, backbone, layer, weights):
    from .. import ConvNetFeatureExtractor

    return ConvNetFeatureExtractor(
        backbone=backbone, layer=layer, weights=weights, image_size=args.image_size,
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


def _finetune(args, backbone, layer, weights, train_paths, train_labels):
    from .. import FineTunedConvNetClassifier

    classifier = FineTunedConvNetClassifier(
        backbone=backbone, layer=layer, weights=weights, image_size=args.image_size,
        pooling=_pooling(args), precision=args.precision, random_state=args.random_state,
        verbose=1,
    )
    given = {"head_epochs": args.head_epochs, "fine_tune_epochs": args.fine_tune_epochs,
             "batch_size": args.batch_size}  # the classifier's own defaults otherwise
    classifier.set_params(**{name: value for name, value in given.items() if value is not None})
    print(f"Fine-tuning {specs.get(backbone).title} on {layer} (head: "
          f"{classifier.head_epochs}, then "
          f"{classifier.fine_tune_epochs} fine-tuning epochs)")
    return classifier.fit(train_paths, train_labels)


def _head_epochs(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: give a number of epochs or 'auto'") from None


def _table(report):
    width = max(14, *map(len, report["cv_accuracy"]))
    rows = ["", f"{'layer':{width}s} {'depth':>5s}  {'cv accuracy':>14s}"]
    for label, mean in report["cv_accuracy"].items():
        std = report["cv_accuracy_std"][label]
        mark = "  <- best" if label == report["best_layer"] else ""
        depth = report["depth"][label]
        rows.append(f"{label:{width}s} {depth:5d}  {mean:7.3f} ± {std:.3f}{mark}")
    rows.append("")
    rows.append(f"test accuracy, logistic regression on {report['best_layer']}: "
                f"{report['test_accuracy']:.3f} ({report['n_train']} training, "
                f"{report['n_test']} test images)")
    if "finetune_test_accuracy" in report:
        rows.append(f"test accuracy, fine-tuned on {report['best_layer']}: "
                    f"{report['finetune_test_accuracy']:.3f}")
    rows.append(f"{report['seconds']:.0f} s")
    return "\n".join(rows)


def _counts(labels):
    names, counts = np.unique(labels, return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


def _check_writable(path, option):
    """Fail now, not after the long run, if ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a folder; name a file.")
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {path}: the folder {folder} does not exist.")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: cannot write there (permission denied).")


def _need_plotting(option):
    require("matplotlib", "pandas", extra="plot", purpose=option,
            otherwise=f", or leave out {option}")


def _layer_figure(report, features):
    """Cross-validated accuracy against depth, the chosen layer's test accuracy marked."""
    import matplotlib

    matplotlib.use("Agg")
    from ..report.layers import plot_layer_scores

    labels = list(report["cv_accuracy"])
    results = {
        "params": [{"backbone": features[label][0], "layer": features[label][1]}
                   for label in labels],
        "param_layer": [features[label][1] for label in labels],
        "mean_test_score": [report["cv_accuracy"][label] for label in labels],
        "std_test_score": [report["cv_accuracy_std"][label] for label in labels],
    }
    ax = plot_layer_scores(results, param="layer")
    ax.set_ylabel(f"{report['cv_folds']}-fold cross-validated accuracy")
    ticks = {label.get_text(): x for label, x in zip(ax.get_xticklabels(), ax.get_xticks())}
    ax.plot([ticks[report["best_layer"]]], [report["test_accuracy"]], "*", markersize=14,
            color="tab:red", label=f"test accuracy of {report['best_layer']}")
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure
