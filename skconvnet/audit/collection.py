"""The audit of a labelled photo collection, and of its test set, on features already
computed: what ``evaluate`` and the ``audit`` command add to a layer search."""

import os
import time
from dataclasses import dataclass, replace

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .duplicates import duplicates_of
from .features import joined, unit_rows
from .labels import label_issues
from .outliers import outliers_of

#: Inverse regularisation strengths tried for the probe whose out-of-fold probabilities find
#: label issues: an unregularised probe learns the wrong labels and believes them.
C_GRID = np.logspace(-4, 0, 9)

#: Why label issues are sought among classes only (tags and numbers keep copies and outliers).
NO_CLASSES = "confident learning needs classes; {kind} have none"


@dataclass(frozen=True)
class PhotoAudit:
    """What the audit of the training (and test) photos found.

    Attributes
    ----------
    label_issues : LabelIssues or None
        Training photos whose label is probably wrong (out-of-fold probabilities); None
        for tags and numbers (``label_issues_skipped`` says why).
    test_label_issues : LabelIssues or None
        Test photos whose label is probably wrong (probabilities of the probe fitted on the
        training photos); None without a test set, or without classes.
    duplicates : Duplicates
        Copies among the training photos, with the groups labelled differently.
    leaks : Duplicates or None
        Test photos that copy a training photo; None without a test set.
    outliers : Outliers
        Training photos far from the others of their class (of all photos, without classes).
    train_paths, test_paths : list
        The photos the positions refer to.
    labels : ndarray
        The training photos' labels (their tags or numbers as text, without classes).
    test_accuracy_without_leaks : float or None
        The best pipeline's test accuracy (subset accuracy for tags) once the leaked test
        photos are left out; None for numbers.
    probe_layer : str or None
        The layer whose out-of-fold probabilities find the label issues.
    copy_layer : str
        The layer whose features find copies.
    outlier_layers : list of str
        The layers whose features, joined, find outliers.
    C : float or None
        The regularisation of the logistic probe, chosen by out-of-fold log loss.
    seconds : float
        Wall time of the audit on features already computed.
    label_issues_skipped : str or None
        Why label issues were not sought (tags and numbers), in one line; None for classes.
    """

    label_issues: object
    test_label_issues: object
    duplicates: object
    leaks: object
    outliers: object
    train_paths: list
    test_paths: list
    labels: np.ndarray
    test_accuracy_without_leaks: float | None
    probe_layer: str
    copy_layer: str
    outlier_layers: list
    C: float | None
    seconds: float
    label_issues_skipped: str | None = None

    def to_dict(self):
        """The findings with photos named by path, as the JSON report holds them."""
        train, test = [os.fspath(p) for p in self.train_paths], [os.fspath(p) for p in
                                                                 self.test_paths]

        def issues(found, paths):
            return [{"photo": paths[i], "given": str(given), "suggested": str(suggested),
                     "probability": float(probability)}
                    for i, given, suggested, probability in zip(
                        found.indices, found.given, found.suggested, found.probability)]

        classes = self.label_issues is not None
        report = {
            **({"probe_layer": self.probe_layer} if classes else {}),
            "copy_layer": self.copy_layer,
            "outlier_layers": list(self.outlier_layers),
            **({"C": self.C, "label_issues": issues(self.label_issues, train)} if classes
               else {"label_issues_skipped": self.label_issues_skipped}),
            "duplicates": [[train[i] for i in group] for group in self.duplicates.groups],
            "conflicting_duplicates": [[train[i] for i in group]
                                       for group in self.duplicates.conflicting],
            "outliers": [{"photo": train[i], "label": str(label), "distance": float(distance),
                          "z_score": float(z)}
                         for i, label, distance, z in zip(
                             self.outliers.indices, self.outliers.label,
                             self.outliers.distance, self.outliers.z_score)],
        }
        if self.leaks is not None:
            if classes:
                report["test_label_issues"] = issues(self.test_label_issues, test)
            report["leaks"] = [{"train": train[i], "test": test[j], "similarity": float(s),
                                "exact": bool(exact)}
                               for (i, j), s, exact in zip(self.leaks.pairs,
                                                           self.leaks.similarity,
                                                           self.leaks.exact)]
            report["test_accuracy_without_leaks"] = self.test_accuracy_without_leaks
        report["seconds"] = self.seconds
        return report


def audit_collection(y, *, probe, copies, outliers, folds, paths, test_probe=None,
                     test_copies=None, y_test=None, test_paths=(), test_correct=None,
                     layers=("", "", ()), kind="class"):
    """Audit photos from their features.

    Parameters
    ----------
    y : ndarray
        The training photos' labels: their classes; for tags and numbers, one text per
        photo (its tags, its numbers), which tells the copies labelled differently.
    probe : ndarray
        Their features at the layer whose probe finds label issues.
    copies : ndarray
        Their features at the layer that finds copies.
    outliers : list of ndarray
        Their features at each layer that, joined, finds outliers.
    folds : cross-validation splitter
        The folds of the out-of-fold probabilities.
    paths : list
        The training photos.
    test_probe, test_copies, y_test, test_paths : optional
        The same of the test photos.
    test_correct : ndarray of bool, optional
        Which test photos the evaluated pipeline gets right.
    layers : (str, str, list of str)
        The names of the probe's, the copies' and the outliers' layers, for the report.
    kind : {"class", "tags", "numbers"}, default="class"
        The kind of target. Label issues are sought among classes only (``probe`` and
        ``test_probe`` are then unused), and outliers of tags and numbers are far from all
        the photos, not from those of their class.

    Returns
    -------
    audit : PhotoAudit
    """
    started = time.perf_counter()
    classes = kind == "class"
    C = issues = test_issues = leaks = accuracy = None
    if classes:
        names = np.unique(y)
        C, proba, head = _probe(probe, y, folds, names)
        issues = label_issues(y, proba, names, X=paths)
    copies = unit_rows(copies)
    if test_copies is not None:
        if classes:
            test_issues = label_issues(y_test, head.predict_proba(test_probe), names,
                                       X=test_paths)
        leaks = duplicates_of(copies, unit_rows(test_copies), images=(paths, test_paths))
        kept = np.setdiff1d(np.arange(len(test_paths)), leaks.leaked)
        if test_correct is not None and len(kept):
            accuracy = float(np.mean(test_correct[kept]))
    outliers = outliers_of(joined(outliers), y if classes else None, X=paths)
    if not classes:  # one group of all photos, each named by its own tags or numbers
        outliers = replace(outliers, label=np.asarray(y)[outliers.indices])
    probe_layer, copy_layer, outlier_layers = layers
    return PhotoAudit(
        label_issues=issues,
        test_label_issues=test_issues,
        duplicates=duplicates_of(copies, y=y, images=(paths, paths)),
        leaks=leaks,
        outliers=outliers,
        train_paths=list(paths), test_paths=list(test_paths), labels=np.asarray(y),
        test_accuracy_without_leaks=accuracy, probe_layer=probe_layer if classes else None,
        copy_layer=copy_layer, outlier_layers=list(outlier_layers), C=C,
        seconds=round(time.perf_counter() - started, 1),
        label_issues_skipped=None if classes else NO_CLASSES.format(kind=kind),
    )


def copy_layer(spec, layers):
    """Of ``layers`` (names of cut points of the backbone ``spec``), the one nearest three
    quarters of the network's depth: on VGG16, block4_pool, where copies stand furthest from
    distinct photos (block3_pool sees two distinct photos closer than a copy, block5_pool
    sees a resized copy of a cat as just another cat; benchmarks/bench_audit.py)."""
    return min(layers, key=lambda layer: abs(spec.depth(layer) / len(spec.cut_points) - 0.75))


def _probe(features, y, folds, classes):
    """The C of :data:`C_GRID` with the least out-of-fold log loss, its out-of-fold
    probabilities, and the probe fitted with it on all photos."""
    best = None
    for C in C_GRID:
        head = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        proba = cross_val_predict(head, features, y, cv=folds, method="predict_proba")
        loss = log_loss(y, proba, labels=classes)
        if best is None or loss < best[0]:
            best = loss, C, proba, head
    _, C, proba, head = best
    return float(C), proba, head.fit(features, y)
