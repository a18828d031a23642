"""The report of an ``evaluate`` run, and what is written from it: the JSON, the printed
table and the layer figure (the HTML page is :mod:`skconvnet.report.page`)."""

import json
from dataclasses import dataclass

import numpy as np

from .._optional import require
from .layers import draw_layer_table, ordered_table


@dataclass(frozen=True)
class LayerScore:
    """One candidate layer's cross-validated scores.

    Attributes
    ----------
    label : str
        The layer's name, ``"backbone/layer"`` when several backbones are compared.
    backbone, layer : str
        The backbone and its layer.
    depth : int
        Position of the layer among the backbone's cut points, 1 for the shallowest.
    cv_score, cv_score_std : float
        Mean and standard deviation over the folds of the score the best layer is chosen
        by: the accuracy of classes, the mean average precision of tags, the R² of numbers.
    cv_metrics : dict of str to (float, float), default=None
        With tags and numbers: the mean and standard deviation of each score by its name
        in the JSON (``mean_average_precision`` and ``micro_f1``; ``r2`` and ``mae``), the
        one of ``cv_score`` first.
    """

    label: str
    backbone: str
    layer: str
    depth: int
    cv_score: float
    cv_score_std: float
    cv_metrics: dict | None = None

    @property
    def cv_accuracy(self):
        """``cv_score``, by its name for classes."""
        return self.cv_score

    @property
    def cv_accuracy_std(self):
        """``cv_score_std``, by its name for classes."""
        return self.cv_score_std


@dataclass(frozen=True)
class Settings:
    """What the run was asked to do.

    Attributes
    ----------
    train_dir, test_dir : str
        The folders of training and test photos.
    backbones : list of str
        The backbones compared.
    weights : str
        ``--weights`` as given.
    image_size : int or None
        ``--image-size`` as given; None for each backbone's customary size.
    image_sizes : dict of str to (int, int)
        The (height, width) the photos were resized to, per backbone.
    pooling, precision : str
        ``--pooling`` and ``--precision``.
    cv_folds : int
        Cross-validation folds.
    """

    train_dir: str
    test_dir: str
    backbones: list
    weights: str
    image_size: int | None
    image_sizes: dict
    pooling: str
    precision: str
    cv_folds: int


@dataclass(frozen=True)
class Predictions:
    """The best pipeline's predictions on the test photos (not part of the JSON).

    Attributes
    ----------
    paths : list of path-like
        The test photos.
    labels : ndarray of shape (n_test,)
        Their true classes.
    proba : ndarray of shape (n_test, n_classes)
        Predicted probabilities, columns in the order of ``EvaluationReport.classes``.
    """

    paths: list
    labels: np.ndarray
    proba: np.ndarray


@dataclass(frozen=True)
class FineTuning:
    """The fine-tuned classifier on the best layer.

    Attributes
    ----------
    test_accuracy : float
        Its accuracy on the test photos.
    classifier : FineTunedConvNetClassifier
        The fitted classifier (its training curves go on the page; ``--export`` writes it).
    """

    test_accuracy: float
    classifier: object

    @property
    def estimator(self):
        """The fine-tuned estimator: ``classifier``."""
        return self.classifier


class LayerSearch:
    """What the reports of every kind of target share: the layer search's scores."""

    @property
    def best(self):
        """The :class:`LayerScore` of the best layer."""
        return next(score for score in self.layers if score.label == self.best_layer)


@dataclass(frozen=True)
class EvaluationReport(LayerSearch):
    """What an ``evaluate`` run found.

    Attributes
    ----------
    layers : list of LayerScore
        Each candidate layer's cross-validated accuracy, in the order searched.
    best_layer : str
        The label of the candidate with the best mean accuracy (the first of equals).
    test_accuracy : float
        Accuracy on the test photos of the logistic regression refit on the best layer.
    n_train, n_test : int
        Numbers of training and test photos.
    classes : list of str
        The classes, in the order of the classifier's probabilities.
    train_counts, test_counts : dict of str to int
        Photos per class.
    settings : Settings
        What the run was asked to do.
    seconds : float
        Wall time of the run to one decimal, from reading the folders to the end of
        fine-tuning (writing the outputs excluded).
    predictions : Predictions
        The best pipeline's predictions on the test photos.
    pipeline : sklearn.pipeline.Pipeline
        The best layer's feature extractor, scaler and logistic regression, fitted.
    fine_tuning : FineTuning or None
        The fine-tuned classifier, with ``--finetune``.
    audit : PhotoAudit or None
        What checking the photos themselves found; None with ``--no-audit``.
    """

    layers: list
    best_layer: str
    test_accuracy: float
    n_train: int
    n_test: int
    classes: list
    train_counts: dict
    test_counts: dict
    settings: Settings
    seconds: float
    predictions: Predictions
    pipeline: object
    fine_tuning: FineTuning | None = None
    audit: object = None

    #: The kind of target: classes.
    kind = "class"
    #: What ``test_score`` and the layers' ``cv_score`` are.
    score_name = "accuracy"

    @property
    def test_score(self):
        """The test score of the chosen pipeline: its accuracy."""
        return self.test_accuracy

    def table(self):
        """The table the command prints (:func:`format_table`)."""
        return format_table(self)

    def to_dict(self):
        """The report as the JSON of ``--report`` holds it (predictions and fitted models
        left out).

        Returns
        -------
        report : dict
            ``kind`` (``"class"``), ``cv_accuracy``, ``cv_accuracy_std`` and ``depth`` by
            layer label, the best layer, accuracies, photo counts and settings,
            ``finetune_test_accuracy`` with fine-tuning, and ``audit``
            (:meth:`PhotoAudit.to_dict`) unless left out.
        """
        report = {
            "kind": self.kind,
            "cv_accuracy": {score.label: score.cv_score for score in self.layers},
            "cv_accuracy_std": {score.label: score.cv_score_std for score in self.layers},
            "best_layer": self.best_layer,
            "test_accuracy": self.test_accuracy,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "classes": list(self.classes),
            "train_counts": dict(self.train_counts),
            "test_counts": dict(self.test_counts),
            **settings_dict(self.settings, self.layers),
        }
        if self.fine_tuning is not None:
            report["finetune_test_accuracy"] = self.fine_tuning.test_accuracy
        if self.audit is not None:
            report["audit"] = self.audit.to_dict()
        report["seconds"] = self.seconds
        return report


def settings_dict(settings, layers):
    """The settings of a run as its JSON holds them, with each layer's depth."""
    return {
        "train_dir": settings.train_dir,
        "test_dir": settings.test_dir,
        "backbones": list(settings.backbones),
        "depth": {score.label: score.depth for score in layers},
        "weights": settings.weights,
        "image_size": settings.image_size,
        "image_sizes": {backbone: list(size) for backbone, size in settings.image_sizes.items()},
        "pooling": settings.pooling,
        "precision": settings.precision,
        "cv_folds": settings.cv_folds,
    }


def write_json(path, report):
    """Write ``report.to_dict()`` to ``path`` as indented JSON."""
    with open(path, "w") as file:
        json.dump(report.to_dict(), file, indent=2)


def format_table(report):
    """The table the command prints: each layer's depth and cross-validated accuracy, the
    best marked, then the test accuracies and the wall time."""
    rows = ["", *layer_rows(report, {"cv accuracy": "accuracy"}), ""]
    rows.append(f"test accuracy, logistic regression on {report.best_layer}: "
                f"{report.test_accuracy:.3f} ({report.n_train} training, "
                f"{report.n_test} test images)")
    if report.fine_tuning is not None:
        rows.append(f"test accuracy, fine-tuned on {report.best_layer}: "
                    f"{report.fine_tuning.test_accuracy:.3f}")
    if report.audit is not None:
        rows.append(audit_summary(report.audit))
    rows.append(f"{report.seconds:.0f} s")
    return "\n".join(rows)


def layer_rows(report, columns):
    """The lines of the layer table: a header, then each layer's depth and the mean ± the
    standard deviation of each score of ``columns`` (``{title: metric}``, ``"accuracy"``
    being a layer's ``cv_score``), the best marked."""
    width = max(14, *(len(score.label) for score in report.layers))
    titles = list(columns)
    rows = [f"{'layer':{width}s} {'depth':>5s}  {titles[0]:>14s}"
            + "".join(f"   {title:>15s}" for title in titles[1:])]
    for score in report.layers:
        mark = "  <- best" if score.label == report.best_layer else ""
        cells = [(score.cv_score, score.cv_score_std) if metric == "accuracy"
                 else score.cv_metrics[metric] for metric in columns.values()]
        rows.append(f"{score.label:{width}s} {score.depth:5d}  "
                    + "  ".join(f"{mean:7.3f} ± {std:.3f}" for mean, std in cells) + mark)
    return rows


def audit_summary(audit):
    """One line of what checking the photos found."""
    if audit.label_issues is None:
        found = [f"label issues: not sought ({audit.label_issues_skipped})"]
    else:
        found = [f"label issues: {len(audit.label_issues)} training photos"]
    if audit.leaks is not None:
        if audit.label_issues is not None:
            found[0] += f", {len(audit.test_label_issues)} test photos"
        leaked = f"test photos copying a training photo: {len(audit.leaks.leaked)}"
        if len(audit.leaks.leaked) and audit.test_accuracy_without_leaks is not None:
            accuracy = "accuracy" if audit.label_issues is not None else "subset accuracy"
            leaked += (f" (test {accuracy} without them: "
                       f"{audit.test_accuracy_without_leaks:.3f})")
        found.append(leaked)
    found.append(f"groups of copies among the training photos: {len(audit.duplicates.groups)} "
                 f"({len(audit.duplicates.conflicting)} labelled differently)")
    found.append(f"outliers: {len(audit.outliers)}")
    return f"photos: {'; '.join(found)} ({audit.seconds:.0f} s)"


def layer_table(report):
    """The report's layer scores as :func:`skconvnet.layer_scores` tabulates a search's.

    Returns
    -------
    table : pandas.DataFrame
        One row per layer, indexed by label, ordered by backbone (as
        :func:`skconvnet.list_backbones` lists them), then shallow to deep: ``backbone``,
        ``depth``, ``mean_test_score`` and ``std_test_score``.
    """
    pd = require("pandas", extra="plot", purpose="layer_table")
    return ordered_table(pd, [
        {"layer": score.label, "backbone": score.backbone, "depth": score.depth,
         "mean_test_score": score.cv_score, "std_test_score": score.cv_score_std}
        for score in report.layers
    ])


def layer_figure(report):
    """Cross-validated score (accuracy, mean average precision or R²) against depth, the
    best layer's test score marked.

    Returns
    -------
    fig : matplotlib Figure
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, whatever the environment's backend
    ax = draw_layer_table(layer_table(report))
    ax.set_ylabel(f"{report.settings.cv_folds}-fold cross-validated {report.score_name}")
    ticks = {layer: x for label, x in zip(ax.get_xticklabels(), ax.get_xticks())
             for layer in label.get_text().split("\n")}  # layers sharing a tick: a line each
    ax.plot([ticks[report.best_layer]], [report.test_score], "*", markersize=14,
            color="tab:red", label=f"test {report.score_name} of {report.best_layer}")
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure
