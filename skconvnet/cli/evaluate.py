"""``python -m skconvnet evaluate``: which backbone and layer give the best features for a
folder of labelled photos, and how accurate a classifier on them is.

:func:`parse_evaluate` turns the parsed arguments into a job and its outputs (checking what
can be checked before any photo is read), :func:`run_evaluation` runs the job and returns an
:class:`~skconvnet.report.evaluation.EvaluationReport`, and :func:`write_outputs` writes
what the options ask for from that report.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from .._optional import require
from ..backbones import specs
from ..audit.collection import audit_collection, copy_layer
from ..audit.features import layer_columns
from ..backbones.checks import check_layer
from ..report.evaluation import (
    EvaluationReport,
    FineTuning,
    LayerScore,
    Predictions,
    Settings,
    format_table,
    layer_figure,
    write_json,
)
from .options import PhotoOptions, check_output, same_targets


@dataclass(frozen=True)
class EvaluationJob:
    """What to evaluate.

    Attributes
    ----------
    train_dir, test_dir : str
        The folders of training and test photos, one sub-folder per class.
    candidates : dict of str to list of str
        The layers to compare, by backbone.
    photos : PhotoOptions
        How photos are drawn and turned into features.
    cv : int
        Cross-validation folds.
    finetune : bool
        Whether to fine-tune the best backbone on its best layer too.
    head_epochs : int, "auto" or None
        With ``finetune``: head epochs; None for the classifier's default.
    fine_tune_epochs : int or None
        With ``finetune``: fine-tuning epochs; None for the classifier's default.
    audit : bool
        Whether to check the photos themselves (:mod:`skconvnet.audit.collection`).
    """

    train_dir: str
    test_dir: str
    candidates: dict
    photos: PhotoOptions
    cv: int
    finetune: bool = False
    head_epochs: int | str | None = None
    fine_tune_epochs: int | None = None
    audit: bool = True


@dataclass(frozen=True)
class Outputs:
    """What to write once the job is done (None: not asked for).

    Attributes
    ----------
    report : str or None
        ``--report``: the JSON file.
    plot : str or None
        ``--plot``: the layer figure.
    html : str or None
        ``--html``: the page.
    export : str or None
        ``--export``: the ONNX file of the best pipeline.
    errors : int
        ``--errors``: at most this many mistakes on the page.
    """

    report: str | None = None
    plot: str | None = None
    html: str | None = None
    export: str | None = None
    errors: int = 24


def evaluate_command(args):
    """Run ``evaluate`` on parsed arguments: check them, run the job, write its outputs."""
    job, outputs = parse_evaluate(args)
    report = run_evaluation(job)
    write_outputs(report, outputs)


def parse_evaluate(args):
    """The job and outputs that parsed arguments ask for.

    Everything that can be checked before a photo is read is checked here (layer names,
    output paths, optional dependencies), so that a mistake stops the command at once
    rather than after the long run.

    Returns
    -------
    job : EvaluationJob
    outputs : Outputs
    """
    candidates = _candidates(args.backbone, args.layers)
    outputs = Outputs(report=args.report, plot=args.plot, html=args.html, export=args.export,
                      errors=args.errors)
    for option in ("report", "plot", "html", "export"):
        if getattr(outputs, option):
            check_output(getattr(outputs, option), f"--{option}")
    if outputs.export:
        require("onnx", "onnxruntime", "tf2onnx", "skl2onnx", extra="onnx", purpose="--export")
    if outputs.plot or outputs.html:
        _need_plotting("--plot" if outputs.plot else "--html")
    if outputs.errors < 0:
        raise ValueError(f"--errors {outputs.errors}: give a number of mistakes to show, 0 or "
                         "more.")
    job = EvaluationJob(
        train_dir=args.train_dir, test_dir=args.test, candidates=candidates,
        photos=PhotoOptions.from_args(args), cv=args.cv, finetune=args.finetune,
        head_epochs=args.head_epochs, fine_tune_epochs=args.fine_tune_epochs,
        audit=not args.no_audit,
    )
    return job, outputs


def run_evaluation(job):
    """Cross-validate a logistic regression on each candidate layer's features, refit it on
    the best layer, score it on the test photos, check the photos themselves (unless
    ``job.audit`` is false) and, if asked, fine-tune on that layer.

    Prints a line as each stage starts; the extractors show progress bars.

    Parameters
    ----------
    job : EvaluationJob

    Returns
    -------
    report : EvaluationReport
    """
    from sklearn.pipeline import Pipeline

    photos, candidates = job.photos, job.candidates
    start = time.perf_counter()
    train_paths, train_labels = train = photos.load_labelled(job.train_dir)
    test_paths, test_labels = same_targets(train, photos.load_labelled(job.test_dir),
                                           job.train_dir, job.test_dir)
    weights = photos.resolve_weights(list(candidates))
    scores, features, folds = search_layers(photos, candidates, weights, job.cv, train_paths,
                                            train_labels)
    best_score = max(scores, key=lambda score: score.cv_accuracy)

    print(f"Scoring {best_score.label} on {len(test_paths)} test images")
    best = _head().fit(features[best_score.label], train_labels)
    backbone = best_score.backbone
    test_extractor = photos.extractor(backbone, best_score.layer, weights[backbone])
    copies, searched = audit_layers(scores, best_score)
    needed = [best_score.layer, copies.layer] if job.audit else [best_score.layer]
    both = photos.extractor(backbone, list(dict.fromkeys(needed)), weights[backbone])
    test_features = both.fit_transform(test_paths)  # one pass for both layers
    test_layers = {layer: test_features[:, columns]
                   for layer, columns in layer_columns(both).items()}
    test_extractor.fit(test_paths)
    test_proba = best.predict_proba(test_layers[best_score.layer])
    test_correct = best.classes_[test_proba.argmax(axis=1)] == test_labels
    test_accuracy = np.mean(test_correct)

    audit = None
    if job.audit:
        audit = check_photos(features, train_labels, train_paths, folds, best_score, copies,
                             searched, test_probe=test_layers[best_score.layer],
                             test_copies=test_layers[copies.layer], y_test=test_labels,
                             test_paths=test_paths, test_correct=test_correct)

    fine_tuning = None
    if job.finetune:
        classifier = _finetune(job, best_score.backbone, best_score.layer,
                               weights[best_score.backbone], train_paths, train_labels)
        fine_tuning = FineTuning(test_accuracy=float(classifier.score(test_paths, test_labels)),
                                 classifier=classifier)
    seconds = round(time.perf_counter() - start, 1)

    settings = Settings(
        train_dir=os.fspath(job.train_dir),
        test_dir=os.fspath(job.test_dir),
        backbones=list(candidates),
        weights=os.fspath(photos.weights),
        image_size=photos.image_size,
        image_sizes={backbone: tuple(specs.get(backbone).image_size
                                     if photos.image_size is None else (photos.image_size,) * 2)
                     for backbone in candidates},
        pooling=photos.pooling,
        precision=photos.precision,
        cv_folds=job.cv,
    )
    return EvaluationReport(
        layers=scores,
        best_layer=best_score.label,
        test_accuracy=float(test_accuracy),
        n_train=len(train_paths),
        n_test=len(test_paths),
        classes=best.classes_.tolist(),
        train_counts=_counts(train_labels),
        test_counts=_counts(test_labels),
        settings=settings,
        seconds=seconds,
        predictions=Predictions(paths=test_paths, labels=test_labels, proba=test_proba),
        pipeline=Pipeline([("features", test_extractor), *best.steps]),
        fine_tuning=fine_tuning,
        audit=audit,
    )


def search_layers(photos, candidates, weights, cv, paths, labels):
    """Cross-validate a logistic regression on each candidate layer's features.

    Parameters
    ----------
    photos : PhotoOptions
    candidates : dict of str to list of str
        The layers to compare, by backbone.
    weights : dict of str to weights
        By backbone, as :meth:`PhotoOptions.resolve_weights` gives them.
    cv : int
        Folds.
    paths, labels
        The training photos and their classes.

    Returns
    -------
    scores : list of LayerScore
    features : dict of str to ndarray
        Each layer's features, by the label of its score.
    folds : StratifiedKFold
        The folds, shuffled by ``photos.random_state``.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    several = len(candidates) > 1
    folds = StratifiedKFold(cv, shuffle=True, random_state=photos.random_state)
    scores, features = [], {}
    for backbone, layers in candidates.items():
        print(f"Extracting {', '.join(layers)} of {backbone} from {len(paths)} training "
              f"images ({len(set(labels))} classes) in one pass")
        extractor = photos.extractor(backbone, layers, weights[backbone])
        all_layers = extractor.fit_transform(paths)
        for layer, columns in layer_columns(extractor).items():
            label = f"{backbone}/{layer}" if several else layer
            features[label] = all_layers[:, columns]
            folds_scores = cross_val_score(_head(), features[label], labels, cv=folds)
            scores.append(LayerScore(
                label=label, backbone=backbone, layer=layer,
                depth=specs.get(backbone).depth(layer),
                cv_accuracy=float(folds_scores.mean()),
                cv_accuracy_std=float(folds_scores.std()),
            ))
    return scores, features, folds


def audit_layers(scores, best):
    """The layers the audit uses beside the best one, as their :class:`LayerScore` s: the
    one that finds copies (:func:`~skconvnet.audit.collection.copy_layer`) and those that
    find outliers (every searched layer of the best backbone)."""
    searched = [score for score in scores if score.backbone == best.backbone]
    layer = copy_layer(specs.get(best.backbone), [score.layer for score in searched])
    return next(score for score in searched if score.layer == layer), searched


def check_photos(features, labels, paths, folds, best, copies, searched, **test):
    """The audit of the photos on the features of a layer search (and of the test photos)."""
    print(f"Checking the photos: label issues on {best.label}, copies on {copies.label}, "
          f"outliers on {', '.join(score.label for score in searched)}")
    return audit_collection(
        labels, probe=features[best.label], copies=features[copies.label],
        outliers=[features[score.label] for score in searched], folds=folds, paths=paths,
        layers=(best.label, copies.label, [score.label for score in searched]), **test,
    )


def _head():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def write_outputs(report, outputs):
    """Print the table, then write what ``outputs`` asks for, each with a line saying so."""
    print(format_table(report))
    if outputs.report:
        write_json(outputs.report, report)
        print(f"Report written to {outputs.report}")
    if outputs.plot:
        layer_figure(report).savefig(outputs.plot, dpi=120)
        print(f"Plot written to {outputs.plot}")
    if outputs.export:
        _export(outputs.export, report)
    if outputs.html:
        from ..report.page import write_report_page

        started = time.perf_counter()
        write_report_page(outputs.html, report, n_errors=outputs.errors)
        print(f"Page written to {outputs.html} ({os.path.getsize(outputs.html) / 1e6:.2f} MB "
              f"in {time.perf_counter() - started:.1f} s)")


def _export(path, report):
    """Write the best pipeline (and the fine-tuned classifier) as ONNX graphs."""
    from ..export.converters import to_onnx

    to_onnx(report.pipeline, path)
    print(f"Model written to {path}")
    if report.fine_tuning is not None:
        stem, suffix = os.path.splitext(path)
        to_onnx(report.fine_tuning.classifier, f"{stem}.finetuned{suffix or '.onnx'}")
        print(f"Fine-tuned classifier written to {stem}.finetuned{suffix or '.onnx'}")


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


def _finetune(job, backbone, layer, weights, train_paths, train_labels):
    from .. import FineTunedConvNetClassifier

    photos = job.photos
    classifier = FineTunedConvNetClassifier(
        backbone=backbone, layer=layer, weights=weights, image_size=photos.image_size,
        pooling=photos.extractor_pooling, precision=photos.precision,
        random_state=photos.random_state, verbose=1,
    )
    given = {"head_epochs": job.head_epochs, "fine_tune_epochs": job.fine_tune_epochs,
             "batch_size": photos.batch_size}  # the classifier's own defaults otherwise
    classifier.set_params(**{name: value for name, value in given.items() if value is not None})
    print(f"Fine-tuning {specs.get(backbone).title} on {layer} (head: "
          f"{classifier.head_epochs}, then "
          f"{classifier.fine_tune_epochs} fine-tuning epochs)")
    return classifier.fit(train_paths, train_labels)


def _counts(labels):
    names, counts = np.unique(labels, return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


def _need_plotting(option):
    require("matplotlib", "pandas", extra="plot", purpose=option,
            otherwise=f", or leave out {option}")
