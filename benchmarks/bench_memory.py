"""How much memory does ``transform`` over thousands of JPEG paths take?

Transforms the 3,000 shared cats/dogs photos (train and validation) at 160x160, cut at
``block1_pool`` with average pooling, and prints the growth of the process's peak resident
memory during that call (Linux: the peak is reset through /proc/self/clear_refs first).
Goal: < 400 MB, where the decoded float32 images alone would take 920 MB.

    python benchmarks/bench_memory.py [--batch-size 32]
"""

import argparse
import time

from common import device, photo_paths, reset_peak_memory, rss_mb


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from skconvnet import VGGFeatureExtractor

    paths = photo_paths(2000) + photo_paths(1000, split="validation")
    if not paths:
        raise SystemExit("needs the shared cats/dogs photos")
    extractor = VGGFeatureExtractor(
        layer="block1_pool", pooling="avg", weights=None, image_size=(160, 160),
        batch_size=args.batch_size,
    ).fit(paths[:64])
    extractor.transform(paths[:64])  # warm-up: models built and traced
    reset_peak_memory()
    before = rss_mb("VmRSS")
    start = time.perf_counter()
    features = extractor.transform(paths)
    seconds = time.perf_counter() - start
    growth = rss_mb("VmHWM") - before
    print(f"device: {device()}")
    print(f"{len(paths)} JPEG paths, 160x160, block1_pool, avg, batch {args.batch_size}: "
          f"{features.shape} in {seconds:.0f} s")
    print(f"peak resident memory grew by {growth:.0f} MB (goal < 400 MB; decoded float32 "
          f"images would take {len(paths) * 160 * 160 * 3 * 4 / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
