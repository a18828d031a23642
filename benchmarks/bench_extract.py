"""Does ``VGGFeatureExtractor.transform`` run as fast as raw Keras?

Compares, on the same images in the same process, interleaved, best of ``--rounds``, images
per second of
- raw Keras: ``preprocess_input`` + ``Model.predict`` on a VGG16 conv base cut at the layer,
  in float32 and under the ``mixed_bfloat16`` policy,
- ``VGGFeatureExtractor.transform`` in float32 and in bfloat16 (``cache=False``),
and prints each as a ratio of raw Keras float32 and of raw Keras in the same precision.
Goals on CPUs with bfloat16 instructions: float32 >= 0.95x, bfloat16 >= 1.7x raw float32.

Raw Keras' float32 ``Model.predict`` runs at one of two speeds on these CPUs, about 2x apart,
set when a process starts. So the comparison runs in ``--processes`` fresh processes, prints
each, and reports the ratios of the process in which raw Keras was fastest: those compare
with raw Keras at its best. ``benchmarks/gpu.sh`` runs it on a GPU with Keras on JAX.

    python benchmarks/bench_extract.py [--processes 3] [--images 96] [--size 150]
        [--layer block5_pool] [--batch-size 32] [--rounds 3]
"""

import argparse
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from common import best_of, device, photo_paths, random_images, shared_weights


CONTENDERS = [("raw Keras predict", "float32"), ("skconvnet transform", "float32"),
              ("raw Keras predict", "bfloat16"), ("skconvnet transform", "bfloat16")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--layer", default="block5_pool")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one process's measurement, as a JSON line
        print(json.dumps(measure(args)))
        return

    print(f"device: {device()}")
    runs = []
    for _ in range(args.processes):
        done = subprocess.run([sys.executable, __file__, "--measure", *sys.argv[1:]],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first = runs[0]
    print(f"data: {first['source']}, {args.size}x{args.size}, cut at {args.layer}, batch "
          f"{args.batch_size}, weights {first['weights']}, best of {args.rounds} interleaved "
          f"rounds in each of {args.processes} fresh processes")
    print(f"bfloat16 features vs float32: max abs difference {first['drift']:.4f} of the "
          "largest feature")
    print("\nimages/s in each process (transform as a ratio of raw Keras float32):")
    for number, run in enumerate(runs, start=1):
        rates = run["rates"]
        raw = rates["raw Keras predict float32"]
        print(f"process {number}: raw float32 {raw:6.2f}, transform float32 "
              f"{rates['skconvnet transform float32']:6.2f} "
              f"({rates['skconvnet transform float32'] / raw:.2f}x), raw bfloat16 "
              f"{rates['raw Keras predict bfloat16']:6.2f}, transform bfloat16 "
              f"{rates['skconvnet transform bfloat16']:6.2f} "
              f"({rates['skconvnet transform bfloat16'] / raw:.2f}x)")
    fastest = max(runs, key=lambda run: run["rates"]["raw Keras predict float32"])
    print("\nin the process where raw Keras float32 ran fastest:")
    rates = fastest["rates"]
    for name, precision in CONTENDERS:
        rate = rates[f"{name} {precision}"]
        print(f"{name:20s} {precision:8s} {rate:9.2f} images/s   "
              f"{rate / rates['raw Keras predict float32']:5.2f}x raw float32   "
              f"{rate / rates[f'raw Keras predict {precision}']:5.2f}x raw {precision}")
    if first["photos"] and first["weights"] != "None":
        head_accuracy(shared_weights())


def measure(args):
    """Images per second of each contender, best of interleaved rounds, in this process."""
    import keras

    from skconvnet import VGGFeatureExtractor

    size = (args.size, args.size)
    paths = photo_paths(args.images)
    if paths:
        images = np.stack([np.asarray(Image.open(p).convert("RGB").resize(size)) for p in paths])
        source = f"{len(images)} cats/dogs photos"
    else:
        images = random_images(args.images, size)
        source = f"{len(images)} random images"
    weights = shared_weights()

    def raw_model(policy):
        keras.config.set_dtype_policy(policy)
        try:
            base = keras.applications.VGG16(
                include_top=False, weights=weights, input_shape=(*size, 3)
            )
            return keras.Model(base.input, base.get_layer(args.layer).output)
        finally:
            keras.config.set_dtype_policy("float32")

    def raw_keras(model):
        pixels = keras.applications.vgg16.preprocess_input(images.astype("float32"))
        return np.asarray(model.predict(pixels, batch_size=args.batch_size, verbose=0))

    raw = {"float32": raw_model("float32"), "bfloat16": raw_model("mixed_bfloat16")}

    extractors = {
        precision: VGGFeatureExtractor(
            layer=args.layer, weights=weights, image_size=size, batch_size=args.batch_size,
            precision=precision, cache=False,  # measure computing, not cache hits
        ).fit(images)
        for precision in ("float32", "bfloat16")
    }
    contenders = {}
    for name, precision in CONTENDERS:
        if name == "raw Keras predict":
            contenders[f"{name} {precision}"] = lambda m=raw[precision]: raw_keras(m)
        else:
            contenders[f"{name} {precision}"] = (
                lambda e=extractors[precision]: e.transform(images)
            )

    expected = raw_keras(raw["float32"])
    exact = extractors["float32"].transform(images).reshape(expected.shape)
    np.testing.assert_allclose(exact, expected, rtol=1e-4, atol=1e-3)
    fast = extractors["bfloat16"].transform(images)
    drift = np.abs(fast - exact.reshape(fast.shape)).max() / np.abs(exact).max()

    seconds = best_of(contenders, args.rounds)
    return {
        "source": source, "photos": bool(paths), "weights": weights.name if weights else "None",
        "drift": float(drift), "rates": {key: len(images) / value for key, value in seconds.items()},
    }


def head_accuracy(weights):
    """Accuracy of a logistic regression on float32 and on bfloat16 features of real photos."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from skconvnet import VGGFeatureExtractor

    train, test = photo_paths(300), photo_paths(200, split="validation")
    y_train = [p.parent.name for p in train]
    y_test = [p.parent.name for p in test]
    scores = {}
    for precision in ("float32", "bfloat16"):
        model = make_pipeline(
            VGGFeatureExtractor(layer="block4_pool", pooling="avg", weights=weights,
                                precision=precision),
            LogisticRegression(max_iter=2000),
        )
        scores[precision] = model.fit(train, y_train).score(test, y_test)
    print(f"logistic regression on block4_pool/avg features, {len(train)} train / {len(test)} "
          f"test photos: float32 {scores['float32']:.3f}, bfloat16 {scores['bfloat16']:.3f}")


if __name__ == "__main__":
    main()
