"""Does a fit's time grow linearly with the photos, in memory and past the memory budget?

Fits the classifier's defaults (the shared ImageNet-grade VGG16 weights where present,
``random_state=0``) on 250, 500, 1,000, 2,000 and 3,000 of the shared cats/dogs photos (train
and validation pooled, half cats and half dogs, each size a subset of the next), at each size
twice in turn: with ``max_stored_bytes`` at its default (``"auto"``: the stored activations in
memory) and at 0 (all of them in a temporary file on disk). For each fit it prints seconds per
photo, the peak resident memory of the fit above what the process held before it (Linux's
``VmHWM``, reset before each fit; after a warm-up fit, so that none pays for the process's
first), the bytes stored, and the accuracy on 400 photos no fit up
to 2,000 sees (none are left at 3,000).

Goals: seconds per photo within 1.3x across sizes and across the two modes; the disk mode's
peak memory flat across sizes (its budget, 0, plus a constant).

    python benchmarks/bench_fit_growth.py [--sizes 250,500,1000,2000,3000]
        [--precision float32] [--figure docs/images/fit_growth.png]
"""

import argparse
import time

import numpy as np
from common import CATS_AND_DOGS, device, reset_peak_memory, rss_mb, shared_weights

HELD_OUT = 200  # photos of each class that only fits of up to 2,000 photos leave out


def photos_by_class():
    """Every shared photo of each class, in one fixed shuffled order."""
    rng = np.random.default_rng(0)
    by_class = {}
    for label in ("cats", "dogs"):
        paths = sorted(CATS_AND_DOGS.glob(f"*/{label}/*.jpg"))
        by_class[label] = [paths[i] for i in rng.permutation(len(paths))]
    return by_class


def split(by_class, n):
    """``(train paths, train labels, test paths, test labels)``: the first ``n / 2`` photos of
    each class, and the last ``HELD_OUT`` of each that the first ``n / 2`` leave out."""
    train, y_train, test, y_test = [], [], [], []
    for label, paths in by_class.items():
        train += paths[: n // 2]
        y_train += [label] * (n // 2)
        held_out = paths[max(n // 2, len(paths) - HELD_OUT):]
        test += held_out
        y_test += [label] * len(held_out)
    return train, np.array(y_train), test, np.array(y_test)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250,500,1000,2000,3000")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--figure", help="write seconds per photo against photos to this PNG")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    from skconvnet import FineTunedConvNetClassifier, clear_cache
    from skconvnet.backbones import specs
    from skconvnet.training.storage import memory_budget
    from skconvnet.training.frozen import nbytes

    weights = shared_weights()
    by_class = photos_by_class()
    print(device())
    print(f"weights: {weights or 'random'}; precision {args.precision}; memory budget of "
          f"'auto' now: {memory_budget('auto') / 2**30:.1f} GiB")
    print(f"{'photos':>6} {'storage':>8} {'s/photo':>8} {'peak MB':>8} {'stored MB':>9} "
          f"{'accuracy':>8}")
    warm_up, y_warm_up, _, _ = split(by_class, 40)  # what the first fit of a process adds
    FineTunedConvNetClassifier(weights=weights, precision=args.precision, fine_tune_epochs=1,
                               random_state=0).fit(warm_up, y_warm_up)
    results = {}
    for n in sizes:
        train, y_train, test, y_test = split(by_class, n)
        for mode, budget in (("memory", "auto"), ("disk", 0)):
            clf = FineTunedConvNetClassifier(weights=weights, precision=args.precision,
                                             max_stored_bytes=budget, random_state=0)
            clear_cache()
            before = rss_mb("VmRSS")
            reset_peak_memory()
            start = time.perf_counter()
            clf.fit(train, y_train)
            seconds = time.perf_counter() - start
            peak = rss_mb("VmHWM") - before
            stored = nbytes(specs.get("vgg16"), n, 4, top="block4_pool", image_size=(150, 150),
                            pooling=False, precision=args.precision) / 2**20
            accuracy = f"{clf.score(test, y_test):.3f}" if test else "-"
            results[n, mode] = seconds / n
            print(f"{n:>6} {mode:>8} {seconds / n:>8.3f} {peak:>8.0f} {stored:>9.0f} "
                  f"{accuracy:>8}", flush=True)
    per_photo = np.array(list(results.values()))
    print(f"seconds per photo: slowest / fastest {per_photo.max() / per_photo.min():.2f}x "
          "across sizes and modes (goal <= 1.3)")
    if args.figure:
        plot(results, sizes, args.figure, args.precision)


def plot(results, sizes, path, precision):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for mode, label in (("memory", "stored in memory (max_stored_bytes='auto')"),
                        ("disk", "stored on disk (max_stored_bytes=0)")):
        ax.plot(sizes, [results[n, mode] for n in sizes], marker="o", label=label)
    ax.set_xlabel("training photos")
    ax.set_ylabel("fit seconds per photo")
    ax.set_ylim(0, 1.3 * max(results.values()))
    ax.set_title(f"FineTunedConvNetClassifier defaults, VGG16 at 150x150, {precision}, 2 cores")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"Figure written to {path}")


if __name__ == "__main__":
    main()
