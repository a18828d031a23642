"""``python -m skconvnet evaluate``: which backbone and layer give the best features for
labelled photos (classes, tags or numbers), and how good a model on them is.

:func:`parse_evaluate` turns the parsed arguments into a job and its outputs (checking what
can be checked before any photo is read), :func:`run_evaluation` runs the job and returns an
:class:`~skconvnet.report.evaluation.EvaluationReport` (classes) or a
:class:`~skconvnet.report.targets.TargetReport` (tags, numbers), and :func:`write_outputs`
writes what the options ask for from that report.
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
    layer_figure,
    write_json,
)
from ..report.targets import (
    FineTunedScores,
    TargetPredictions,
    TargetReport,
    mean_average_precision,
    number_scores,
    tag_scores,
)
from .options import PhotoOptions, check_output, same_targets


@dataclass(frozen=True)
class EvaluationJob:
    """What to evaluate.

    Attributes
    ----------
    train_dir, test_dir : str
        The training and test photos: folders of one sub-folder per class, or CSV files.
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
    """Cross-validate a linear model on each candidate layer's features (a logistic
    regression for classes, one per tag for tags, a ridge regression for numbers), refit it
    on the best layer, score it on the test photos, check the photos themselves (unless
    ``job.audit`` is false) and, if asked, fine-tune on that layer.

    Prints a line as each stage starts; the extractors show progress bars.

    Parameters
    ----------
    job : EvaluationJob

    Returns
    -------
    report : EvaluationReport or TargetReport
        :class:`~skconvnet.report.evaluation.EvaluationReport` for classes,
        :class:`~skconvnet.report.targets.TargetReport` for tags and numbers.
    """
    from sklearn.pipeline import Pipeline

    photos, candidates = job.photos, job.candidates
    start = time.perf_counter()
    train = photos.load_labelled(job.train_dir)
    test = same_targets(train, photos.load_labelled(job.test_dir, training=False),
                        job.train_dir, job.test_dir)
    (train_paths, train_y), (test_paths, test_y), kind = train, test, train.kind
    weights = photos.resolve_weights(list(candidates))
    scores, features, folds = search_layers(photos, candidates, weights, job.cv, train_paths,
                                            train_y, kind=kind)
    best_score = best_layer(scores)

    print(f"Scoring {best_score.label} on {len(test_paths)} test images")
    best = head(kind).fit(features[best_score.label], train_y)
    backbone = best_score.backbone
    test_extractor = photos.extractor(backbone, best_score.layer, weights[backbone])
    copies, searched = audit_layers(scores, best_score)
    needed = [best_score.layer, copies.layer] if job.audit else [best_score.layer]
    both = photos.extractor(backbone, list(dict.fromkeys(needed)), weights[backbone])
    test_features = both.fit_transform(test_paths)  # one pass for both layers
    test_layers = {layer: test_features[:, columns]
                   for layer, columns in layer_columns(both).items()}
    test_extractor.fit(test_paths)
    test_X = test_layers[best_score.layer]
    if kind == "numbers":
        test_values = test_predicted = best.predict(test_X)
        test_correct = None  # no photo is right or wrong
    else:
        test_values = best.predict_proba(test_X)
        test_predicted = (best.classes_[test_values.argmax(axis=1)] if kind == "class"
                          else best.predict(test_X))
        test_correct = test_predicted == test_y
        test_correct = test_correct if kind == "class" else test_correct.all(axis=1)

    audit = None
    if job.audit:
        audit = check_photos(features, train, folds, best_score, copies, searched, test=test,
                             test_probe=test_X, test_copies=test_layers[copies.layer],
                             test_correct=test_correct)

    fine_tuned = None
    if job.finetune:
        fine_tuned = _finetune(job, best_score.backbone, best_score.layer,
                               weights[best_score.backbone], train_paths, train_y, kind)
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
    common = dict(
        layers=scores, best_layer=best_score.label, n_train=len(train_paths),
        n_test=len(test_paths), settings=settings, seconds=seconds,
        pipeline=Pipeline([("features", test_extractor), *best.steps]), audit=audit,
    )
    if kind != "class":
        return TargetReport(
            kind=kind, targets=list(train.target_names),
            test=_test_scores(train, test_y, test_values, test_predicted),
            summary=_summary(train, test),
            predictions=TargetPredictions(paths=test_paths, y=test_y, values=test_values,
                                          predicted=test_predicted),
            fine_tuning=fine_tuned and FineTunedScores(
                test=_test_scores(train, test_y, *_fine_tuned_predictions(fine_tuned, test_paths)),
                estimator=fine_tuned),
            **common,
        )
    return EvaluationReport(
        test_accuracy=float(np.mean(test_correct)),
        classes=best.classes_.tolist(),
        train_counts=_counts(train_y),
        test_counts=_counts(test_y),
        predictions=Predictions(paths=test_paths, labels=test_y, proba=test_values),
        fine_tuning=fine_tuned and FineTuning(
            test_accuracy=float(fine_tuned.score(test_paths, test_y)), classifier=fine_tuned),
        **common,
    )


def search_layers(photos, candidates, weights, cv, paths, labels, *, kind="class"):
    """Cross-validate the kind's linear model (:func:`head`) on each candidate layer's
    features.

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
        The training photos and their targets.
    kind : {"class", "tags", "numbers"}, default="class"
        The kind of target: classes are scored by accuracy, tags by mean average precision
        and micro-F1, numbers by R² and mean absolute error.

    Returns
    -------
    scores : list of LayerScore
    features : dict of str to ndarray
        Each layer's features, by the label of its score.
    folds : StratifiedKFold or KFold
        The folds (stratified by class for classes), shuffled by ``photos.random_state``.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate

    several = len(candidates) > 1
    splitter = StratifiedKFold if kind == "class" else KFold
    folds = splitter(cv, shuffle=True, random_state=photos.random_state)
    scoring, signs = _scoring(kind)
    width = 1 if np.ndim(labels) == 1 else np.shape(labels)[1]
    counted = (f"{len(np.unique(labels))} classes" if kind == "class"
               else f"{width} {'tag' if kind == 'tags' else 'target'}{'s' * (width != 1)}")
    scores, features = [], {}
    for backbone, layers in candidates.items():
        print(f"Extracting {', '.join(layers)} of {backbone} from {len(paths)} training "
              f"images ({counted}) in one pass")
        extractor = photos.extractor(backbone, layers, weights[backbone])
        all_layers = extractor.fit_transform(paths)
        for layer, columns in layer_columns(extractor).items():
            label = f"{backbone}/{layer}" if several else layer
            features[label] = all_layers[:, columns]
            folds_scores = cross_validate(head(kind), features[label], labels, cv=folds,
                                          scoring=scoring)
            metrics = {name: (float(np.mean(sign * folds_scores[f"test_{name}"])),
                              float(np.std(folds_scores[f"test_{name}"])))
                       for name, sign in signs.items()}
            (cv_score, cv_score_std), *_ = metrics.values()
            scores.append(LayerScore(
                label=label, backbone=backbone, layer=layer,
                depth=specs.get(backbone).depth(layer), cv_score=cv_score,
                cv_score_std=cv_score_std, cv_metrics=None if kind == "class" else metrics,
            ))
    return scores, features, folds


def best_layer(scores):
    """The :class:`LayerScore` of the best layer: the highest ``cv_score`` (accuracy, mean
    average precision, R²); equals are told apart by the other score (a higher micro-F1, a
    lower mean absolute error), then the first searched wins."""
    def rank(score):
        others = list((score.cv_metrics or {}).items())[1:]
        return (score.cv_score, *(-mean if name == "mae" else mean
                                  for name, (mean, _) in others))

    return max(scores, key=rank)


def _scoring(kind):
    """The scorers of a layer search of ``kind``, by name, and the sign that makes each a
    score in its own units (scikit-learn negates errors)."""
    from sklearn.metrics import f1_score, make_scorer

    if kind == "class":
        return {"accuracy": "accuracy"}, {"accuracy": 1}
    if kind == "tags":
        # called on the model: make_scorer would take two tags ([0, 1]) for a binary model
        # and keep one column of probabilities
        return ({"mean_average_precision": lambda model, X, y: mean_average_precision(
                    y, model.predict_proba(X)),
                 "micro_f1": make_scorer(f1_score, average="micro", zero_division=0)},
                {"mean_average_precision": 1, "micro_f1": 1})
    return {"r2": "r2", "mae": "neg_mean_absolute_error"}, {"r2": 1, "mae": -1}


def audit_layers(scores, best):
    """The layers the audit uses beside the best one, as their :class:`LayerScore` s: the
    one that finds copies (:func:`~skconvnet.audit.collection.copy_layer`) and those that
    find outliers (every searched layer of the best backbone)."""
    searched = [score for score in scores if score.backbone == best.backbone]
    layer = copy_layer(specs.get(best.backbone), [score.layer for score in searched])
    return next(score for score in searched if score.layer == layer), searched


def check_photos(features, train, folds, best, copies, searched, *, test=None, **given):
    """The audit of the photos (``train``, :class:`~skconvnet.datasets.LabelledImages`) on
    the features of a layer search, and of the ``test`` photos, whose features and
    correctness ``given`` holds (``test_probe``, ``test_copies``, ``test_correct``)."""
    kind = train.kind
    issues = f"label issues on {best.label}, " if kind == "class" else ""
    print(f"Checking the photos: {issues}copies on {copies.label}, "
          f"outliers on {', '.join(score.label for score in searched)}")
    if test is not None:
        given.update(y_test=audit_labels(test), test_paths=test.paths)
    return audit_collection(
        audit_labels(train), probe=features[best.label], copies=features[copies.label],
        outliers=[features[score.label] for score in searched], folds=folds,
        paths=train.paths, kind=kind,
        layers=(best.label, copies.label, [score.label for score in searched]), **given,
    )


def audit_labels(labelled):
    """What the audit calls the photos of ``labelled``: their classes; their tags joined by
    ``|`` (``(none)`` without); their numbers, comma-separated."""
    y, names = labelled.y, labelled.target_names
    if labelled.kind == "class":
        return y
    if labelled.kind == "tags":
        return np.array(["|".join(str(name) for name, on in zip(names, row) if on) or "(none)"
                         for row in y])
    return np.array([", ".join(f"{value:g}" for value in np.atleast_1d(row)) for row in y])


def head(kind="class"):
    """The model the layer search fits on the features, standardised: a logistic regression
    for classes, one per tag for tags, a ridge regression for numbers (its penalty chosen
    per target by efficient leave-one-out cross-validation)."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "numbers":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=RIDGE_ALPHAS,
                                                       alpha_per_target=True))
    logistic = LogisticRegression(max_iter=2000)
    return make_pipeline(StandardScaler(),
                         OneVsRestClassifier(logistic) if kind == "tags" else logistic)


#: The penalties the ridge regression of numbers chooses from.
RIDGE_ALPHAS = np.logspace(-2, 6, 9)


def _test_scores(train, y, values, predicted):
    """The :class:`TestScores` of tags or numbers."""
    if train.kind == "tags":
        return tag_scores(y, values, predicted, train.target_names)
    return number_scores(y, predicted, np.mean(train.y, axis=0), train.target_names)


def _fine_tuned_predictions(estimator, paths):
    """``(values, predicted)`` of a fine-tuned estimator, as :class:`TargetPredictions`
    holds them."""
    if getattr(estimator, "multilabel_", False):
        values = estimator.predict_proba(paths)
        return values, (values > 0.5).astype(np.int64)  # as its predict does
    predicted = estimator.predict(paths)
    return predicted, predicted


def _summary(train, test):
    """Photos per tag, or each target's mean and standard deviation, of both sets."""
    names = [str(name) for name in train.target_names]
    if train.kind == "tags":
        return {f"{split}_counts": dict(zip(names, np.asarray(y).sum(axis=0).tolist()))
                for split, y in (("train", train.y), ("test", test.y))}
    summary = {}
    for split, y in (("train", train.y), ("test", test.y)):
        y = np.asarray(y, dtype=float).reshape(len(y), -1)
        summary[f"{split}_mean"] = dict(zip(names, y.mean(axis=0).tolist()))
        summary[f"{split}_std"] = dict(zip(names, y.std(axis=0).tolist()))
    return summary


def write_outputs(report, outputs):
    """Print the table, then write what ``outputs`` asks for, each with a line saying so."""
    print(report.table())
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
        from ..report.targets_page import write_target_page

        started = time.perf_counter()
        write = write_report_page if report.kind == "class" else write_target_page
        write(outputs.html, report, n_errors=outputs.errors)
        print(f"Page written to {outputs.html} ({os.path.getsize(outputs.html) / 1e6:.2f} MB "
              f"in {time.perf_counter() - started:.1f} s)")


def _export(path, report):
    """Write the best pipeline (and the fine-tuned estimator) as ONNX graphs."""
    _write_onnx(report.pipeline, path, report)
    print(f"Model written to {path}")
    if report.fine_tuning is not None:
        stem, suffix = os.path.splitext(path)
        estimator = report.fine_tuning.estimator
        _write_onnx(estimator, f"{stem}.finetuned{suffix or '.onnx'}", report)
        what = "regressor" if report.kind == "numbers" else "classifier"
        print(f"Fine-tuned {what} written to {stem}.finetuned{suffix or '.onnx'}")


def _write_onnx(model, path, report):
    """``model`` as an ONNX graph at ``path``; tags and numbers named as the CSV names them
    (models fitted on an indicator or a matrix number their columns), for ``predict``."""
    from ..export.converters import name_outputs, to_onnx

    graph = to_onnx(model)
    if report.kind in ("tags", "numbers"):
        name_outputs(graph, report.kind, report.targets)
    with open(path, "wb") as file:
        file.write(graph.SerializeToString())


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


def _finetune(job, backbone, layer, weights, train_paths, train_y, kind="class"):
    """The fine-tuned estimator of ``kind`` on ``layer``, fitted: a classifier of classes or
    tags, a regressor of numbers."""
    from .. import FineTunedConvNetClassifier, FineTunedConvNetRegressor

    photos = job.photos
    estimator = FineTunedConvNetRegressor if kind == "numbers" else FineTunedConvNetClassifier
    classifier = estimator(
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
    return classifier.fit(train_paths, train_y)


def _counts(labels):
    names, counts = np.unique(labels, return_counts=True)
    return dict(zip(names.tolist(), counts.tolist()))


def _need_plotting(option):
    require("matplotlib", "pandas", extra="plot", purpose=option,
            otherwise=f", or leave out {option}")
