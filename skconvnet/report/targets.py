"""The report of an ``evaluate`` run on tags or numbers (labels read from a CSV file): the
scores of each kind, the JSON and the printed table. Classes have
:class:`~skconvnet.report.evaluation.EvaluationReport`; the HTML page is
:mod:`skconvnet.report.targets_page`."""

import warnings
from dataclasses import dataclass

import numpy as np

from .evaluation import LayerSearch, layer_rows, settings_dict

#: Per kind, the scores of the layer search by their name in the JSON, with their title in
#: the printed table; the first is the one the best layer is chosen by.
LAYER_METRICS = {
    "tags": {"mean_average_precision": "cv mAP", "micro_f1": "cv micro-F1"},
    "numbers": {"r2": "cv R²", "mae": "cv MAE"},
}
#: What the score the best layer is chosen by is called, per kind.
SCORE_NAMES = {"tags": "mean average precision", "numbers": "R²"}
#: The model refit on the best layer, per kind.
HEADS = {"tags": "logistic regressions (one per tag)", "numbers": "ridge regression"}


def mean_average_precision(y_true, proba):
    """The mean over tags of the average precision of each tag's probabilities.

    scikit-learn's ``average_precision_score(average="macro")``, but for the tags no photo
    of ``y_true`` has, whose average precision is undefined: they are left out of the mean
    (scikit-learn counts them as 0 and warns), so that a rare tag missing from a fold or a
    test set does not lower the score of the others. NaN where no tag is present.
    """
    return float(np.nanmean(_average_precisions(y_true, proba))) \
        if np.asarray(y_true).any() else float("nan")


def _average_precisions(y_true, proba):
    """Each tag's average precision; NaN for a tag no photo has."""
    from sklearn.metrics import average_precision_score

    y_true, proba = np.asarray(y_true), np.asarray(proba)
    present = y_true.any(axis=0)
    scores = np.full(y_true.shape[1], np.nan)
    if present.any():
        scores[present] = average_precision_score(y_true[:, present], proba[:, present],
                                                  average=None)
    return scores


@dataclass(frozen=True)
class TestScores:
    """Scores on the test photos.

    Attributes
    ----------
    overall : dict of str to float
        Tags: ``micro_f1``, ``mean_average_precision`` (:func:`mean_average_precision`) and
        ``subset_accuracy`` (every tag of a photo right). Numbers: ``r2`` and ``mae``
        (averaged over the targets) and ``mae_of_mean``, the mean absolute error of
        predicting each target's training mean, for scale.
    per_target : dict of str to dict of str to float
        By tag: ``precision``, ``recall``, ``f1``, ``average_precision`` (None for a tag no
        test photo has) and ``support`` (test photos with the tag). By target: ``r2``,
        ``mae`` and ``mae_of_mean``.
    """

    overall: dict
    per_target: dict


def tag_scores(y_true, proba, predicted, names):
    """:class:`TestScores` of tags: the true indicator, the probabilities and the predicted
    indicator, columns in the order of ``names``."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    y_true, predicted = np.asarray(y_true), np.asarray(predicted)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, predicted, average=None, zero_division=0, labels=range(len(names)))
    average = _average_precisions(y_true, proba)
    per_tag = {
        str(name): {"precision": float(p), "recall": float(r), "f1": float(f),
                    "average_precision": None if np.isnan(a) else float(a),
                    "support": int(s)}
        for name, p, r, f, a, s in zip(names, precision, recall, f1, average, support)
    }
    overall = {
        "micro_f1": float(f1_score(y_true, predicted, average="micro", zero_division=0)),
        "mean_average_precision": mean_average_precision(y_true, proba),
        "subset_accuracy": float(accuracy_score(y_true, predicted)),
    }
    return TestScores(overall, per_tag)


def number_scores(y_true, predicted, train_mean, names):
    """:class:`TestScores` of numbers: the true and predicted targets, ``(n,)`` or ``(n,
    k)``, and the training mean of each."""
    from sklearn.metrics import mean_absolute_error, r2_score

    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    predicted = np.asarray(predicted, dtype=float).reshape(y_true.shape)
    of_mean = np.broadcast_to(np.asarray(train_mean, dtype=float).reshape(1, -1), y_true.shape)
    with warnings.catch_warnings():  # R² of a constant test target: nan, said as such
        warnings.simplefilter("ignore")
        r2 = r2_score(y_true, predicted, multioutput="raw_values") if len(y_true) > 1 \
            else np.full(y_true.shape[1], np.nan)
    mae = mean_absolute_error(y_true, predicted, multioutput="raw_values")
    mae_of_mean = mean_absolute_error(y_true, of_mean, multioutput="raw_values")
    per_target = {str(name): {"r2": float(r), "mae": float(m), "mae_of_mean": float(o)}
                  for name, r, m, o in zip(names, r2, mae, mae_of_mean)}
    overall = {"r2": float(np.mean(r2)), "mae": float(np.mean(mae)),
               "mae_of_mean": float(np.mean(mae_of_mean))}
    return TestScores(overall, per_target)


@dataclass(frozen=True)
class TargetPredictions:
    """The best pipeline's predictions on the test photos (not part of the JSON).

    Attributes
    ----------
    paths : list of path-like
        The test photos.
    y : ndarray
        Their true targets: the tags' indicator ``(n_test, n_tags)``, or the numbers
        ``(n_test,)`` or ``(n_test, n_targets)``.
    values : ndarray
        Tags: the probability of each tag ``(n_test, n_tags)``; numbers: the predictions,
        shaped as ``y``.
    predicted : ndarray
        Tags: the predicted indicator; numbers: the predictions (``values``).
    """

    paths: list
    y: np.ndarray
    values: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class FineTunedScores:
    """The fine-tuned estimator on the best layer and its test scores.

    Attributes
    ----------
    test : TestScores
    estimator : FineTunedConvNetClassifier or FineTunedConvNetRegressor
        Fitted (its training curves go on the page; ``--export`` writes it).
    """

    test: TestScores
    estimator: object


@dataclass(frozen=True)
class TargetReport(LayerSearch):
    """What an ``evaluate`` run on tags or numbers found.

    Attributes
    ----------
    kind : {"tags", "numbers"}
    targets : list of str
        The tags, or the target columns, in the order of the predictions' columns.
    layers : list of LayerScore
        Each candidate layer's cross-validated scores (``cv_metrics``), in the order
        searched.
    best_layer : str
        The label of the candidate with the best :data:`SCORE_NAMES` score (the first of
        equals).
    test : TestScores
        The scores on the test photos of the model refit on the best layer.
    n_train, n_test : int
        Numbers of training and test photos.
    summary : dict of str to dict
        Tags: ``train_counts`` and ``test_counts``, photos per tag. Numbers:
        ``train_mean``, ``train_std``, ``test_mean``, ``test_std`` per target.
    settings : Settings
    seconds : float
        Wall time of the run, as :class:`EvaluationReport` has it.
    predictions : TargetPredictions
    pipeline : sklearn.pipeline.Pipeline
        The best layer's feature extractor, scaler and head, fitted.
    fine_tuning : FineTunedScores or None
        With ``--finetune``.
    audit : PhotoAudit or None
        What checking the photos found (no label issues: those need classes).
    """

    kind: str
    targets: list
    layers: list
    best_layer: str
    test: TestScores
    n_train: int
    n_test: int
    summary: dict
    settings: object
    seconds: float
    predictions: TargetPredictions
    pipeline: object
    fine_tuning: FineTunedScores | None = None
    audit: object = None

    @property
    def score_name(self):
        """What ``test_score`` and the layers' ``cv_score`` are."""
        return SCORE_NAMES[self.kind]

    @property
    def test_score(self):
        """The test score of the chosen pipeline: its mean average precision or R²."""
        return self.test.overall[next(iter(LAYER_METRICS[self.kind]))]

    def to_dict(self):
        """The report as the JSON of ``--report`` holds it (predictions and fitted models
        left out).

        Returns
        -------
        report : dict
            ``kind``; ``cv_<score>`` and ``cv_<score>_std`` by layer label for each score
            of the kind (tags: ``mean_average_precision``, ``micro_f1``; numbers: ``r2``,
            ``mae``); ``best_layer``; ``test_<score>`` for each overall test score and
            ``test_per_tag`` or ``test_per_target``; ``n_train``, ``n_test``; ``tags`` or
            ``targets``; the summary's entries; the settings as for classes;
            ``finetune_test_<score>`` and ``finetune_test_per_tag`` (or ``_per_target``)
            with fine-tuning; ``audit`` unless left out; ``seconds``.
        """
        per = "per_tag" if self.kind == "tags" else "per_target"
        report = {"kind": self.kind}
        for metric in LAYER_METRICS[self.kind]:
            report[f"cv_{metric}"] = {score.label: score.cv_metrics[metric][0]
                                      for score in self.layers}
            report[f"cv_{metric}_std"] = {score.label: score.cv_metrics[metric][1]
                                          for score in self.layers}
        report["best_layer"] = self.best_layer
        report.update(_scores("test", self.test, per))
        report.update({"n_train": self.n_train, "n_test": self.n_test,
                       ("tags" if self.kind == "tags" else "targets"): list(self.targets),
                       **self.summary, **settings_dict(self.settings, self.layers)})
        if self.fine_tuning is not None:
            report.update(_scores("finetune_test", self.fine_tuning.test, per))
        if self.audit is not None:
            report["audit"] = self.audit.to_dict()
        report["seconds"] = self.seconds
        return report

    def table(self):
        """The table the command prints: the kind, each layer's depth and cross-validated
        scores, the best marked, the test scores (per tag, or per target when there are
        several), and the wall time."""
        from .evaluation import audit_summary

        what = ("tag" if self.kind == "tags" else "target") + "s" * (len(self.targets) != 1)
        rows = ["", f"kind: {self.kind} ({len(self.targets)} {what}: "
                    f"{', '.join(map(str, self.targets))})", ""]
        rows += layer_rows(self, {title: metric for metric, title
                                  in LAYER_METRICS[self.kind].items()})
        rows.append("")
        images = f"({self.n_train} training, {self.n_test} test images)"
        rows.append(f"test, {HEADS[self.kind]} on {self.best_layer}: "
                    f"{_overall(self.kind, self.test)} {images}")
        if self.fine_tuning is not None:
            rows.append(f"test, fine-tuned on {self.best_layer}: "
                        f"{_overall(self.kind, self.fine_tuning.test)}")
        rows += _per_target(self.kind, self.test)
        if self.audit is not None:
            rows.append(audit_summary(self.audit))
        rows.append(f"{self.seconds:.0f} s")
        return "\n".join(rows)


def _scores(prefix, scores, per):
    return {**{f"{prefix}_{name}": value for name, value in scores.overall.items()},
            f"{prefix}_{per}": scores.per_target}


def _overall(kind, scores):
    """The overall test scores in words."""
    overall = scores.overall
    if kind == "tags":
        return (f"mean average precision {overall['mean_average_precision']:.3f}, micro-F1 "
                f"{overall['micro_f1']:.3f}, subset accuracy {overall['subset_accuracy']:.3f}")
    return (f"R² {overall['r2']:.3f}, mean absolute error {overall['mae']:.4g} (predicting "
            f"the training mean: {overall['mae_of_mean']:.4g})")


def _per_target(kind, scores):
    """Lines of each tag's (each target's, when there are several) test scores."""
    per = scores.per_target
    if kind == "numbers" and len(per) < 2:
        return []
    width = max(12, *(len(name) for name in per))
    if kind == "tags":
        rows = [f"{'tag':{width}s} {'precision':>9s} {'recall':>7s} {'F1':>6s} "
                f"{'test photos':>11s}"]
        rows += [f"{name:{width}s} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f} "
                 f"{s['support']:11d}" for name, s in per.items()]
    else:
        rows = [f"{'target':{width}s} {'R²':>7s} {'MAE':>10s} {'MAE of mean':>11s}"]
        rows += [f"{name:{width}s} {s['r2']:7.3f} {s['mae']:10.4g} {s['mae_of_mean']:11.4g}"
                 for name, s in per.items()]
    return ["", *rows, ""]
