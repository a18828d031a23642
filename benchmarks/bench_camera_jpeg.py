"""Does decoding camera-sized JPEGs slow ``transform`` down?

Writes ``--images`` JPEGs of 1600x1200 (cats/dogs photos scaled up, or random images) to a
temporary folder, then times ``transform`` at 150x150, ``block2_pool``, average pooling on
- the already decoded and resized arrays,
- the JPEG paths (decoded at full size, two batches ahead in background threads),
in the same process, and prints paths / arrays as a ratio (goal: what the CPU times allow).

Where the network already keeps every core busy, decoding cannot hide behind it: its CPU time
is added to the network's. The benchmark therefore also measures both CPU times and prints the
ratio they allow, ``network / (network + decoding)``.

These run with ``cache=False``. With the activation cache on (the default), each file is first
read in full and hashed to key its activations; the benchmark times that too: ``transform``
on the paths with the cache on but emptied before each call, and the hashing alone.

    python benchmarks/bench_camera_jpeg.py [--images 256]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from common import best_of, device, photo_paths, random_images
from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from sklearn.base import clone

    from skconvnet import VGGFeatureExtractor, clear_cache
    from skconvnet.inputs.decoding import decode

    camera = (1600, 1200)
    sources = photo_paths(args.images)
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index in range(args.images):
            if sources:
                image = Image.open(sources[index]).convert("RGB").resize(camera, Image.BICUBIC)
            else:
                image = Image.fromarray(random_images(1, camera[::-1], seed=index)[0])
            paths.append(Path(folder) / f"{index}.jpg")
            image.save(paths[-1], quality=90)
        arrays = np.stack([decode(path, (150, 150)) for path in paths]).astype(np.uint8)
        extractor = VGGFeatureExtractor(
            layer="block2_pool", pooling="avg", weights=None, cache=False
        ).fit(arrays)
        cached = clone(extractor).set_params(cache=True).fit(arrays)

        def cold_cache_transform():
            clear_cache()  # every file read, hashed and computed: none served
            cached.transform(paths)

        seconds = best_of(
            {"arrays": lambda: extractor.transform(arrays),
             "paths": lambda: extractor.transform(paths),
             "paths, cache on": cold_cache_transform},
            args.rounds,
        )
        clear_cache()
        decoding = cpu_seconds(lambda: [decode(path, (150, 150)) for path in paths])
        network = cpu_seconds(lambda: extractor.transform(arrays))
        source = cached._images(paths, reset=False)
        hashing = cpu_seconds(source.keys)
        megabytes = sum(path.stat().st_size for path in paths) / 2**20
        activation = 4 * np.prod(cached.feature_shapes_["block2_pool"])
    print(f"device: {device()}")
    print(f"data: {args.images} JPEGs of {camera[0]}x{camera[1]} "
          f"({'cats/dogs photos scaled up' if sources else 'random'}), 150x150, block2_pool, avg")
    for name, value in seconds.items():
        print(f"transform on {name:15s} {args.images / value:7.1f} images/s")
    print(f"paths / arrays: {seconds['arrays'] / seconds['paths']:.3f}x")
    print(f"CPU per image: network {network / args.images * 1e3:.1f} ms, decoding "
          f"{decoding / args.images * 1e3:.2f} ms; the most these allow: "
          f"{network / (network + decoding):.3f}x")
    print(f"with the cache on (emptied before each call): "
          f"{seconds['paths'] / seconds['paths, cache on']:.3f}x the paths' speed with it off. "
          f"It reads and hashes each file ({megabytes / args.images:.2f} MB) before the first "
          f"batch, {hashing / args.images * 1e3:.2f} ms of CPU per file, and stores a copy of "
          f"each image's block2_pool activation ({activation / 2**20:.2f} MB)")


def cpu_seconds(function):
    """Process CPU time (all threads) of one call."""
    start = time.process_time()
    function()
    return time.process_time() - start


if __name__ == "__main__":
    main()
