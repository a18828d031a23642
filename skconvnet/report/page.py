"""The evaluate command's report as one self-contained HTML page (figures and thumbnails
embedded as data URIs: nothing to fetch, it opens offline in any browser)."""

import base64
import html
import io
import os

import numpy as np

from .diagnostics import errors_table, plot_training_curves, thumbnail

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.headline { font-size: 1.4em; margin: 0.4em 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
img.figure { max-width: 100%; }
.errors { display: flex; flex-wrap: wrap; gap: 0.8em; }
.errors figure { margin: 0; width: 140px; font-size: 0.8em; overflow-wrap: anywhere; }
.errors img { width: 128px; height: 128px; object-fit: contain; background: #eee; }
"""


def write_report_page(path, report, *, layer_figure, y_test, proba, test_paths, classifier=None,
                      n_errors=24):
    """Write the page of an ``evaluate`` run to ``path``.

    ``report`` is the run's JSON report; ``layer_figure`` the matplotlib figure of the layer
    curve; ``proba`` the chosen pipeline's predicted probabilities on the test photos
    ``test_paths`` (true classes ``y_test``, columns ``report["classes"]``); ``classifier``
    the fine-tuned classifier, if any.
    """
    classes = np.asarray(report["classes"])
    predicted = classes[np.asarray(proba).argmax(axis=1)]
    sections = [
        _settings(report),
        _section("Accuracy against layer depth", _figure(layer_figure)),
        _section("Errors on the test photos",
                 f"<p>Predictions of the logistic regression on {_e(report['best_layer'])}.</p>"
                 + _confusion(y_test, predicted, classes)),
        _section(f"Most confident mistakes (up to {n_errors})",
                 _mistakes(errors_table(y_test, proba, classes, n=n_errors), test_paths)),
    ]
    if classifier is not None:
        sections.append(_section("Fine-tuning", _fine_tuning(report, classifier)))
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>skconvnet evaluate: {_e(report['train_dir'])}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)


def _settings(report):
    headline = (f"Test accuracy <strong>{report['test_accuracy']:.3f}</strong> "
                f"(logistic regression on {_e(report['best_layer'])})")
    if "finetune_test_accuracy" in report:
        headline += (f", fine-tuned <strong>{report['finetune_test_accuracy']:.3f}</strong>")
    rows = [
        ("training photos", report["train_dir"]),
        ("test photos", report["test_dir"]),
        ("backbones", ", ".join(report["backbones"])),
        ("weights", report["weights"]),
        ("image size", ", ".join(f"{name}: {size[0]}×{size[1]}"
                                 for name, size in report["image_sizes"].items())),
        ("pooling", report["pooling"]),
        ("precision", report["precision"]),
        ("cross-validation", f"{report['cv_folds']} folds"),
        ("wall time", f"{report['seconds']:.0f} s"),
    ]
    settings = "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)
    counts = "".join(
        f"<tr><td>{_e(label)}</td><td class='number'>{report['train_counts'][label]}</td>"
        f"<td class='number'>{report['test_counts'].get(label, 0)}</td></tr>"
        for label in report["classes"]
    )
    return (
        f"<h1>skconvnet evaluate</h1><p class='headline'>{headline}</p>"
        f"<table>{settings}</table>"
        "<table><tr><th>class</th><th class='number'>training</th>"
        f"<th class='number'>test</th></tr>{counts}"
        f"<tr><th>all</th><th class='number'>{report['n_train']}</th>"
        f"<th class='number'>{report['n_test']}</th></tr></table>"
    )


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
        f"<tr><td>{_e(label)}</td>"
        + "".join(f"<td class='number'>{scores[label][key]:.3f}</td>"
                  for key in ("precision", "recall", "f1-score"))
        + f"<td class='number'>{scores[label]['support']:.0f}</td></tr>"
        for label in [*map(str, classes), "macro avg", "weighted avg"]
    )
    return (
        _figure(fig) + "<table><tr><th>class</th><th class='number'>precision</th>"
        "<th class='number'>recall</th><th class='number'>F1</th>"
        f"<th class='number'>test photos</th></tr>{rows}</table>"
    )


def _mistakes(table, test_paths):
    if table.empty:
        return "<p>None: every test photo is classified correctly.</p>"
    figures = []
    for row in table.itertuples():
        path = test_paths[row.index]
        figures.append(
            f"<figure><img alt='{_e(os.path.basename(path))}' "
            f"src='{_data_uri(thumbnail(path), 'JPEG')}'>"
            f"<figcaption><strong>{_e(os.path.basename(path))}</strong><br>"
            f"true {_e(row.true)}, predicted {_e(row.predicted)} "
            f"({row.probability:.2f})</figcaption></figure>"
        )
    return f"<div class='errors'>{''.join(figures)}</div>"


def _fine_tuning(report, classifier):
    accuracy = (f"<p>Test accuracy fine-tuned on {_e(report['best_layer'])}: "
                f"<strong>{report['finetune_test_accuracy']:.3f}</strong>, against "
                f"{report['test_accuracy']:.3f} for the logistic regression on frozen "
                "features.</p>")
    axes = plot_training_curves(classifier)
    return accuracy + _figure(axes[0].figure)


def _section(title, body):
    return f"<h2>{_e(title)}</h2>\n{body}"


def _figure(fig):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return f"<img class='figure' alt='' src='{_encode(buffer.getvalue(), 'png')}'>"


def _data_uri(picture, format):
    buffer = io.BytesIO()
    picture.save(buffer, format=format, quality=80)
    return _encode(buffer.getvalue(), format.lower())


def _encode(data, kind):
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _e(value):
    return html.escape(str(value), quote=True)
