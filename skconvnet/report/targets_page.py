"""The page of an ``evaluate`` run on tags or numbers
(:class:`~skconvnet.report.targets.TargetReport`), made of the pieces of the page of classes
(:mod:`skconvnet.report.page`)."""

import numpy as np

from ..heatmaps.explain import method_for
from .evaluation import layer_figure
from .html import escape, figure, section
from .page import (
    fine_tuning_section,
    heatmap_overlays,
    photos_with_heatmaps,
    settings_table,
    write_page,
)
from .photos import figures, photos_section
from .targets import HEADS


def write_target_page(path, report, *, n_errors=24):
    """Write the page of an ``evaluate`` run on tags or numbers to ``path``.

    Parameters
    ----------
    path : str or path-like
        The HTML file to write.
    report : TargetReport
        The run's report.
    n_errors : int, default=24
        Show at most this many photos with wrong tags (of each target, the photos with the
        largest errors), and of each list of suspect photos.

    Tags: each tag's precision, recall, F1 and average precision on the test photos, and the
    photos whose wrong tags are the most confident, as thumbnails. Numbers: the predictions
    against the true values, the residuals, and the photos with the largest errors, each
    beside its heatmap of where the prediction comes from (:func:`skconvnet.explain`).
    """
    sections = [
        _settings(report),
        section(f"{report.score_name} against layer depth".capitalize(),
                figure(layer_figure(report))),
    ]
    if report.kind == "tags":
        sections += [
            section("Scores per tag on the test photos", _tag_table(report)),
            section(f"Most confident wrong tags (up to {n_errors} photos)",
                    _wrong_tags(report, n_errors)),
        ]
    else:
        sections += [
            section("Predicted against true", figure(_scatter(report, residuals=False))),
            section("Residuals", figure(_scatter(report, residuals=True))),
            section(f"Largest errors (up to {n_errors} photos of each target)",
                    _largest_errors(report, n_errors)),
        ]
    if report.audit is not None:
        sections.append(photos_section(report.audit, n=n_errors))
    if report.fine_tuning is not None:
        sections.append(section("Fine-tuning", _fine_tuning(report)))
    write_page(path, report, sections)


def _headline(kind, scores):
    overall = scores.overall
    if kind == "tags":
        return (f"mean average precision <strong>{overall['mean_average_precision']:.3f}"
                f"</strong>, micro-F1 <strong>{overall['micro_f1']:.3f}</strong>, subset "
                f"accuracy <strong>{overall['subset_accuracy']:.3f}</strong>")
    return (f"R² <strong>{overall['r2']:.3f}</strong>, mean absolute error "
            f"<strong>{overall['mae']:.4g}</strong> (predicting the training mean: "
            f"{overall['mae_of_mean']:.4g})")


def _settings(report):
    headline = (f"Test {_headline(report.kind, report.test)} ({escape(HEADS[report.kind])} "
                f"on {escape(report.best_layer)})")
    if report.fine_tuning is not None:
        headline += f"; fine-tuned: {_headline(report.kind, report.fine_tuning.test)}"
    summary = report.summary
    if report.kind == "tags":
        head = "<th>tag</th><th class='number'>training photos</th><th class='number'>test " \
               "photos</th>"
        rows = "".join(
            f"<tr><td>{escape(tag)}</td><td class='number'>{summary['train_counts'][tag]}</td>"
            f"<td class='number'>{summary['test_counts'][tag]}</td></tr>"
            for tag in map(str, report.targets))
    else:
        head = "<th>target</th><th class='number'>training mean ± sd</th>" \
               "<th class='number'>test mean ± sd</th>"
        rows = "".join(
            f"<tr><td>{escape(target)}</td>" + "".join(
                f"<td class='number'>{summary[f'{split}_mean'][target]:.4g} ± "
                f"{summary[f'{split}_std'][target]:.3g}</td>" for split in ("train", "test"))
            + "</tr>" for target in map(str, report.targets))
    return (
        f"<h1>skconvnet evaluate: {escape(report.kind)}</h1>"
        f"<p class='headline'>{headline}</p>{settings_table(report)}"
        f"<table><tr>{head}</tr>{rows}<tr><th>all photos</th><th class='number'>"
        f"{report.n_train}</th><th class='number'>{report.n_test}</th></tr></table>"
    )


def _tag_table(report):
    """Each tag's precision, recall, F1 and average precision on the test photos."""
    columns = ("precision", "recall", "f1", "average_precision")
    rows = "".join(
        f"<tr><td>{escape(tag)}</td>"
        + "".join("<td class='number'>–</td>" if scores[key] is None
                  else f"<td class='number'>{scores[key]:.3f}</td>" for key in columns)
        + f"<td class='number'>{scores['support']}</td></tr>"
        for tag, scores in report.test.per_target.items()
    )
    overall = report.test.overall
    return (
        f"<p>Predictions of the {escape(HEADS[report.kind])} on "
        f"{escape(report.best_layer)}: a tag is predicted where its probability exceeds 0.5. "
        f"Over all tags: micro-F1 {overall['micro_f1']:.3f}, mean average precision "
        f"{overall['mean_average_precision']:.3f} (of the tags some test photo has), subset "
        f"accuracy {overall['subset_accuracy']:.3f} (every tag of a photo right).</p>"
        "<table><tr><th>tag</th><th class='number'>precision</th>"
        "<th class='number'>recall</th><th class='number'>F1</th>"
        "<th class='number'>average precision</th><th class='number'>test photos</th>"
        f"</tr>{rows}</table>"
    )


def wrong_tags(y, proba, *, n):
    """The photos with wrong tags, the most confident mistake first: ``[(index, [(tag
    column, probability), ...]), ...]``, each photo's wrong tags the most confident first.

    A tag is wrong where the prediction (probability above 0.5) differs from the truth; its
    confidence is the probability of the wrong decision (``p`` for a tag wrongly predicted,
    ``1 - p`` for a tag missed).
    """
    y, proba = np.asarray(y), np.asarray(proba)
    wrong = (proba > 0.5) != (y == 1)
    confidence = np.where(y == 1, 1 - proba, proba)
    rows = np.flatnonzero(wrong.any(axis=1))
    order = rows[np.argsort(-np.where(wrong, confidence, -1)[rows].max(axis=1), kind="stable")]
    found = []
    for row in order[:n]:
        columns = np.flatnonzero(wrong[row])
        columns = columns[np.argsort(-confidence[row, columns], kind="stable")]
        found.append((int(row), [(int(c), float(proba[row, c])) for c in columns]))
    return found


def _wrong_tags(report, n):
    predictions = report.predictions
    found = wrong_tags(predictions.y, predictions.values, n=n)
    if not found:
        return "<p>None: every tag of every test photo is right.</p>"
    tags = [str(tag) for tag in report.targets]
    captions = [
        "; ".join(f"{escape(tags[c])}: {'missed' if predictions.y[row, c] else 'not tagged'} "
                  f"({p:.2f})" for c, p in wrong) for row, wrong in found]
    return ("<p>Each photo's wrong tags with their predicted probability: <em>missed</em>, "
            "a tag of the photo predicted absent; <em>not tagged</em>, a tag the photo does "
            "not have predicted present.</p>"
            + figures([[predictions.paths[row]] for row, _ in found], captions))


def _columns(report):
    """True and predicted values as ``(n_test, n_targets)``."""
    y = np.asarray(report.predictions.y, dtype=float).reshape(report.n_test, -1)
    return y, np.asarray(report.predictions.predicted, dtype=float).reshape(y.shape)


def _scatter(report, *, residuals):
    """Predicted against true values (or the residuals, predicted minus true, against
    true), one panel per target, with the line of a perfect prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y, predicted = _columns(report)
    k = y.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k + 0.6, 4.2), squeeze=False)
    for column, (ax, name) in enumerate(zip(axes[0], report.targets)):
        true, guess = y[:, column], predicted[:, column]
        low, high = float(min(true.min(), guess.min())), float(max(true.max(), guess.max()))
        if residuals:
            ax.scatter(true, guess - true, s=12, alpha=0.7)
            ax.axhline(0, color="gray", linewidth=1)
            ax.set_ylabel("predicted − true")
        else:
            ax.scatter(true, guess, s=12, alpha=0.7)
            ax.plot([low, high], [low, high], color="gray", linewidth=1)
            ax.set_ylabel("predicted")
        scores = report.test.per_target[str(name)]
        ax.set_title(f"{name}: R² {scores['r2']:.3f}, MAE {scores['mae']:.3g}")
        ax.set_xlabel("true")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _largest_errors(report, n):
    """Per target, the test photos with the largest absolute errors, each beside the
    heatmap of that target's prediction."""
    y, predicted = _columns(report)
    paths = report.predictions.paths
    parts = []
    for column, name in enumerate(report.targets):
        errors = predicted[:, column] - y[:, column]
        worst = np.argsort(-np.abs(errors), kind="stable")[:n].tolist()
        overlays = heatmap_overlays(report.pipeline, paths, worst, column)
        captioned = ((i, f"true {y[i, column]:.4g}, predicted {predicted[i, column]:.4g} "
                         f"(error {errors[i]:+.3g})") for i in worst)
        body = photos_with_heatmaps(captioned, paths, overlays) if worst else ""
        parts.append((f"<h3>{escape(name)}</h3>" if len(report.targets) > 1 else "") + body)
    how = {"cam": "the exact class activation map: the ridge regression's prediction from "
                  "the features at each place of the photo",
           "occlusion": "occlusion: how much the prediction changes where a grey square "
                        "covers the photo"}[method_for(report.pipeline)]
    return (f"<p>Beside each photo, where its prediction comes from (red: the strongest), by "
            f"{how}.</p>" + "".join(parts))


def _fine_tuning(report):
    return fine_tuning_section(
        report, f"Test scores fine-tuned on {escape(report.best_layer)}: "
                f"{_headline(report.kind, report.fine_tuning.test)}, against "
                f"{_headline(report.kind, report.test)} for the {escape(HEADS[report.kind])} "
                "on frozen features.")
