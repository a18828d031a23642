"""The page section "The photos themselves": what checking the photos found, each suspect
photo as a thumbnail (:class:`~skconvnet.audit.collection.PhotoAudit`); and the page of the
``audit`` command, which is that section alone."""

import os

from ..audit.duplicates import THRESHOLD
from ..audit.outliers import CUTOFF, N_NEIGHBORS
from .diagnostics import thumbnail
from .html import STYLE, data_uri, escape, section

TITLE = "The photos themselves"


def photos_section(audit, *, n=24):
    """The section of ``audit`` (HTML), at most ``n`` photos or pairs per list."""
    issues = audit.label_issues
    classes = issues is not None
    mislabelled = (
        f"Photos probably mislabelled: confident learning on out-of-fold probabilities of "
        f"a logistic regression on {escape(audit.probe_layer)} (C={audit.C:.2g}, chosen by "
        f"log loss): another class clears the mean probability its own photos get, the "
        f"photo's label does not." if classes else
        f"Photos probably mislabelled: not sought ({escape(audit.label_issues_skipped)}).")
    parts = [
        f"<p>{mislabelled} Copies: cosine similarity of features ≥ {THRESHOLD} (a "
        f"threshold measured on VGG16's block4_pool) on {escape(audit.copy_layer)}. "
        f"Outliers: far from their {N_NEIGHBORS} nearest photos"
        f"{' of the same class' if classes else ''} on "
        f"{escape(', '.join(audit.outlier_layers))} (modified z-score above {CUTOFF}). The "
        f"audit took {audit.seconds:.0f} s.</p>",
    ]
    if classes:
        parts.append("<h3>Training photos probably mislabelled</h3>"
                     + _issues(issues, audit.train_paths, n))
    if audit.leaks is not None:
        if classes:
            parts.append("<h3>Test photos probably mislabelled</h3>"
                         + _issues(audit.test_label_issues, audit.test_paths, n))
        parts.append("<h3>Test photos that copy a training photo</h3>"
                     + _leaks(audit, n))
    conflicting = audit.duplicates.conflicting
    parts.append("<h3>Copies among the training photos labelled differently</h3>"
                 + _groups(conflicting, audit, n))
    others = [group for group in audit.duplicates.groups
              if not any(group is shown for shown in conflicting)]
    parts.append("<h3>Other copies among the training photos</h3>"
                 + _groups(others, audit, n))
    parts.append("<h3>Outliers</h3>" + _outliers(audit.outliers, audit.train_paths, n))
    return section(TITLE, "".join(parts))


def write_audit_page(path, audit, *, folder, n=24):
    """Write the page of the ``audit`` command: the section alone, for ``folder``."""
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>skconvnet audit: {escape(folder)}</title><style>{STYLE}</style></head>"
        f"<body>\n<h1>skconvnet audit</h1><p class='headline'>{escape(folder)}: "
        f"{len(audit.train_paths)} photos</p>\n{photos_section(audit, n=n)}\n</body></html>\n"
    )
    with open(path, "w", encoding="utf-8") as file:
        file.write(page)


def _issues(issues, paths, n):
    if not len(issues):
        return "<p>None found.</p>"
    captioned = [
        (paths[i], f"given {escape(given)} → {escape(suggested)} ({probability:.2f})")
        for i, given, suggested, probability in zip(issues.indices[:n], issues.given,
                                                    issues.suggested, issues.probability)
    ]
    return _more(len(issues), n) + figures([[photo] for photo, _ in captioned],
                                            [caption for _, caption in captioned])


def _leaks(audit, n):
    leaks = audit.leaks
    if not len(leaks):
        return "<p>None found.</p>"
    accuracy = ("accuracy of the logistic regression" if audit.label_issues is not None
                else "subset accuracy of the logistic regressions")  # tags
    note = (f"<p>{len(leaks.leaked)} test photos copy a training photo: the test {accuracy} "
            f"without them is "
            f"<strong>{audit.test_accuracy_without_leaks:.3f}</strong>.</p>"
            if audit.test_accuracy_without_leaks is not None else "")
    pairs = leaks.pairs[:n]
    captions = [f"similarity {similarity:.3f}{', exact copy' if exact else ''}"
                for similarity, exact in zip(leaks.similarity, leaks.exact)]
    return note + _more(len(leaks), n) + figures(
        [[audit.train_paths[i], audit.test_paths[j]] for i, j in pairs], captions,
        kind="pair")


def _groups(groups, audit, n):
    if not groups:
        return "<p>None found.</p>"
    captions = [f"{len(group)} copies, labelled "
                + escape(", ".join(str(audit.labels[i]) for i in group)) for group in groups]
    return _more(len(groups), n) + figures(
        [[audit.train_paths[i] for i in group] for group in groups[:n]], captions, kind="pair")


def _outliers(outliers, paths, n):
    if not len(outliers):
        return "<p>None found.</p>"
    captions = [f"{escape(label)}, z = {z:.1f}"
                for label, z in zip(outliers.label, outliers.z_score)]
    return _more(len(outliers), n) + figures([[paths[i]] for i in outliers.indices[:n]],
                                              captions)


def _more(count, n):
    return f"<p>{count} found; the first {n} shown.</p>" if count > n else ""


def figures(photo_lists, captions, kind=""):
    """Figures of one or more photos each, named and captioned (HTML)."""
    figures = []
    for photos, caption in zip(photo_lists, captions):
        names = [escape(os.path.basename(os.fspath(photo))) for photo in photos]
        pictures = "".join(f"<img alt='{name}' src='{data_uri(thumbnail(photo), 'JPEG')}'>"
                           for name, photo in zip(names, photos))
        figures.append(f"<figure class='{kind}'>{pictures}<figcaption><strong>"
                       f"{' · '.join(names)}</strong><br>{caption}</figcaption></figure>")
    return f"<div class='photos'>{''.join(figures)}</div>"
