"""The evaluate command's report as one self-contained HTML page (figures and thumbnails
embedded as data URIs: nothing to fetch, it opens offline in any browser)."""

import os

import numpy as np

from ..heatmaps.explain import explain, method_for
from ..heatmaps.figures import as_seen, overlay
from .diagnostics import errors_table, plot_training_curves, thumbnail
from .evaluation import layer_figure
from .html import STYLE, data_uri, escape, figure, section
from .photos import photos_section



def write_report_page(path, report, *, n_errors=24, n_per_class=3):
    """Write the page of an ``evaluate`` run to ``path``.

    Parameters
    ----------
    path : str or path-like
        The HTML file to write.
    report : EvaluationReport
        The run's report: settings, layer scores, test predictions, what checking the
        photos found (the section "The photos themselves") and, with fine-tuning, the
        fine-tuned classifier, whose training curves end the page.
    n_errors : int, default=24
        Show at most this many of the most confident mistakes (and of each list of suspect
        photos).
    n_per_class : int, default=3
        Show at most this many of the most confident right predictions of each class.

    Each photo shown has, beside it, its heatmap of the evidence for the predicted class
    (:func:`skconvnet.explain`).
    """
    classes = np.asarray(report.classes)
    y_test, proba = report.predictions.labels, report.predictions.proba
    predicted = classes[np.asarray(proba).argmax(axis=1)]
    mistakes = errors_table(y_test, proba, classes, n=n_errors)
    right = _confident_hits(y_test, proba, classes, n=n_per_class)
    overlays = _overlays(report, [*mistakes["index"], *(i for hits in right for i in hits)])
    sections = [
        _settings(report),
        section("Accuracy against layer depth", figure(layer_figure(report))),
        section("Errors on the test photos",
                f"<p>Predictions of the logistic regression on {escape(report.best_layer)}.</p>"
                + _confusion(y_test, predicted, classes)),
        section(f"Most confident mistakes (up to {n_errors})",
                _heatmap_note(report) + _mistakes(mistakes, report.predictions.paths, overlays)),
        section("What the model looks at in each class",
                f"<p>The test photos of each class predicted right most confidently (up to "
                f"{n_per_class}), each beside its heatmap.</p>"
                + _hits(right, classes, proba, report.predictions.paths, overlays)),
    ]
    if report.audit is not None:
        sections.append(photos_section(report.audit, n=n_errors))
    if report.fine_tuning is not None:
        sections.append(section("Fine-tuning", _fine_tuning(report)))
    write_page(path, report, sections)


def write_page(path, report, sections):
    """Write the page of an ``evaluate`` run: its sections (HTML), titled by the run's
    training photos."""
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>skconvnet evaluate: {escape(report.settings.train_dir)}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)


def _settings(report):
    headline = (f"Test accuracy <strong>{report.test_accuracy:.3f}</strong> "
                f"(logistic regression on {escape(report.best_layer)})")
    if report.fine_tuning is not None:
        headline += f", fine-tuned <strong>{report.fine_tuning.test_accuracy:.3f}</strong>"
    counts = "".join(
        f"<tr><td>{escape(label)}</td><td class='number'>{report.train_counts[label]}</td>"
        f"<td class='number'>{report.test_counts.get(label, 0)}</td></tr>"
        for label in report.classes
    )
    return (
        f"<h1>skconvnet evaluate</h1><p class='headline'>{headline}</p>"
        f"{settings_table(report)}"
        "<table><tr><th>class</th><th class='number'>training</th>"
        f"<th class='number'>test</th></tr>{counts}"
        f"<tr><th>all</th><th class='number'>{report.n_train}</th>"
        f"<th class='number'>{report.n_test}</th></tr></table>"
    )


def settings_table(report):
    """The run's settings as a table (HTML)."""
    settings = report.settings
    rows = [
        ("training photos", settings.train_dir),
        ("test photos", settings.test_dir),
        ("backbones", ", ".join(settings.backbones)),
        ("weights", settings.weights),
        ("image size", ", ".join(f"{name}: {size[0]}×{size[1]}"
                                 for name, size in settings.image_sizes.items())),
        ("pooling", settings.pooling),
        ("precision", settings.precision),
        ("cross-validation", f"{settings.cv_folds} folds"),
        ("wall time", f"{report.seconds:.0f} s"),
    ]
    table = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>"
                    for name, value in rows)
    return f"<table>{table}</table>"


def _confusion(y_test, predicted, classes):
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, classification_report

    size = min(12, 3 + 0.5 * len(classes))
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, normalize, title in zip(axes, (None, "true"), ("counts", "share of each true class")):
        ConfusionMatrixDisplay.from_predictions(
            y_test, predicted, labels=classes, normalize=normalize, ax=ax, colorbar=False,
            values_format=None if normalize is None else ".2f", xticks_rotation=45,
        )
        ax.set_title(title)
    fig.tight_layout()
    scores = classification_report(y_test, predicted, labels=classes, output_dict=True,
                                   zero_division=0)
    rows = "".join(
        f"<tr><td>{escape(label)}</td>"
        + "".join(f"<td class='number'>{scores[label][key]:.3f}</td>"
                  for key in ("precision", "recall", "f1-score"))
        + f"<td class='number'>{scores[label]['support']:.0f}</td></tr>"
        for label in [*map(str, classes), "macro avg", "weighted avg"]
    )
    return (
        figure(fig) + "<table><tr><th>class</th><th class='number'>precision</th>"
        "<th class='number'>recall</th><th class='number'>F1</th>"
        f"<th class='number'>test photos</th></tr>{rows}</table>"
    )


def _confident_hits(y, proba, classes, *, n):
    """Per class, the indices of at most ``n`` test photos of it predicted right, the most
    confident first."""
    proba = np.asarray(proba)
    predicted = proba.argmax(axis=1)
    hits = []
    for column, label in enumerate(classes.tolist()):
        right = np.flatnonzero((np.asarray(y) == label) & (predicted == column))
        hits.append(right[np.argsort(-proba[right, column], kind="stable")][:n].tolist())
    return hits


def _overlays(report, indices):
    """``{index: data URI}``: the test photos at ``indices`` as the model saw them, their
    heatmap of the predicted class drawn over them, as small JPEGs."""
    if not indices:
        return {}
    predicted = np.asarray(report.classes)[np.asarray(report.predictions.proba)[indices]
                                           .argmax(axis=1)]
    return heatmap_overlays(report.pipeline, report.predictions.paths, indices, predicted)


def heatmap_overlays(model, paths, indices, targets):
    """``{index: data URI}``: the photos of ``paths`` at ``indices`` as ``model`` saw them,
    the heatmap of each one's target (:func:`skconvnet.explain`) drawn over them, as small
    JPEGs."""
    if not len(indices):
        return {}
    chosen = [paths[i] for i in indices]
    heatmaps = explain(model, chosen, target=targets)
    pictures = as_seen(model, chosen)
    return {index: data_uri(thumbnail(overlay(picture, heatmap)), "JPEG")
            for index, picture, heatmap in zip(indices, pictures, heatmaps)}


def _heatmap_note(report):
    how = {
        "cam": "its exact class activation map: the logistic regression's score of the "
               "features at each place of the photo",
        "occlusion": "occlusion: how much the probability drops where a grey square covers "
                     "the photo",
    }[method_for(report.pipeline)]
    return (f"<p>Beside each photo, where the model found the evidence for the class it "
            f"predicted (red: the strongest), by {how}.</p>")


def _mistakes(table, test_paths, overlays):
    if table.empty:
        return "<p>None: every test photo is classified correctly.</p>"
    captioned = ((row.index, f"true {escape(row.true)}, predicted {escape(row.predicted)} "
                             f"({row.probability:.2f})") for row in table.itertuples())
    return photos_with_heatmaps(captioned, test_paths, overlays)


def _hits(right, classes, proba, test_paths, overlays):
    sections = []
    for column, (label, indices) in enumerate(zip(classes.tolist(), right)):
        body = (photos_with_heatmaps(((i, f"{escape(label)} ({proba[i, column]:.2f})") for i in indices),
                        test_paths, overlays)
                if indices else "<p>No test photo of this class is predicted right.</p>")
        sections.append(f"<h3>{escape(label)}</h3>{body}")
    return "".join(sections)


def photos_with_heatmaps(captioned, test_paths, overlays):
    """Figures of test photos, each beside its heatmap overlay, with a caption (HTML)."""
    figures = []
    for index, caption in captioned:
        name = escape(os.path.basename(test_paths[index]))
        figures.append(
            f"<figure><img alt='{name}' src='{data_uri(thumbnail(test_paths[index]), 'JPEG')}'>"
            f"<img class='heatmap' alt='heatmap of {name}' src='{overlays[index]}'>"
            f"<figcaption><strong>{name}</strong><br>{caption}</figcaption></figure>"
        )
    return f"<div class='photos'>{''.join(figures)}</div>"


def _fine_tuning(report):
    return fine_tuning_section(
        report, f"Test accuracy fine-tuned on {escape(report.best_layer)}: "
                f"<strong>{report.fine_tuning.test_accuracy:.3f}</strong>, against "
                f"{report.test_accuracy:.3f} for the logistic regression on frozen "
                "features.")


def fine_tuning_section(report, scores):
    """The fine-tuning section's body: ``scores`` (HTML), then the fine-tuned estimator's
    training curves."""
    axes = plot_training_curves(report.fine_tuning.estimator)
    return f"<p>{scores}</p>" + figure(axes[0].figure)
