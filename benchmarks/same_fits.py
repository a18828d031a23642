"""Does a change of the code change what ``FineTunedConvNetClassifier.fit`` learns?

Fits the classifier in 8 configurations (``CONFIGS``: random VGG16 weights, 32x32 images cut
at ``block3_pool`` and fine-tuned from ``block3_conv1``, so that fine-tuning runs on stored
activations, ``random_state=0``, a few epochs) on small seeded synthetic images (dark
against bright, overlapping, plus noise; 3 brightness classes for the last configuration),
and saves, per configuration, ``predict_proba`` on a fixed set of 12 images and every number
of ``history_`` to one ``.npz`` file. Fits on the CPU with a fixed ``random_state`` are
deterministic, so two runs of the same code give bit-identical files; comparing the file of
a commit before a change with one after it says, per configuration, whether the change
altered what is learnt (and else by how much). Run a baseline commit's code with
``PYTHONPATH`` pointing at a checkout of it (the script prints which package it imported):

    git worktree add ../before COMMIT
    (cd ../before && PYTHONPATH=. python ../skconvnet/benchmarks/same_fits.py \\
        --out /tmp/fits_before.npz)
    python benchmarks/same_fits.py --out /tmp/fits_after.npz [--configs defaults,fresh_views]
    python benchmarks/same_fits.py --compare /tmp/fits_before.npz /tmp/fits_after.npz

``--compare`` exits with status 0 when every configuration is identical, 1 otherwise.
"""

import argparse
import logging
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SMALL = dict(weights=None, image_size=(32, 32), layer="block3_pool",
             unfreeze_from="block3_conv1", fine_tune_epochs=2, random_state=0)

# Config "features_in_memory": the pooled features fit within max_stored_bytes, the
# activations fine-tuning trains on do not (they go to disk). By hand, for 24 images in
# 1 + 3 views = 96 rows, stored as float32 (4 bytes):
#   features: block3_pool at 32x32 is (4, 4, 256), averaged to 256 floats:
#             96 * 256 * 4 = 98,304 bytes
#   activations: of block2_pool, the frozen top below block3_conv1, (8, 8, 128) = 8192 floats:
#             96 * 8192 * 4 = 3,145,728 bytes
# 4x the features, 393,216 bytes, holds the features (placed first) but not the activations.
FEATURES_BYTES = 24 * 4 * 256 * 4
ACTIVATIONS_BYTES = 24 * 4 * 8 * 8 * 128 * 4
BETWEEN = 4 * FEATURES_BYTES
assert FEATURES_BYTES <= BETWEEN < ACTIVATIONS_BYTES

# name: (number of classes, parameters on top of SMALL)
CONFIGS = {
    # head_epochs="auto": logistic probe; then fine-tuning on 3 stored augmented views
    "defaults": (2, {}),
    # fresh augmentation in every epoch: fine-tuning trains on pixels
    "fresh_views": (2, dict(augmented_views=None)),
    # a hidden layer trained by epochs, early stopping on 6 of the 24 images
    "hidden_early_stopping": (2, dict(hidden_layer_sizes=(16,), head_epochs=3,
                                      early_stopping=True, validation_fraction=0.25,
                                      n_iter_no_change=2)),
    # every stored output on disk
    "all_on_disk": (2, dict(max_stored_bytes=0)),
    # a hidden layer trained to convergence: early stopping ends it
    "hidden_auto": (2, dict(hidden_layer_sizes=(16,), head_epochs="auto",
                            validation_fraction=0.25, n_iter_no_change=2)),
    # fine-tuning only, the head as initialised
    "fine_tune_only": (2, dict(head_epochs=0)),
    # features in memory, activations on disk (see BETWEEN)
    "features_in_memory": (2, dict(max_stored_bytes=BETWEEN)),
    # 3 classes (softmax), flattened features, a hidden layer trained by epochs
    "three_classes_flat": (3, dict(pooling=None, hidden_layer_sizes=(16,), head_epochs=2)),
}


def training_data(n_classes, per_class=12, seed=0):
    """``(X, y)``: ``per_class`` 32x32 uint8 images of each class, shuffled; string labels
    for two classes, integers for more.

    The classes differ in brightness (dark and bright; or dark, mid-grey and bright), but
    each image's brightness varies about its class's, so that the classes overlap: no head
    separates them perfectly, its loss stays well above 0 and every phase has gradients to
    follow (a change of what a phase computes shows in the results).
    """
    rng = np.random.default_rng(seed)
    means = np.linspace(105, 150, n_classes)
    levels = np.repeat(means, per_class) + rng.normal(0, 25, size=n_classes * per_class)
    noise = rng.normal(0, 30, size=(n_classes * per_class, 32, 32, 3))
    X = np.clip(levels[:, None, None, None] + noise, 0, 255).astype(np.uint8)
    y = np.repeat(np.arange(n_classes), per_class)
    if n_classes == 2:
        y = np.array(["dark", "bright"])[y]
    order = rng.permutation(len(y))
    return X[order], y[order]


def probe_images(n=12, seed=1):
    """Fixed images to predict: brightness levels across the classes' range, plus noise."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(60, 195, n)[:, None, None, None]
    return np.clip(levels + rng.normal(0, 30, size=(n, 32, 32, 3)), 0, 255).astype(np.uint8)


def fit_one(params, n_classes):
    """``predict_proba`` on :func:`probe_images` and the history's numbers, as arrays keyed
    ``"proba"`` and ``"history.<phase>.<metric>"``."""
    from sklearn.exceptions import EfficiencyWarning

    from skconvnet import FineTunedConvNetClassifier

    X, y = training_data(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EfficiencyWarning)
        clf = FineTunedConvNetClassifier(**{**SMALL, **params}).fit(X, y)
    arrays = {"proba": np.asarray(clf.predict_proba(probe_images()))}
    for phase, metrics in clf.history_.items():
        for metric, values in metrics.items():
            arrays[f"history.{phase}.{metric}"] = np.asarray(values, dtype=np.float64)
    return arrays


def run(out, names):
    import skconvnet
    from common import device

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing warnings

    print(device())
    print(f"skconvnet from {os.path.dirname(skconvnet.__file__)}")
    saved = {}
    total = time.perf_counter()
    for name in names:
        n_classes, params = CONFIGS[name]
        start = time.perf_counter()
        arrays = fit_one(params, n_classes)
        saved.update({f"{name}:{key}": value for key, value in arrays.items()})
        epochs = {key.split(".")[1]: len(value) for key, value in arrays.items()
                  if key.endswith(".loss")}
        print(f"{name:>22}  {time.perf_counter() - start:5.1f} s  epochs {epochs}")
    np.savez(out, **saved)
    print(f"{len(names)} configurations in {time.perf_counter() - total:.1f} s, saved to {out}")


def by_config(path):
    """``{config: {key: array}}`` of a file written by :func:`run`."""
    configs = {}
    with np.load(path) as data:
        for full in data.files:
            name, key = full.split(":", 1)
            configs.setdefault(name, {})[key] = data[full]
    return configs


def difference(a, b):
    """``None`` where bit-identical, else a few words on how ``a`` and ``b`` differ."""
    missing = sorted(set(a) ^ set(b))
    if missing:
        return f"entries in one file only: {', '.join(missing)}"
    worst, where = 0.0, None
    for key in sorted(a):
        if np.array_equal(a[key], b[key]):
            continue
        if a[key].shape != b[key].shape:
            return f"{key}: shape {a[key].shape} against {b[key].shape}"
        gap = float(np.max(np.abs(a[key].astype(np.float64) - b[key].astype(np.float64))))
        if where is None or gap > worst or np.isnan(gap):
            worst, where = gap, key
    return None if where is None else f"max |diff| {worst:.3g} ({where})"


def compare(path_a, path_b):
    """Print per configuration whether the two files agree; True where all do."""
    a, b = by_config(path_a), by_config(path_b)
    same = True
    print(f"A: {path_a}\nB: {path_b}")
    for name in [*CONFIGS, *sorted((set(a) | set(b)) - set(CONFIGS))]:
        if name not in a and name not in b:
            continue
        if name not in a or name not in b:
            print(f"{name:>22}  only in {'A' if name in a else 'B'}")
            same = False
            continue
        proba = difference({"proba": a[name]["proba"]}, {"proba": b[name]["proba"]})
        history = difference({k: v for k, v in a[name].items() if k != "proba"},
                             {k: v for k, v in b[name].items() if k != "proba"})
        same = same and proba is None and history is None
        print(f"{name:>22}  predict_proba: {proba or 'identical'};  "
              f"history: {history or 'identical'}")
    print("all identical" if same else "DIFFERENT")
    return same


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", metavar="PATH", help="fit every configuration, save here")
    group.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two files")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated names of the configurations to fit")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    names = args.configs.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configurations {unknown}; known: {', '.join(CONFIGS)}")
    run(args.out, names)


if __name__ == "__main__":
    main()
