"""Does memory stay flat over many fits in one process, as in a grid search?

Fits a small extractor and a small classifier (random weights, 16 images of 32x32,
``block2_pool``; the extractor with ``cache=False``, so that every fit runs the network rather
than reading the activation cache; the classifier with a flattened Dense(256) head, 10 + 2
epochs) in a loop and prints the resident memory growth per fit after a warm-up, measured
after ``gc.collect()`` and ``malloc_trim`` (Linux). For the classifier it also measures, in a
fresh process each, fits with Keras' own gradient all-reduce, which TensorFlow's gradient
registry kept alive.

    python benchmarks/bench_fit_memory.py [--warm-up 20] [--fits 30]
"""

import argparse
import subprocess
import sys

import numpy as np
from common import device, settled_rss_mb


def growth_per_fit(kind, warm_up, fits):
    from skconvnet import FineTunedConvNetClassifier, VGGFeatureExtractor
    from skconvnet.training import network

    if kind == "classifier-keras-all-reduce":
        network.without_single_replica_all_reduce = lambda optimizer: optimizer
    X = np.random.default_rng(0).integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    y = np.array(["dark", "bright"] * 8)
    small = dict(weights=None, image_size=(32, 32), layer="block2_pool")
    if kind == "extractor":
        def fit():
            VGGFeatureExtractor(**small, pooling="avg", cache=False).fit(X).transform(X)
    else:
        def fit():
            FineTunedConvNetClassifier(
                **small, unfreeze_from="block2_conv1", head_epochs=10, fine_tune_epochs=2,
                random_state=0,
            ).fit(X, y).predict(X)
    for _ in range(warm_up):
        fit()
    start = settled_rss_mb()
    for _ in range(fits):
        fit()
    return start, (settled_rss_mb() - start) / fits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--fits", type=int, default=30)
    parser.add_argument("--kind", help=argparse.SUPPRESS)  # one measurement, in this process
    args = parser.parse_args()
    if args.kind:
        print(*growth_per_fit(args.kind, args.warm_up, args.fits))
        return
    print(device())
    results = {}
    for kind in ("extractor", "classifier", "classifier-keras-all-reduce"):
        done = subprocess.run(
            [sys.executable, __file__, "--kind", kind, "--warm-up", str(args.warm_up),
             "--fits", str(args.fits)], capture_output=True, text=True, check=True,
        )
        start, per_fit = map(float, done.stdout.split()[-2:])
        results[kind] = per_fit
        print(f"{kind:28s} RSS after warm-up {start:7.0f} MB, then {per_fit:+6.2f} MB per fit "
              f"over {args.fits} fits")
    print(f"classifier: {results['classifier-keras-all-reduce'] / max(results['classifier'], 0.01):.0f}x "
          "less growth per fit than with Keras' all-reduce")


if __name__ == "__main__":
    main()
