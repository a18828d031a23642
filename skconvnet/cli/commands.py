"""The command line: ``python -m skconvnet evaluate``, ``audit``, ``extract`` and ``predict``.

The argument parser and the dispatch to each command, each in a module of its own:
:mod:`skconvnet.cli.evaluate`, :mod:`skconvnet.cli.audit`, :mod:`skconvnet.cli.extract`,
:mod:`skconvnet.cli.predict`.
"""

import argparse
import logging
import os
import re
import sys
import tempfile

from .._optional import require_keras
from ..backbones import specs
from .audit import audit_command
from .evaluate import evaluate_command
from .extract import extract_command


def main(argv=None):
    """Run the command line; returns the exit status (0, or 1 after a one-line error)."""
    args = _parser().parse_args(argv)
    try:
        if args.command != "predict" or not args.model.lower().endswith(".onnx"):
            _import_keras_quietly(args.command)  # an .onnx file runs without Keras
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notes of each segment
        args.run(args)
    except (OSError, ValueError, TypeError, ImportError) as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        print(f"skconvnet {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"skconvnet {args.command}: interrupted", file=sys.stderr)
        return 130  # as a shell reports a command stopped by Ctrl-C
    return 0


def _import_keras_quietly(command):
    """Import Keras (and TensorFlow) without TensorFlow's C++ start-up lines, or raise an
    ImportError naming the extra that installs them.

    TensorFlow logs its oneDNN and CUDA notices (and "failed call to cuInit" on machines
    without a GPU) to the process's stderr while it loads, some before it reads
    ``TF_CPP_MIN_LOG_LEVEL``: stderr is captured during the import and all but those log
    lines are written back.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if sys.modules.get("keras") is not None:  # imported already
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            require_keras(f"the {command} command")
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
        description="Cross-validate a linear model on the features of each layer (one pass "
        "over the photos per backbone): a logistic regression for classes, one per tag for "
        "tags, a ridge regression for numbers; refit on the best layer and score it on TEST. "
        "TRAIN and TEST are folders of class folders, or CSV files of image paths and labels.",
    )
    evaluate.add_argument("train_dir", metavar="TRAIN")
    evaluate.add_argument("--test", required=True, metavar="TEST")
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
                          help="plot the cross-validated score (accuracy, mean average "
                          "precision of tags, R² of numbers) against layer depth (needs "
                          "matplotlib)")
    evaluate.add_argument("--html", metavar="FILE.html",
                          help="write a self-contained page to look at: settings, layer curve, "
                          "confusion matrix, the most confident mistakes, training curves "
                          "(tags: scores per tag, the most confident wrong tags; numbers: "
                          "predicted against true, residuals, the largest errors) (needs "
                          "matplotlib)")
    evaluate.add_argument("--export", metavar="MODEL.onnx",
                          help="write the refit best pipeline as one ONNX graph for "
                          "'skconvnet predict' or ONNX Runtime (with --finetune, the "
                          "fine-tuned classifier or regressor too, as "
                          "MODEL.finetuned.onnx; needs the onnx extra)")
    evaluate.add_argument("--errors", type=int, default=24, metavar="N",
                          help="with --html: show at most N mistakes (photos with wrong "
                          "tags; of each target, the largest errors) (default: 24)")
    evaluate.add_argument("--no-audit", action="store_true",
                          help="do not check the photos themselves (label issues, copies "
                          "leaked into the test photos, outliers), which costs the test "
                          "photos' features at one more layer in the same pass, and logistic "
                          "regressions choosing the probe's regularisation")
    evaluate.set_defaults(run=evaluate_command)

    audit = commands.add_parser(
        "audit", help="photos probably mislabelled, copies of one another, or unlike their class",
        description="Check labelled photos (a folder of one sub-folder per class, or a CSV "
        "file of image paths and labels): label issues (classes only) by confident learning "
        "on the out-of-fold probabilities of a logistic regression on the best searched "
        "layer, copies on the searched layer nearest three quarters of the network's depth, "
        "outliers on all searched layers.",
    )
    audit.add_argument("train_dir", metavar="PHOTOS")
    audit.add_argument("--backbone", default="vgg16", metavar="NAME[,NAME...]",
                       help="the backbone, or comma-separated backbones to search, the photos "
                       "being checked on the best one's layers (default: vgg16; known: "
                       f"{', '.join(specs.BACKBONES)})")
    audit.add_argument("--layers",
                       help="comma-separated layers to search, BACKBONE/LAYER to name one "
                       "backbone's (default: the last cut point of each of the three deepest "
                       "stages)")
    audit.add_argument("--cv", type=int, default=5, help="cross-validation folds (default: 5)")
    audit.add_argument("--report", metavar="FILE.json", help="write the findings as JSON")
    audit.add_argument("--html", metavar="FILE.html",
                       help="write a self-contained page of the suspect photos")
    audit.set_defaults(run=audit_command)
    for command in (evaluate, audit):
        label_options(command)

    extract = commands.add_parser(
        "extract", help="write the features of labelled photos to a .npz file",
        description="Features of every photo of PHOTOS (a folder of class folders, or a CSV "
        "file of image paths and labels) at one layer, with their paths and labels.",
    )
    extract.add_argument("directory", metavar="PHOTOS")
    extract.add_argument("--backbone", default="vgg16", metavar="NAME",
                         help=f"the backbone (default: vgg16; known: {', '.join(specs.BACKBONES)})")
    extract.add_argument("--layer", required=True, metavar="LAYER",
                         help="the one layer of the backbone whose features are written "
                         "(evaluate compares several)")
    extract.add_argument("--out", required=True, metavar="FEATURES.npz",
                         help="the NumPy file to write (.npz is added to a name without it): "
                         "features, paths, labels, kind, target_names, feature_names, layer "
                         "and backbone")
    label_options(extract)
    extract.set_defaults(run=extract_command)

    predict = commands.add_parser(
        "predict", help="a saved model's predictions for photos, written as CSV",
        description="Run MODEL (an .onnx file from skconvnet.to_onnx or evaluate --export, "
        "on ONNX Runtime without TensorFlow; or a .skops, .joblib or .pkl file of a fitted "
        "estimator) on PHOTOS and write one row per photo: its path, then the predicted "
        "label and each class's probability (a classifier), the predicted tags joined by "
        "'|' and each tag's probability (tags), the predicted numbers (a regressor), or "
        "the features (an extractor).",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("photos", metavar="PHOTOS", nargs="+",
                         help="folders (searched recursively), a .txt or .csv file listing "
                         "image paths (one per line), a CSV file with a header (its column "
                         "of paths is read), or image files")
    predict.add_argument("--path-column", metavar="NAME",
                         help="with a CSV file with a header: the column of image files "
                         "(default: the first named path, file, filename, image, id...)")
    predict.add_argument("--output", required=True, metavar="PREDICTIONS.csv",
                         help="the CSV file to write, one row per photo")
    predict.add_argument("--skip-bad", action="store_true",
                         help="skip files that cannot be decoded, and list them at the end")
    predict.add_argument("--batch-size", type=int, default=32, metavar="N",
                         help="images given to the model at a time, each batch kept in "
                         "PREDICTIONS.csv.partial/ once done (default: 32; an estimator's "
                         "forward passes keep its own batch_size)")
    predict.set_defaults(run=_predict_command)

    photo_options(
        evaluate, weights=_SEVERAL_WEIGHTS,
        batch_size="images per forward pass of feature extraction (default: 32) and, when "
        "given, per step of fine-tuning (default: the classifier's 20)",
        random_state="seeds the sampling of --max-per-class, the cross-validation folds and "
        "fine-tuning (default: 0)")
    photo_options(
        audit, weights=_SEVERAL_WEIGHTS,
        batch_size="images per forward pass of feature extraction (default: 32)",
        random_state="seeds the sampling of --max-per-class and the cross-validation folds "
        "(default: 0)")
    photo_options(
        extract, weights=_WEIGHTS,
        batch_size="images per forward pass, each batch kept in FEATURES.npz.partial/ once "
        "done (default: 32)",
        random_state="seeds the sampling of --max-per-class (default: 0)")
    restart_option(extract, "FEATURES.npz")
    restart_option(predict, "PREDICTIONS.csv")
    return parser


_WEIGHTS = ('"imagenet" (the default, downloaded once by Keras), a weights file of the '
            'backbone\'s Keras model (include_top=False), or "none" (random weights, a '
            'baseline)')
_SEVERAL_WEIGHTS = (_WEIGHTS + "; with several backbones, one value for all or a "
                    "comma-separated list, one per backbone")


def photo_options(command, *, weights, batch_size, random_state):
    """Add the options of how photos become features (those of :class:`PhotoOptions
    <skconvnet.cli.options.PhotoOptions>` besides the CSV's) to the parser of ``command``,
    with the help texts of what ``--weights``, ``--batch-size`` and ``--random-state`` do
    there."""
    command.add_argument("--weights", default="imagenet", metavar="W", help=weights)
    command.add_argument("--pooling", choices=["avg", "max", "flatten"], default="avg",
                         help="how a layer's feature maps become one vector per photo: their "
                         "average or maximum over positions, or all of them flattened "
                         "(default: avg)")
    command.add_argument("--image-size", type=int, metavar="N",
                         help="images are resized to N x N (default: the backbone's "
                         "customary size, 150 for vgg16, 224 for the others)")
    command.add_argument("--max-per-class", type=int, metavar="N",
                         help="use at most N photos of each class, drawn at random (classes "
                         "only)")
    command.add_argument("--precision", choices=["float32", "bfloat16"], default="float32",
                         help="the network's compute precision; bfloat16 is faster on CPUs "
                         "with bfloat16 instructions and slower where they are emulated "
                         "(default: float32)")
    command.add_argument("--batch-size", type=int, metavar="N", help=batch_size)
    command.add_argument("--random-state", type=int, default=0, metavar="N", help=random_state)


def restart_option(command, output):
    """Add ``--restart`` to the parser of ``command``, whose output file is ``output``."""
    command.add_argument("--restart", action="store_true",
                         help=f"discard the work an interrupted run kept in {output}.partial/ "
                         "instead of resuming it")


def label_options(command):
    """Add the options that say how a CSV file of photos is read (``--kind``,
    ``--path-column``, ``--label-columns``) to the parser of ``command``."""
    command.add_argument("--kind", choices=["auto", "class", "tags", "numbers"],
                         default="auto",
                         help="with a CSV file: the kind of labels (default: auto, inferred "
                         "from the label columns and printed)")
    command.add_argument("--path-column", metavar="NAME",
                         help="with a CSV file: the column of image files (default: the "
                         "first named path, file, filename, image, id...)")
    command.add_argument("--label-columns", metavar="NAME[,NAME...]",
                         help="with a CSV file: the columns of labels (default: every other "
                         "named column)")


def _predict_command(args):
    from .predict import predict_command

    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: give 1 or more images per batch.")
    predict_command(args)


def _head_epochs(text):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: give a number of epochs or 'auto'") from None
