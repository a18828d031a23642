"""Does the audit of ``evaluate`` find faults injected into real photos, and what does it cost?

The shared cats/dogs photos (2,000 training, 1,000 test) with faults injected
(``faults.py``): 5% of the training labels flipped at random; 20 training photos re-saved at
JPEG quality 50-80, resized by 0.7-0.9 and cropped by up to 5% a side, put into the test
set; 10 foreign pictures (5 random textures, 5 screenshot-like windows) filed as cats.
VGG16 with the shared ImageNet-grade weights, evaluate's default layers and image size.

Prints, for the flipped labels, the precision and recall of the flagged photos and of the
top of the ranking at the number flipped; for the copies, how many were found and how many
other pairs across training and test were reported; for the foreign pictures, their ranks
among the cats by outlier distance. Then the cost: the audit's own time, and the wall time of
``evaluate`` with the audit (in this process) against ``evaluate --no-audit`` (in a fresh
one), each from cold.

``--per-layer`` answers instead which layer suits which question, on the same faults: per
layer of block3_pool, block4_pool, block5_pool and the three joined, the precision of the
label ranking at the number flipped (with C chosen by log loss, and with scikit-learn's
default C=1), the lowest similarity of a leaked copy against the highest of two distinct
photos, and the foreign pictures' ranks with 5 and 20 neighbours.

    python benchmarks/bench_audit.py [--image-size 150] [--seed 0] [--per-layer]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CATS_AND_DOGS, device, shared_weights

import faults


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-layer", action="store_true")
    args = parser.parse_args()

    from skconvnet import load_image_folder
    from skconvnet.cli.evaluate import parse_evaluate, run_evaluation

    weights = shared_weights()
    if weights is None or not CATS_AND_DOGS.is_dir():
        sys.exit("needs ../shared/data/cats_and_dogs and the shared VGG16 weights")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        injected = faults.build(root, load_image_folder(CATS_AND_DOGS / "train"),
                                load_image_folder(CATS_AND_DOGS / "validation"), seed=args.seed)
        if args.per_layer:
            return _per_layer(root, injected, weights, args)
        command = ["evaluate", str(root / "train"), "--test", str(root / "test"),
                   "--weights", str(weights)]
        if args.image_size:
            command += ["--image-size", str(args.image_size)]

        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "skconvnet", *command, "--no-audit"], check=True,
                       capture_output=True)
        without = time.perf_counter() - started

        from skconvnet.cli.commands import _parser

        job, _ = parse_evaluate(_parser().parse_args(command))
        started = time.perf_counter()
        report = run_evaluation(job)
        with_audit = time.perf_counter() - started
        audit = report.audit
        print(f"{device()}; VGG16 ({weights.name}) at {args.image_size or 150}x"
              f"{args.image_size or 150}, seed {args.seed}")
        print(f"best layer {report.best_layer} (cv accuracy {report.best.cv_accuracy:.3f}), "
              f"test accuracy {report.test_accuracy:.3f}; audit: label issues on "
              f"{audit.probe_layer} (C={audit.C:g}), copies on {audit.copy_layer}, outliers on "
              f"{', '.join(audit.outlier_layers)}")
        _labels(audit, injected)
        _copies(audit, injected)
        _foreign(audit, injected)
        _within(audit)
        print(f"\ncost: audit {audit.seconds:.1f} s on features already computed; evaluate "
              f"{with_audit:.0f} s with the audit, {without:.0f} s with --no-audit "
              f"({with_audit / without:.2f}x)")
        print(json.dumps({"test_accuracy": report.test_accuracy,
                          "test_accuracy_without_leaks": audit.test_accuracy_without_leaks}))


def _names(paths, indices):
    return [Path(paths[i]).name for i in indices]


def _labels(audit, injected):
    flipped = set(injected["flipped"])
    flagged = _names(audit.train_paths, audit.label_issues.indices)
    hits = len(flipped & set(flagged))
    top = _names(audit.train_paths, np.argsort(-audit.label_issues.margins,
                                               kind="stable")[:len(flipped)])
    at_k = len(flipped & set(top)) / len(flipped)
    print(f"\nflipped labels: {len(flipped)}; flagged {len(flagged)}: precision "
          f"{hits / max(len(flagged), 1):.2f}, recall {hits / len(flipped):.2f}; the "
          f"{len(flipped)} highest margins: precision = recall = {at_k:.2f}")
    others = sorted(set(flagged) - flipped)
    more = " ..." if len(others) > 12 else ""
    print(f"  flagged but not flipped: {', '.join(others[:12])}{more}")


def _copies(audit, injected):
    copies = injected["copies"]
    pairs = [(Path(audit.train_paths[i]).name, Path(audit.test_paths[j]).name, s)
             for (i, j), s in zip(audit.leaks.pairs, audit.leaks.similarity)]
    found = {test for train, test, _ in pairs if copies.get(test) == train}
    false = [(train, test, s) for train, test, s in pairs if copies.get(test) != train]
    print(f"\nleaked copies: {len(found)} of {len(copies)} found; other pairs across training "
          f"and test: {len(false)}"
          + "".join(f"\n  {train} ~ {test} ({s:.3f})" for train, test, s in false))
    similarity = [s for train, test, s in pairs if copies.get(test) == train]
    if similarity:
        print(f"  copies' similarity from {min(similarity):.3f} to {max(similarity):.3f}; test "
              f"accuracy {audit.test_accuracy_without_leaks:.3f} without the leaked photos")


def _foreign(audit, injected):
    foreign = set(injected["foreign"])
    labels = np.asarray(audit.labels)
    cats = np.flatnonzero(labels == "cats")
    order = cats[np.argsort(-audit.outliers.distances[cats], kind="stable")]
    ranks = [rank + 1 for rank, i in enumerate(order)
             if Path(audit.train_paths[i]).name in foreign]
    flagged = _names(audit.train_paths, audit.outliers.indices)
    print(f"\nforeign pictures among {len(cats)} cats: ranks {ranks} by outlier distance; "
          f"{sum(rank <= 20 for rank in ranks)} of {len(foreign)} in the top 20; "
          f"{len(flagged)} photos flagged in all, {len(foreign & set(flagged))} of them foreign")


def _within(audit):
    groups = [_names(audit.train_paths, group) for group in audit.duplicates.groups]
    print(f"\ncopies among the training photos: {len(groups)} groups"
          + "".join(f"\n  {', '.join(group)}" for group in groups[:8]))


def _per_layer(root, injected, weights, args):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skconvnet import VGGFeatureExtractor, load_image_folder
    from skconvnet.audit.collection import _probe
    from skconvnet.audit.features import joined, layer_columns
    from skconvnet.audit.labels import label_issues
    from skconvnet.audit.outliers import outliers_of

    size = args.image_size or 150
    extractor = VGGFeatureExtractor(layer=["block3_pool", "block4_pool", "block5_pool"],
                                    pooling="avg", weights=weights, image_size=(size, size))
    train, y = load_image_folder(root / "train")
    test, _ = load_image_folder(root / "test")
    train_rows, test_rows = extractor.fit_transform(train), extractor.transform(test)
    columns = layer_columns(extractor)
    layers = {layer: ([train_rows[:, part]], [test_rows[:, part]])
              for layer, part in columns.items()}
    layers["joined"] = ([train_rows[:, part] for part in columns.values()],
                        [test_rows[:, part] for part in columns.values()])
    names, test_names = [p.name for p in train], [p.name for p in test]
    flipped = np.isin(names, injected["flipped"])
    copies = np.array([[names.index(source), test_names.index(copy)]
                       for copy, source in injected["copies"].items()])
    foreign = np.isin(names, injected["foreign"])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    cats = y == "cats"
    print(f"{device()}; VGG16 ({weights.name}) at {size}x{size}, seed {args.seed}")
    print(f"{'layer':12s} {'labels@k':>8s} {'C':>7s} {'at C=1':>7s} {'lowest copy':>11s} "
          f"{'top distinct':>12s}  foreign ranks among cats (k=5 | k=20)")
    for layer, (train_blocks, test_blocks) in layers.items():
        line = f"{layer:12s} "
        if layer != "joined":
            C, proba, _ = _probe(train_blocks[0], y, folds, np.unique(y))
            unregularised = cross_val_predict(
                make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                train_blocks[0], y, cv=folds, method="predict_proba")
            shares = []
            for probabilities in (proba, unregularised):
                margins = label_issues(y, probabilities, np.unique(y)).margins
                shares.append(flipped[np.argsort(-margins, kind="stable")[:flipped.sum()]].mean())
            line += f"{shares[0]:8.2f} {C:7.4f} {shares[1]:7.2f} "
        else:
            line += f"{'':8s} {'':7s} {'':7s} "
        similarity = joined(train_blocks) @ joined(test_blocks).T
        leaked = similarity[copies[:, 0], copies[:, 1]]
        similarity[copies[:, 0], copies[:, 1]] = -1
        line += f"{leaked.min():11.3f} {similarity.max():12.3f}  "
        ranks = []
        for k in (5, 20):
            distances = outliers_of(joined(train_blocks), y, n_neighbors=k).distances
            order = np.flatnonzero(cats)[np.argsort(-distances[cats], kind="stable")]
            ranks.append(str((np.flatnonzero(foreign[order]) + 1).tolist()))
        print(line + " | ".join(ranks))


if __name__ == "__main__":
    main()
