"""Does ``VGGFeatureExtractor.transform`` run as fast as raw Keras?

Compares, on the same images in the same process, interleaved, best of ``--rounds``, images
per second of
- raw Keras: ``preprocess_input``, then a VGG16 conv base cut at the layer run batch by batch
  with ``Model.predict_on_batch``, and the same with ``Model.predict``, in float32 and under
  the ``mixed_bfloat16`` policy,
- ``VGGFeatureExtractor.transform`` in float32 and in bfloat16 (``cache=False``),
and prints each as a ratio of raw Keras float32 and of raw Keras in the same precision, raw
Keras being ``predict_on_batch``: on these CPUs ``Model.predict`` runs some calls at about
half its speed (at random, call to call), so ``predict_on_batch`` is raw Keras at its best.
Goals on CPUs with bfloat16 instructions: float32 >= 0.95x, bfloat16 >= 1.7x raw float32.
``benchmarks/gpu.sh`` runs it on a GPU with Keras on JAX.

    python benchmarks/bench_extract.py [--images 96] [--size 150] [--layer block5_pool]
        [--batch-size 32] [--rounds 5]
"""

import argparse

import numpy as np
from common import best_of, device, photo_paths, random_images, shared_weights
from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--layer", default="block5_pool")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

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
        return np.concatenate([
            np.asarray(model.predict_on_batch(pixels[start : start + args.batch_size]))
            for start in range(0, len(pixels), args.batch_size)
        ])

    def raw_keras_predict(model):
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
    for precision in ("float32", "bfloat16"):
        contenders[("raw Keras", precision)] = lambda m=raw[precision]: raw_keras(m)
        contenders[("raw Keras Model.predict", precision)] = (
            lambda m=raw[precision]: raw_keras_predict(m)
        )
        contenders[("skconvnet transform", precision)] = (
            lambda e=extractors[precision]: e.transform(images)
        )

    expected = raw_keras(raw["float32"])
    exact = extractors["float32"].transform(images).reshape(expected.shape)
    np.testing.assert_allclose(exact, expected, rtol=1e-4, atol=1e-3)
    fast = extractors["bfloat16"].transform(images)
    drift = np.abs(fast - exact.reshape(fast.shape)).max() / np.abs(exact).max()

    seconds = best_of(contenders, args.rounds)
    baseline = seconds[("raw Keras", "float32")]
    print(f"device: {device()}")
    print(f"data: {source}, {args.size}x{args.size}, cut at {args.layer}, batch {args.batch_size}, "
          f"weights {weights.name if weights else None}, best of {args.rounds} rounds")
    for (name, precision), value in seconds.items():
        same = seconds[("raw Keras", precision)]
        print(f"{name:24s} {precision:8s} {len(images) / value:9.2f} images/s   "
              f"{baseline / value:5.2f}x raw float32   {same / value:5.2f}x raw {precision}")
    print(f"bfloat16 features vs float32: max abs difference {drift:.4f} of the largest feature")
    if paths and weights:
        head_accuracy(weights)


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
