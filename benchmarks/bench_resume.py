"""What does keeping each finished batch cost ``extract``, and what does resuming save?

Times, in one process and interleaved rounds, on ``--images`` cats/dogs photos (half each
class) at 150x150, ``block5_pool``, average pooling, batches of 32:
- in memory, written once: an extractor's ``fit(paths).transform(paths)`` and ``np.savez``
  (what ``extract`` did before it kept its work),
- ``python -m skconvnet extract`` (in-process), each batch kept in ``FEATURES.npz.partial/``
  and read back for the output,
- the same command rerun after an interruption half-way (the batches of half the photos kept).

Prints the command's time against the in-memory one (goal: 1.00x) and the resumed run's
against the whole (goal: about 0.5x). ``--precision bfloat16`` (the default here) is the
fastest network on these CPUs, where per-batch costs weigh most.

    python benchmarks/bench_resume.py [--images 256] [--precision bfloat16]
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import CATS_AND_DOGS, device, shared_weights


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from skconvnet import VGGFeatureExtractor, load_image_folder
    from skconvnet.cli.commands import main as command_line
    from skconvnet.compute import activations

    train = CATS_AND_DOGS / "train"
    if not train.is_dir():
        raise SystemExit(f"needs the shared cats/dogs photos at {train}")
    weights = shared_weights()
    per_class = args.images // 2
    paths, _ = load_image_folder(train, max_per_class=per_class)
    folder = Path(tempfile.mkdtemp())
    out = folder / "features.npz"
    command = ["extract", str(train), "--layer", "block5_pool", "--max-per-class",
               str(per_class), "--weights", str(weights or "none"), "--precision",
               args.precision, "--batch-size", "32", "--out", str(out)]

    def in_memory():
        extractor = VGGFeatureExtractor(layer="block5_pool", pooling="avg", weights=weights,
                                        precision=args.precision, cache=False)
        np.savez(folder / "in_memory.npz", features=extractor.fit(paths).transform(paths))

    def half_done():
        """An interrupted run: Ctrl-C once half the batches are computed."""
        predict, calls = activations.predict_batch, []

        def pressed(model, batch):
            calls.append(1)
            if len(calls) > len(paths) // 64:
                raise KeyboardInterrupt
            return predict(model, batch)

        activations.predict_batch = pressed
        try:
            assert command_line(command) == 130
        finally:
            activations.predict_batch = predict

    def whole():
        assert command_line(command + ["--restart"]) == 0

    def resumed():
        assert command_line(command) == 0

    in_memory(), whole()  # warm-up: weights read, segment models traced
    times = {"in memory, written once": [], "extract, each batch kept": [],
             "extract, resumed at half": []}
    for _ in range(args.rounds):
        for name, run in zip(times, (in_memory, whole, resumed)):
            if run is resumed:
                half_done()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    with np.load(out) as kept, np.load(folder / "in_memory.npz") as once:
        same = np.array_equal(kept["features"], once["features"])
    shutil.rmtree(folder)

    best = {name: min(values) for name, values in times.items()}
    base = best["in memory, written once"]
    print(f"{device()}; {len(paths)} photos, 150x150, block5_pool avg, {args.precision}, "
          f"batches of 32, weights: {'shared ImageNet-grade file' if weights else 'random'}")
    for name, seconds in best.items():
        print(f"{name:28s} {seconds:6.2f} s  {len(paths) / seconds:6.1f} img/s  "
              f"{seconds / base:.3f}x")
    print(f"resumed / whole: {best['extract, resumed at half'] / best['extract, each batch kept']:.3f}"
          f"; the command's features equal the in-memory ones: {same}")


if __name__ == "__main__":
    main()
