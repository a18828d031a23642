"""The audit of a labelled photo collection, and of its test set, on features already
computed: what ``evaluate`` and the ``audit`` command add to a layer search."""

import os
import time
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PhotoAudit:
    """What the audit of the training (and test) photos found.

    Attributes
    ----------
    label_issues : LabelIssues
        Training photos whose label is probably wrong (out-of-fold probabilities).
    test_label_issues : LabelIssues or None
        Test photos whose label is probably wrong (probabilities of the probe fitted on the
        training photos); None without a test set.
    duplicates : Duplicates
        Copies among the training photos, with the groups labelled differently.
    leaks : Duplicates or None
        Test photos that copy a training photo; None without a test set.
    outliers : Outliers
        Training photos far from the others of their class.
    train_paths, test_paths : list
        The photos the positions refer to.
    labels : ndarray
        The training photos' labels.
    test_accuracy_without_leaks : float or None
        The best pipeline's test accuracy once the leaked test photos are left out.
    probe_layer : str
        The layer whose out-of-fold probabilities find the label issues.
    copy_layer : str
        The layer whose features find copies.
    outlier_layers : list of str
        The layers whose features, joined, find outliers.
    C : float
        The regularisation of the logistic probe, chosen by out-of-fold log loss.
    seconds : float
        Wall time of the audit on features already computed.
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
    C: float
    seconds: float

    def to_dict(self):
        """The findings with photos named by path, as the JSON report holds them."""
        train, test = [os.fspath(p) for p in self.train_paths], [os.fspath(p) for p in
                                                                 self.test_paths]

        def issues(found, paths):
            return [{"photo": paths[i], "given": str(given), "suggested": str(suggested),
                     "probability": float(probability)}
                    for i, given, suggested, probability in zip(
                        found.indices, found.given, found.suggested, found.probability)]

        report = {
            "probe_layer": self.probe_layer,
            "copy_layer": self.copy_layer,
            "outlier_layers": list(self.outlier_layers),
            "C": self.C,
            "label_issues": issues(self.label_issues, train),
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
                     layers=("", "", ())):
    """Audit photos from their features.

    Parameters
    ----------
    y : ndarray
        The training photos' labels.
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

    Returns
    -------
    audit : PhotoAudit
    """
    started = time.perf_counter()
    classes = np.unique(y)
    C, proba, head = _probe(probe, y, folds, classes)
    copies = unit_rows(copies)
    leaks = test_issues = accuracy = None
    if test_probe is not None:
        test_issues = label_issues(y_test, head.predict_proba(test_probe), classes, X=test_paths)
        leaks = duplicates_of(copies, unit_rows(test_copies), images=(paths, test_paths))
        kept = np.setdiff1d(np.arange(len(y_test)), leaks.leaked)
        accuracy = float(np.mean(test_correct[kept])) if len(kept) else None
    probe_layer, copy_layer, outlier_layers = layers
    return PhotoAudit(
        label_issues=label_issues(y, proba, classes, X=paths),
        test_label_issues=test_issues,
        duplicates=duplicates_of(copies, y=y, images=(paths, paths)),
        leaks=leaks,
        outliers=outliers_of(joined(outliers), y, X=paths),
        train_paths=list(paths), test_paths=list(test_paths), labels=np.asarray(y),
        test_accuracy_without_leaks=accuracy, probe_layer=probe_layer, copy_layer=copy_layer,
        outlier_layers=list(outlier_layers), C=C,
        seconds=round(time.perf_counter() - started, 1),
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
